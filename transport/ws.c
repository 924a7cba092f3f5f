/** @file ws.c  WebSocket (RFC 6455 / RFC 7118) listeners on libwebsockets, and its context.
 *
 * libwebsockets runs on our libuv loop (a foreign loop: it adds its handles, we own the loop).
 * Each ws/wss listener is a vhost whose user pointer is its listen_spec. Two protocols:
 *   "sipedge-http"  plain HTTP on the same port (http.c): /healthz, /metrics and the static
 *                   pages; lws asks it to vet upgrades, which it hands back to confirm_upgrade.
 *   "sip"           the RFC 7118 subprotocol: one connection = one flow.
 * A connection's state (struct ws_conn) lives on the heap, not in lws' per-session area, because
 * its ping timer is a libuv handle that closes asynchronously, after lws has freed the wsi.
 */
#include "transport/ws.h"
#include "transport/limits.h"
#include "base/log.h"
#include "base/metrics.h"
#include "transport/tls.h"
#include "transport/flow.h"
#include "transport/http.h"
#include "transport/sendq.h"
#include "transport/stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define SIP_PROTOCOL "sip"
/* lws gives each connection a receive buffer of the protocol's rx_buffer_size for as long as it
 * is open, and hands a message over in pieces of at most that size. 1 KiB holds a REGISTER or a
 * response in one piece; longer messages (an INVITE with SDP) are put back together in
 * conn_receive's buffer, which exists only while one is arriving. At 4 KiB this buffer was
 * more than half of an idle connection's memory (tests/bench/README.md). */
#define RX_CHUNK 1024
/* lws sets each connection's SO_SNDBUF to rx_buffer_size + LWS_PRE; keep the send buffer it had
 * with 4 KiB (the kernel doubles it), so that a smaller receive buffer does not make writes
 * wait for WRITEABLE more often. */
#define SNDBUF_BYTES (4096 + LWS_PRE)
/* How much lws gives one send(). Left 0, it is rx_buffer_size: an INVITE with SDP went out as
 * a 1 KiB write, the rest buffered, a WRITEABLE asked for and two changes of the poll set made
 * for it (eight epoll_ctl per call through the proxy). The kernel takes what fits its send
 * buffer; lws keeps and finishes any rest. */
#define TX_PACKET_BYTES (64 * 1024)
#define MAX_QUEUED_BYTES (1024 * 1024) /* a peer that stops reading is closed, not buffered forever */
#define SHUTDOWN_DRAIN_MS 500	       /* time given to close frames at shutdown */

enum ping_phase { PING_IDLE, PING_AWAIT_PONG };

struct ws_conn {
	struct lws *wsi; /* NULL once lws has closed it */
	struct flow *flow;
	const struct listen_spec *local;
	/* reassembly of one WebSocket message from its frames and fragments */
	char *rx;
	size_t rx_len, rx_cap;
	bool rx_binary;
	bool reply_binary; /* answer in the opcode the peer last used */
	/* send queue, one WebSocket message per entry */
	struct sendq out;
	bool ping_due;
	enum ping_phase ping_phase;
	uv_timer_t ping_timer;
	/* a close we initiate: sent from the next WRITEABLE */
	int close_code;
	struct ws_conn *prev, *next; /* every live connection, for shutdown */
};

struct listener {
	struct listen_spec spec;
	struct lws_vhost *vhost;
	SSL_CTX *ssl_ctx; /* the vhost's server context (wss), for reloading the certificate */
	struct http_mounts mounts;
};

static struct {
	struct lws_context *ctx;
	uv_loop_t *loop;
	const struct ws_config *cfg;
	const struct tls_config *tls;
	struct sip_receiver receiver;
	struct listener listeners[CONFIG_MAX_LISTEN];
	int n_listeners;
	struct ws_conn *conns;
	unsigned n_conns;
	bool stopping;
	uv_timer_t drain_timer;
	bool drain_timer_open;
	uint64_t drain_deadline;
} W;

/* ---- logging ---------------------------------------------------------------------------- */

