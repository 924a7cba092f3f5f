/** @file stream.c  SIP over TCP and TLS (RFC 3261 §18.3) on libwebsockets raw sockets.
 *
 * The same lws context as the WebSocket listeners (one libuv loop): each tcp/tls listener is a
 * vhost whose accepted sockets lws adopts as "raw-skt" connections bound to our protocol, with
 * TLS done by lws on tls vhosts. A listener-less client vhost opens connections to the network.
 * TLS on those is ours (tls_client.c: OpenSSL with memory BIOs over the raw connection): lws 4.1
 * sets up a raw client's TLS before its socket exists, and the connection fails at once.
 *
 * A connection (struct stream_conn) is one flow. Received bytes go through sofia-sip's stream
 * parser (sipmsg_stream): a message is complete when its Content-Length bytes of body are in.
 * Sending queues whole messages and writes one per WRITEABLE; lws keeps what the kernel did
 * not take and holds back the next WRITEABLE until it is out. Closing is always asynchronous,
 * after the queue has drained, so a flow never disappears under its caller.
 */
#include "transport/stream.h"
#include "transport/limits.h"
#include "transport/transport.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/sipmsg.h"
#include "transport/flow.h"
#include "transport/sendq.h"
#include "transport/tls_client.h"

#include <arpa/inet.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define STREAM_PROTOCOL "sip-stream"
#define MAX_QUEUED_BYTES (1024 * 1024) /* a peer that stops reading is closed, not buffered forever */

enum conn_state {
	CONN_CONNECTING, /* outbound, not yet connected (or TLS not yet up): messages wait */
	CONN_OPEN,
	CONN_CLOSING, /* close once the queue is out */
};
static const char *const state_names[] = {"connecting", "open", "closing"};

struct stream_conn {
	struct lws *wsi; /* NULL once lws is done with it */
	struct flow *flow;
	enum transport_proto proto;
	enum conn_state state;
	bool outbound;
	bool connect_failed; /* lws reported an error during lws_client_connect_via_info */
	bool socket_up; /* accepted, or connected: the out queue can be written */
	struct sipmsg_stream *rx;
	struct sendq out;     /* bytes for the socket */
	struct sendq pending; /* outbound TLS: messages waiting for the handshake */
	struct tls_session *tls; /* outbound TLS (tls_client.c), else NULL */
	uint64_t last_ms; /* uv_now of the last traffic, for tcp.idle_timeout */
	struct sockaddr_storage alias; /* RFC 5923: the peer's listening address, from its Via */
	struct stream_conn *prev, *next;
};

static struct {
	uv_loop_t *loop;
	const struct tcp_config *cfg;
	const struct tls_config *tls;
	struct listen_spec *listen;
	int n_listen;
	struct sip_receiver receiver;
	struct lws_context *ctx;
	struct lws_vhost *client;
	SSL_CTX *server_tls[CONFIG_MAX_LISTEN]; /* each tls listener's, by index, for SIGHUP */
	struct stream_conn *conns;
	unsigned count;
} S;

static int conn_tls_flush(struct stream_conn *c);
static int conn_tls_write(struct stream_conn *c, const char *data, size_t len);

/* ---- connections ---------------------------------------------------------------------------- */

static void conn_free_queue(struct stream_conn *c)
{
	sendq_clear(&c->out);
	sendq_clear(&c->pending);
}

static void conn_free(struct stream_conn *c)
{
	sipmsg_stream_destroy(c->rx);
	conn_free_queue(c);
	tls_session_free(c->tls);
	free(c);
}

static void conn_link(struct stream_conn *c)
{
	c->next = S.conns;
	if (S.conns)
		S.conns->prev = c;
	S.conns = c;
	S.count++;
	metrics_set(M_TCP_CONNECTIONS, S.count);
}

/** Unlink and free c; its flow goes (observers run: bindings dropped, branches failed). */
static void conn_gone(struct stream_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		S.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	S.count--;
	metrics_set(M_TCP_CONNECTIONS, S.count);
	if (c->wsi)
		lws_set_opaque_user_data(c->wsi, NULL);
	c->wsi = NULL;
	struct flow *f = c->flow;
	c->flow = NULL;
	if (f) {
		if (!c->outbound)
			limits_conn_closed((struct sockaddr *)&f->peer);
		f->impl = NULL;
		flow_destroy(f);
	}
	conn_free(c);
}

