/** @file proxy.c  The stateful proxy core (RFC 3261 §16): its settings, start and stop, the
 *  entry points for requests and ACKs, and the life of a proxied request.
 *
 * One proxy context per proxied request: the server transaction it answers and one branch
 * (client transaction) per target, with Timer C (§16.8), upstream failover and CANCEL (§16.10);
 * the responses that go up (§16.7). Targets for our domains come from the location service and
 * are reached over the flow their binding registered on; in-dialog requests find their flow
 * through the flow token we put into Record-Route. The context lives until its server
 * transaction and every branch are gone. The other parts: proxy_internal.h.
 */
#include "proxy/proxy.h"
#include "proxy/proxy_internal.h"
#include "proxy/dialogs.h"
#include "base/config.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/metrics.h"
#include "base/sipmsg.h"
#include "cluster/cluster.h"
#include "sip/self.h"
#include "sip/resolve.h"
#include "sip/txn.h"
#include "media/media.h"
#include "transport/flow.h"
#include "transport/transport.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct proxy_config *P_cfg;
static bool edge_mode; /* registrar.mode = "edge" */

#define CANCEL_GRACE_MS 32000 /* 64*T1: how long a CANCELled branch may take to answer */

static struct proxy_ctx *contexts;
static const struct txn_user server_user, client_user;
static bool upstream_failover(struct branch *b, int status, msg_t *resp);
static bool start_next_upstream(struct proxy_ctx *ctx);

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

int proxy_init(const struct proxy_config *cfg, bool edge)
{
	P_cfg = cfg;
	edge_mode = edge;
	dialogs_init(&cfg->dialog_timeout);
	return upstreams_start();
}

int proxy_reload(void)
{
	/* Branches under way keep the destination they were sent to; only the failover of a
	 * request still looking for an upstream reads the new list. */
	return upstreams_configure();
}

const struct proxy_config *proxy_cfg(void) { return P_cfg; }
bool proxy_edge(void) { return edge_mode; }

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

void ctx_release(struct proxy_ctx *ctx)
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
	upstreams_shutdown();
	media_acks_shutdown();
	lookups_shutdown();
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
void send_best(struct proxy_ctx *ctx)
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
void offer_best(struct proxy_ctx *ctx, int status, msg_t *resp)
{
	if (!better(status, ctx->best_status))
		return;
	if (ctx->best)
		msg_destroy(ctx->best);
	ctx->best = resp ? response_for_upstream(resp) : NULL;
	ctx->best_status = status;
}

/* ---- branches: finals, failover, Timer C (§16.8) ---- */

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

/* The next hops a context fails over along: its own, or routing.upstreams. */
static int ctx_n_dests(const struct proxy_ctx *ctx) { return ctx->dests ? ctx->n_dests : upstreams_count(); }

static const struct upstream *ctx_dest(const struct proxy_ctx *ctx, int i)
{
	return ctx->dests ? &ctx->dests[i] : upstream_at(i);
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

/* ---- branches out (§16.6) ---- */

/** A branch that could not even start: an upstream fails over, others just count. */
static void branch_fail_now(struct branch *b, int status)
{
	if (upstream_failover(b, status, NULL))
		return;
	b->status = status;
	offer_best(b->ctx, status, NULL);
}

static void add_branch(struct proxy_ctx *ctx, const struct target *t, struct flow *in)
{
	if (ctx->n_branches >= MAX_BRANCHES)
		return;
	struct branch *b = &ctx->branch[ctx->n_branches++];
	b->ctx = ctx;
	b->outbound = t->outbound;
	b->upstream = t->upstream;
	b->cluster_hop = t->node != NULL;
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
void branch_launch(struct proxy_ctx *ctx, struct branch *b, msg_t *fwd, struct flow *out)
{
	struct transport_dest dest = {.flow_id = out->id, .proto = out->proto, .local = out->local};
	/* Signed last, when the request is final (rtpengine may have rewritten its SDP): the
	 * signature covers the body. */
	if (b->cluster_hop && cluster_sign(fwd) != 0) {
		msg_destroy(fwd);
		b->status = 500;
		offer_best(ctx, 500, NULL);
		return;
	}
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

/* ---- contexts and the entry points ---- */

void proxy_reply(struct txn *st, msg_t *req, int status, const char *reason)
{
	if (status >= 400)
		log_info("proxy: %d %s", status, reason ? reason : "");
	txn_respond_status(st, status, reason);
}

/** A context for a request about to be forwarded; it takes over the server transaction. */
struct proxy_ctx *ctx_new(struct txn *st, msg_t *req, struct flow *in, bool edge_register)
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
void ctx_start(struct proxy_ctx *ctx, const struct target *targets, int n, struct flow *in)
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

/** §16.3 validation; true when req has been answered (483, 420, 482). */
static bool refuse_invalid(struct txn *st, msg_t *req, sip_t *sip)
{
	if (sip->sip_max_forwards && sip->sip_max_forwards->mf_count == 0) {
		proxy_reply(st, req, 483, "Too Many Hops");
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
		proxy_reply(st, req, 482, "Loop Detected");
		return true;
	}
	return false;
}

/** §16.10: answer the CANCEL, then cancel the INVITE's branches. */
static void proxy_cancel(struct txn *st, msg_t *req, sip_t *sip)
{
	struct txn *inv = txn_server_find_invite(sip);
	if (!inv) {
		proxy_reply(st, req, 481, "Call/Transaction Does Not Exist");
		return;
	}
	txn_respond_status(st, 200, "OK");
	txn_server_cancel(inv);
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
	route_request(st, req, sip, in);
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
