/** @file http.c  Plain HTTP on the ws/wss ports (http.h): /healthz, /metrics, static pages.
 *
 * /healthz and /metrics are callback mounts answered from this protocol's callback, one body
 * per request, written in chunks from WRITEABLE; the pages under http.web_root are an lws file
 * mount, which lws serves itself. Upgrades to WebSocket and the wss server context are the
 * WebSocket side's (ws.c), reached through the hooks.
 */
#include "transport/http.h"
#include "base/log.h"
#include "base/metrics.h"

#include <stdlib.h>
#include <string.h>

#define HTTP_PROTOCOL "sipedge-http"
#define WRITE_CHUNK 8192

struct http_pss {
	char *body;
	size_t len, sent;
	const char *type;
	int status;
};

static struct {
	const struct http_config *cfg;
	struct http_hooks hooks;
} H;

const struct setting http_settings[] = {
	SETTING_STRING("http.web_root", struct http_config, web_root, ""),
	SETTING_END,
};

void http_init(const struct http_config *cfg, const struct http_hooks *hooks)
{
	H.cfg = cfg;
	H.hooks = *hooks;
}

static int not_found(struct lws *wsi)
{
	return lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL) ? -1 : lws_http_transaction_completed(wsi);
}

static int http_begin(struct lws *wsi, struct http_pss *pss, const char *path)
{
	/* Callback mounts hand us the mountpoint itself as the path. */
	char *body = NULL;
	size_t len = 0;
	if (!strcmp(path, "/healthz")) {
		body = strdup("ok\n");
		len = 3;
		pss->type = "text/plain";
	} else if (!strcmp(path, "/metrics")) {
		/* Every metric, the per-rtpengine ones included: 64 KiB is plenty until there are
		 * many rtpengines; then as much as the text needs (it can grow between the calls). */
		for (size_t cap = 65536;;) {
			body = malloc(cap);
			if (!body)
				break;
			len = metrics_render(body, cap);
			if (len < cap)
				break;
			free(body);
			body = NULL;
			cap = len + 4096;
		}
		pss->type = "text/plain; version=0.0.4";
	} else {
		return not_found(wsi);
	}
	if (!body)
		return -1;
	pss->body = body;
	pss->len = len;
	pss->sent = 0;
	unsigned char hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof(hdr) - 1;
	if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, pss->type, len, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL, (unsigned char *)"no-store",
					 8, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	lws_callback_on_writable(wsi);
	return 0;
}

static int http_request(struct lws *wsi, struct http_pss *pss)
{
	char path[64];
	/* For a callback mount, in is the path after the mountpoint; the URI header is whole. */
	if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) <= 0)
		return not_found(wsi);
	char *q = strchr(path, '?');
	if (q)
		*q = '\0';
	return http_begin(wsi, pss, path);
}

/** The next chunk of the body; the last one ends the transaction. */
static int http_write_body(struct lws *wsi, struct http_pss *pss)
{
	size_t chunk = pss->len - pss->sent;
	if (chunk > WRITE_CHUNK)
		chunk = WRITE_CHUNK;
	unsigned char *buf = malloc(LWS_PRE + chunk + 1);
	if (!buf)
		return -1;
	memcpy(buf + LWS_PRE, pss->body + pss->sent, chunk);
	bool last = pss->sent + chunk == pss->len;
	int n = lws_write(wsi, buf + LWS_PRE, chunk, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
	free(buf);
	if (n < (int)chunk)
		return -1;
	pss->sent += chunk;
	if (!last) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	free(pss->body);
	pss->body = NULL;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			 size_t len)
{
	struct http_pss *pss = user;
	switch (reason) {
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		/* lws tells each wss vhost's protocols[0] its SSL_CTX while creating it. */
		H.hooks.server_tls((struct lws_vhost *)in, user);
		return 0;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return H.hooks.confirm_upgrade(wsi);
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return -1; /* a WebSocket must be "sip", never this protocol */
	case LWS_CALLBACK_HTTP:
		return http_request(wsi, pss);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (!pss || !pss->body)
			break;
		if (http_write_body(wsi, pss) != 0)
			return -1;
		break;
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (pss) {
			free(pss->body);
			pss->body = NULL;
		}
		break;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

struct lws_protocols http_protocol(void)
{
	struct lws_protocols p = {HTTP_PROTOCOL, http_callback, sizeof(struct http_pss), 0, 0, NULL, 0};
	return p;
}

bool http_mounts_build(struct http_mounts *hm, bool warn)
{
	struct lws_http_mount *m = hm->mount;
	static const char *const endpoints[] = {"/healthz", "/metrics"};
	int n = 0;
	for (int i = 0; i < 2; i++, n++) {
		memset(&m[n], 0, sizeof(m[n]));
		m[n].mountpoint = endpoints[i];
		m[n].mountpoint_len = (unsigned char)strlen(endpoints[i]);
		m[n].origin = HTTP_PROTOCOL;
		m[n].origin_protocol = LWSMPRO_CALLBACK;
	}
	const char *root = H.cfg->web_root;
	if (root && root[0]) {
		if (!realpath(root, hm->web_origin)) {
			if (warn)
				log_warn("http: web_root %s not found: no pages served", root);
		} else {
			memset(&m[n], 0, sizeof(m[n]));
			m[n].mountpoint = "/";
			m[n].mountpoint_len = 1;
			m[n].origin = hm->web_origin;
			m[n].def = "index.html";
			m[n].origin_protocol = LWSMPRO_FILE;
			m[n].cache_max_age = 0;
			n++;
		}
	}
	for (int i = 0; i + 1 < n; i++)
		m[i].mount_next = &m[i + 1];
	return n > 2;
}
