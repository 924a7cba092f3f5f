/** @file proxy.h  The stateful proxy core (RFC 3261 §16). */
#ifndef SIPEDGE_PROXY_H
#define SIPEDGE_PROXY_H
#include "core/sipmsg.h"

struct flow;
struct txn;

/** Resolve routing.upstreams; -1 (logged) if one cannot be used. */
int proxy_init(void);
void proxy_shutdown(void);
/** A request (not REGISTER for us, not OPTIONS to us) with its server transaction. */
void proxy_request(struct txn *st, msg_t *req, sip_t *sip, struct flow *f);
/** An ACK that matched no server transaction: an ACK for a 2xx, forwarded by its route set. */
void proxy_ack(msg_t *ack, sip_t *sip, struct flow *f);

#endif