static void lws_log_emit(int level, const char *line)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	/* lws reports per-connection trouble (a peer that hangs up mid-handshake) as errors;
	 * for a server that talks to the internet those are notices, not our errors. */
	log_msg(level == LLL_ERR ? LOGL_NOTICE : LOGL_DEBUG, "lws: %.*s", (int)n, line);
}

/* ---- connections and flows -------------------------------------------------------------- */

static void on_ping_timer_closed(uv_handle_t *h)
{
	struct ws_conn *c = h->data;
	free(c->rx);
	sendq_clear(&c->out);
	free(c);
}

/** Ask lws to close the connection with code and reason from its next WRITEABLE callback. */
static void conn_request_close(struct ws_conn *c, int code, const char *reason)
{
	if (!c->wsi || c->close_code)
		return;
	c->close_code = code;
	/* lws keeps the close payload, and a close it is asked for directly (not by failing a
	 * WRITEABLE callback, which drops the socket without a frame) sends it as the close
	 * frame at the next POLLOUT and waits for the peer's close before the socket goes. */
	lws_close_reason(c->wsi, (enum lws_close_status)code, (unsigned char *)reason, strlen(reason));
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_SYNC);
}

static int conn_writeable(struct ws_conn *c, struct lws *wsi);

/* Send what is due (the ping, then the queue's head) now when lws holds no partial write, else
 * from the next WRITEABLE. Waiting for WRITEABLE when the socket can take the message at once
 * costs two changes of the poll set per message (lws asks libuv for POLLOUT, then drops it,
 * and uv_poll_start takes the fd out of epoll and puts it back each time) and a turn of the
 * loop: a tenth of the daemon's time under REGISTER load (tests/bench/README.md).
 * Nor is the socket polled first (lws_send_pipe_choked() does, one poll() per message, a third
 * of the daemon's system calls under that load): a write the socket cannot take whole is one
 * lws keeps and finishes itself at POLLOUT, and until it has, lws_partial_buffered() holds
 * further messages in our queue, where MAX_QUEUED_BYTES bounds them. A stream carried inside
 * another connection (h2, not offered today) shares that connection's socket: it asks lws. A
 * failed write closes, as a failed WRITEABLE callback would. */
static int conn_kick(struct ws_conn *c)
{
	struct lws *net = lws_get_network_wsi(c->wsi);
	if (net != c->wsi ? lws_send_pipe_choked(c->wsi) : lws_partial_buffered(c->wsi)) {
		lws_callback_on_writable(c->wsi);
		return 0;
	}
	if (conn_writeable(c, c->wsi) == 0)
		return 0;
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
	return -1;
}

static int ws_flow_send(struct flow *f, const char *data, size_t len)
{
	struct ws_conn *c = f->impl;
	if (!c || !c->wsi || c->close_code)
		return -1;
	if (c->out.bytes + len > MAX_QUEUED_BYTES) {
		log_warn("ws: flow %llu from %s is not reading (%zu bytes queued): closing",
			 (unsigned long long)f->id, f->peer_text, c->out.bytes);
		metrics_inc(M_WS_SEND_QUEUE_FULL);
		conn_request_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "send queue full");
		return -1;
	}
	if (sendq_add(&c->out, data, len) != 0)
		return -1;
	return conn_kick(c);
}

static void ws_flow_close(struct flow *f)
{
	struct ws_conn *c = f->impl;
	if (c)
		conn_request_close(c, LWS_CLOSE_STATUS_NORMAL, "closed by server");
}

static const struct flow_ops ws_flow_ops = {.send = ws_flow_send, .close = ws_flow_close};

static void on_ping_timer(uv_timer_t *t)
{
	struct ws_conn *c = t->data;
	if (!c->wsi)
		return;
	if (c->ping_phase == PING_AWAIT_PONG) {
		metrics_inc(M_WS_PING_TIMEOUT);
		log_info("ws: flow %llu from %s missed its pong: closing",
			 (unsigned long long)c->flow->id, c->flow->peer_text);
		conn_request_close(c, LWS_CLOSE_STATUS_GOINGAWAY, "ping timeout");
		return;
	}
	c->ping_due = true;
	c->ping_phase = PING_AWAIT_PONG;
	uv_timer_start(&c->ping_timer, on_ping_timer, (uint64_t)W.cfg->ws_pong_timeout * 1000, 0);
	conn_kick(c);
}