/** Close after what is queued has gone out. */
static void conn_request_close(struct stream_conn *c)
{
	if (!c->wsi || c->state == CONN_CLOSING)
		return;
	c->state = CONN_CLOSING;
	sendq_clear(&c->pending);
	if (!c->socket_up) {
		conn_free_queue(c);
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
		return;
	}
	if (c->tls && tls_session_up(c->tls)) {
		tls_session_shutdown(c->tls); /* close_notify goes out with the rest */
		conn_tls_flush(c);
	}
	lws_callback_on_writable(c->wsi);
}

static void conn_arm_idle(struct stream_conn *c)
{
	c->last_ms = uv_now(S.loop);
	if (S.cfg->tcp_idle_timeout > 0 && c->wsi)
		lws_set_timer_usecs(c->wsi, (lws_usec_t)S.cfg->tcp_idle_timeout * LWS_US_PER_SEC);
}

static void on_idle_timer(struct stream_conn *c)
{
	uint64_t idle_ms = (uint64_t)S.cfg->tcp_idle_timeout * 1000, now = uv_now(S.loop);
	if (c->state == CONN_CLOSING)
		return;
	if (now - c->last_ms < idle_ms) {
		/* Traffic since the timer was set: wait for the rest of the idle time. */
		lws_set_timer_usecs(c->wsi, (lws_usec_t)(c->last_ms + idle_ms - now) * 1000);
		return;
	}
	metrics_inc(M_TCP_IDLE_CLOSED);
	log_info("%s: flow %llu %s idle for %d s: closing", proto_name(c->proto),
		 (unsigned long long)c->flow->id, c->flow->peer_text, S.cfg->tcp_idle_timeout);
	conn_request_close(c);
}

static int stream_flow_send(struct flow *f, const char *data, size_t len)
{
	struct stream_conn *c = f->impl;
	if (!c || !c->wsi || c->state == CONN_CLOSING)
		return -1;
	if (c->out.bytes + c->pending.bytes + len > MAX_QUEUED_BYTES) {
		log_warn("%s: flow %llu %s is not reading (%zu bytes queued): closing",
			 proto_name(c->proto), (unsigned long long)f->id, f->peer_text,
			 c->out.bytes + c->pending.bytes);
		conn_request_close(c);
		return -1;
	}
	if (log_get_level() >= LOGL_DEBUG)
		log_debug("%s send to flow %llu %s%s:\n%.*s", proto_name(c->proto),
			  (unsigned long long)f->id, f->peer_text,
			  c->state == CONN_CONNECTING ? " (queued until connected)" : "", (int)len, data);
	if (c->tls && c->state == CONN_CONNECTING)
		return sendq_add(&c->pending, data, len);
	if (c->tls)
		return conn_tls_write(c, data, len);
	if (sendq_add(&c->out, data, len) != 0)
		return -1;
	if (c->socket_up) {
		c->last_ms = uv_now(S.loop);
		lws_callback_on_writable(c->wsi);
	}
	return 0;
}

static void stream_flow_close(struct flow *f)
{
	struct stream_conn *c = f->impl;
	if (c)
		conn_request_close(c);
}

static const struct flow_ops stream_ops = {.send = stream_flow_send, .close = stream_flow_close};

static struct stream_conn *conn_new(enum transport_proto proto)
{
	struct stream_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->proto = proto;
	c->rx = sipmsg_stream_create((size_t)S.cfg->tcp_max_message);
	if (!c->rx) {
		free(c);
		return NULL;
	}
	return c;
}

