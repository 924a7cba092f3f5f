/** @file route.c  Where a request goes: Route processing (RFC 3261 §16.4, flow tokens and our
 *  Path), the policy's verdict, and the target rules (§16.5), a table asked in order whose
 *  first applicable rule adds targets, answers, or starts a DNS lookup.
 */
#include "proxy/proxy_internal.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/sipmsg.h"
#include "cluster/cluster.h"
#include "media/media.h"
#include "registrar/gruu.h"
#include "registrar/location.h"
#include "sip/self.h"
#include "sip/txn.h"
#include "transport/flow.h"
#include "transport/transport.h"

#include <sofia-sip/sip_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static proxy_policy_fn policy;

void proxy_set_policy(proxy_policy_fn fn) { policy = fn; }

/** A Route/Record-Route URI that is ours: its host names us and its user is a valid token
 *  (or it has no user). *flow_id gets the token's flow (0 if none). */
bool route_is_ours(const url_t *url, uint64_t *flow_id)
{
	*flow_id = 0;
	if (!url || !self_is_us(url))
		return false;
	/* A user part that is not a valid token (forged, or from another secret) names no flow. */
	if (url->url_user && flow_token_parse(url->url_user, strlen(url->url_user), flow_id) != 0)
		*flow_id = 0;
	return true;
}

/** Target for a location binding. Connections (and RFC 5626 flows) are the way to their
 *  client; a plain UDP registration is reached at its Contact address (§16.5), as is any
 *  binding whose connection is gone but was kept (registrar.drop_bindings_on_flow_close). */
static struct target binding_target(const struct binding *bd, const char *ruri)
{
	struct target t = {.ruri = ruri, .flow_id = bd->flow_id, .outbound = bd->outbound};
	struct flow *f = bd->flow_id ? flow_find(bd->flow_id) : NULL;
	if (bd->outbound || (f && proto_is_reliable(f->proto)))
		return t;
	su_home_t home[1] = {SU_HOME_INIT(home)};
	url_t *url = url_make(home, bd->uri);
	struct transport_dest dest;
	if (url && transport_dest_from_url(url, &dest) == 0) {
		t.flow_id = 0;
		t.dest = dest;
	}
	su_home_deinit(home);
	return t;
}

/** The next hop of a request whose route set is not (or no longer) ours: the first Route
 *  entry, else the Request-URI (§16.6 steps 6-7). 0 and *dest if it has a numeric address. */
int next_hop(sip_t *sip, struct transport_dest *dest)
{
	if (sip->sip_route)
		return transport_dest_from_url(sip->sip_route->r_url, dest);
	if (self_is_us(sip->sip_request->rq_url))
		return -1;
	return transport_dest_from_url(sip->sip_request->rq_url, dest);
}

/** §16.4: pop the Route entries that name us; the last flow token among them that is not the
 *  flow the request came in on is where an in-dialog request goes. *flow_failed: an entry
 *  with ob (our Path, RFC 5626) names a flow that is gone, which only that flow could reach. */
uint64_t preprocess_routes(msg_t *req, sip_t *sip, struct flow *in, bool *had_ours,
				  bool *flow_failed)
{
	uint64_t target = 0, id;
	*had_ours = false;
	*flow_failed = false;
	while (sip->sip_route && route_is_ours(sip->sip_route->r_url, &id)) {
		*had_ours = true;
		char transport[8] = "";
		const char *params = sip->sip_route->r_url->url_params;
		if (params)
			url_param(params, "transport", transport, sizeof(transport));
		if (id && params && url_has_param(sip->sip_route->r_url, "ob") && !flow_find(id)) {
			*flow_failed = true;
			id = 0;
		}
		/* A UDP flow is only a remembered peer: once forgotten, the rest of the route set or
		 * the Request-URI still leads there, so its token is no reason to fail. */
		if (id && strcasecmp(transport, "udp") == 0 && !flow_find(id))
			id = 0;
		if (id && id != in->id)
			target = id;
		sip_route_remove(req, sip);
	}
	return target;
}

/* ---- §16.5: where a request goes ---- */

/** One request on its way through the target rules. */
struct routing {
	struct txn *st;
	msg_t *req;
	sip_t *sip;
	struct flow *in;
	const url_t *ruri;
	uint64_t route_flow;	/* the flow our Route entry's token names, 0 if none */
	bool edge_register;	/* edge mode: a REGISTER for us, bound for the registrar upstream */
	struct target targets[MAX_BRANCHES];
	char *uris[MAX_BRANCHES]; /* Request-URIs the targets point into, freed after the start */
	char *routes[MAX_BRANCHES]; /* the same for their Route entries */
	int n;
};

