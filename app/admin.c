/** @file admin.c  The console's HTTP side (admin.h): its listener, the token, requests, replies.
 *
 * One vhost with two mounts: /api (a callback mount: every request there is ours and is
 * answered in JSON) and / (the status page's files, when admin.web_root is set). A request
 * body is read only for POST and only up to ADMIN_MAX_BODY; the API takes no body anyway, so
 * a larger one is refused with 413 before it is read.
 */
#include "app/admin.h"
#include "base/log.h"
#include "base/metrics.h"

#include <libwebsockets.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADMIN_PROTOCOL "sipedge-admin"
#define ADMIN_MAX_BODY 4096
#define ADMIN_MAX_PATH 512
#define TOKEN_MIN 16 /* characters: shorter tokens are guessable */

struct admin_pss {
	const char *method;
	char path[ADMIN_MAX_PATH];
	size_t body_len;
	bool waiting_body; /* a POST whose body is still arriving */
	char *out;	   /* the reply's body */
	size_t out_len, out_sent;
};

static struct {
	const struct admin_config *cfg;
	admin_reload_fn reload;
	struct lws_vhost *vhost;
	struct listen_spec spec;
	struct lws_http_mount mounts[2];
	char web_origin[PATH_MAX];
	unsigned char token_hash[32];
	bool have_token;
} Adm;

const struct setting admin_settings[] = {
	SETTING_STRING("admin.listen", struct admin_config, listen, ""),
	SETTING_STRING("admin.token_file", struct admin_config, token_file, ""),
	SETTING_STRING("admin.web_root", struct admin_config, web_root, ""),
	SETTING_END,
};

/** "127.0.0.1:8088" or "[::1]:8088" into spec. */
static int parse_listen(const char *text, struct listen_spec *spec)
{
	char buf[128];
	snprintf(buf, sizeof(buf), "tcp:%s", text);
	return config_parse_listen(buf, spec);
}

int admin_config_check(const struct admin_config *cfg)
{
	if (!cfg->listen[0])
		return 0;
	struct listen_spec spec;
	if (parse_listen(cfg->listen, &spec) != 0) {
		log_error("config: admin.listen '%s' must be a numeric HOST:PORT (127.0.0.1:8088, [::1]:8088)",
			  cfg->listen);
		return 1;
	}
	if (!cfg->token_file[0]) {
		log_error("config: admin.listen needs admin.token_file (a file holding the bearer token)");
		return 1;
	}
	if (strcmp(spec.host, "127.0.0.1") != 0 && strcmp(spec.host, "::1") != 0)
		log_warn("config: admin.listen %s is not a loopback address: the console is reachable "
			 "from the network (only the token guards it, over plain HTTP)", cfg->listen);
	return 0;
}

/* ---- the token ---------------------------------------------------------------------------- */

static void hash_token(const char *text, size_t len, unsigned char out[32])
{
	unsigned int n = 0;
	EVP_Digest(text, len, out, &n, EVP_sha256(), NULL);
}

int admin_reload_token(void)
{
	if (!Adm.cfg || !Adm.cfg->listen[0])
		return 0;
	FILE *f = fopen(Adm.cfg->token_file, "r");
	char line[512] = "";
	bool read = f && fgets(line, sizeof(line), f);
	if (f)
		fclose(f);
	size_t len = strcspn(line, "\r\n");
	line[len] = '\0';
	if (!read || len < TOKEN_MIN) {
		log_error("admin: %s: %s (the token must be one line of at least %d characters)%s",
			  Adm.cfg->token_file, !f ? "cannot read it" : "no token", TOKEN_MIN,
			  Adm.have_token ? "; keeping the token in force" : "");
		OPENSSL_cleanse(line, sizeof(line));
		return -1;
	}
	hash_token(line, len, Adm.token_hash);
	OPENSSL_cleanse(line, sizeof(line));
	Adm.have_token = true;
	log_info("admin: token read from %s", Adm.cfg->token_file);
	return 0;
}

/** Authorization: Bearer TOKEN matches. Both sides are hashed first, so the comparison takes
 *  the same time whatever the length or the first differing byte. */
