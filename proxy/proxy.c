/** @file proxy.c  The stateful proxy core (RFC 3261 §16).
 *
 * One proxy context per proxied request: the server transaction it answers and one branch
 * (client transaction) per target. Targets for our domains come from the location service and
 * are reached over the flow their binding registered on; in-dialog requests find their flow
 * through the flow token we put into Record-Route. The context lives until its server
 * transaction and every branch are gone.
 */
#include "proxy/proxy.h"
#include "proxy/dialogs.h"
#include "base/config.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/metrics.h"
#include "cluster/cluster.h"
#include "sip/self.h"
#include "sip/resolve.h"
#include "sip/txn.h"
#include "media/media.h"
#include "registrar/gruu.h"
#include "registrar/location.h"
#include "transport/flow.h"
#include "transport/transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <sofia-sip/hostdomain.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct proxy_config *P_cfg;
static bool edge_mode; /* registrar.mode = "edge" */

#define MAX_BRANCHES 16
#define CANCEL_GRACE_MS 32000 /* 64*T1: how long a CANCELled branch may take to answer */
#define BRANCH_PREFIX "z9hG4bK-se"

struct proxy_ctx;

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
static void respond_up(struct proxy_ctx *ctx, struct branch *b, msg_t *up);
static void end_callee_dialog(struct proxy_ctx *ctx, struct branch *b, msg_t *resp, bool bye);
static void media_waits_cut(struct proxy_ctx *ctx);
struct ack_wait;
static struct ack_wait *ack_waits;
static void ack_wait_free(struct ack_wait *w, bool cancel);

static struct proxy_ctx *contexts;
static const struct txn_user server_user, client_user;
struct lookup;
static struct lookup *lookups; /* requests waiting for a next hop's name to be looked up */
static void lookup_free(struct lookup *lk);
static proxy_policy_fn policy;
static proxy_forward_fn forward_filter;

/* routing.upstreams as configured: a numeric address is used as it is; a name is looked up
 * (RFC 3263) at start and again when its records expire, and until it resolves it has no
 * targets. Each entry is on the heap and owns its copy of the URI, so that a reload can retire
 * the old entries while a lookup or a timer of theirs is still under way. */
#define MAX_UPSTREAMS CONFIG_MAX_LIST
#define DNS_REFRESH_MIN 10   /* s: never ask more often, whatever the TTL */
#define DNS_REFRESH_MAX 3600 /* s: ask again at least this often */
#define DNS_RETRY 10	     /* s: after a lookup that found nothing */
struct upstream_cfg {
	char *uri;
	url_t *url;
	su_home_t home[1];
	bool named;
	struct transport_dest dest[RESOLVE_MAX_TARGETS];
	int n_dest;
	uv_timer_t refresh;
	bool timer_open;
	bool lookup_pending; /* resolve_start's callback is still to come */
	bool retired;	     /* replaced by a reload: freed once its timer and lookup are done */
	bool timer_closing;  /* retired with its timer still to close */
};
static struct upstream_cfg *cfgs[MAX_UPSTREAMS];
static int n_cfgs;

/* Every target of every upstream, in the order failover tries them. */
static struct upstream upstreams[MAX_UPSTREAMS];
static int n_upstreams;

static void upstreams_rebuild(void)
{
	n_upstreams = 0;
	for (int i = 0; i < n_cfgs; i++)
		for (int j = 0; j < cfgs[i]->n_dest && n_upstreams < MAX_UPSTREAMS; j++)
			upstreams[n_upstreams++] = (struct upstream){.uri = cfgs[i]->uri, .dest = cfgs[i]->dest[j]};
}

static void upstream_cfg_free(struct upstream_cfg *c)
{
	su_home_deinit(c->home);
	free(c->uri);
	free(c);
}

static void on_refresh_closed(uv_handle_t *h)
{
	struct upstream_cfg *c = h->data;
	c->timer_closing = false;
	if (!c->lookup_pending)
		upstream_cfg_free(c);
}

/** Stop using c: at once, or when its timer has closed and its lookup has answered. */
static void upstream_cfg_retire(struct upstream_cfg *c)
{
	c->retired = true;
	if (c->timer_open) {
		c->timer_open = false;
		c->timer_closing = true;
		uv_timer_stop(&c->refresh);
		uv_close((uv_handle_t *)&c->refresh, on_refresh_closed);
	} else if (!c->lookup_pending) {
		upstream_cfg_free(c);
	}
}

static void on_refresh(uv_timer_t *h);

static void on_resolved(void *arg, const struct resolve_target *t, int n, uint32_t ttl)
{
	struct upstream_cfg *c = arg;
	c->lookup_pending = false;
	if (c->retired) {
		if (!c->timer_closing)
			upstream_cfg_free(c);
		return;
	}
	uint64_t next = DNS_RETRY;
	if (n == 0) {
		/* Keep what the last lookup found: a stale address beats none. */
		log_warn("proxy: upstream %s: no address found%s", c->uri,
			 c->n_dest ? ", keeping the previous ones" : "");
	} else {
		char list[512] = "";
		size_t len = 0;
		c->n_dest = 0;
		for (int i = 0; i < n && i < RESOLVE_MAX_TARGETS; i++) {
			struct transport_dest *d = &c->dest[c->n_dest++];
			memset(d, 0, sizeof(*d));
			d->proto = t[i].proto;
			d->addr = t[i].addr;
			char host[INET6_ADDRSTRLEN] = "?";
			int port;
			if (t[i].addr.ss_family == AF_INET6) {
				const struct sockaddr_in6 *a = (const void *)&t[i].addr;
				inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
				port = ntohs(a->sin6_port);
			} else {
				const struct sockaddr_in *a = (const void *)&t[i].addr;
				inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
				port = ntohs(a->sin_port);
			}
			if (len < sizeof(list))
				len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s%s%s:%d/%s",
							i ? ", " : "", strchr(host, ':') ? "[" : "", host,
							strchr(host, ':') ? "]" : "", port, proto_name(t[i].proto));
		}
		next = ttl < DNS_REFRESH_MIN ? DNS_REFRESH_MIN : ttl > DNS_REFRESH_MAX ? DNS_REFRESH_MAX : ttl;
		log_info("proxy: upstream %s is %s (looked up again in %llu s)", c->uri, list,
			 (unsigned long long)next);
	}
	upstreams_rebuild();
	if (c->timer_open)
		uv_timer_start(&c->refresh, on_refresh, next * 1000, 0);
}

static void on_refresh(uv_timer_t *h)
{
	struct upstream_cfg *c = h->data;
	c->lookup_pending = true;
	if (resolve_start(c->url, on_resolved, c) != 0) {
		c->lookup_pending = false;
		uv_timer_start(&c->refresh, on_refresh, DNS_RETRY * 1000, 0);
	}
}

const struct setting proxy_settings[] = {
	SETTING_LIST("routing.upstreams", struct proxy_config, upstreams),
	SETTING_BOOL("routing.foreign_domains", struct proxy_config, route_foreign, true),
	SETTING_BOOL("routing.unregistered_users", struct proxy_config, route_unregistered, false),
	SETTING_INT("routing.upstream_timeout", struct proxy_config, upstream_timeout, 5000),
	SETTING_STRING("routing.resolv_conf", struct proxy_config, resolv_conf, "/etc/resolv.conf"),
	SETTING_INT("proxy.timer_c", struct proxy_config, timer_c, 180),
	SETTING_INT("proxy.dialog_timeout", struct proxy_config, dialog_timeout, 7200),
	SETTING_END,
};

int proxy_config_check(const struct proxy_config *cfg)
{
	int problems = 0;
	for (int i = 0; i < cfg->upstreams.count; i++) {
		if (strncasecmp(cfg->upstreams.item[i], "sip:", 4) != 0 &&
		    strncasecmp(cfg->upstreams.item[i], "sips:", 5) != 0) {
			log_error("config: routing.upstreams[%d] '%s' is not a sip: or sips: URI", i,
				  cfg->upstreams.item[i]);
			problems++;
		}
	}
	if (cfg->upstream_timeout < 100) {
		log_error("config: routing.upstream_timeout must be at least 100 ms");
		problems++;
	}
	if (cfg->timer_c < 1) {
		log_error("config: proxy.timer_c must be positive");
		problems++;
	}
	if (cfg->dialog_timeout < 60) {
		log_error("config: proxy.dialog_timeout must be at least 60 seconds");
		problems++;
	}
	return problems;
}