/** A socket accepted on one of our listeners. */
static struct stream_conn *conn_accept(struct lws *wsi)
{
	const struct listen_spec *spec = lws_get_vhost_user(lws_get_vhost(wsi));
	if (!spec)
		return NULL;
	struct sockaddr_storage peer;
	socklen_t plen = sizeof(peer);
	memset(&peer, 0, sizeof(peer));
	if (getpeername(lws_get_socket_fd(wsi), (struct sockaddr *)&peer, &plen) != 0)
		peer.ss_family = AF_UNSPEC;
	flow_unmap_v4(&peer);
	/* limits.max_connections_per_ip, and no new connection for a banned source: closed as
	 * soon as it is accepted, before a byte (or a TLS handshake) is read. */
	const char *why;
	if (!limits_conn_allowed((struct sockaddr *)&peer, &why)) {
		char host[INET6_ADDRSTRLEN] = "?";
		if (peer.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr, host, sizeof(host));
		else if (peer.ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&peer)->sin6_addr, host, sizeof(host));
		log_notice("%s: connection from %s refused: %s", proto_name(spec->proto), host, why);
		return NULL;
	}
	struct stream_conn *c = conn_new(spec->proto);
	if (!c)
		return NULL;
	c->flow = flow_create(spec->proto, (struct sockaddr *)&peer, spec, &stream_ops, c);
	if (!c->flow) {
		sipmsg_stream_destroy(c->rx);
		free(c);
		return NULL;
	}
	limits_conn_opened((struct sockaddr *)&peer);
	c->wsi = wsi;
	c->state = CONN_OPEN;
	c->socket_up = true;
	lws_set_opaque_user_data(wsi, c);
	conn_link(c);
	conn_arm_idle(c);
	metrics_inc(M_TCP_ACCEPTED);
	return c;
}

/* ---- receiving ------------------------------------------------------------------------------ */

/** RFC 5923: a request whose top Via carries "alias" offers this connection for requests to
 *  its sent-by address. Only for the peer's own address (another one would let a client steal
 *  a third party's traffic), and only a port: the address is the connection's. */
static void note_alias(struct stream_conn *c, sip_t *sip)
{
	sip_via_t *v = sip->sip_request ? sip->sip_via : NULL;
	if (!v || !v->v_host || !v->v_params)
		return;
	bool alias = false;
	for (int i = 0; v->v_params[i]; i++)
		if (!strcasecmp(v->v_params[i], "alias"))
			alias = true;
	if (!alias)
		return;
	const char *host = v->v_host;
	size_t n = strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
		host++, n -= 2;
	if (n != strlen(c->flow->peer_host) || strncasecmp(host, c->flow->peer_host, n) != 0)
		return;
	long port = v->v_port ? strtol(v->v_port, NULL, 10) : c->proto == PROTO_TLS ? 5061 : 5060;
	if (port < 1 || port > 65535)
		return;
	c->alias = c->flow->peer;
	if (c->alias.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&c->alias)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)&c->alias)->sin_port = htons((uint16_t)port);
}

static void on_stream_message(void *arg, msg_t *msg)
{
	struct stream_conn *c = arg;
	if (!msg) {
		/* RFC 5626 §4.4.1: a double CRLF ping gets a single CRLF pong. */
		metrics_inc(M_KEEPALIVE_PINGS);
		flow_send(c->flow, "\r\n", 2);
		return;
	}
	if (log_get_level() >= LOGL_DEBUG) {
		size_t len;
		char *text = sipmsg_encode(msg, &len);
		log_debug("recv from flow %llu %s:\n%.*s", (unsigned long long)c->flow->id,
			  c->flow->peer_text, text ? (int)len : 0, text ? text : "");
		free(text);
	}
	if (c->alias.ss_family == AF_UNSPEC)
		note_alias(c, sip_object(msg));
	S.receiver.parsed(S.receiver.ctx, c->flow, msg);
}

/** A request we could read but not frame (no Content-Length, a broken header): say why. */
static void answer_unframable(struct stream_conn *c, msg_t *bad)
{
	sip_t *sip = sip_object(bad);
	if (!sip || !sip->sip_request || sip->sip_request->rq_method == sip_method_ack || !sip->sip_via ||
	    !sip->sip_cseq || !sip->sip_call_id || !sip->sip_from || !sip->sip_to)
		return;
	const char *reason = sip->sip_content_length ? "Malformed message" : "Missing Content-Length header";
	msg_t *resp = sipmsg_response(bad, 400, reason);
	if (resp) {
		transport_send_msg(c->flow, resp);
		msg_destroy(resp);
	}
}