enum route_outcome {
	ROUTE_PASS,    /* the rule does not apply: the next one decides */
	ROUTE_TARGETS, /* r->targets are where the request goes */
	ROUTE_DONE,    /* answered, or waiting for a DNS lookup that forwards it */
};

static enum route_outcome add_target(struct routing *r, struct target t)
{
	r->targets[r->n++] = t;
	return ROUTE_TARGETS;
}

static enum route_outcome answer(struct routing *r, int status, const char *phrase)
{
	proxy_reply(r->st, r->req, status, phrase);
	return ROUTE_DONE;
}

/** Forward once the name in url is resolved (RFC 3263), or answer 503. */
static enum route_outcome look_up(struct routing *r, const url_t *url)
{
	if (lookup_next_hop(r->st, r->req, url, r->in, false) != 0)
		return answer(r, 503, "DNS Lookup Failed");
	return ROUTE_DONE;
}

static bool in_dialog_elsewhere(const struct routing *r)
{
	return r->sip->sip_to->a_tag && !self_is_our_domain(r->ruri->url_host);
}

static bool for_another_domain(const struct routing *r) { return proxy_cfg()->route_foreign; }

/* In dialog to a GRUU of ours (RFC 5627 §7: it is retargeted like any): the Contact its
 * instance registered over flow_id, which the UA knows as its own (JsSIP answers 404 to a
 * temp-gruu Request-URI). NULL: the Request-URI stays. The caller frees it. */
char *gruu_dialog_ruri(const url_t *ruri, uint64_t flow_id)
{
	if (proxy_edge() || !ruri || !self_is_our_domain(ruri->url_host))
		return NULL;
	const struct binding *bindings[MAX_BRANCHES];
	int nb = 0;
	bool temporary;
	if (gruu_lookup(ruri, bindings, MAX_BRANCHES, &nb, &temporary) != GRUU_FOUND)
		return NULL;
	for (int i = 0; i < nb; i++)
		if (bindings[i]->flow_id == flow_id)
			return strdup(bindings[i]->uri);
	return NULL;
}

/* In dialog, by the token of our Record-Route: that connection; the Request-URI stays (but
 * for a GRUU of ours, which becomes the instance's Contact). */
static enum route_outcome route_by_token(struct routing *r)
{
	if (!r->route_flow)
		return ROUTE_PASS;
	r->uris[r->n] = gruu_dialog_ruri(r->ruri, r->route_flow);
	return add_target(r, (struct target){.ruri = r->uris[r->n], .flow_id = r->route_flow});
}

/* A route set beyond us: loose routing to its first entry's address, or the addresses its
 * name stands for. */
static enum route_outcome route_by_route_set(struct routing *r)
{
	if (!r->sip->sip_route)
		return ROUTE_PASS;
	struct transport_dest hop;
	if (next_hop(r->sip, &hop) == 0)
		return add_target(r, (struct target){.dest = hop});
	if (is_named_hop(r->sip->sip_route->r_url) &&
	    lookup_next_hop(r->st, r->req, r->sip->sip_route->r_url, r->in, false) == 0)
		return ROUTE_DONE;
	return answer(r, 404, "No Route To Next Hop");
}

/* Edge mode (RFC 3327): the registrar is upstream; a REGISTER that came from there would only
 * loop. */
static enum route_outcome route_edge_register(struct routing *r)
{
	if (!r->edge_register)
		return ROUTE_PASS;
	if (from_upstream(r->in))
		return answer(r, 403, "Registrar Is Upstream");
	if (!upstreams_count()) {
		metrics_inc(M_PROXY_UPSTREAM_UNAVAILABLE);
		return answer(r, 503, "Registrar Not Resolved");
	}
	return add_target(r, (struct target){.dest = upstream_at(0)->dest, .upstream = true});
}

/* In dialog without our Record-Route: straight to a numeric remote target. */
static enum route_outcome route_remote_target(struct routing *r)
{
	struct transport_dest hop;
	if (!in_dialog_elsewhere(r) || next_hop(r->sip, &hop) != 0)
		return ROUTE_PASS;
	return add_target(r, (struct target){.dest = hop});
}

