/** @file registrar.h  The registrar (RFC 3261 §10.3, RFC 5626 outbound, RFC 3327 Path,
 *  RFC 5627 GRUU). */
#ifndef SIPEDGE_REGISTRAR_H
#define SIPEDGE_REGISTRAR_H
#include "base/config.h"
#include "base/sipmsg.h"

struct flow;
struct txn;

struct registrar_config {
	int reg_min_expires, reg_max_expires, reg_default_expires;
	int reg_max_bindings; /* per AOR */
	bool reg_drop_on_flow_close;
	char *reg_mode;	      /* "local", or "edge": REGISTER goes to routing.upstreams with Path */
	char *reg_store;      /* "memory", "sqlite" or "redis" (registrar/store.h) */
	char *reg_store_path; /* the SQLite file, or redis://[:PASSWORD@]HOST[:PORT][/DB] */
	int reg_store_batch_ms;	   /* sqlite: how long a group commit collects writes */
	char *reg_store_password;  /* redis AUTH ("" = none, or the one in the URL) */
	int reg_store_retry_after; /* Retry-After (s) of the 503 while the store is unreachable */
	int reg_store_timeout;	   /* redis: ms one write may wait for its acknowledgement */
	char *cluster_node_id;	   /* recorded with every binding; "" = the host name */
	char *reg_gruu_secret;	   /* key of the temp-gruus (RFC 5627, gruu.h); "" = random per run */
};
extern const struct setting registrar_settings[];
/** Logs each problem with the registrar settings and returns how many there are. */
int registrar_config_check(const struct registrar_config *cfg);
/** registrar.mode = "edge": the network's registrar holds the bindings, not we. */
bool registrar_config_is_edge(const struct registrar_config *cfg);

/** This node's name: cluster.node_id, or the host name when it is empty. */
const char *registrar_node_id(const struct registrar_config *cfg);

/** Start with cfg (kept by pointer): open the store, load its bindings. */
int registrar_init(const struct registrar_config *cfg);
void registrar_shutdown(void);
/** A REGISTER whose Request-URI is one of our domains; answered through st. */
void registrar_handle(struct txn *st, msg_t *req, sip_t *sip, struct flow *f);

/** The check that runs before any binding changes (RFC 3261 §10.3 steps 3-4): authenticate the
 *  request and authorize its identity for aor. Return 0 to go on; anything else means the
 *  function has answered st itself (401 with a challenge, 403) and the registrar stops there.
 *  Without one, every REGISTER is refused with 403. */
typedef int (*registrar_auth_fn)(struct txn *st, msg_t *req, sip_t *sip, struct flow *f, const char *aor);
void registrar_set_auth(registrar_auth_fn fn);

#endif