static int conn_receive(struct stream_conn *c, const char *in, size_t len)
{
	if (c->state == CONN_CLOSING)
		return 0; /* nothing more is read from a connection we are closing */
	c->last_ms = uv_now(S.loop);
	flow_received(c->flow, len);
	msg_t *bad = NULL;
	int rc = sipmsg_stream_feed(c->rx, in, len, on_stream_message, c, &bad);
	if (rc == 0)
		return 0;
	if (rc == SIPMSG_STREAM_TOO_LARGE) {
		metrics_inc(M_TCP_OVERSIZE);
		log_notice("%s: flow %llu %s sent a message over %d bytes: closing", proto_name(c->proto),
			   (unsigned long long)c->flow->id, c->flow->peer_text, S.cfg->tcp_max_message);
	} else {
		metrics_inc(M_TCP_FRAMING_ERRORS);
		metrics_inc(M_SIP_PARSE_ERRORS);
		log_notice("%s: flow %llu %s sent what cannot be framed as SIP: closing",
			   proto_name(c->proto), (unsigned long long)c->flow->id, c->flow->peer_text);
		if (bad)
			answer_unframable(c, bad);
	}
	if (bad)
		msg_destroy(bad);
	conn_request_close(c);
	return 0;
}

/* ---- TLS on connections we open (the session is tls_client.c's) ------------------------------ */

/** Records are written when the socket is up; until then they wait in the out queue. */
static void conn_kick(struct stream_conn *c)
{
	if (c->out.head && c->socket_up && c->wsi)
		lws_callback_on_writable(c->wsi);
}

/** What TLS produced (records, alerts) goes to the out queue. */
static int conn_tls_flush(struct stream_conn *c)
{
	if (tls_session_flush(c->tls, &c->out) != 0)
		return -1;
	conn_kick(c);
	return 0;
}

static int conn_tls_write(struct stream_conn *c, const char *data, size_t len)
{
	if (tls_session_write(c->tls, data, len) != 0)
		return -1;
	c->last_ms = uv_now(S.loop);
	return conn_tls_flush(c);
}

/** The connection is usable: TCP connected, or TLS up with the peer verified. */
static void conn_established(struct stream_conn *c)
{
	metrics_inc(M_TCP_CONNECTED);
	log_info("%s: flow %llu connected to %s", proto_name(c->proto), (unsigned long long)c->flow->id,
		 c->flow->peer_text);
	if (c->state == CONN_CONNECTING)
		c->state = CONN_OPEN;
	/* Only a TLS connection holds messages back (until its handshake is done). */
	struct sendq_msg *m;
	while (c->state == CONN_OPEN && (m = sendq_take(&c->pending))) {
		conn_tls_write(c, (const char *)sendq_data(m), m->len);
		free(m);
	}
	if (c->out.head || c->state == CONN_CLOSING)
		lws_callback_on_writable(c->wsi);
}

/** One handshake step: 0 while it goes on or once it is done, -1 if it failed. */
static int conn_tls_handshake(struct stream_conn *c)
{
	int r = tls_session_handshake(c->tls, &c->out, c->flow);
	conn_kick(c);
	if (r > 0)
		conn_established(c);
	else if (r < 0)
		conn_request_close(c); /* after the alert */
	return r < 0 ? -1 : 0;
}

static bool conn_tls_plaintext(void *arg, const char *data, size_t len)
{
	struct stream_conn *c = arg;
	conn_receive(c, data, len);
	return c->state != CONN_CLOSING;
}

static int conn_tls_receive(struct stream_conn *c, const char *in, size_t len)
{
	if (c->state == CONN_CLOSING)
		return 0;
	if (tls_session_feed(c->tls, in, len) != 0)
		return -1;
	if (!tls_session_up(c->tls) && (conn_tls_handshake(c) != 0 || !tls_session_up(c->tls)))
		return 0;
	/* The peer's close_notify, or broken TLS (logged): close, after our close_notify. */
	if (tls_session_read(c->tls, c->flow, conn_tls_plaintext, c) != TLS_READ_MORE)
		conn_request_close(c);
	tls_client_clear_errors();
	conn_tls_flush(c);
	return 0;
}