static bool authorized(struct lws *wsi)
{
	char value[600];
	int n = lws_hdr_copy(wsi, value, sizeof(value), WSI_TOKEN_HTTP_AUTHORIZATION);
	if (n <= 7 || strncasecmp(value, "Bearer ", 7) != 0 || !Adm.have_token)
		return false;
	unsigned char given[32];
	hash_token(value + 7, (size_t)n - 7, given);
	OPENSSL_cleanse(value, sizeof(value));
	return CRYPTO_memcmp(given, Adm.token_hash, sizeof(given)) == 0;
}

/* ---- replies ------------------------------------------------------------------------------ */

/** The length of the well-formed UTF-8 sequence at p (of n bytes left), or 0 if there is none. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xBF;
	size_t len;
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		lo = c == 0xE0 ? 0xA0 : 0x80; /* no overlong forms */
		hi = c == 0xED ? 0x9F : 0xBF; /* no surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		lo = c == 0xF0 ? 0x90 : 0x80;
		hi = c == 0xF4 ? 0x8F : 0xBF; /* nothing above U+10FFFF */
	} else
		return 0;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return len;
}

json_t *admin_text(const char *s)
{
	if (!s)
		return json_null();
	const unsigned char *in = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, len;
	while (i < n && (len = utf8_seq(in + i, n - i)) != 0)
		i += len;
	if (i == n)
		return json_stringn(s, n);
	char *out = malloc(n * 3 + 1); /* at worst each byte becomes the 3 bytes of U+FFFD */
	if (!out)
		return NULL;
	size_t o = 0;
	for (i = 0; i < n;) {
		if ((len = utf8_seq(in + i, n - i)) != 0) {
			memcpy(out + o, in + i, len);
			o += len;
			i += len;
		} else {
			memcpy(out + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		}
	}
	json_t *j = json_stringn(out, o);
	free(out);
	return j;
}

json_t *admin_error(const char *fmt, ...)
{
	char msg[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:o}", "error", admin_text(msg)); /* msg may quote a path or an argument */
}

/** Send status and body (a reference the function takes); 0, or -1 to drop the connection. */
static int reply(struct lws *wsi, struct admin_pss *pss, int status, json_t *body)
{
	char peer[64] = "";
	lws_get_peer_simple(wsi, peer, sizeof(peer));
	log_info("admin: %s %s from %s: %d", pss->method, pss->path, peer, status);
	if (status == 401)
		metrics_inc(M_ADMIN_UNAUTHORIZED);
	else if (status >= 400)
		metrics_inc(M_ADMIN_ERRORS);
	free(pss->out);
	pss->out = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!pss->out) {
		/* The answer could not be built (out of memory, or a bug that left a member NULL): say
		 * so rather than drop the connection, which a client cannot tell from a crash. */
		log_error("admin: %s %s: the answer could not be built", pss->method, pss->path);
		if (status < 400) /* a 4xx or 5xx is counted above already */
			metrics_inc(M_ADMIN_ERRORS);
		status = 500;
		pss->out = strdup("{\"error\":\"internal error: the answer could not be built\"}");
		if (!pss->out)
			return -1;
	}
	pss->out_len = strlen(pss->out) + 1;
	pss->out[pss->out_len - 1] = '\n';
	pss->out_sent = 0;
	unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof(hdr) - 1;
	if (lws_add_http_common_headers(wsi, (unsigned)status, "application/json", pss->out_len, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL, (unsigned char *)"no-store", 8, &p,
					 end))
		return -1;
	if (status == 401 && lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_WWW_AUTHENTICATE,
							  (unsigned char *)"Bearer realm=\"sipedge\"", 22, &p, end))
		return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	lws_callback_on_writable(wsi);
	return 0;
}

