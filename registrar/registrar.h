/** @file registrar.h  The registrar (RFC 3261 §10.3, RFC 5626 outbound, RFC 3327 Path). */
#ifndef SIPEDGE_REGISTRAR_H
#define SIPEDGE_REGISTRAR_H
#include "core/sipmsg.h"

struct flow;
struct txn;

int registrar_init(void);
void registrar_shutdown(void);
/** A REGISTER whose Request-URI is one of our domains; answered through st. */
void registrar_handle(struct txn *st, msg_t *req, sip_t *sip, struct flow *f);

#endif