static struct ws_conn *conn_open(struct lws *wsi)
{
	struct ws_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->wsi = wsi;
	c->local = lws_get_vhost_user(lws_get_vhost(wsi));
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	memset(&peer, 0, sizeof(peer));
	if (getpeername(lws_get_socket_fd(wsi), (struct sockaddr *)&peer, &plen) != 0)
		peer.ss_family = AF_UNSPEC;
	flow_unmap_v4(&peer);
	c->flow = flow_create(c->local->proto, (struct sockaddr *)&peer, c->local, &ws_flow_ops, c);
	if (!c->flow) {
		free(c);
		return NULL;
	}
	limits_conn_opened((struct sockaddr *)&peer);
	uv_timer_init(W.loop, &c->ping_timer);
	c->ping_timer.data = c;
	if (W.cfg->ws_ping_interval > 0)
		uv_timer_start(&c->ping_timer, on_ping_timer, (uint64_t)W.cfg->ws_ping_interval * 1000, 0);
	c->next = W.conns;
	if (W.conns)
		W.conns->prev = c;
	W.conns = c;
	W.n_conns++;
	metrics_inc(M_WS_CONNECTIONS_TOTAL);
	metrics_set(M_WS_CONNECTIONS, W.n_conns);
	return c;
}

static void conn_closed(struct ws_conn *c)
{
	c->wsi = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		W.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	W.n_conns--;
	metrics_set(M_WS_CONNECTIONS, W.n_conns);
	struct flow *f = c->flow;
	limits_conn_closed((struct sockaddr *)&f->peer);
	c->flow = NULL;
	f->impl = NULL;
	flow_destroy(f);
	uv_timer_stop(&c->ping_timer);
	uv_close((uv_handle_t *)&c->ping_timer, on_ping_timer_closed);
}

/** One frame or part of one; a whole message goes to the SIP core. -1 closes the connection. */
static int conn_receive(struct ws_conn *c, struct lws *wsi, const void *in, size_t len)
{
	if (lws_is_first_fragment(wsi))
		c->rx_binary = lws_frame_is_binary(wsi);
	flow_received(c->flow, len);
	size_t max = (size_t)W.cfg->ws_max_message;
	/* The frame header announces the rest of the frame: refuse a frame that will not fit
	 * now, not after its sender has trickled in the allowed bytes. */
	if (c->rx_len + len + lws_remaining_packet_payload(wsi) > max) {
		metrics_inc(M_WS_OVERSIZE);
		log_notice("ws: flow %llu from %s sent a message over %zu bytes: closing with 1009",
			   (unsigned long long)c->flow->id, c->flow->peer_text, max);
		lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)"message too big",
				 15);
		return -1;
	}
	bool last = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);
	if (c->rx_len == 0 && last) {
		/* The usual case, a message in one piece: read where lws put it, no copy, and an idle
		 * connection holds no reassembly buffer. */
		c->reply_binary = c->rx_binary;
		W.receiver.message(W.receiver.ctx, c->flow, in, len);
		return 0;
	}
	if (c->rx_len + len > c->rx_cap) {
		/* The rest of this frame is announced: room for all of it at once, and for a message
		 * in several frames twice what it has grown to. */
		size_t need = c->rx_len + len + lws_remaining_packet_payload(wsi);
		size_t cap = c->rx_cap ? 2 * c->rx_cap : need;
		if (cap < need)
			cap = need;
		char *p = realloc(c->rx, cap);
		if (!p)
			return -1;
		c->rx = p;
		c->rx_cap = cap;
	}
	memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
	if (!last)
		return 0;
	c->reply_binary = c->rx_binary;
	size_t n = c->rx_len;
	c->rx_len = 0;
	W.receiver.message(W.receiver.ctx, c->flow, c->rx, n);
	/* Reassembly is the rare case (fragments, messages over lws's buffer): give it back. */
	free(c->rx);
	c->rx = NULL;
	c->rx_cap = 0;
	return 0;
}