/* ---- sending -------------------------------------------------------------------------------- */

static int conn_writeable(struct stream_conn *c, struct lws *wsi)
{
	struct sendq_msg *m = sendq_take(&c->out);
	if (!m)
		return c->state == CONN_CLOSING ? -1 : 0; /* -1: lws closes the connection */
	/* A partial write is kept by lws and finished before our next WRITEABLE. */
	int n = lws_write(wsi, sendq_data(m), m->len, LWS_WRITE_RAW);
	free(m);
	if (n < 0)
		return -1;
	if (c->out.head || c->state == CONN_CLOSING)
		lws_callback_on_writable(wsi);
	return 0;
}

/* ---- the lws protocol ----------------------------------------------------------------------- */

static int stream_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			   size_t len)
{
	if (reason == LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS) {
		/* lws tells each tls vhost's protocols[0] its SSL_CTX while creating it: keep it,
		 * so that SIGHUP can put a new certificate into it. */
		const struct listen_spec *spec = lws_get_vhost_user((struct lws_vhost *)in);
		if (spec && spec >= S.listen && spec < S.listen + S.n_listen)
			S.server_tls[spec - S.listen] = user;
		return 0;
	}
	struct stream_conn *c = wsi ? lws_get_opaque_user_data(wsi) : NULL;
	switch (reason) {
	case LWS_CALLBACK_RAW_ADOPT:
		if (!c && !conn_accept(wsi))
			return -1;
		break;
	case LWS_CALLBACK_RAW_CONNECTED:
		if (!c)
			return -1;
		c->socket_up = true;
		conn_arm_idle(c);
		if (c->tls) {
			conn_tls_handshake(c); /* the ClientHello */
			break;
		}
		conn_established(c);
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		metrics_inc(M_TCP_CONNECT_FAILED);
		if (c) {
			log_notice("%s: connection to %s failed: %s", proto_name(c->proto),
				   c->flow ? c->flow->peer_text : "?", in ? (const char *)in : "error");
			if (!c->flow) {
				/* Still inside lws_client_connect_via_info: stream_flow_get cleans up. */
				c->connect_failed = true;
				c->wsi = NULL;
				lws_set_opaque_user_data(wsi, NULL);
			} else {
				conn_gone(c);
			}
		}
		break;
	case LWS_CALLBACK_RAW_RX:
		if (!c)
			return -1;
		return c->tls ? conn_tls_receive(c, in, len) : conn_receive(c, in, len);
	case LWS_CALLBACK_RAW_WRITEABLE:
		if (!c)
			return -1;
		return conn_writeable(c, wsi);
	case LWS_CALLBACK_TIMER:
		if (c)
			on_idle_timer(c);
		break;
	case LWS_CALLBACK_RAW_CLOSE:
		if (c) {
			log_debug("%s: flow %llu %s closed (%s)", proto_name(c->proto),
				  c->flow ? (unsigned long long)c->flow->id : 0ULL,
				  c->flow ? c->flow->peer_text : "?", state_names[c->state]);
			if (c->flow)
				conn_gone(c);
			else
				c->wsi = NULL;
		}
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols protocols[] = {
	{STREAM_PROTOCOL, stream_callback, 0, 4096, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- outbound connections ------------------------------------------------------------------- */

/** The listener whose address goes into our Via and Record-Route on a connection we open: one
 *  of the same transport and address family, else any of that family. */
static const struct listen_spec *local_for(enum transport_proto proto, int family)
{
	const struct listen_spec *any = NULL;
	for (int i = 0; i < S.n_listen; i++) {
		const struct listen_spec *l = &S.listen[i];
		bool v6 = strchr(l->host, ':') != NULL;
		if (v6 != (family == AF_INET6))
			continue;
		if (l->proto == proto)
			return l;
		if (!any)
			any = l;
	}
	return any;
}

static struct flow *conn_connect(enum transport_proto proto, const struct sockaddr *addr)
{
	struct lws_vhost *vh = S.client;
	if (!vh || (proto == PROTO_TLS && !tls_client_ready())) {
		log_notice("%s: no client side to connect with", proto_name(proto));
		return NULL;
	}
	char host[64];
	int port;
	if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)addr;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		port = ntohs(a->sin6_port);
	} else {
		const struct sockaddr_in *a = (const void *)addr;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		port = ntohs(a->sin_port);
	}
	struct stream_conn *c = conn_new(proto);
	if (!c)
		return NULL;
	c->outbound = true;
	c->state = CONN_CONNECTING;

	struct lws_client_connect_info ci;
	memset(&ci, 0, sizeof(ci));
	ci.context = S.ctx;
	ci.vhost = vh;
	ci.address = host;
	ci.port = port;
	ci.host = host;
	ci.origin = host;
	ci.method = "RAW";
	ci.protocol = STREAM_PROTOCOL;
	ci.local_protocol_name = STREAM_PROTOCOL;
	ci.opaque_user_data = c;
	if (proto == PROTO_TLS && !(c->tls = tls_session_new())) {
		conn_free(c);
		return NULL;
	}
	struct lws *wsi = lws_client_connect_via_info(&ci);
	if (!wsi || c->connect_failed) {
		if (wsi)
			lws_set_opaque_user_data(wsi, NULL);
		metrics_inc(M_TCP_CONNECT_FAILED);
		log_notice("%s: cannot connect to %s port %d", proto_name(proto), host, port);
		conn_free(c);
		return NULL;
	}
	c->wsi = wsi;
	c->flow = flow_create(proto, addr, local_for(proto, addr->sa_family), &stream_ops, c);
	if (!c->flow) {
		lws_set_opaque_user_data(wsi, NULL);
		lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
		conn_free(c);
		return NULL;
	}
	conn_link(c);
	log_info("%s: flow %llu connecting to %s", proto_name(proto), (unsigned long long)c->flow->id,
		 c->flow->peer_text);
	return c->flow;
}

struct flow *stream_flow_get(enum transport_proto proto, const struct sockaddr *addr)
{
	if (!addr || (addr->sa_family != AF_INET && addr->sa_family != AF_INET6) ||
	    (proto != PROTO_TCP && proto != PROTO_TLS) || !S.ctx)
		return NULL;
	/* Reuse: a connection of that transport to that address, whichever side opened it, or
	 * one whose peer gave that address as its alias. */
	for (struct stream_conn *c = S.conns; c; c = c->next)
		if (c->proto == proto && c->flow && c->state != CONN_CLOSING && !c->flow->closing &&
		    (flow_addr_equal((const struct sockaddr *)&c->flow->peer, addr) ||
		     (c->alias.ss_family != AF_UNSPEC && flow_addr_equal((const struct sockaddr *)&c->alias, addr))))
			return c->flow;
	return conn_connect(proto, addr);
}

unsigned stream_count(void) { return S.count; }

int stream_tls_reload(void)
{
	int rc = 0;
	char err[256] = "";
	for (int i = 0; S.cfg && i < S.n_listen; i++) {
		const struct listen_spec *l = &S.listen[i];
		if (l->proto != PROTO_TLS)
			continue;
		/* Connections copy the certificate when they start: open ones keep the old. */
		SSL_CTX *ctx = S.server_tls[i];
		if (!ctx || !tls_load_pair(ctx, S.tls->tls_cert, S.tls->tls_key, err, sizeof(err))) {
			log_error("tls: tls listener %s port %d: reload failed (%s)", l->host, l->port,
				  ctx ? err : "no TLS context");
			rc = -1;
			continue;
		}
		log_notice("tls: tls listener %s port %d: certificate reloaded from %s", l->host, l->port,
			   S.tls->tls_cert);
	}
	return rc;
}

/* ---- listeners ------------------------------------------------------------------------------ */

static void tls_server_options(struct lws_context_creation_info *info, const struct tls_config *cfg)
{
	info->options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info->ssl_cert_filepath = cfg->tls_cert;
	info->ssl_private_key_filepath = cfg->tls_key;
	info->ssl_options_set = TLS_OPTIONS | SSL_OP_CIPHER_SERVER_PREFERENCE;
	info->ssl_cipher_list = TLS_CIPHERS;
	if (cfg->tls_verify_client) {
		info->options |= LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT;
		info->ssl_ca_filepath = cfg->tls_ca;
	}
}

static int listener_open(struct listen_spec *spec, int index)
{
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	/* lws keeps the name pointer for the vhost's life. */
	static char names[CONFIG_MAX_LISTEN][24];
	snprintf(names[index], sizeof(names[index]), "sip-%s-%d", proto_name(spec->proto), index);
	info.vhost_name = names[index];
	info.port = spec->port;
	info.iface = spec->host;
	info.protocols = protocols;
	info.user = spec;
	info.listen_accept_role = "raw-skt";
	info.listen_accept_protocol = STREAM_PROTOCOL;
	info.options = LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG;
	bool v6 = strchr(spec->host, ':') != NULL;
	if (v6)
		info.options |= LWS_SERVER_OPTION_IPV6_V6ONLY_MODIFY | LWS_SERVER_OPTION_IPV6_V6ONLY_VALUE;
	else /* an IPv4 host: without this lws opens a dual-stack socket on every address */
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	if (spec->proto == PROTO_TLS)
		tls_server_options(&info, S.tls);
	struct lws_vhost *vh = lws_create_vhost(S.ctx, &info);
	if (!vh) {
		log_error("cannot listen on %s:%s:%d", proto_name(spec->proto), spec->host, spec->port);
		return -1;
	}
	int bound = lws_get_vhost_listen_port(vh);
	if (bound > 0)
		spec->port = bound;
	printf("listening %s %s%s%s:%d\n", proto_name(spec->proto), v6 ? "[" : "", spec->host,
	       v6 ? "]" : "", spec->port);
	log_info("%s listener on %s port %d", proto_name(spec->proto), spec->host, spec->port);
	return 0;
}

static struct lws_vhost *client_vhost(void)
{
	struct lws_context_creation_info info;
	memset(&info, 0, sizeof(info));
	info.vhost_name = "sip-client";
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	struct lws_vhost *vh = lws_create_vhost(S.ctx, &info);
	if (!vh)
		log_error("tcp: cannot set up outbound connections");
	return vh;
}

const struct setting tcp_settings[] = {
	SETTING_INT("tcp.idle_timeout", struct tcp_config, tcp_idle_timeout, 3600),
	SETTING_INT("tcp.max_message_size", struct tcp_config, tcp_max_message, 65536),
	SETTING_END,
};

int tcp_config_check(const struct tcp_config *cfg)
{
	int problems = 0;
	if (cfg->tcp_max_message < 512 || cfg->tcp_max_message > 16 * 1024 * 1024) {
		log_error("config: tcp.max_message_size must be 512..16777216");
		problems++;
	}
	if (cfg->tcp_idle_timeout < 0) {
		log_error("config: tcp.idle_timeout must be 0 (never) or a number of seconds");
		problems++;
	}
	return problems;
}

int stream_start(const struct tcp_config *cfg, const struct transport_setup *setup, struct lws_context *ctx)
{
	memset(&S, 0, sizeof(S));
	S.loop = setup->loop;
	S.cfg = cfg;
	S.tls = setup->tls;
	S.listen = setup->listen;
	S.n_listen = setup->n_listen;
	S.receiver = setup->receiver;
	S.ctx = ctx;
	if (!ctx)
		return 0;
	for (int i = 0; i < S.n_listen; i++) {
		struct listen_spec *spec = &S.listen[i];
		if ((spec->proto == PROTO_TCP || spec->proto == PROTO_TLS) && listener_open(spec, i) != 0)
			return -1;
	}
	S.client = client_vhost();
	int tls = tls_client_start(S.tls);
	return S.client && tls == 0 ? 0 : -1;
}

void stream_stop(void)
{
	for (struct stream_conn *c = S.conns; c; c = c->next)
		conn_request_close(c);
}

void stream_destroy(void)
{
	/* lws is gone: a connection it dropped without a word (one still connecting) goes now. */
	while (S.conns) {
		S.conns->wsi = NULL;
		conn_gone(S.conns);
	}
	tls_client_stop();
}
