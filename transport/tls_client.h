/** @file tls_client.h  TLS on the connections we open: OpenSSL over memory BIOs.
 *
 * lws 4.1 (Debian 12) sets up a raw client's TLS before its socket exists and the connect
 * fails at once, so the TCP connections stream.c opens for tls carry a session of ours: the
 * network's bytes are fed in, plaintext comes out, and the records OpenSSL produces (handshake,
 * data, alerts) are moved into the connection's send queue, the same queue as plain TCP. One
 * client context, built from the tls settings, serves every session; SIGHUP builds it again.
 * Nothing here touches a socket or lws: the connection decides what to do with each result.
 */
#ifndef SIPEDGE_TLS_CLIENT_H
#define SIPEDGE_TLS_CLIENT_H
#include <stdbool.h>
#include <stddef.h>

#include "transport/sendq.h"
#include "transport/tls.h"

struct flow;
struct tls_session;

/** Build the client context from cfg (kept by pointer, for reloads): TLS 1.2+, the peer
 *  verified against tls.ca or the system's CAs if tls.verify_peer, our certificate for peers
 *  that ask for one. 0 on success, -1 (logged). */
int tls_client_start(const struct tls_config *cfg);
/** True once a client context exists: tls connections can be opened. */
bool tls_client_ready(void);
/** Build the client context again from the settings (SIGHUP). Sessions started from then on use
 *  it; open ones keep the old, which goes with the last of them. 0 on success (or not started);
 *  -1 (logged) keeps the context in force. */
int tls_client_reload(void);
/** Free the client context (open sessions keep their reference). */
void tls_client_stop(void);
/** Forget OpenSSL's queued errors, so that they are not reported as a later failure's reason. */
void tls_client_clear_errors(void);

/** A client session, not yet started: its first handshake step writes the ClientHello.
 *  NULL when out of memory or without a client context. */
struct tls_session *tls_session_new(void);
void tls_session_free(struct tls_session *s);
/** The handshake is done and the peer verified: application data can flow. */
bool tls_session_up(const struct tls_session *s);
/** One handshake step on what has been fed; its records go to out. 1: up; 0: under way; -1: it
 *  failed (logged with f's peer, counted): close after the alert, which is in out. */
int tls_session_handshake(struct tls_session *s, struct sendq *out, const struct flow *f);
/** Bytes from the network. 0, or -1 if they cannot be taken. */
int tls_session_feed(struct tls_session *s, const char *in, size_t len);

/** How reading ended: nothing more for now, the peer's close_notify, or broken TLS (logged). */
enum tls_read { TLS_READ_MORE, TLS_READ_CLOSED, TLS_READ_BROKEN };
/** Hand the plaintext of what has been fed to deliver, chunk by chunk, while it returns true
 *  (false: the connection is closing and reads nothing more; that ends as TLS_READ_MORE). */
enum tls_read tls_session_read(struct tls_session *s, const struct flow *f,
			       bool (*deliver)(void *ctx, const char *data, size_t len), void *ctx);
/** Encrypt data (a memory BIO takes everything at once); tls_session_flush moves the records
 *  out. 0, or -1. */
int tls_session_write(struct tls_session *s, const char *data, size_t len);
/** Our close_notify, for the next flush. */
void tls_session_shutdown(struct tls_session *s);
/** Move what the session produced (records, alerts) into out. 0, or -1 when out of memory. */
int tls_session_flush(struct tls_session *s, struct sendq *out);

#endif