static int conn_writeable(struct ws_conn *c, struct lws *wsi)
{
	if (c->close_code)
		return 0; /* closing: nothing more is sent */
	if (c->ping_due) {
		/* A non-empty payload: lws does not report empty pongs to us. */
		unsigned char buf[LWS_PRE + 8];
		memcpy(buf + LWS_PRE, "sipedge!", 8);
		c->ping_due = false;
		if (lws_write(wsi, buf + LWS_PRE, 8, LWS_WRITE_PING) < 0)
			return -1;
	} else if (c->out.head) {
		struct sendq_msg *m = sendq_take(&c->out);
		int n = lws_write(wsi, sendq_data(m), m->len,
				  c->reply_binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
		int short_write = n < (int)m->len;
		free(m);
		if (short_write)
			return -1;
	}
	if (c->out.head || c->ping_due)
		lws_callback_on_writable(wsi);
	return 0;
}

static int sip_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			size_t len)
{
	struct ws_conn **slot = user;
	struct ws_conn *c = slot ? *slot : NULL;
	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		*slot = conn_open(wsi);
		if (!*slot)
			return -1;
		if (!len) { /* len: carried in an h2 stream, whose socket lws leaves alone too */
			int sndbuf = SNDBUF_BYTES;
			if (setsockopt(lws_get_socket_fd(wsi), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)))
				log_debug("ws: SO_SNDBUF: %s", strerror(errno));
		}
		break;
	case LWS_CALLBACK_RECEIVE:
		if (!c)
			return -1;
		return conn_receive(c, wsi, in, len);
	case LWS_CALLBACK_RECEIVE_PONG:
		log_debug("ws: flow %llu: pong", c ? (unsigned long long)c->flow->id : 0ULL);
		if (c && c->ping_phase == PING_AWAIT_PONG) {
			c->ping_phase = PING_IDLE;
			if (W.cfg->ws_ping_interval > 0)
				uv_timer_start(&c->ping_timer, on_ping_timer,
					       (uint64_t)W.cfg->ws_ping_interval * 1000, 0);
		}
		break;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (!c)
			return -1;
		return conn_writeable(c, wsi);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (c && len >= 2) {
			const unsigned char *p = in;
			log_debug("ws: flow %llu: peer closed with %d", (unsigned long long)c->flow->id,
				  p[0] << 8 | p[1]);
		}
		break;
	case LWS_CALLBACK_CLOSED:
		if (c) {
			*slot = NULL;
			conn_closed(c);
		}
		break;
	default:
		break;
	}
	return 0;
}

/* ---- the upgrade to a WebSocket (lws asks the HTTP protocol, which asks us) ------------- */

/** True if the comma-separated header value lists token (case-insensitive). */
static bool header_lists(const char *value, const char *token)
{
	struct lws_tokenize ts;
	lws_tokenize_init(&ts, value, LWS_TOKENIZE_F_COMMA_SEP_LIST | LWS_TOKENIZE_F_MINUS_NONTERM);
	lws_tokenize_elem e;
	size_t tl = strlen(token);
	do {
		e = lws_tokenize(&ts);
		if (e == LWS_TOKZE_TOKEN && ts.token_len == tl && !strncasecmp(ts.token, token, tl))
			return true;
	} while (e > 0);
	return false;
}

static int reject_upgrade(struct lws *wsi, unsigned status, const char *why)
{
	metrics_inc(M_WS_HANDSHAKE_REJECTED);
	char peer[64] = "";
	lws_get_peer_simple(wsi, peer, sizeof(peer));
	log_notice("ws: handshake from %s refused (%u): %s", peer, status, why);
	/* lws writes the status line and a small HTML body carrying our reason. */
	if (lws_return_http_status(wsi, status, why))
		return -1;
	return 1;
}

