/** @file ws.h  WebSocket (RFC 6455 / RFC 7118) listeners on libwebsockets, and its context.
 *
 * libwebsockets runs on our libuv loop as a foreign loop. Each ws/wss listener is an lws vhost;
 * each accepted WebSocket is a flow. The same port answers plain HTTP (http.h): /healthz,
 * /metrics and the static pages under http.web_root.
 */
#ifndef SIPEDGE_WS_H
#define SIPEDGE_WS_H
#include <stdbool.h>
#include <uv.h>

#include "base/config.h"
#include "transport/http.h"
#include "transport/transport.h"

/** Open every ws/wss listener of cfg on loop; prints "listening ws HOST:PORT" per listener.
 *  0 on success, -1 (logged) on failure. */
struct ws_config {
	int ws_max_message;	  /* bytes; larger messages close with 1009 */
	int ws_ping_interval;	  /* seconds; 0 = off */
	int ws_pong_timeout;	  /* seconds to wait for the pong */
	int ws_handshake_timeout; /* seconds an HTTP request or upgrade may take (slowloris) */
	struct string_list ws_origins; /* empty = any Origin */
};
extern const struct setting ws_settings[];
int ws_config_check(const struct ws_config *cfg);

int ws_start(const struct ws_config *cfg, const struct http_config *http, const struct transport_setup *setup);
/** The libwebsockets context (on the loop), for the other transports that use lws. */
struct lws_context *ws_context(void);
/** Close every connection (1001) and then the listeners. Returns true if closing is under way:
 *  the caller runs the loop, and ws calls uv_stop on it once every connection is gone. */
bool ws_stop(void);
/** Load tls.cert and tls.key again into every wss listener. New connections get the new
 *  certificate; open ones keep theirs. Call it after tls_check_pair has passed the pair.
 *  0 on success, -1 if a listener failed (logged). */
int ws_tls_reload(void);
/** Free what remains after the loop has run dry. */
void ws_destroy(void);

#endif