/* The same, to a remote target with a name (a carrier's Contact). */
static enum route_outcome route_named_remote_target(struct routing *r)
{
	if (!in_dialog_elsewhere(r) || self_is_us(r->ruri) || !is_named_hop(r->ruri))
		return ROUTE_PASS;
	return look_up(r, r->ruri);
}

/* Every binding as a target, its Contact the Request-URI. */
static enum route_outcome add_binding_targets(struct routing *r, const struct binding **bindings, int nb)
{
	for (int i = 0; i < nb && r->n < MAX_BRANCHES; i++) {
		r->uris[r->n] = strdup(bindings[i]->uri);
		add_target(r, binding_target(bindings[i], r->uris[r->n]));
	}
	return ROUTE_TARGETS;
}

/* Bindings held by other nodes of the cluster: a connection's goes to its node with the Route
 * naming the flow there and our signature; a UDP phone's to its Contact address. */
static enum route_outcome add_remote_targets(struct routing *r, const struct cluster_target *remote, int nr)
{
	for (int i = 0; i < nr && r->n < MAX_BRANCHES; i++) {
		const struct cluster_target *ct = &remote[i];
		r->uris[r->n] = strdup(ct->b->uri);
		r->routes[r->n] = ct->route[0] ? strdup(ct->route) : NULL;
		add_target(r, (struct target){.ruri = r->uris[r->n], .dest = ct->dest, .outbound = ct->b->outbound,
					      .route = r->routes[r->n], .node = ct->route[0] ? ct->node : NULL});
	}
	return ROUTE_TARGETS;
}

/* A GRUU of ours (RFC 5627 §7, registrar/gruu.h): a pub-gruu or a temp-gruu reaches the bindings
 * of its one instance, over their flows; one that names nobody is 404, an instance offline 480.
 * An edge holds no bindings: the registrar upstream made the GRUUs and knows them. */
static enum route_outcome route_gruu(struct routing *r)
{
	if (proxy_edge() || !self_is_our_domain(r->ruri->url_host))
		return ROUTE_PASS;
	const struct binding *bindings[MAX_BRANCHES];
	int nb = 0;
	bool temporary = false;
	enum gruu_verdict v = gruu_lookup(r->ruri, bindings, MAX_BRANCHES, &nb, &temporary);
	if (v == GRUU_NOT_ONE)
		return ROUTE_PASS;
	if (v != GRUU_FOUND && proxy_cfg()->route_unregistered && upstreams_count() && !from_upstream(r->in))
		return add_target(r, (struct target){.dest = upstream_at(0)->dest, .upstream = true});
	if (v != GRUU_FOUND) {
		metrics_inc(M_PROXY_GRUU_REFUSED);
		log_info("proxy: %s from %s to a %s-gruu naming %s", r->sip->sip_request->rq_method_name,
			 r->in->peer_text, temporary ? "temp" : "pub", v == GRUU_OFFLINE ? "an offline instance" : "nobody");
		return v == GRUU_OFFLINE ? answer(r, 480, "Temporarily Unavailable") : answer(r, 404, "Not Found");
	}
	metrics_inc(M_PROXY_GRUU_ROUTED);
	return add_binding_targets(r, bindings, nb);
}

/* A user of our domains, or at one of our listener addresses (how PBXs and SIPp address us:
 * a user of our first domain): every live binding, or the upstreams when they know users we
 * do not. */