/** RFC 7118 §4: the client must offer the "sip" subprotocol; the Origin allowlist is optional. */
static int confirm_upgrade(struct lws *wsi)
{
	char value[512];
	if (lws_hdr_copy(wsi, value, sizeof(value), WSI_TOKEN_PROTOCOL) <= 0)
		return reject_upgrade(wsi, HTTP_STATUS_BAD_REQUEST,
				      "Sec-WebSocket-Protocol: sip is required (RFC 7118)");
	if (!header_lists(value, SIP_PROTOCOL))
		return reject_upgrade(wsi, HTTP_STATUS_BAD_REQUEST,
				      "only the sip WebSocket subprotocol is served here");
	/* limits.max_connections_per_ip, and no new connection for a banned source. */
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	memset(&peer, 0, sizeof(peer));
	const char *why;
	if (getpeername(lws_get_socket_fd(wsi), (struct sockaddr *)&peer, &plen) == 0 &&
	    !limits_conn_allowed((struct sockaddr *)&peer, &why))
		return reject_upgrade(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, why);
	const struct string_list *origins = &W.cfg->ws_origins;
	if (origins->count > 0) {
		if (lws_hdr_copy(wsi, value, sizeof(value), WSI_TOKEN_ORIGIN) <= 0)
			return reject_upgrade(wsi, HTTP_STATUS_FORBIDDEN, "an Origin header is required");
		for (int i = 0; i < origins->count; i++)
			if (!strcasecmp(value, origins->item[i]))
				return 0;
		return reject_upgrade(wsi, HTTP_STATUS_FORBIDDEN, "Origin not allowed");
	}
	return 0;
}

/** lws tells each wss vhost's protocols[0] its SSL_CTX while creating it: keep it, so that
 *  SIGHUP can put a new certificate into it. */
static void keep_server_tls(struct lws_vhost *vhost, void *ssl_ctx)
{
	for (int i = 0; i < W.n_listeners; i++)
		if (lws_get_vhost_user(vhost) == &W.listeners[i].spec)
			W.listeners[i].ssl_ctx = ssl_ctx;
}

/* protocols[0] is HTTP's (http.c, filled in at start): lws gives the first protocol the plain
 * requests and the upgrade checks. */
