/** @file dispatch.h  Dispatch of every SIP message a transport receives.
 *
 * transport ─► dispatch_receive ─► limits, parse + check ─► responses to client transactions,
 * requests to server transactions ─► registrar (REGISTER for our domains), ourselves
 * (OPTIONS), or the proxy. The app hands dispatch_receiver() to every transport at start.
 */
#ifndef SIPEDGE_DISPATCH_H
#define SIPEDGE_DISPATCH_H
#include <stdbool.h>
#include <stddef.h>

#include "base/sipmsg.h"
#include "transport/limits.h"
#include "transport/transport.h"

struct flow;

/** limits: the header size limit (kept by pointer); edge: registrar.mode = "edge", REGISTER
 *  goes to the proxy. */
void dispatch_init(const struct limits_config *limits, bool edge);
/** The receiver the transports deliver to. */
struct sip_receiver dispatch_receiver(void);
/** One whole SIP message (or a CRLF keep-alive) received on flow f. */
void dispatch_receive(struct flow *f, const char *data, size_t len);
/** A message already parsed (framed out of a TCP or TLS stream) received on flow f; borrowed. */
void dispatch_receive_msg(struct flow *f, msg_t *msg);

#endif
