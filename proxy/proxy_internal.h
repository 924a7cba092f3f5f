/** @file proxy_internal.h  What the files of the proxy share, and nothing outside proxy/ sees:
 *  the context of a proxied request and its branches, a target, and the few functions one
 *  part calls in another. Not to be included outside proxy/.
 *
 *  proxy.c       contexts, branches, Timer C, responses (§16.7), the entry points
 *  forward.c     the copy of a request for a target (§16.6): Via, Record-Route, Path, loops
 *  route.c       Route processing (§16.4) and the target rules (§16.5)
 *  lookup.c      next hops looked up by name (RFC 3263)
 *  upstreams.c   routing.upstreams, their DNS refresh and reload
 *  media_glue.c  the calls into media/: messages held while rtpengine rewrites their SDP
 */
#ifndef SIPEDGE_PROXY_INTERNAL_H
#define SIPEDGE_PROXY_INTERNAL_H
#include "proxy/proxy.h"
#include "base/loop.h"
#include "transport/transport.h"

#include <stdbool.h>
#include <stdint.h>

#define MAX_BRANCHES 16

struct proxy_ctx;
struct media_wait;

/* A next hop with a name for the logs: a configured upstream, or an address a lookup found. */
struct upstream {
	const char *uri;
	struct transport_dest dest;
};

struct branch {
	struct proxy_ctx *ctx;
	struct txn *ct;	    /* NULL once gone */
	int status;	    /* final status (0 = pending) */
	bool provisional;   /* a 1xx arrived (CANCEL can go out) */
	bool timer_c_fired; /* Timer C ended it: its final counts as 408 */
	bool outbound;	    /* RFC 5626 binding: a dead flow means 430 */
	bool upstream;	    /* a configured upstream: fails over to the next one */
	bool responded;	    /* any response arrived (the upstream is alive) */
	uv_timer_t timer_c; /* upstream branches: first the no-response timer, then Timer C */
	bool timer_open;
	uint64_t out_flow;  /* the flow it went out on (media: the callee's leg) */
	char via_branch[96]; /* our Via branch on it (media: the leg's NG via-branch) */
	bool answer_refused; /* its 2xx could not be anchored: we ACKed it and sent BYE */
	bool cluster_hop;    /* to another node of the cluster: signed as it leaves */
};

struct proxy_ctx {
	struct txn *st; /* NULL once gone */
	msg_t *req;
	bool invite;
	bool final_sent; /* a final (or, for INVITE, a 2xx) went upstream */
	bool cancelled;
	uint64_t in_flow;     /* where the request came from (for Record-Route on failover) */
	int next_upstream;    /* index of the upstream to try after the current one fails */
	bool upstream_failed; /* every upstream failed or timed out: answer 503 */
	struct upstream *dests; /* this request's own next hops (a name looked up), tried like the
				 * upstreams; NULL: routing.upstreams */
	int n_dests;
	bool edge_register;   /* edge mode: a REGISTER going to the registrar with our Path */
	int n_branches;
	int open; /* branches with a live txn or an open timer, plus the server txn */
	struct branch branch[MAX_BRANCHES];
	msg_t *best; /* best final response so far (a copy), NULL if it was local */
	int best_status;
	msg_t *challenges[MAX_BRANCHES]; /* 401/407 responses for aggregation (§16.7 step 7) */
	int n_challenges;
	struct media_wait *media_waits; /* messages rtpengine is rewriting (media/media.h) */
	bool media_refused; /* a branch could not start: no rtpengine took its offer */
	struct proxy_ctx *next, *prev; /* all contexts, for shutdown */
};

/* Where one branch of a request goes (§16.5). */
struct target {
	const char *ruri; /* new Request-URI, or NULL to keep it */
	uint64_t flow_id; /* 0: send to dest's address */
	struct transport_dest dest;
	bool outbound;
	bool upstream;
	const char *route; /* a Route entry to put on top, or NULL */
	const char *node;  /* the cluster node that holds the flow: the request is signed for it */
};

/* ---- proxy.c ---- */
/** The settings given to proxy_init (kept by pointer: a reload updates them in place). */
const struct proxy_config *proxy_cfg(void);
/** registrar.mode = "edge": the registrar is upstream. */
bool proxy_edge(void);
/** Answer st with status (logged from 400 up). */
void proxy_reply(struct txn *st, msg_t *req, int status, const char *reason);
/** A context for a request about to be forwarded; it takes over the server transaction. */
struct proxy_ctx *ctx_new(struct txn *st, msg_t *req, struct flow *in, bool edge_register);
/** Start a branch per target (§16.6); an upstream target starts failover at the first hop. */
void ctx_start(struct proxy_ctx *ctx, const struct target *targets, int n, struct flow *in);
/** Drop one hold on ctx; the last frees it. */
void ctx_release(struct proxy_ctx *ctx);
/** Every branch has ended and no 2xx went up: send the best final response (§16.7 step 6). */
void send_best(struct proxy_ctx *ctx);
/** Keep status (and resp, if it came from downstream) when it beats the best so far. */
void offer_best(struct proxy_ctx *ctx, int status, msg_t *resp);
/** Send a branch's request (fwd, taken) on out: its client transaction and timers. */
void branch_launch(struct proxy_ctx *ctx, struct branch *b, msg_t *fwd, struct flow *out);

