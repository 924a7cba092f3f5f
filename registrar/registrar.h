/** @file registrar.h  The registrar (RFC 3261 §10.3, RFC 5626 outbound, RFC 3327 Path). */
#ifndef SIPEDGE_REGISTRAR_H
#define SIPEDGE_REGISTRAR_H
#include "base/sipmsg.h"

struct flow;
struct txn;

int registrar_init(void);
void registrar_shutdown(void);
/** A REGISTER whose Request-URI is one of our domains; answered through st. */
void registrar_handle(struct txn *st, msg_t *req, sip_t *sip, struct flow *f);

/** The check that runs before any binding changes (RFC 3261 §10.3 steps 3-4): authenticate the
 *  request and authorize its identity for aor. Return 0 to go on; anything else means the
 *  function has answered st itself (401 with a challenge, 403) and the registrar stops there.
 *  Without one, REGISTER is refused with 403 unless the configuration says no_auth. */
typedef int (*registrar_auth_fn)(struct txn *st, msg_t *req, sip_t *sip, struct flow *f, const char *aor);
void registrar_set_auth(registrar_auth_fn fn);

#endif