static enum route_outcome route_local_user(struct routing *r)
{
	const url_t *ruri = r->ruri;
	if (!self_is_our_domain(ruri->url_host) && !(ruri->url_user && self_is_us(ruri)))
		return ROUTE_PASS;
	url_t as_domain = *ruri;
	if (!self_is_our_domain(ruri->url_host)) {
		as_domain.url_host = self_domain();
		as_domain.url_port = NULL;
	}
	char *aor = sipmsg_aor(&as_domain);
	if (!aor || !ruri->url_user) {
		free(aor);
		return answer(r, 404, "Not Found");
	}
	const struct binding *bindings[MAX_BRANCHES];
	int nb = location_lookup(aor, bindings, MAX_BRANCHES);
	/* The other nodes' users: the cache of the cluster's bindings, never a wait on Redis. */
	struct cluster_target remote[MAX_BRANCHES];
	struct cluster_miss miss;
	int nr = cluster_lookup(aor, remote, MAX_BRANCHES - nb, &miss);
	enum aor_state state = nb || nr ? AOR_BOUND : miss.known ? AOR_NO_BINDING : location_aor_state(aor);
	if (nb == 0 && nr == 0 && miss.gone) {
		/* Its flows were on a node that died: gone as surely as a closed connection here. */
		metrics_inc(M_CLUSTER_UNREACHABLE);
		log_info("cluster: %s: its %d connection binding%s on dead nodes, none elsewhere", aor, miss.gone,
			 miss.gone == 1 ? " is" : "s are");
		free(aor);
		return miss.all_outbound ? answer(r, 430, "Flow Failed") : answer(r, 480, "Temporarily Unavailable");
	}
	free(aor);
	/* An edge has no bindings: the registrar upstream knows every user. */
	bool upstream_knows = proxy_cfg()->route_unregistered || proxy_edge();
	if (nb == 0 && nr == 0 && upstream_knows && upstreams_count() && !from_upstream(r->in))
		/* Not registered here: the network may know the user (a PBX extension). */
		return add_target(r, (struct target){.dest = upstream_at(0)->dest, .upstream = true});
	if (nb == 0 && nr == 0)
		return state == AOR_UNKNOWN ? answer(r, 404, "Not Found")
					    : answer(r, 480, "Temporarily Unavailable");
	add_binding_targets(r, bindings, nb);
	return add_remote_targets(r, remote, nr);
}

/* Another domain, the upstreams configured but none resolved yet. */
static enum route_outcome route_upstream_unresolved(struct routing *r)
{
	if (!for_another_domain(r) || !upstreams_configured() || upstreams_count())
		return ROUTE_PASS;
	metrics_inc(M_PROXY_UPSTREAM_UNAVAILABLE);
	return answer(r, 503, "Upstream Not Resolved");
}

/* Another domain (the policy has allowed the relay): the first upstream, then the next ones
 * on failure. */
static enum route_outcome route_upstream(struct routing *r)
{
	if (!for_another_domain(r) || !upstreams_count() || from_upstream(r->in))
		return ROUTE_PASS;
	return add_target(r, (struct target){.dest = upstream_at(0)->dest, .upstream = true});
}

/* No upstream is configured: the Request-URI's own address (§16.5)... */
static enum route_outcome route_request_uri(struct routing *r)
{
	struct transport_dest hop;
	if (!for_another_domain(r) || upstreams_configured() || next_hop(r->sip, &hop) != 0)
		return ROUTE_PASS;
	return add_target(r, (struct target){.dest = hop});
}

/* ...or the servers its domain names (RFC 3263). */
static enum route_outcome route_request_uri_named(struct routing *r)
{
	if (!for_another_domain(r) || upstreams_configured() || !is_named_hop(r->ruri))
		return ROUTE_PASS;
	return look_up(r, r->ruri);
}

/* The policy allowed relaying, but no route takes other domains. */
static enum route_outcome route_nowhere(struct routing *r) { return answer(r, 404, "No Route To Domain"); }

/* The rules in the order they are asked: the first that applies decides. The order matters:
 * a token or a route set beyond us outranks the Request-URI, and our users come before
 * other domains. */
static const struct route_rule {
	const char *name;
	enum route_outcome (*decide)(struct routing *r);
} route_rules[] = {
	{"our Record-Route token", route_by_token},
	{"a route set beyond us", route_by_route_set},
	{"edge REGISTER to the registrar", route_edge_register},
	{"in dialog, a numeric remote target", route_remote_target},
	{"in dialog, a named remote target", route_named_remote_target},
	{"a GRUU of ours", route_gruu},
	{"a user of our domains", route_local_user},
	{"upstreams not resolved", route_upstream_unresolved},
	{"the upstreams", route_upstream},
	{"the Request-URI's address", route_request_uri},
	{"the Request-URI's domain in DNS", route_request_uri_named},
	{"no route", route_nowhere},
};

static enum route_outcome choose_targets(struct routing *r)
{
	for (size_t i = 0; i < sizeof(route_rules) / sizeof(route_rules[0]); i++) {
		enum route_outcome o = route_rules[i].decide(r);
		if (o != ROUTE_PASS) {
			log_debug("proxy: %s from flow %llu: %s", r->sip->sip_request->rq_method_name,
				  (unsigned long long)r->in->id, route_rules[i].name);
			return o;
		}
	}
	return ROUTE_DONE; /* not reached: the last rule always decides */
}

