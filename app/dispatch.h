/** @file sip_core.h  Dispatch of every SIP message a transport receives.
 *
 * transport ─► sip_core_receive ─► parse + check ─► responses to client transactions,
 * requests to server transactions ─► registrar (REGISTER for our domains), ourselves
 * (OPTIONS), or the proxy.
 */
#ifndef SIPEDGE_SIP_CORE_H
#define SIPEDGE_SIP_CORE_H
#include <stdbool.h>
#include <stddef.h>

#include "base/sipmsg.h"

struct flow;

void sip_core_init(void);
void sip_core_shutdown(void);
/** One whole SIP message (or a CRLF keep-alive) received on flow f. */
void sip_core_receive(struct flow *f, const char *data, size_t len);
/** A message already parsed (framed out of a TCP or TLS stream) received on flow f; borrowed. */
void sip_core_receive_msg(struct flow *f, msg_t *msg);
/** Answer req statelessly on flow f (for requests that never get a transaction). */
void sip_core_reply_stateless(struct flow *f, msg_t *req, int status, const char *reason);
/** True if url names this server (one of our domains or a listener address, no user part). */
bool sip_core_is_us(const url_t *url);

#endif
