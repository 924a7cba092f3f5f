/** @file cluster.h  Many nodes, one service: who else shares the Redis store, and where their
 *  users are.
 *
 * Every node writes its own bindings to Redis (registrar/store_redis.c), with its name in each.
 * This room lets the others find them:
 *  - a cache of the other nodes' bindings, read per AOR whenever that AOR's change is announced
 *    on sipedge:changes:DB (the registrar publishes inside the write's MULTI/EXEC), and read
 *    whole again after every (re)subscription, so the proxy looks remote users up without
 *    waiting on Redis;
 *  - a heartbeat: sipedge:node:{ID} holds this node's cluster.advertise address and expires
 *    after cluster.node_timeout unless refreshed every cluster.heartbeat_interval; the same
 *    script reads every node's key, so a node whose key lapsed is known dead within
 *    node_timeout + heartbeat_interval;
 *  - the signature of requests between nodes: a node forwarding a request to another adds
 *    X-Sipedge-Cluster (its name, the time and an HMAC-SHA256 under cluster.secret over what
 *    identifies the request); the receiving node's policy takes a valid one as a member's.
 * Without cluster.advertise the room does nothing and every lookup finds nothing.
 */
#ifndef SIPEDGE_CLUSTER_H
#define SIPEDGE_CLUSTER_H
#include "base/config.h"
#include "base/sipmsg.h"
#include "registrar/location.h"
#include "transport/transport.h"

#include <stdbool.h>

struct cluster_config {
	char *advertise;	/* "sip:HOST:PORT;transport=udp|tcp|tls" the others reach us at; "" = alone */
	char *secret;		/* HMAC key of X-Sipedge-Cluster, the same on every node */
	int node_timeout;	/* s: the heartbeat key's TTL */
	int heartbeat_interval; /* ms between heartbeats (and reads of the others') */
	int max_clock_skew;	/* s: how old (or new) a signed request may be */
};
extern const struct setting cluster_settings[];
/** Logs each problem with the cluster settings and returns how many there are. */
int cluster_config_check(const struct cluster_config *cfg);

/** What the room needs from others: this node's name and the Redis the registrar stores in. */
struct cluster_params {
	const char *node;
	const char *redis_url;
	const char *redis_password; /* "" = none (or the URL's) */
	int redis_timeout_ms;	    /* ms a command may wait for its reply (store_timeout) */
};
/** Start (cfg kept by pointer): connect to Redis on the loop; nothing when cfg->advertise is
 *  empty. 0 on success (an unreachable Redis is retried, not an error). */
int cluster_init(const struct cluster_config *cfg, const struct cluster_params *p);
/** Mark our heartbeat key stopped (the others stop forwarding here at once) and close the connections;
 *  the loop must run once more to finish. */
void cluster_shutdown(void);
bool cluster_enabled(void);

/** Where a request for a binding held by another node goes. */
struct cluster_target {
	const struct binding *b;    /* borrowed: valid until control returns to the loop */
	const char *node;	    /* the node that holds it */
	struct transport_dest dest; /* the node's advertise address, or a UDP contact's own */
	char route[256];	    /* the Route to put on top ("" = none: straight to the contact) */
};
/** Why an AOR with remote bindings has no target. */
struct cluster_miss {
	bool known;	    /* some node holds (or held, on a node now dead) a binding of it */
	int gone;	    /* connection bindings on dead nodes */
	bool all_outbound;  /* every one of those is an RFC 5626 flow: 430, not 480 */
};
/** The other nodes' live bindings of aor into out[max]: connection bindings of live nodes go
 *  to their node with a Route naming the flow there; UDP bindings go to their contact, whoever
 *  holds them. Returns how many; *miss says what could not be used. */
int cluster_lookup(const char *aor, struct cluster_target *out, int max, struct cluster_miss *miss);

/** Sign a request about to go to another node. 0 on success. */
int cluster_sign(msg_t *msg);
/** Remove any X-Sipedge-Cluster from a request about to leave (the next hop gets ours or none). */
void cluster_unsign(msg_t *msg);
enum cluster_sender {
	CLUSTER_NOT_SIGNED, /* no X-Sipedge-Cluster */
	CLUSTER_MEMBER,	    /* signed by a node of ours, recently */
	CLUSTER_FORGED,	    /* signed, but not with our secret, too old, or by ourselves */
	CLUSTER_REPLAYED,   /* a good signature seen before: a copy of another request's */
};
/** Who signed a received request; the header names the node for the log in *node. */
enum cluster_sender cluster_sender(sip_t *sip, char *node, size_t n);

#endif