/** routing.upstreams as P_cfg says now; the entries in use before are retired. -1 (logged) if
 *  one cannot be used. */
static int upstreams_configure(void)
{
	int old = n_cfgs;
	struct upstream_cfg *prev[MAX_UPSTREAMS];
	memcpy(prev, cfgs, sizeof(prev));
	n_cfgs = 0;
	int rc = 0;
	for (int i = 0; i < P_cfg->upstreams.count && n_cfgs < MAX_UPSTREAMS; i++) {
		struct upstream_cfg *c = calloc(1, sizeof(*c));
		if (!c || !(c->uri = strdup(P_cfg->upstreams.item[i]))) {
			free(c);
			return -1;
		}
		su_home_init(c->home);
		url_t *url = url_make(c->home, c->uri);
		c->url = url;
		bool numeric = url && url->url_host && host_is_ip_address(url->url_host);
		if (numeric && transport_dest_from_url(url, &c->dest[0]) == 0) {
			c->n_dest = 1;
		} else if (url && url->url_host && !numeric && !url_has_param(url, "maddr") &&
			   (url->url_type == url_sip || url->url_type == url_sips)) {
			c->named = true;
		} else {
			log_error("proxy: routing.upstreams: cannot use '%s' (want sip:HOST[:PORT]"
				  "[;transport=udp|tcp|tls], HOST a name or a numeric address)",
				  c->uri);
			upstream_cfg_free(c);
			rc = -1;
			continue;
		}
		cfgs[n_cfgs++] = c;
		log_info("proxy: upstream %d: %s%s", n_cfgs, c->uri, c->named ? " (DNS, RFC 3263)" : "");
	}
	for (int i = 0; i < old; i++)
		upstream_cfg_retire(prev[i]);
	upstreams_rebuild();
	for (int i = 0; i < n_cfgs && rc == 0; i++) {
		struct upstream_cfg *c = cfgs[i];
		if (!c->named)
			continue;
		if (resolve_init(P_cfg->resolv_conf) != 0)
			return -1;
		uv_timer_init(loop_get(), &c->refresh);
		c->refresh.data = c;
		c->timer_open = true;
		on_refresh(&c->refresh);
	}
	return rc;
}

int proxy_init(const struct proxy_config *cfg, bool edge)
{
	P_cfg = cfg;
	edge_mode = edge;
	n_cfgs = 0;
	n_upstreams = 0;
	dialogs_init(&cfg->dialog_timeout);
	return upstreams_configure();
}

int proxy_reload(void)
{
	/* Branches under way keep the destination they were sent to; only the failover of a
	 * request still looking for an upstream reads the new list. */
	return upstreams_configure();
}

void proxy_set_policy(proxy_policy_fn fn) { policy = fn; }
void proxy_set_forward_filter(proxy_forward_fn fn) { forward_filter = fn; }


/* ---- context life cycle ---- */

static void ctx_free(struct proxy_ctx *ctx)
{
	if (ctx->prev)
		ctx->prev->next = ctx->next;
	else
		contexts = ctx->next;
	if (ctx->next)
		ctx->next->prev = ctx->prev;
	if (ctx->best)
		msg_destroy(ctx->best);
	for (int i = 0; i < ctx->n_challenges; i++)
		msg_destroy(ctx->challenges[i]);
	msg_unref(ctx->req);
	if (ctx->dests)
		free((char *)ctx->dests[0].uri); /* one name for them all */
	free(ctx->dests);
	free(ctx);
}

static void ctx_release(struct proxy_ctx *ctx)
{
	if (--ctx->open == 0)
		ctx_free(ctx);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct branch *b = h->data;
	ctx_release(b->ctx);
}

static void branch_stop_timer(struct branch *b)
{
	if (b->timer_open) {
		b->timer_open = false;
		uv_timer_stop(&b->timer_c);
		uv_close((uv_handle_t *)&b->timer_c, on_timer_closed);
	}
}

void proxy_shutdown(void)
{
	resolve_shutdown(); /* no lookup calls back any more */
	for (int i = 0; i < n_cfgs; i++) {
		cfgs[i]->lookup_pending = false;
		upstream_cfg_retire(cfgs[i]);
	}
	while (ack_waits)
		ack_wait_free(ack_waits, true);
	while (lookups)
		lookup_free(lookups);
	n_cfgs = 0;
	n_upstreams = 0;
	dialogs_shutdown();
	/* Cut every tie to transactions; timers close asynchronously and release their context. */
	struct proxy_ctx *ctx = contexts;
	while (ctx) {
		struct proxy_ctx *next = ctx->next;
		ctx->open++; /* hold it while the ties are cut */
		media_waits_cut(ctx);
		if (ctx->st) {
			txn_detach(ctx->st);
			ctx->st = NULL;
			ctx->open--;
		}
		for (int i = 0; i < ctx->n_branches; i++) {
			struct branch *b = &ctx->branch[i];
			if (b->ct) {
				txn_detach(b->ct);
				b->ct = NULL;
				ctx->open--;
			}
			branch_stop_timer(b);
		}
		ctx_release(ctx);
		ctx = next;
	}
}

/* ---- helpers ---- */

/** Host part for our own URIs on a listener: its address, or our first domain if wildcard. */
static void listener_host(const struct listen_spec *l, char *out, size_t n)
{
	if (!l || strcmp(l->host, "0.0.0.0") == 0 || strcmp(l->host, "::") == 0)
		snprintf(out, n, "%s", self_domain());
	else if (strchr(l->host, ':'))
		snprintf(out, n, "[%s]", l->host);
	else
		snprintf(out, n, "%s", l->host);
}

/** Our Record-Route entry for a flow: its token names the flow, its host:port the listener. */
static sip_record_route_t *make_record_route(su_home_t *home, struct flow *f)
{
	char token[FLOW_TOKEN_LEN + 1], host[80], text[256];
	flow_token_make(f->id, token);
	listener_host(f->local, host, sizeof(host));
	snprintf(text, sizeof(text), "<sip:%s@%s:%d;transport=%s;lr>", token, host,
		 f->local ? f->local->port : 5060, proto_name(f->proto));
	return sip_record_route_make(home, text);
}

/** Our Path entry (RFC 3327) for a REGISTER from flow client leaving on flow out: the client's
 *  token, the address the registrar reaches us at, and ob (RFC 5626 §5.1): we keep the flow and
 *  answer 430 when it is gone, so the registrar may treat the binding as an outbound flow. */
static sip_path_t *make_path(su_home_t *home, struct flow *client, struct flow *out)
{
	char token[FLOW_TOKEN_LEN + 1], host[80], text[256];
	flow_token_make(client->id, token);
	listener_host(out->local, host, sizeof(host));
	snprintf(text, sizeof(text), "<sip:%s@%s:%d;transport=%s;lr;ob>", token, host,
		 out->local ? out->local->port : 5060, proto_name(out->proto));
	return sip_path_make(home, text);
}

/** A Route/Record-Route URI that is ours: its host names us and its user is a valid token
 *  (or it has no user). *flow_id gets the token's flow (0 if none). */
static bool route_is_ours(const url_t *url, uint64_t *flow_id)
{
	*flow_id = 0;
	if (!url || !self_is_us(url))
		return false;
	/* A user part that is not a valid token (forged, or from another secret) names no flow. */
	if (url->url_user && flow_token_parse(url->url_user, strlen(url->url_user), flow_id) != 0)
		*flow_id = 0;
	return true;
}

/** Loop-detection hash (§16.3 step 4, §16.6 step 8) over what identifies this request. */
static uint32_t loop_hash(sip_t *sip)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), URL_PRINT_FORMAT "|%s|%s|%s|%u|%s", URL_PRINT_ARGS(sip->sip_request->rq_url),
			 sip->sip_call_id->i_id, sip->sip_from->a_tag ? sip->sip_from->a_tag : "",
			 sip->sip_to->a_tag ? sip->sip_to->a_tag : "", sip->sip_cseq->cs_seq,
			 sip->sip_cseq->cs_method_name);
	uint32_t h = 2166136261u;
	for (int i = 0; i < n && i < (int)sizeof(buf); i++)
		h = (h ^ (unsigned char)buf[i]) * 16777619u;
	return h;
}

