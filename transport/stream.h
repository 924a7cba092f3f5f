/** @file stream.h  SIP over TCP and TLS (RFC 3261 §18.3) on libwebsockets raw sockets.
 *
 * Each tcp/tls listener is an lws vhost that adopts accepted sockets as raw connections; a
 * connection, accepted or opened by us, is a flow. sofia-sip frames the byte stream into
 * messages by Content-Length (sipmsg_stream). TLS is lws' on accepted connections and
 * OpenSSL's (memory BIOs, tls_client.h) on the ones we open. Connections we open are found
 * again by remote address and transport, so requests to one peer share one connection.
 */
#ifndef SIPEDGE_STREAM_H
#define SIPEDGE_STREAM_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

#include "base/config.h"
#include "transport/tls.h"
#include "transport/transport.h"

struct lws_context;
struct flow;

/** Open every tcp/tls listener of cfg on ctx (the libwebsockets context that runs on loop) and
 *  prepare outbound connections; prints "listening tcp HOST:PORT" per listener. A port 0 is
 *  replaced by the port bound. 0 on success, -1 (logged) on failure. */
struct tcp_config {
	int tcp_idle_timeout; /* seconds without traffic before a connection is closed; 0 = never */
	int tcp_max_message;  /* bytes; a larger message closes the connection */
};
extern const struct setting tcp_settings[];
int tcp_config_check(const struct tcp_config *cfg);

int stream_start(const struct tcp_config *cfg, const struct transport_setup *setup, struct lws_context *ctx);
/** Close every connection (what is queued goes out first); lws finishes them as the loop runs. */
void stream_stop(void);

/** Free what remains once lws is gone (after the loop has run dry). */
void stream_destroy(void);

/** The connection to addr over proto (PROTO_TCP or PROTO_TLS): an open one, or a new one whose
 *  messages wait until it is connected. NULL if none can be made. */
struct flow *stream_flow_get(enum transport_proto proto, const struct sockaddr *addr);
/** Load tls.cert and tls.key again into every tls listener (SIGHUP, after tls_check_pair). New
 *  connections get the new certificate; open ones keep theirs. 0 on success, -1 (logged). */
int stream_tls_reload(void);
/** Open TCP and TLS connections. */
unsigned stream_count(void);

#endif