static int write_more(struct lws *wsi, struct admin_pss *pss)
{
	if (!pss->out)
		return 0;
	size_t chunk = pss->out_len - pss->out_sent;
	if (chunk > 16384)
		chunk = 16384;
	unsigned char *buf = malloc(LWS_PRE + chunk);
	if (!buf)
		return -1;
	memcpy(buf + LWS_PRE, pss->out + pss->out_sent, chunk);
	bool last = pss->out_sent + chunk == pss->out_len;
	int n = lws_write(wsi, buf + LWS_PRE, chunk, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
	free(buf);
	if (n < (int)chunk)
		return -1;
	pss->out_sent += chunk;
	if (!last) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	free(pss->out);
	pss->out = NULL;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* ---- requests ----------------------------------------------------------------------------- */

static const struct {
	enum lws_token_indexes token;
	const char *name;
} methods[] = {
	{WSI_TOKEN_GET_URI, "GET"},	{WSI_TOKEN_POST_URI, "POST"},	{WSI_TOKEN_DELETE_URI, "DELETE"},
	{WSI_TOKEN_PUT_URI, "PUT"},	{WSI_TOKEN_PATCH_URI, "PATCH"}, {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
	{WSI_TOKEN_HEAD_URI, "HEAD"},
};

/** The method and the decoded path (lws has taken the query off). */
static bool read_request_line(struct lws *wsi, struct admin_pss *pss)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		int len = lws_hdr_total_length(wsi, methods[i].token);
		if (len <= 0)
			continue;
		pss->method = methods[i].name;
		return len < (int)sizeof(pss->path) &&
		       lws_hdr_copy(wsi, pss->path, sizeof(pss->path), methods[i].token) > 0;
	}
	pss->method = "?";
	return false;
}

const char *admin_arg(const struct admin_request *req, const char *name)
{
	for (int i = 0; i < req->n_args; i++)
		if (strcmp(req->arg_name[i], name) == 0)
			return req->arg_value[i];
	return NULL;
}

static int answer(struct lws *wsi, struct admin_pss *pss)
{
	struct admin_request req = {.method = pss->method, .path = pss->path};
	char args[ADMIN_MAX_ARGS][ADMIN_MAX_PATH];
	char peer[64] = "";
	lws_get_peer_simple(wsi, peer, sizeof(peer));
	req.peer = peer;
	for (int i = 0; i < ADMIN_MAX_ARGS + 1; i++) {
		int n = lws_hdr_copy_fragment(wsi, args[i < ADMIN_MAX_ARGS ? i : 0], ADMIN_MAX_PATH,
					      WSI_TOKEN_HTTP_URI_ARGS, i);
		if (n < 0 && lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i) > 0)
			return reply(wsi, pss, 414, admin_error("query argument %d is too long", i + 1));
		if (n < 0)
			break;
		if (i == ADMIN_MAX_ARGS)
			return reply(wsi, pss, 400, admin_error("at most %d query arguments", ADMIN_MAX_ARGS));
		char *eq = strchr(args[i], '=');
		req.arg_name[i] = args[i];
		req.arg_value[i] = eq ? eq + 1 : args[i] + strlen(args[i]);
		if (eq)
			*eq = '\0';
		req.n_args = i + 1;
	}
	json_t *body = NULL;
	int status = admin_api_handle(&req, Adm.reload, &body);
	return reply(wsi, pss, status, body);
}

/** A new request on /api: refuse what is not allowed before any body is read. */
static int on_http(struct lws *wsi, struct admin_pss *pss)
{
	metrics_inc(M_ADMIN_REQUESTS);
	memset(pss, 0, sizeof(*pss));
	if (!read_request_line(wsi, pss)) {
		snprintf(pss->path, sizeof(pss->path), "(unreadable)");
		return reply(wsi, pss, 400, admin_error("unreadable request line or path over %d bytes",
							 ADMIN_MAX_PATH - 1));
	}
	if (!authorized(wsi))
		return reply(wsi, pss, 401, admin_error("missing or wrong bearer token (Authorization: Bearer TOKEN "
							 "from admin.token_file)"));
	char cl[32] = "";
	long long length = 0;
	if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
		length = atoll(cl);
	if (length > ADMIN_MAX_BODY)
		return reply(wsi, pss, 413, admin_error("request body over %d bytes", ADMIN_MAX_BODY));
	if (length > 0 && !strcmp(pss->method, "POST")) {
		pss->waiting_body = true; /* answered at LWS_CALLBACK_HTTP_BODY_COMPLETION */
		return 0;
	}
	return answer(wsi, pss);
}