static bool is_looping(sip_t *sip)
{
	char prefix[32];
	snprintf(prefix, sizeof(prefix), BRANCH_PREFIX "%08x", loop_hash(sip));
	for (sip_via_t *v = sip->sip_via; v; v = v->v_next) {
		if (!v->v_branch || strncmp(v->v_branch, prefix, strlen(prefix)) != 0)
			continue;
		int n_listen;
		const struct listen_spec *listen = self_listeners(&n_listen);
		for (int i = 0; i < n_listen; i++) {
			const struct listen_spec *l = &listen[i];
			int port = v->v_port ? atoi(v->v_port) : 0;
			char host[80];
			listener_host(l, host, sizeof(host));
			if ((strcasecmp(v->v_host, l->host) == 0 || strcasecmp(v->v_host, host) == 0) &&
			    port == l->port)
				return true;
		}
	}
	return false;
}

static sip_via_t *make_via(su_home_t *home, sip_t *sip, struct flow *out)
{
	char host[80], port[8], branch[64], rnd[17];
	listener_host(out->local, host, sizeof(host));
	snprintf(port, sizeof(port), "%d", out->local ? out->local->port : 5060);
	sipmsg_random_token(rnd, sizeof(rnd));
	snprintf(branch, sizeof(branch), "branch=" BRANCH_PREFIX "%08x.%s", loop_hash(sip), rnd);
	char transport[16];
	snprintf(transport, sizeof(transport), "SIP/2.0/%s", proto_via_name(out->proto));
	/* RFC 5923: over TCP/TLS the next hop may send its requests back on this connection. */
	bool alias = out->proto == PROTO_TCP || out->proto == PROTO_TLS;
	return sip_via_create(home, host, port, transport, branch, "rport", alias ? "alias" : NULL, NULL);
}

static bool creates_dialog(sip_t *sip)
{
	sip_method_t m = sip->sip_request->rq_method;
	return !sip->sip_to->a_tag && (m == sip_method_invite || m == sip_method_subscribe ||
				       m == sip_method_refer || m == sip_method_notify);
}

/** The copy of req that goes to one target (§16.6 steps 1-8); with path, an edge REGISTER
 *  that gets our Path entry for flow in and says Supported: path (RFC 3327 §5.1); with route, a
 *  Route entry on top (§16.6 step 7: the node of the cluster that holds the target's flow). */
static msg_t *make_forward(msg_t *req, const char *ruri, struct flow *in, struct flow *out, bool path,
			   const char *route)
{
	msg_t *fwd = msg_dup(req);
	if (!fwd)
		return NULL;
	sip_t *sip = sip_object(fwd);
	su_home_t *home = msg_home(fwd);
	int err = 0;
	if (ruri) {
		sip_request_t *rq = sip_request_create(home, sip->sip_request->rq_method,
						       sip->sip_request->rq_method_name,
						       (url_string_t *)ruri, NULL);
		err |= !rq || msg_header_replace(fwd, (msg_pub_t *)sip, (msg_header_t *)sip->sip_request,
						 (msg_header_t *)rq);
	}
	if (sip->sip_max_forwards) {
		sip->sip_max_forwards->mf_count--;
		msg_fragment_clear(sip->sip_max_forwards->mf_common);
	} else {
		err |= sip_add_make(fwd, sip, sip_max_forwards_class, "70");
	}
	if (creates_dialog(sip)) {
		/* Record-Route with flow tokens: the caller-facing entry first (it ends up lower),
		 * then, when the legs differ, the callee-facing one (double Record-Route). */
		err |= msg_header_insert(fwd, (msg_pub_t *)sip, (msg_header_t *)make_record_route(home, in));
		if (out && out != in)
			err |= msg_header_insert(fwd, (msg_pub_t *)sip,
						 (msg_header_t *)make_record_route(home, out));
	}
	if (path) {
		err |= msg_header_insert(fwd, (msg_pub_t *)sip, (msg_header_t *)make_path(home, in, out));
		if (!sip_has_supported(sip->sip_supported, "path"))
			err |= sip_add_make(fwd, sip, sip_supported_class, "path");
	}
	if (route)
		err |= msg_header_insert(fwd, (msg_pub_t *)sip, (msg_header_t *)sip_route_make(home, route));
	/* A cluster signature is for one hop: the next gets a fresh one, or none. */
	cluster_unsign(fwd);
	err |= msg_header_insert(fwd, (msg_pub_t *)sip, (msg_header_t *)make_via(home, sip, out));
	if (err) {
		msg_destroy(fwd);
		return NULL;
	}
	if (forward_filter)
		forward_filter(fwd, sip);
	return fwd;
}

/* ---- responses upstream (§16.7) ---- */

static int class_rank(int status)
{
	/* 6xx beat everything; otherwise the lowest class wins. */
	if (status >= 600)
		return 0;
	return status / 100;
}

static bool better(int candidate, int best)
{
	if (!best)
		return true;
	if (class_rank(candidate) != class_rank(best))
		return class_rank(candidate) < class_rank(best);
	/* Within 4xx prefer the ones the caller can act on (§16.7 step 6). */
	static const int preferred[] = {401, 407, 415, 420, 484};
	for (size_t i = 0; i < sizeof(preferred) / sizeof(preferred[0]); i++) {
		if (candidate == preferred[i] && best != candidate)
			return true;
		if (best == preferred[i])
			return false;
	}
	return false;
}

/** A copy of a branch's response for upstream: our Via removed. */
static msg_t *response_for_upstream(msg_t *resp)
{
	msg_t *up = msg_dup(resp);
	if (!up)
		return NULL;
	sip_t *sip = sip_object(up);
	if (sip->sip_via)
		msg_header_remove(up, (msg_pub_t *)sip, (msg_header_t *)sip->sip_via);
	if (!sip->sip_via) {
		msg_destroy(up);
		return NULL;
	}
	return up;
}

static void cancel_pending(struct proxy_ctx *ctx, int except)
{
	for (int i = 0; i < ctx->n_branches; i++) {
		struct branch *b = &ctx->branch[i];
		if (i != except && b->ct && !b->status)
			txn_client_cancel(b->ct);
	}
}

static void add_challenges(msg_t *out, struct proxy_ctx *ctx)
{
	sip_t *os = sip_object(out);
	for (int i = 0; i < ctx->n_challenges; i++) {
		sip_t *cs = sip_object(ctx->challenges[i]);
		if (ctx->challenges[i] == ctx->best)
			continue;
		if (cs->sip_www_authenticate)
			sip_add_dup(out, os, (sip_header_t *)cs->sip_www_authenticate);
		if (cs->sip_proxy_authenticate)
			sip_add_dup(out, os, (sip_header_t *)cs->sip_proxy_authenticate);
	}
}

/** Edge mode: what the client of a forwarded REGISTER is told, counted and logged. */
static void edge_register_done(struct proxy_ctx *ctx, int status)
{
	if (!ctx->edge_register)
		return;
	sip_t *sip = sip_object(ctx->req);
	if (status >= 200 && status < 300) {
		metrics_inc(M_EDGE_REGISTERS_OK);
		log_info("edge: REGISTER " URL_PRINT_FORMAT ": %d from the registrar",
			 URL_PRINT_ARGS(sip->sip_to->a_url), status);
	} else {
		metrics_inc(M_EDGE_REGISTERS_FAILED);
		log_notice("edge: REGISTER " URL_PRINT_FORMAT ": %d", URL_PRINT_ARGS(sip->sip_to->a_url), status);
	}
}