static struct lws_protocols protocols[] = {
	{NULL, NULL, 0, 0, 0, NULL, 0},
	{SIP_PROTOCOL, sip_callback, sizeof(struct ws_conn *), RX_CHUNK, 0, NULL, TX_PACKET_BYTES},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- listeners ---------------------------------------------------------------------------- */

static int listener_open(struct listener *l)
{
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	info.vhost_name = proto_name(l->spec.proto);
	info.port = l->spec.port;
	info.iface = l->spec.host;
	info.protocols = protocols;
	info.user = &l->spec;
	/* Per vhost, not per context: how long a request or upgrade may dawdle (slowloris)
	 * and how long lws waits on other round trips, such as the peer's close. */
	info.timeout_secs = (unsigned)W.cfg->ws_handshake_timeout;
	info.timeout_secs_ah_idle = (unsigned)W.cfg->ws_handshake_timeout;
	/* No idle check of lws's own: we ping (websocket.ping_interval, pong_timeout). Its
	 * default (a ping after 300 s, a close at 310 s) re-arms a timer on every pong, and lws
	 * keeps its timers in one sorted list, walked to the end for each: with 10,000
	 * connections that walk was nine tenths of an idle daemon's time (tests/bench/README.md). */
	static const lws_retry_bo_t no_idle_check = {.secs_since_valid_ping = 0, .secs_since_valid_hangup = 0};
	info.retry_and_idle_policy = &no_idle_check;
	bool pages = http_mounts_build(&l->mounts, l == &W.listeners[0]);
	info.mounts = l->mounts.mount;
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
	if (strchr(l->spec.host, ':'))
		info.options |= LWS_SERVER_OPTION_IPV6_V6ONLY_MODIFY | LWS_SERVER_OPTION_IPV6_V6ONLY_VALUE;
	else /* an IPv4 host: without this lws opens a dual-stack socket on every address */
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	if (l->spec.proto == PROTO_WSS) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = W.tls->tls_cert;
		info.ssl_private_key_filepath = W.tls->tls_key;
		/* TLS 1.2 or later only. */
		info.ssl_options_set = TLS_OPTIONS | SSL_OP_CIPHER_SERVER_PREFERENCE;
		info.ssl_cipher_list = TLS_CIPHERS;
		/* HTTP/1.1 only: with h2 offered, Chromium carries the WebSocket as an RFC 8441
		 * stream inside the h2 connection of the page; lws then has no peer address for
		 * it and messages we send unprompted (an INVITE to a callee) never leave. */
		info.alpn = "http/1.1";
	}
	l->vhost = lws_create_vhost(W.ctx, &info);
	if (!l->vhost) {
		log_error("cannot listen on %s:%s:%d", proto_name(l->spec.proto), l->spec.host,
			  l->spec.port);
		return -1;
	}
	bool v6 = strchr(l->spec.host, ':') != NULL;
	printf("listening %s %s%s%s:%d\n", proto_name(l->spec.proto), v6 ? "[" : "", l->spec.host,
	       v6 ? "]" : "", l->spec.port);
	log_info("%s listener on %s port %d", proto_name(l->spec.proto), l->spec.host, l->spec.port);
	/* Tell a newcomer where to point a browser: the demo phone on this port. */
	if (pages)
		log_notice("demo phone: %s://%s%s%s:%d/phone/",
			   l->spec.proto == PROTO_WSS ? "https" : "http", v6 ? "[" : "", l->spec.host,
			   v6 ? "]" : "", l->spec.port);
	return 0;
}

/* RFC 6455 §5.1: a server must close the connection on an unmasked client frame. The check
 * lives in libwebsockets' frame parser and the application never sees the mask bit: 5.0 and
 * later check it, Debian 12's 4.1.6 only when rebuilt with packaging/libwebsockets/, which
 * marks its version string. */
static bool library_refuses_unmasked_frames(const char *version)
{
	return atoi(version) >= 5 || strstr(version, "rfc6455-mask") != NULL;
}

static void report_library(const struct transport_setup *setup)
{
	const char *version = lws_get_library_version();
	bool refuses = library_refuses_unmasked_frames(version);
	metrics_set(M_WS_UNMASKED_REFUSED, refuses);
	log_info("ws: libwebsockets %s", version);
	bool serves_ws = false;
	for (int i = 0; i < setup->n_listen; i++)
		serves_ws |= setup->listen[i].proto == PROTO_WS || setup->listen[i].proto == PROTO_WSS;
	if (serves_ws && !refuses)
		log_warn("ws: libwebsockets %s accepts unmasked client frames (RFC 6455 5.1 says close "
			 "them): install the patched build with tools/install-libwebsockets",
			 version);
}

const struct setting ws_settings[] = {
	SETTING_INT("websocket.max_message_size", struct ws_config, ws_max_message, 65536),
	SETTING_INT("websocket.ping_interval", struct ws_config, ws_ping_interval, 30),
	SETTING_INT("websocket.pong_timeout", struct ws_config, ws_pong_timeout, 10),
	SETTING_INT("websocket.handshake_timeout", struct ws_config, ws_handshake_timeout, 10),
	SETTING_LIST("websocket.origins", struct ws_config, ws_origins),
	SETTING_END,
};

int ws_config_check(const struct ws_config *cfg)
{
	int problems = 0;
	if (cfg->ws_max_message < 512 || cfg->ws_max_message > 16 * 1024 * 1024) {
		log_error("config: websocket.max_message_size must be 512..16777216");
		problems++;
	}
	if (cfg->ws_handshake_timeout < 1 || cfg->ws_handshake_timeout > 300) {
		log_error("config: websocket.handshake_timeout must be 1..300 seconds");
		problems++;
	}
	return problems;
}

