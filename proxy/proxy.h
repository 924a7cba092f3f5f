/** @file proxy.h  The stateful proxy core (RFC 3261 §16). */
#ifndef SIPEDGE_PROXY_H
#define SIPEDGE_PROXY_H
#include "base/config.h"
#include "base/sipmsg.h"

struct flow;
struct txn;

struct proxy_config {
	struct string_list upstreams; /* SIP URIs tried in order (failover) */
	bool route_foreign;	      /* other domains go upstream (else 403) */
	bool route_unregistered;      /* users of our domains without a binding go upstream */
	int upstream_timeout;	      /* ms without any response before the next upstream */
	char *resolv_conf;	      /* DNS servers for upstream names and next hops (RFC 3263), resolv.conf syntax */
	int timer_c;		      /* seconds, RFC 3261 §16.8 (> 180) */
	int dialog_timeout;	      /* seconds a call in the operator's list lives without a request */
};
extern const struct setting proxy_settings[];
/** Logs each problem with the routing and proxy settings and returns how many there are. */
int proxy_config_check(const struct proxy_config *cfg);

/** Start with cfg (kept by pointer); edge: the registrar is upstream (registrar.mode = "edge"),
 *  so REGISTER for us and requests for our users go there. Resolves routing.upstreams; -1
 *  (logged) if one cannot be used. */
int proxy_init(const struct proxy_config *cfg, bool edge);
void proxy_shutdown(void);
/** routing.upstreams again from cfg (kept by pointer; a reload has put new values there). Calls
 *  in progress keep their route; new requests go to the new upstreams. -1 (logged) if one
 *  cannot be used (the others are used). */
int proxy_reload(void);
/** A request (not REGISTER for us, not OPTIONS to us) with its server transaction. */
void proxy_request(struct txn *st, msg_t *req, sip_t *sip, struct flow *f);
/** An ACK that matched no server transaction: an ACK for a 2xx, forwarded by its route set. */
void proxy_ack(msg_t *ack, sip_t *sip, struct flow *f);

/** Where a request is going, as the policy sees it. */
enum proxy_dest {
	PROXY_DEST_DIALOG,  /* in dialog (To tag), routed by a flow token of our Record-Route */
	PROXY_DEST_LOCAL,   /* one of our domains, or a flow of ours outside a dialog */
	PROXY_DEST_FOREIGN, /* anywhere else: relaying */
};
/** Decides whether a request may go on (authentication, relaying); runs after validation and
 *  Route processing, before targets are looked up. 0: go on; anything else means the function
 *  has answered st itself (407, 403) and the proxy stops. Without one, requests to our domains
 *  go on and relaying is refused with 403. */
typedef int (*proxy_policy_fn)(struct txn *st, msg_t *req, sip_t *sip, struct flow *f, enum proxy_dest dest);
void proxy_set_policy(proxy_policy_fn fn);
/** Runs on the copy of every request the proxy forwards (in dialog and ACK too), for taking out
 *  what was for us alone (credentials for our realm, RFC 3261 §22.3). */
typedef void (*proxy_forward_fn)(msg_t *fwd, sip_t *sip);
void proxy_set_forward_filter(proxy_forward_fn fn);

#endif