/** Every branch has ended and no 2xx went up: send the best final response (§16.7 step 6). */
static void send_best(struct proxy_ctx *ctx)
{
	if (ctx->final_sent || !ctx->st)
		return;
	for (int i = 0; i < ctx->n_branches; i++)
		if (!ctx->branch[i].status)
			return;
	ctx->final_sent = true;
	if (ctx->invite && !sip_object(ctx->req)->sip_to->a_tag)
		media_call_end(sip_object(ctx->req), "no call"); /* error, CANCEL, Timer C, timeout */
	edge_register_done(ctx, ctx->best_status ? ctx->best_status : ctx->upstream_failed ? 503 : 408);
	if (!ctx->best_status && ctx->upstream_failed) {
		/* Our own 503: no upstream could take the request, the caller may try elsewhere. */
		metrics_inc(M_PROXY_UPSTREAM_UNAVAILABLE);
		txn_respond_status(ctx->st, 503, "No Upstream Available");
		return;
	}
	int status = ctx->best_status ? ctx->best_status : 408;
	if (!ctx->best && status == 503 && ctx->media_refused) {
		/* Our own 503: no rtpengine took the call, the caller may try again later. */
		log_warn("proxy: %s for Call-ID %s answered 503: media relay unavailable",
			 sip_object(ctx->req)->sip_request->rq_method_name, sip_object(ctx->req)->sip_call_id->i_id);
		txn_respond_status(ctx->st, 503, "Media Relay Unavailable");
		return;
	}
	msg_t *out;
	if (ctx->best && status != 503) {
		out = msg_dup(ctx->best);
		if (out && (status == 401 || status == 407))
			add_challenges(out, ctx);
	} else {
		/* A 503 from downstream must not make the caller think we are overloaded. */
		if (status == 503)
			status = 500;
		out = sipmsg_response(ctx->req, status, NULL);
	}
	if (out)
		txn_respond(ctx->st, out);
}

/** Keep status (and resp, if it came from downstream) when it beats the best so far. */
static void offer_best(struct proxy_ctx *ctx, int status, msg_t *resp)
{
	if (!better(status, ctx->best_status))
		return;
	if (ctx->best)
		msg_destroy(ctx->best);
	ctx->best = resp ? response_for_upstream(resp) : NULL;
	ctx->best_status = status;
}

static bool upstream_failover(struct branch *b, int status, msg_t *resp);

/* A branch of an initial INVITE ended without a 2xx: its leg in rtpengine goes. */
static void branch_media_end(struct branch *b, int status)
{
	struct proxy_ctx *ctx = b->ctx;
	if (status >= 300 && ctx->invite && b->via_branch[0] && !sip_object(ctx->req)->sip_to->a_tag) {
		char why[32];
		snprintf(why, sizeof(why), "%d", status);
		media_branch_end(sip_object(ctx->req), b->via_branch, why);
	}
}

static void branch_final(struct branch *b, int status, msg_t *resp)
{
	struct proxy_ctx *ctx = b->ctx;
	if (b->status)
		return;
	if (b->timer_c_fired)
		status = 408, resp = NULL;
	branch_media_end(b, status);
	if (upstream_failover(b, status, resp))
		return;
	b->status = status;
	branch_stop_timer(b);
	if (status >= 200 && status < 300)
		return;
	offer_best(ctx, status, resp);
	if (resp && (status == 401 || status == 407) && ctx->n_challenges < MAX_BRANCHES) {
		msg_t *copy = msg_dup(resp);
		if (copy)
			ctx->challenges[ctx->n_challenges++] = copy;
	}
	if (status >= 600 && ctx->invite)
		cancel_pending(ctx, -1); /* §16.7 step 5 */
	send_best(ctx);
}

static bool start_next_upstream(struct proxy_ctx *ctx);

/* The next hops a context fails over along: its own, or routing.upstreams. */
static int ctx_n_dests(const struct proxy_ctx *ctx) { return ctx->dests ? ctx->n_dests : n_upstreams; }
static const struct upstream *ctx_dest(const struct proxy_ctx *ctx, int i)
{
	return ctx->dests ? &ctx->dests[i] : &upstreams[i];
}

/** An upstream branch ended: on 503, or when no response came (timeout, send failure), the
 *  next upstream gets the request (RFC 3263 §4.3); when none is left the caller gets 503. */
static bool upstream_failover(struct branch *b, int status, msg_t *resp)
{
	struct proxy_ctx *ctx = b->ctx;
	if (!b->upstream || b->timer_c_fired || (status != 503 && resp) || ctx->cancelled ||
	    ctx->final_sent || !ctx->st)
		return false;
	b->status = status;
	branch_stop_timer(b);
	log_notice("proxy: upstream %s failed (%d%s), %s", ctx_dest(ctx, ctx->next_upstream - 1)->uri,
		   status, resp ? "" : ", no response",
		   ctx->next_upstream < ctx_n_dests(ctx) ? "trying the next" : "none left");
	metrics_inc(M_PROXY_UPSTREAM_FAILOVER);
	if (!start_next_upstream(ctx)) {
		ctx->upstream_failed = true;
		send_best(ctx);
	}
	return true;
}

static void on_timer_c(uv_timer_t *h)
{
	struct branch *b = h->data;
	metrics_inc(M_PROXY_TIMER_C);
	if (b->provisional && b->ct && !b->timer_c_fired) {
		/* §16.8: CANCEL the branch; give the callee a grace period to answer 487. */
		log_info("proxy: Timer C fired, cancelling branch");
		b->timer_c_fired = true;
		txn_client_cancel(b->ct);
		uv_timer_start(&b->timer_c, on_timer_c, CANCEL_GRACE_MS, 0);
		return;
	}
	b->timer_c_fired = true;
	struct txn *ct = b->ct;
	struct proxy_ctx *ctx = b->ctx;
	ctx->open++; /* branch_final may release the timer's hold */
	branch_final(b, 408, NULL);
	if (ct && b->ct == ct) {
		/* No final will come: end the client transaction now (its on_gone releases). */
		txn_abandon(ct);
	}
	ctx_release(ctx);
}

/** An upstream said nothing within routing.upstream_timeout: take it for dead, try the next. */
static void on_upstream_timer(uv_timer_t *h)
{
	struct branch *b = h->data;
	struct txn *ct = b->ct;
	struct proxy_ctx *ctx = b->ctx;
	ctx->open++; /* branch_final may release the timer's hold */
	branch_final(b, 408, NULL);
	if (ct && b->ct == ct)
		txn_abandon(ct);
	ctx_release(ctx);
}

static void on_branch_response(struct txn *ct, msg_t *resp, sip_t *sip, void *arg)
{
	struct branch *b = arg;
	struct proxy_ctx *ctx = b->ctx;
	int status = sip->sip_status->st_status;
	if (b->upstream && !b->responded && b->timer_open) {
		/* The upstream lives: from here on only Timer C (INVITE) watches the branch. */
		if (ctx->invite) {
			uint64_t ms = (uint64_t)P_cfg->timer_c * 1000;
			uv_timer_start(&b->timer_c, on_timer_c, ms, ms);
		} else {
			branch_stop_timer(b);
		}
	}
	b->responded = true;
	if (status < 200) {
		b->provisional = true;
		if (b->timer_open && !b->timer_c_fired)
			uv_timer_again(&b->timer_c); /* §16.7 step 2: a provisional resets Timer C */
		if (status == 100 || ctx->final_sent || !ctx->st)
			return;
		msg_t *up = response_for_upstream(resp);
		if (up)
			respond_up(ctx, b, up);
		return;
	}
	if (status < 300 && b->answer_refused) {
		msg_t *up = response_for_upstream(resp);
		if (up) {
			end_callee_dialog(ctx, b, up, false); /* our ACK was lost: again */
			msg_destroy(up);
		}
		return;
	}
	if (status < 300) {
		b->status = status;
		branch_stop_timer(b);
		/* Every 2xx to an INVITE goes up (forks may answer); only the first for others. */
		if (ctx->st && (ctx->invite || !ctx->final_sent)) {
			msg_t *up = response_for_upstream(resp);
			if (up)
				respond_up(ctx, b, up);
		}
		if (ctx->invite)
			dialogs_answered(sip, ctx->in_flow, txn_flow_id(ct));
		if (!ctx->final_sent && ctx->invite)
			cancel_pending(ctx, (int)(b - ctx->branch));
		if (!ctx->final_sent)
			edge_register_done(ctx, status);
		ctx->final_sent = true;
		return;
	}
	branch_final(b, status, resp);
}