static int admin_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct admin_pss *pss = user;
	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return on_http(wsi, pss);
	case LWS_CALLBACK_HTTP_BODY:
		if (!pss->waiting_body)
			return 0;
		pss->body_len += len;
		if (pss->body_len > ADMIN_MAX_BODY) { /* a Content-Length that lied */
			pss->waiting_body = false;
			return reply(wsi, pss, 413, admin_error("request body over %d bytes", ADMIN_MAX_BODY));
		}
		return 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		if (!pss->waiting_body)
			return 0;
		pss->waiting_body = false;
		return answer(wsi, pss);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return write_more(wsi, pss);
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (pss) {
			free(pss->out);
			pss->out = NULL;
		}
		break;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols admin_protocols[] = {
	{ADMIN_PROTOCOL, admin_callback, sizeof(struct admin_pss), 0, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- the listener ------------------------------------------------------------------------- */

static void set_mounts(void)
{
	struct lws_http_mount *m = Adm.mounts;
	memset(m, 0, sizeof(Adm.mounts));
	m[0].mountpoint = "/api";
	m[0].mountpoint_len = 4;
	m[0].origin = ADMIN_PROTOCOL;
	m[0].origin_protocol = LWSMPRO_CALLBACK;
	if (!Adm.cfg->web_root[0])
		return;
	if (!realpath(Adm.cfg->web_root, Adm.web_origin)) {
		log_warn("admin: web_root %s not found: no status page, the API only", Adm.cfg->web_root);
		return;
	}
	m[0].mount_next = &m[1];
	m[1].mountpoint = "/";
	m[1].mountpoint_len = 1;
	m[1].origin = Adm.web_origin;
	m[1].def = "index.html";
	m[1].origin_protocol = LWSMPRO_FILE;
}

int admin_start(const struct admin_config *cfg, struct lws_context *ctx, admin_reload_fn reload)
{
	memset(&Adm, 0, sizeof(Adm));
	Adm.cfg = cfg;
	Adm.reload = reload;
	admin_api_started(time(NULL));
	if (!cfg->listen[0]) {
		log_info("admin: no console (admin.listen is empty)");
		return 0;
	}
	if (parse_listen(cfg->listen, &Adm.spec) != 0 || admin_reload_token() != 0)
		return -1;
	set_mounts();
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	info.vhost_name = "admin";
	info.port = Adm.spec.port;
	info.iface = Adm.spec.host;
	info.protocols = admin_protocols;
	info.mounts = Adm.mounts;
	info.timeout_secs = 10;
	info.timeout_secs_ah_idle = 10;
	bool v6 = strchr(Adm.spec.host, ':') != NULL;
	info.options = v6 ? LWS_SERVER_OPTION_IPV6_V6ONLY_MODIFY | LWS_SERVER_OPTION_IPV6_V6ONLY_VALUE
			  : LWS_SERVER_OPTION_DISABLE_IPV6;
	Adm.vhost = lws_create_vhost(ctx, &info);
	if (!Adm.vhost) {
		log_error("admin: cannot listen on %s", cfg->listen);
		return -1;
	}
	admin_history_start();
	printf("listening admin %s%s%s:%d\n", v6 ? "[" : "", Adm.spec.host, v6 ? "]" : "", Adm.spec.port);
	log_notice("admin: console on http://%s%s%s:%d/ (API under /api/v1/)", v6 ? "[" : "", Adm.spec.host,
		   v6 ? "]" : "", Adm.spec.port);
	return 0;
}

void admin_stop(void)
{
	/* The vhost and its connections go with the libwebsockets context (ws_destroy). */
	admin_history_stop();
	OPENSSL_cleanse(Adm.token_hash, sizeof(Adm.token_hash));
	Adm.have_token = false;
	Adm.vhost = NULL;
}