int ws_start(const struct ws_config *cfg, const struct http_config *http, const struct transport_setup *setup)
{
	memset(&W, 0, sizeof(W));
	uv_loop_t *loop = setup->loop;
	W.loop = loop;
	W.cfg = cfg;
	W.tls = setup->tls;
	struct http_hooks hooks = {.confirm_upgrade = confirm_upgrade, .server_tls = keep_server_tls};
	http_init(http, &hooks);
	protocols[0] = http_protocol();
	W.receiver = setup->receiver;
	int level = LLL_ERR | (log_get_level() >= LOGL_DEBUG ? LLL_WARN | LLL_NOTICE : 0);
	lws_set_log_level(level, lws_log_emit);

	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	void *foreign_loops[1] = {loop};
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_VALIDATE_UTF8 |
		       LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.foreign_loops = foreign_loops;
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.max_http_header_data = 4096;
	/* Always: TCP and TLS (stream.c) run on this context too, outbound ones even without
	 * a listener. */
	W.ctx = lws_create_context(&info);
	if (!W.ctx) {
		log_error("ws: cannot create the libwebsockets context");
		return -1;
	}
	report_library(setup);
	for (int i = 0; i < setup->n_listen; i++) {
		const struct listen_spec *s = &setup->listen[i];
		if (s->proto != PROTO_WS && s->proto != PROTO_WSS)
			continue;
		struct listener *l = &W.listeners[W.n_listeners++];
		l->spec = *s;
		if (listener_open(l) != 0)
			return -1;
	}
	return 0;
}

/* ---- certificate reload --------------------------------------------------------------------- */

int ws_tls_reload(void)
{
	int rc = 0;
	char err[256] = "";
	for (int i = 0; i < W.n_listeners; i++) {
		struct listener *l = &W.listeners[i];
		if (l->spec.proto != PROTO_WSS)
			continue;
		/* Connections copy the certificate when they start: open ones keep the old. */
		if (!l->ssl_ctx || !tls_load_pair(l->ssl_ctx, W.tls->tls_cert, W.tls->tls_key, err, sizeof(err))) {
			log_error("tls: wss listener %s port %d: reload failed (%s)", l->spec.host, l->spec.port,
				  l->ssl_ctx ? err : "no TLS context");
			rc = -1;
			continue;
		}
		log_notice("tls: wss listener %s port %d: certificate reloaded from %s", l->spec.host,
			   l->spec.port, W.tls->tls_cert);
	}
	return rc;
}

struct lws_context *ws_context(void) { return W.ctx; }

/* ---- shutdown ------------------------------------------------------------------------------ */

static void destroy_context(void)
{
	if (W.ctx) {
		lws_context_destroy(W.ctx);
		W.ctx = NULL;
	}
}

static void on_drain_timer(uv_timer_t *t)
{
	if ((W.n_conns > 0 || stream_count() > 0) && uv_now(W.loop) < W.drain_deadline)
		return;
	uv_timer_stop(t);
	uv_close((uv_handle_t *)t, NULL);
	W.drain_timer_open = false;
	destroy_context();
	uv_stop(W.loop);
}

bool ws_stop(void)
{
	if (W.stopping || !W.ctx)
		return false;
	W.stopping = true;
	/* Say goodbye (1001) on every connection, give the close frames a moment, then let lws
	 * tear down what is left; its handles close as the loop runs on. */
	for (struct ws_conn *c = W.conns; c; c = c->next)
		conn_request_close(c, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
	uv_timer_init(W.loop, &W.drain_timer);
	W.drain_timer_open = true;
	W.drain_deadline = uv_now(W.loop) + SHUTDOWN_DRAIN_MS;
	uv_timer_start(&W.drain_timer, on_drain_timer, 20, 20);
	return true;
}

void ws_destroy(void)
{
	if (W.drain_timer_open) {
		uv_close((uv_handle_t *)&W.drain_timer, NULL);
		W.drain_timer_open = false;
	}
	destroy_context();
}