static void on_branch_fail(struct txn *ct, int status, void *arg)
{
	struct branch *b = arg;
	if (status == 480)
		metrics_inc(M_PROXY_FLOW_GONE);
	if (status == 480 && b->outbound)
		status = 430; /* RFC 5626 §5.3: Flow Failed */
	branch_final(b, status, NULL);
}

static void on_branch_gone(struct txn *ct, void *arg)
{
	struct branch *b = arg;
	if (b->ct != ct)
		return;
	b->ct = NULL;
	if (!b->status)
		branch_final(b, 408, NULL);
	ctx_release(b->ctx);
}

static void on_server_cancel(struct txn *st, void *arg)
{
	struct proxy_ctx *ctx = arg;
	ctx->cancelled = true;
	cancel_pending(ctx, -1);
}

static void on_server_gone(struct txn *st, void *arg)
{
	struct proxy_ctx *ctx = arg;
	ctx->st = NULL;
	ctx_release(ctx);
}

static const struct txn_user server_user = {
	.on_cancel = on_server_cancel,
	.on_gone = on_server_gone,
};
static const struct txn_user client_user = {
	.on_response = on_branch_response,
	.on_fail = on_branch_fail,
	.on_gone = on_branch_gone,
};

/* ---- targets (§16.5) and forwarding (§16.6) ---- */

struct target {
	const char *ruri; /* new Request-URI, or NULL to keep it */
	uint64_t flow_id; /* 0: send to dest's address */
	struct transport_dest dest;
	bool outbound;
	bool upstream;
	const char *route; /* a Route entry to put on top, or NULL */
	const char *node;  /* the cluster node that holds the flow: the request is signed for it */
};

/** A branch that could not even start: an upstream fails over, others just count. */
static void branch_fail_now(struct branch *b, int status)
{
	if (upstream_failover(b, status, NULL))
		return;
	b->status = status;
	offer_best(b->ctx, status, NULL);
}

static bool media_hold_branch(struct proxy_ctx *ctx, struct branch *b, msg_t *fwd, struct flow *in,
			      struct flow *out);
static void branch_launch(struct proxy_ctx *ctx, struct branch *b, msg_t *fwd, struct flow *out);

static void add_branch(struct proxy_ctx *ctx, const struct target *t, struct flow *in)
{
	if (ctx->n_branches >= MAX_BRANCHES)
		return;
	struct branch *b = &ctx->branch[ctx->n_branches++];
	b->ctx = ctx;
	b->outbound = t->outbound;
	b->upstream = t->upstream;
	struct flow *out = t->flow_id ? flow_find(t->flow_id) : transport_flow_for(&t->dest);
	if (!out && t->flow_id) {
		/* The binding's connection is gone: fail this branch at once (430 or 480). */
		metrics_inc(M_PROXY_FLOW_GONE);
		branch_fail_now(b, t->outbound ? 430 : 480);
		return;
	}
	if (!out) {
		branch_fail_now(b, 503); /* no transport reaches that address */
		return;
	}
	msg_t *fwd = make_forward(ctx->req, t->ruri, in, out, ctx->edge_register, t->route);
	if (fwd && t->node && cluster_sign(fwd) != 0) {
		msg_destroy(fwd);
		fwd = NULL;
	}
	if (!fwd) {
		branch_fail_now(b, 500);
		return;
	}
	if (t->node) {
		metrics_inc(M_CLUSTER_FORWARDED);
		log_info("cluster: %s for %s to node %s, which holds its flow", sip_object(fwd)->sip_request->rq_method_name,
			 t->ruri ? t->ruri : "?", t->node);
	}
	b->out_flow = out->id;
	sip_t *fs = sip_object(fwd);
	if (fs->sip_via && fs->sip_via->v_branch)
		snprintf(b->via_branch, sizeof(b->via_branch), "%s", fs->sip_via->v_branch);
	if (media_hold_branch(ctx, b, fwd, in, out))
		return; /* its SDP is with rtpengine; the branch starts when it comes back */
	branch_launch(ctx, b, fwd, out);
}

/* Send a branch's request (fwd, taken) on out: its client transaction and timers. */
static void branch_launch(struct proxy_ctx *ctx, struct branch *b, msg_t *fwd, struct flow *out)
{
	struct transport_dest dest = {.flow_id = out->id, .proto = out->proto, .local = out->local};
	ctx->open++;
	b->ct = txn_client_create(fwd, &dest, &client_user, b);
	if (!b->ct) {
		ctx->open--;
		b->status = 500;
		offer_best(ctx, 500, NULL);
		return;
	}
	metrics_inc(M_PROXY_FORWARDED);
	if (b->upstream && !b->status && !b->responded) {
		uv_timer_init(loop_get(), &b->timer_c);
		b->timer_c.data = b;
		b->timer_open = true;
		ctx->open++;
		uv_timer_start(&b->timer_c, on_upstream_timer, (uint64_t)P_cfg->upstream_timeout, 0);
	} else if (ctx->invite && !b->status) {
		uv_timer_init(loop_get(), &b->timer_c);
		b->timer_c.data = b;
		b->timer_open = true;
		ctx->open++;
		uint64_t ms = (uint64_t)P_cfg->timer_c * 1000;
		uv_timer_start(&b->timer_c, on_timer_c, ms, ms);
	}
}

static bool start_next_upstream(struct proxy_ctx *ctx)
{
	struct flow *in = flow_find(ctx->in_flow);
	if (!in || ctx->next_upstream >= ctx_n_dests(ctx) || ctx->n_branches >= MAX_BRANCHES)
		return false;
	struct target t = {.dest = ctx_dest(ctx, ctx->next_upstream)->dest, .upstream = true};
	ctx->next_upstream++;
	add_branch(ctx, &t, in);
	return true;
}

/** Did this request come from one of the upstreams (so it must not go straight back)? Address
 *  and port: on one host several peers share an address. */