/** Where the policy sees the request going (auth/auth.h). */
static enum proxy_dest classify(const struct routing *r)
{
	if (r->route_flow)
		return r->sip->sip_to->a_tag ? PROXY_DEST_DIALOG : PROXY_DEST_LOCAL;
	const url_t *ruri = r->ruri;
	if (!r->sip->sip_route && (self_is_our_domain(ruri->url_host) ||
				   ((ruri->url_user || r->edge_register) && self_is_us(ruri))))
		return PROXY_DEST_LOCAL;
	return PROXY_DEST_FOREIGN;
}

/** Who may send this where: challenges, identity, no open relay. True when answered. */
static bool refused_by_policy(const struct routing *r)
{
	enum proxy_dest dest = classify(r);
	if (policy)
		return policy(r->st, r->req, r->sip, r->in, dest) != 0;
	if (dest != PROXY_DEST_FOREIGN)
		return false;
	metrics_inc(M_RELAY_DENIED);
	proxy_reply(r->st, r->req, 403, "Relaying Denied");
	return true;
}

/** Our Route entries (§16.4): true when req has been answered (430: the flow named is gone). */
static bool process_routes(struct routing *r)
{
	bool had_ours = false, flow_failed = false;
	r->route_flow = preprocess_routes(r->req, r->sip, r->in, &had_ours, &flow_failed);
	char node[64];
	if (had_ours && !r->route_flow && !flow_failed && !r->sip->sip_to->a_tag &&
	    cluster_sender(r->sip, node, sizeof(node)) == CLUSTER_MEMBER) {
		/* Another node named a flow of ours by a token we cannot read: without this the
		 * request would wander off to its .invalid Request-URI and end as a puzzling 404. */
		log_error("cluster: %s from node %s names a flow by a token this node cannot read: is "
			  "proxy.flow_token_secret the same on every node?", r->sip->sip_request->rq_method_name, node);
		proxy_reply(r->st, r->req, 480, "Temporarily Unavailable");
		return true;
	}
	if (flow_failed && !r->route_flow) {
		/* RFC 5626 §5.3: the registrar may try the user's other flows. */
		metrics_inc(M_EDGE_FLOW_FAILED);
		proxy_reply(r->st, r->req, 430, "Flow Failed");
		return true;
	}
	if (r->route_flow && !r->sip->sip_to->a_tag && proxy_edge()) {
		metrics_inc(M_EDGE_PATH_IN);
		log_info("edge: %s from %s along our Path to flow %llu", r->sip->sip_request->rq_method_name,
			 r->in->peer_text, (unsigned long long)r->route_flow);
	}
	return false;
}

static void start_branches(struct routing *r)
{
	struct proxy_ctx *ctx = ctx_new(r->st, r->req, r->in, r->edge_register);
	if (!ctx) {
		proxy_reply(r->st, r->req, 500, "Server Internal Error");
		return;
	}
	if (r->edge_register) {
		metrics_inc(M_EDGE_REGISTERS);
		log_info("edge: REGISTER " URL_PRINT_FORMAT " from flow %llu %s to the registrar %s",
			 URL_PRINT_ARGS(r->sip->sip_to->a_url), (unsigned long long)r->in->id, r->in->peer_text,
			 upstream_at(0)->uri);
	}
	if (r->sip->sip_request->rq_method == sip_method_bye)
		media_call_end(r->sip, "BYE");
	ctx_start(ctx, r->targets, r->n, r->in);
}

void route_request(struct txn *st, msg_t *req, sip_t *sip, struct flow *in)
{
	struct routing r = {.st = st, .req = req, .sip = sip, .in = in};
	/* Edge mode: a REGISTER for us goes to the registrar upstream (RFC 3327). */
	r.edge_register = proxy_edge() && sip->sip_request->rq_method == sip_method_register && !sip->sip_route &&
			  self_is_us(sip->sip_request->rq_url);
	if (process_routes(&r))
		return;
	r.ruri = sip->sip_request->rq_url; /* after §16.4: a strict route may have rewritten it */
	if (refused_by_policy(&r))
		return;
	if (choose_targets(&r) == ROUTE_TARGETS)
		start_branches(&r);
	for (int i = 0; i < r.n; i++) {
		free(r.uris[i]);
		free(r.routes[i]);
	}
}