/* ---- forward.c ---- */
/** §16.3 step 4: a Via of ours with this request's loop hash. */
bool is_looping(sip_t *sip);
/** Our Via on the way out over flow out (a unique branch carrying the loop hash). */
sip_via_t *make_via(su_home_t *home, sip_t *sip, struct flow *out);
/** The copy of req that goes to one target (§16.6 steps 1-8); see forward.c. */
msg_t *make_forward(msg_t *req, const char *ruri, struct flow *in, struct flow *out, bool path,
		    const char *route);
/** An ACK for a 2xx, forwarded statelessly from in to out. */
void forward_ack(msg_t *ack, struct flow *in, struct flow *out);

/* ---- route.c ---- */
/** A Route/Record-Route URI that is ours; *flow_id gets its token's flow (0 if none). */
bool route_is_ours(const url_t *url, uint64_t *flow_id);
/** §16.4: pop the Route entries that name us; returns the flow an in-dialog request goes to. */
uint64_t preprocess_routes(msg_t *req, sip_t *sip, struct flow *in, bool *had_ours, bool *flow_failed);
/** The numeric next hop of a request whose route set is not ours: 0 and *dest, else -1. */
int next_hop(sip_t *sip, struct transport_dest *dest);
/** In dialog to a GRUU of ours: the Contact its instance registered over flow_id, or NULL. */
char *gruu_dialog_ruri(const url_t *ruri, uint64_t flow_id);
/** A validated request: Route processing, the policy, the target rules, then its branches. */
void route_request(struct txn *st, msg_t *req, sip_t *sip, struct flow *in);

/* ---- lookup.c ---- */
/** Look up url's host (RFC 3263) and forward req (or the ACK) there once it is known: 0 when
 *  the lookup started, else -1 (nothing was answered). */
int lookup_next_hop(struct txn *st, msg_t *req, const url_t *url, struct flow *in, bool ack);
/** A next hop worth looking up: a sip/sips URI with a host name sipedge can reach. */
bool is_named_hop(const url_t *url);
/** The URI the next hop comes from: the first Route, else the Request-URI. */
const url_t *next_hop_url(sip_t *sip);
/** Drop every request still waiting for its lookup. */
void lookups_shutdown(void);

/* ---- upstreams.c ---- */
/** routing.upstreams from scratch (proxy_init). -1 (logged) if one cannot be used. */
int upstreams_start(void);
/** routing.upstreams as proxy_cfg() says now; the entries in use before are retired. */
int upstreams_configure(void);
/** Retire every upstream (their lookups no longer call back). */
void upstreams_shutdown(void);
/** How many upstreams are configured, and how many addresses they resolved to. */
int upstreams_configured(void);
int upstreams_count(void);
/** The i-th address of the upstreams, in the order failover tries them. */
const struct upstream *upstream_at(int i);
/** Did this request come from one of the upstreams? */
bool from_upstream(const struct flow *in);

/* ---- media_glue.c ---- */
/** A branch of an initial INVITE ended without a 2xx: its leg in rtpengine goes. */
void branch_media_end(struct branch *b, int status);
/** A response for the caller: through rtpengine when it carries SDP of an anchored call. */
void respond_up(struct proxy_ctx *ctx, struct branch *b, msg_t *up);
/** Before a branch starts: its request's SDP through rtpengine. true: fwd (taken) waits, or the
 *  branch failed. */
bool media_hold_branch(struct proxy_ctx *ctx, struct branch *b, msg_t *fwd, struct flow *in,
		       struct flow *out);
/** An ACK with SDP waits for rtpengine like a response; true when it does. */
bool media_hold_ack(msg_t *ack, struct flow *in, struct flow *out);
/** The ACK (and with bye a BYE) to a callee's 2xx that we end ourselves. */
void end_callee_dialog(struct proxy_ctx *ctx, struct branch *b, msg_t *resp, bool bye);
/** Cut ctx's messages held for rtpengine (shutdown). */
void media_waits_cut(struct proxy_ctx *ctx);
/** Drop every ACK held for rtpengine. */
void media_acks_shutdown(void);

#endif