static bool from_upstream(const struct flow *in)
{
	for (int i = 0; i < n_upstreams; i++)
		if (flow_addr_equal((const struct sockaddr *)&upstreams[i].dest.addr,
				    (const struct sockaddr *)&in->peer))
			return true;
	return false;
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
static int next_hop(sip_t *sip, struct transport_dest *dest)
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
static uint64_t preprocess_routes(msg_t *req, sip_t *sip, struct flow *in, bool *had_ours,
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

static void reply(struct txn *st, msg_t *req, int status, const char *reason)
{
	if (status >= 400)
		log_info("proxy: %d %s", status, reason ? reason : "");
	txn_respond_status(st, status, reason);
}

/** A context for a request about to be forwarded; it takes over the server transaction. */
static struct proxy_ctx *ctx_new(struct txn *st, msg_t *req, struct flow *in, bool edge_register)
{
	struct proxy_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return NULL;
	ctx->req = msg_ref(req);
	ctx->st = st;
	ctx->invite = sip_object(req)->sip_request->rq_method == sip_method_invite;
	ctx->in_flow = in->id;
	ctx->edge_register = edge_register;
	ctx->open = 1; /* the server transaction */
	ctx->next = contexts;
	if (contexts)
		contexts->prev = ctx;
	contexts = ctx;
	txn_set_user(st, &server_user, ctx);
	if (ctx->invite)
		metrics_inc(M_PROXY_CALLS);
	return ctx;
}

/** Start a branch per target (§16.6); an upstream target starts failover at the first hop. */
static void ctx_start(struct proxy_ctx *ctx, const struct target *targets, int n, struct flow *in)
{
	if (ctx->invite) {
		/* media: an initial INVITE is anchored in rtpengine by the legs of all its targets */
		uint64_t to[MAX_BRANCHES];
		for (int i = 0; i < n && i < MAX_BRANCHES; i++) {
			struct flow *out = targets[i].flow_id ? flow_find(targets[i].flow_id)
							      : transport_flow_for(&targets[i].dest);
			to[i] = out ? out->id : 0;
		}
		media_call_open(sip_object(ctx->req), in->id, to, n < MAX_BRANCHES ? n : MAX_BRANCHES);
	}
	ctx->open++; /* hold while branches start: a branch may end synchronously */
	for (int i = 0; i < n; i++) {
		if (targets[i].upstream)
			ctx->next_upstream = 1; /* the first upstream; failover takes the next */
		add_branch(ctx, &targets[i], in);
	}
	send_best(ctx); /* every branch may have failed at once */
	ctx_release(ctx);
}

/* ---- media (media/media.h): messages held while rtpengine rewrites their SDP ---- */

struct media_wait {
	struct proxy_ctx *ctx;
	msg_t *msg;	   /* a response going up, or a branch's request (then branch is set) */
	struct branch *branch; /* the branch whose request waits to start */
	struct media_op *op;
	struct media_wait *next, *prev;
};

static struct media_wait *media_wait_new(struct proxy_ctx *ctx)
{
	struct media_wait *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->ctx = ctx;
	w->next = ctx->media_waits;
	if (ctx->media_waits)
		ctx->media_waits->prev = w;
	ctx->media_waits = w;
	ctx->open++;
	return w;
}

/* Unlink and free w; the caller releases the context's hold. */
static void media_wait_free(struct media_wait *w)
{
	struct proxy_ctx *ctx = w->ctx;
	if (w->prev)
		w->prev->next = w->next;
	else
		ctx->media_waits = w->next;
	if (w->next)
		w->next->prev = w->prev;
	if (w->msg)
		msg_destroy(w->msg);
	free(w);
}

static void media_waits_cut(struct proxy_ctx *ctx)
{
	while (ctx->media_waits) {
		media_op_cancel(ctx->media_waits->op);
		media_wait_free(ctx->media_waits);
		ctx->open--;
	}
}

static const struct txn_user bye_user; /* our own BYE: its response ends it, nothing else */

/* The ACK for a callee's 2xx (resp, our Via removed) that we end ourselves, and with bye the BYE
 * after it (Reason: 503): as the caller would send them, along the route set beyond us, from
 * our address on the branch's flow. */
static void end_callee_dialog(struct proxy_ctx *ctx, struct branch *b, msg_t *resp, bool bye)
{
	struct flow *out = flow_find(b->out_flow);
	sip_t *rs = sip_object(resp), *qs = sip_object(ctx->req);
	if (!out || !rs->sip_to || !rs->sip_call_id || !qs->sip_from || !qs->sip_cseq)
		return;
	su_home_t home[1] = {SU_HOME_INIT(home)};
	const url_t *target = rs->sip_contact ? rs->sip_contact->m_url : qs->sip_request->rq_url;
	/* The route set: the Record-Route entries above ours (downstream of us), the nearest first. */
	const sip_record_route_t *beyond[MAX_BRANCHES];
	int n = 0;
	uint64_t id;
	for (const sip_record_route_t *rr = rs->sip_record_route; rr && n < MAX_BRANCHES; rr = rr->r_next) {
		if (route_is_ours(rr->r_url, &id))
			break;
		beyond[n++] = rr;
	}
	char routes[2048] = "";
	size_t off = 0;
	for (int i = n - 1; i >= 0 && off < sizeof(routes); i--) {
		char *r = sip_header_as_string(home, (const sip_header_t *)beyond[i]);
		int k = r ? snprintf(routes + off, sizeof(routes) - off, "Route: %s\r\n", r) : 0;
		off += k > 0 ? (size_t)k : 0;
	}
	char *ruri = url_as_string(home, target);
	char *from = sip_header_as_string(home, (const sip_header_t *)qs->sip_from);
	char *to = sip_header_as_string(home, (const sip_header_t *)rs->sip_to);
	for (int i = 0; i < (bye ? 2 : 1) && ruri && from && to && off < sizeof(routes); i++) {
		const char *method = i ? "BYE" : "ACK";
		char text[4096];
		const char *why = NULL;
		int len = snprintf(text, sizeof(text),
				   "%s %s SIP/2.0\r\nMax-Forwards: 70\r\n%sFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\n"
				   "CSeq: %u %s\r\n%sContent-Length: 0\r\n\r\n",
				   method, ruri, routes, from, to, rs->sip_call_id->i_id, qs->sip_cseq->cs_seq + i, method,
				   i ? "Reason: SIP;cause=503;text=\"Media Relay Unavailable\"\r\n" : "");
		msg_t *m = len > 0 && (size_t)len < sizeof(text) ? sipmsg_parse(text, (size_t)len, &why) : NULL;
		sip_t *ms = m ? sip_object(m) : NULL;
		if (!ms || msg_header_insert(m, (msg_pub_t *)ms, (msg_header_t *)make_via(msg_home(m), ms, out)) != 0) {
			if (m)
				msg_destroy(m);
			break;
		}
		if (!i) {
			transport_send_msg(out, m);
			msg_destroy(m);
			continue;
		}
		dialogs_request(ms); /* the call leaves the operator's list */
		struct transport_dest dest = {.flow_id = out->id, .proto = out->proto, .local = out->local};
		txn_client_create(m, &dest, &bye_user, NULL);
	}
	su_home_deinit(home);
}

static void on_media_response(void *arg, int status)
{
	struct media_wait *w = arg;
	struct proxy_ctx *ctx = w->ctx;
	sip_t *rs = sip_object(w->msg);
	int code = rs->sip_status->st_status;
	if (status == 503 && w->branch && code >= 200 && code < 300 && ctx->invite &&
	    !sip_object(ctx->req)->sip_to->a_tag) {
		/* media.on_failure = "refuse" and rtpengine failed the callee's answer: a call without
		 * audio is no call. The caller gets 503 instead of the 200 (when no other 2xx went up),
		 * the callee an ACK and a BYE; the session has been deleted. */
		struct branch *b = w->branch;
		b->answer_refused = true;
		bool told = ctx->st && txn_status(ctx->st) < 200;
		log_warn("proxy: call %s: the callee's %d could not be anchored: %sACK and BYE to the callee",
			 rs->sip_call_id->i_id, code, told ? "503 to the caller, " : "");
		metrics_inc(M_MEDIA_ANSWERS_REFUSED);
		end_callee_dialog(ctx, b, w->msg, true);
		if (told)
			txn_respond_status(ctx->st, 503, "Media Relay Unavailable");
	} else if (ctx->st) {
		/* A failure otherwise (media.on_failure = "unanchored", or in dialog) has been logged:
		 * the caller gets the response with the SDP as the callee sent it. */
		txn_respond(ctx->st, w->msg);
		w->msg = NULL;
	}
	media_wait_free(w);
	ctx_release(ctx);
}

/* The branch's Via branch for media: the initial INVITE's branches are legs of their own. */
static const char *media_via(const struct proxy_ctx *ctx, const struct branch *b)
{
	return ctx->invite && b->via_branch[0] && !sip_object(ctx->req)->sip_to->a_tag ? b->via_branch : NULL;
}

/** A response for the caller: through rtpengine when it carries SDP of an anchored call. */
static void respond_up(struct proxy_ctx *ctx, struct branch *b, msg_t *up)
{
	struct media_wait *w = media_wait_new(ctx);
	if (w) {
		w->msg = up;
		w->branch = b;
		if (media_sdp(up, b->out_flow, ctx->in_flow, media_via(ctx, b), on_media_response, w, &w->op) ==
		    MEDIA_WAIT)
			return;
		w->msg = NULL;
		media_wait_free(w);
		ctx->open--;
	}
	txn_respond(ctx->st, up);
}

/* A branch's request is back from rtpengine: it starts now, unless the call is over for it. */
static void on_branch_media(void *arg, int status)
{
	struct media_wait *w = arg;
	struct proxy_ctx *ctx = w->ctx;
	struct branch *b = w->branch;
	msg_t *fwd = w->msg;
	w->msg = NULL;
	w->op = NULL;
	struct flow *out = flow_find(b->out_flow);
	media_wait_free(w);
	if (status || !ctx->st || ctx->cancelled || ctx->final_sent || !out) {
		msg_destroy(fwd);
		int final = status ? status : !out ? 480 : 487;
		if (status == 503)
			ctx->media_refused = true;
		branch_media_end(b, final);
		b->status = final;
		offer_best(ctx, final, NULL);
		send_best(ctx);
	} else {
		branch_launch(ctx, b, fwd, out);
	}
	ctx_release(ctx);
}

/** Before a branch starts: its request's SDP through rtpengine, made for the leg it goes out on.
 *  true: the request (fwd, taken) waits, or the branch failed (503: no rtpengine). */
static bool media_hold_branch(struct proxy_ctx *ctx, struct branch *b, msg_t *fwd, struct flow *in,
			      struct flow *out)
{
	struct media_wait *w = media_wait_new(ctx);
	if (!w)
		return false;
	int rc = media_sdp(fwd, in->id, out->id, media_via(ctx, b), on_branch_media, w, &w->op);
	if (rc == MEDIA_WAIT) {
		w->msg = fwd;
		w->branch = b;
		return true;
	}
	media_wait_free(w);
	ctx->open--;
	if (rc == MEDIA_PASS)
		return false;
	msg_destroy(fwd);
	if (rc == 503)
		ctx->media_refused = true;
	b->status = rc;
	offer_best(ctx, rc, NULL);
	return true;
}

/* An ACK with SDP (the answer to an offer in a 200) waits for rtpengine like a response. */
struct ack_wait {
	msg_t *ack;
	uint64_t in, out;
	struct media_op *op;
	struct ack_wait *next, *prev;
};

static void ack_wait_free(struct ack_wait *w, bool cancel)
{
	if (cancel)
		media_op_cancel(w->op);
	if (w->prev)
		w->prev->next = w->next;
	else
		ack_waits = w->next;
	if (w->next)
		w->next->prev = w->prev;
	msg_unref(w->ack);
	free(w);
}

static void forward_ack(msg_t *ack, struct flow *in, struct flow *out);

static void on_media_ack(void *arg, int status)
{
	struct ack_wait *w = arg;
	struct flow *in = flow_find(w->in), *out = flow_find(w->out);
	if (in && out)
		forward_ack(w->ack, in, out);
	ack_wait_free(w, false);
}

static bool media_hold_ack(msg_t *ack, struct flow *in, struct flow *out)
{
	struct ack_wait *w = calloc(1, sizeof(*w));
	if (!w)
		return false;
	w->ack = msg_ref(ack);
	w->in = in->id;
	w->out = out->id;
	w->next = ack_waits;
	if (ack_waits)
		ack_waits->prev = w;
	ack_waits = w;
	if (media_sdp(ack, in->id, out->id, NULL, on_media_ack, w, &w->op) == MEDIA_WAIT)
		return true;
	ack_wait_free(w, false);
	return false;
}

/* ---- next hops by name (RFC 3263) ---- */

/* A request, or the ACK of a 2xx, whose next hop is a host name waits here for its lookup. */
struct lookup {
	struct txn *st; /* the server transaction; NULL for an ACK, or once it is gone */
	msg_t *req;
	uint64_t in_flow;
	bool ack;
	bool cancelled;
	struct lookup *next, *prev;
};

static void lookup_free(struct lookup *lk)
{
	if (lk->prev)
		lk->prev->next = lk->next;
	else
		lookups = lk->next;
	if (lk->next)
		lk->next->prev = lk->prev;
	if (lk->st)
		txn_set_user(lk->st, NULL, NULL);
	msg_unref(lk->req);
	free(lk);
}

static void on_lookup_cancel(struct txn *st, void *arg)
{
	struct lookup *lk = arg;
	lk->cancelled = true;
	txn_respond_status(st, 487, "Request Terminated");
}

static void on_lookup_server_gone(struct txn *st, void *arg)
{
	struct lookup *lk = arg;
	lk->st = NULL;
}

static const struct txn_user lookup_user = {
	.on_cancel = on_lookup_cancel,
	.on_gone = on_lookup_server_gone,
};

static void forward_ack(msg_t *ack, struct flow *in, struct flow *out);

static void on_lookup_done(void *arg, const struct resolve_target *t, int n, uint32_t ttl)
{
	struct lookup *lk = arg;
	struct flow *in = flow_find(lk->in_flow);
	sip_t *sip = sip_object(lk->req);
	const char *host = sip->sip_route ? sip->sip_route->r_url->url_host
					  : sip->sip_request->rq_url->url_host;
	if (n == 0) {
		metrics_inc(M_PROXY_NEXT_HOP_UNRESOLVED);
		log_notice("proxy: %s: %s has no address (RFC 3263)%s", sip->sip_request->rq_method_name,
			   host, lk->ack ? ", ACK dropped" : "");
	}
	if (lk->ack) {
		struct transport_dest hop = {.addr = n ? t[0].addr : (struct sockaddr_storage){0},
				       .proto = n ? t[0].proto : PROTO_UDP};
		struct flow *out = n && in ? transport_flow_for(&hop) : NULL;
		if (out)
			forward_ack(lk->req, in, out);
		lookup_free(lk);
		return;
	}
	if (!lk->st || lk->cancelled) {
		lookup_free(lk);
		return;
	}
	struct txn *st = lk->st;
	if (n == 0 || !in) {
		lookup_free(lk);
		reply(st, NULL, n ? 480 : 404, n ? "Temporarily Unavailable" : "No Route To Domain");
		return;
	}
	struct upstream *dests = calloc((size_t)n, sizeof(*dests));
	char *name = strdup(host);
	msg_t *req = msg_ref(lk->req);
	lookup_free(lk);
	struct proxy_ctx *ctx = dests && name ? ctx_new(st, req, in, false) : NULL;
	if (!ctx) {
		free(dests);
		free(name);
		msg_unref(req);
		reply(st, NULL, 500, "Server Internal Error");
		return;
	}
	for (int i = 0; i < n; i++)
		dests[i] = (struct upstream){.uri = name, .dest = {.addr = t[i].addr, .proto = t[i].proto}};
	ctx->dests = dests;
	ctx->n_dests = n;
	msg_unref(req);
	log_info("proxy: %s to %s: %d address%s found (RFC 3263)", sip_object(ctx->req)->sip_request->rq_method_name,
		 name, n, n == 1 ? "" : "es");
	struct target first = {.dest = dests[0].dest, .upstream = true};
	ctx_start(ctx, &first, 1, in);
}

/** Look up url's host (RFC 3263) and forward req (or the ACK) there once it is known: 0 when
 *  the lookup started, else -1 (nothing was answered). */
static int lookup_next_hop(struct txn *st, msg_t *req, const url_t *url, struct flow *in, bool ack)
{
	if (resolve_init(P_cfg->resolv_conf) != 0)
		return -1;
	struct lookup *lk = calloc(1, sizeof(*lk));
	if (!lk)
		return -1;
	lk->st = st;
	lk->req = msg_ref(req);
	lk->in_flow = in->id;
	lk->ack = ack;
	lk->next = lookups;
	if (lookups)
		lookups->prev = lk;
	lookups = lk;
	if (st)
		txn_set_user(st, &lookup_user, lk);
	metrics_inc(M_PROXY_NEXT_HOP_LOOKUPS);
	if (resolve_start(url, on_lookup_done, lk) != 0) {
		lookup_free(lk);
		return -1;
	}
	return 0;
}

/* A next hop worth looking up: a sip/sips URI with a host name (not an address, not maddr, not
 * a WebSocket client's `.invalid` name, which RFC 6761 keeps out of DNS) and a transport
 * sipedge can open. */
static bool is_named_hop(const url_t *url)
{
	if (!url || !url->url_host || (url->url_type != url_sip && url->url_type != url_sips) ||
	    host_is_ip_address(url->url_host) || url_has_param(url, "maddr"))
		return false;
	size_t len = strlen(url->url_host);
	if (len >= 8 && strcasecmp(url->url_host + len - 8, ".invalid") == 0)
		return false;
	char transport[16] = "";
	if (url->url_params)
		url_param(url->url_params, "transport", transport, sizeof(transport));
	return !transport[0] || strcasecmp(transport, "udp") == 0 || strcasecmp(transport, "tcp") == 0 ||
	       strcasecmp(transport, "tls") == 0;
}

/** The URI the next hop comes from (§16.6 step 7 / §16.12): the first Route, else the
 *  Request-URI. */
static const url_t *next_hop_url(sip_t *sip)
{
	return sip->sip_route ? sip->sip_route->r_url : sip->sip_request->rq_url;
}

/** §16.3 validation; true when req has been answered (483, 420, 482). */
static bool refuse_invalid(struct txn *st, msg_t *req, sip_t *sip)
{
	if (sip->sip_max_forwards && sip->sip_max_forwards->mf_count == 0) {
		reply(st, req, 483, "Too Many Hops");
		return true;
	}
	if (sip->sip_proxy_require) {
		msg_t *resp = sipmsg_response(req, 420, "Bad Extension");
		if (resp) {
			sip_t *rs = sip_object(resp);
			for (int i = 0; sip->sip_proxy_require->k_items && sip->sip_proxy_require->k_items[i]; i++)
				sip_add_make(resp, rs, sip_unsupported_class, sip->sip_proxy_require->k_items[i]);
			txn_respond(st, resp);
		}
		return true;
	}
	if (is_looping(sip)) {
		reply(st, req, 482, "Loop Detected");
		return true;
	}
	return false;
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
	reply(r->st, r->req, status, phrase);
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

static bool for_another_domain(const struct routing *r) { return P_cfg->route_foreign; }

/* In dialog to a GRUU of ours (RFC 5627 §7: it is retargeted like any): the Contact its
 * instance registered over flow_id, which the UA knows as its own (JsSIP answers 404 to a
 * temp-gruu Request-URI). NULL: the Request-URI stays. The caller frees it. */
static char *gruu_dialog_ruri(const url_t *ruri, uint64_t flow_id)
{
	if (edge_mode || !ruri || !self_is_our_domain(ruri->url_host))
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
	if (!n_upstreams) {
		metrics_inc(M_PROXY_UPSTREAM_UNAVAILABLE);
		return answer(r, 503, "Registrar Not Resolved");
	}
	return add_target(r, (struct target){.dest = upstreams[0].dest, .upstream = true});
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
	if (edge_mode || !self_is_our_domain(r->ruri->url_host))
		return ROUTE_PASS;
	const struct binding *bindings[MAX_BRANCHES];
	int nb = 0;
	bool temporary = false;
	enum gruu_verdict v = gruu_lookup(r->ruri, bindings, MAX_BRANCHES, &nb, &temporary);
	if (v == GRUU_NOT_ONE)
		return ROUTE_PASS;
	if (v != GRUU_FOUND && P_cfg->route_unregistered && n_upstreams && !from_upstream(r->in))
		return add_target(r, (struct target){.dest = upstreams[0].dest, .upstream = true});
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
	bool upstream_knows = P_cfg->route_unregistered || edge_mode;
	if (nb == 0 && nr == 0 && upstream_knows && n_upstreams && !from_upstream(r->in))
		/* Not registered here: the network may know the user (a PBX extension). */
		return add_target(r, (struct target){.dest = upstreams[0].dest, .upstream = true});
	if (nb == 0 && nr == 0)
		return state == AOR_UNKNOWN ? answer(r, 404, "Not Found")
					    : answer(r, 480, "Temporarily Unavailable");
	add_binding_targets(r, bindings, nb);
	return add_remote_targets(r, remote, nr);
}

/* Another domain, the upstreams configured but none resolved yet. */
static enum route_outcome route_upstream_unresolved(struct routing *r)
{
	if (!for_another_domain(r) || !n_cfgs || n_upstreams)
		return ROUTE_PASS;
	metrics_inc(M_PROXY_UPSTREAM_UNAVAILABLE);
	return answer(r, 503, "Upstream Not Resolved");
}

/* Another domain (the policy has allowed the relay): the first upstream, then the next ones
 * on failure. */
static enum route_outcome route_upstream(struct routing *r)
{
	if (!for_another_domain(r) || !n_upstreams || from_upstream(r->in))
		return ROUTE_PASS;
	return add_target(r, (struct target){.dest = upstreams[0].dest, .upstream = true});
}

/* No upstream is configured: the Request-URI's own address (§16.5)... */
static enum route_outcome route_request_uri(struct routing *r)
{
	struct transport_dest hop;
	if (!for_another_domain(r) || n_cfgs || next_hop(r->sip, &hop) != 0)
		return ROUTE_PASS;
	return add_target(r, (struct target){.dest = hop});
}

/* ...or the servers its domain names (RFC 3263). */
static enum route_outcome route_request_uri_named(struct routing *r)
{
	if (!for_another_domain(r) || n_cfgs || !is_named_hop(r->ruri))
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
	reply(r->st, r->req, 403, "Relaying Denied");
	return true;
}

/** §16.10: answer the CANCEL, then cancel the INVITE's branches. */
static void proxy_cancel(struct txn *st, msg_t *req, sip_t *sip)
{
	struct txn *inv = txn_server_find_invite(sip);
	if (!inv) {
		reply(st, req, 481, "Call/Transaction Does Not Exist");
		return;
	}
	txn_respond_status(st, 200, "OK");
	txn_server_cancel(inv);
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
		reply(r->st, r->req, 480, "Temporarily Unavailable");
		return true;
	}
	if (flow_failed && !r->route_flow) {
		/* RFC 5626 §5.3: the registrar may try the user's other flows. */
		metrics_inc(M_EDGE_FLOW_FAILED);
		reply(r->st, r->req, 430, "Flow Failed");
		return true;
	}
	if (r->route_flow && !r->sip->sip_to->a_tag && edge_mode) {
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
		reply(r->st, r->req, 500, "Server Internal Error");
		return;
	}
	if (r->edge_register) {
		metrics_inc(M_EDGE_REGISTERS);
		log_info("edge: REGISTER " URL_PRINT_FORMAT " from flow %llu %s to the registrar %s",
			 URL_PRINT_ARGS(r->sip->sip_to->a_url), (unsigned long long)r->in->id, r->in->peer_text,
			 upstreams[0].uri);
	}
	if (r->sip->sip_request->rq_method == sip_method_bye)
		media_call_end(r->sip, "BYE");
	ctx_start(ctx, r->targets, r->n, r->in);
}

void proxy_request(struct txn *st, msg_t *req, sip_t *sip, struct flow *in)
{
	if (sip->sip_request->rq_method == sip_method_cancel) {
		proxy_cancel(st, req, sip);
		return;
	}
	if (refuse_invalid(st, req, sip))
		return;
	dialogs_request(sip); /* a BYE ends a call in the operator's list; anything else refreshes it */
	struct routing r = {.st = st, .req = req, .sip = sip, .in = in};
	/* Edge mode: a REGISTER for us goes to the registrar upstream (RFC 3327). */
	r.edge_register = edge_mode && sip->sip_request->rq_method == sip_method_register && !sip->sip_route &&
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

void proxy_ack(msg_t *ack, sip_t *sip, struct flow *in)
{
	/* An ACK for a 2xx is its own end-to-end transaction: forward statelessly by the route set. */
	if (sip->sip_max_forwards && sip->sip_max_forwards->mf_count == 0)
		return;
	bool had_ours = false, flow_failed = false;
	uint64_t target = preprocess_routes(ack, sip, in, &had_ours, &flow_failed);
	struct flow *out = target ? flow_find(target) : NULL;
	struct transport_dest hop;
	if (!out && !target && next_hop(sip, &hop) == 0)
		out = transport_flow_for(&hop);
	if (!out && !target && !self_is_us(sip->sip_request->rq_url) &&
	    is_named_hop(next_hop_url(sip)) && lookup_next_hop(NULL, ack, next_hop_url(sip), in, true) == 0)
		return; /* forwarded once the name is looked up */
	if (!out) {
		log_info("proxy: ACK from %s has no live route, dropped", in->peer_text);
		return;
	}
	if (media_hold_ack(ack, in, out))
		return;
	forward_ack(ack, in, out);
}

static void forward_ack(msg_t *ack, struct flow *in, struct flow *out)
{
	char *ruri = gruu_dialog_ruri(sip_object(ack)->sip_request->rq_url, out->id);
	msg_t *fwd = make_forward(ack, ruri, in, out, false, NULL);
	free(ruri);
	if (!fwd)
		return;
	if (transport_send_msg(out, fwd) == 0)
		metrics_inc(M_PROXY_FORWARDED);
	msg_destroy(fwd);
}
