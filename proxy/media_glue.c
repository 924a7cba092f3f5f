/** @file media_glue.c  The proxy's calls into media/ (media/media.h): a branch's request or a
 *  response for the caller held while rtpengine rewrites its SDP, an ACK with SDP likewise, the
 *  leg of a failed branch ended, and the ACK and BYE to a callee whose answer could not be
 *  anchored.
 */
#include "proxy/proxy_internal.h"
#include "proxy/dialogs.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/sipmsg.h"
#include "media/media.h"
#include "sip/txn.h"
#include "transport/flow.h"
#include "transport/transport.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A branch of an initial INVITE ended without a 2xx: its leg in rtpengine goes. */
void branch_media_end(struct branch *b, int status)
{
	struct proxy_ctx *ctx = b->ctx;
	if (status >= 300 && ctx->invite && b->via_branch[0] && !sip_object(ctx->req)->sip_to->a_tag) {
		char why[32];
		snprintf(why, sizeof(why), "%d", status);
		media_branch_end(sip_object(ctx->req), b->via_branch, why);
	}
}

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

void media_waits_cut(struct proxy_ctx *ctx)
{
	while (ctx->media_waits) {
		/* Cancelling a probe ends what waited on it (503), which may be other waits of ctx:
		 * they unlink themselves, this one stays for us to free. */
		struct media_wait *w = ctx->media_waits;
		media_op_cancel(w->op);
		media_wait_free(w);
		ctx->open--;
	}
}

static const struct txn_user bye_user; /* our own BYE: its response ends it, nothing else */

/* The ACK for a callee's 2xx (resp, our Via removed) that we end ourselves, and with bye the BYE
 * after it (Reason: 503): as the caller would send them, along the route set beyond us, from
 * our address on the branch's flow. */
/* An in-dialog request toward the callee of resp (its 2xx): its Contact as the Request-URI, the
 * route set beyond us (the Record-Route entries above ours, nearest first), the caller's From,
 * the callee's To, built with sofia-sip like the transaction layer's ACK and CANCEL. */
static msg_t *callee_request(sip_t *qs, sip_t *rs, sip_method_t method, const char *name, uint32_t cseq)
{
	msg_t *m = msg_create(sipmsg_mclass(), 0);
	if (!m)
		return NULL;
	sip_t *ms = sip_object(m);
	su_home_t *home = msg_home(m);
	const url_t *target = rs->sip_contact ? rs->sip_contact->m_url : qs->sip_request->rq_url;
	int err = msg_header_insert(m, (msg_pub_t *)ms,
				    (msg_header_t *)sip_request_create(home, method, name, (url_string_t *)target, NULL));
	const sip_record_route_t *beyond[MAX_BRANCHES];
	int n = 0;
	uint64_t id;
	for (const sip_record_route_t *rr = rs->sip_record_route; rr && n < MAX_BRANCHES; rr = rr->r_next) {
		if (route_is_ours(rr->r_url, &id))
			break;
		beyond[n++] = rr;
	}
	for (int i = n - 1; i >= 0; i--) /* a response lists them farthest first */
		err |= msg_header_insert(m, (msg_pub_t *)ms, (msg_header_t *)sip_route_create(home, beyond[i]->r_url, NULL));
	err |= sip_add_make(m, ms, sip_max_forwards_class, "70");
	err |= sip_add_dup(m, ms, (sip_header_t *)qs->sip_from);
	err |= sip_add_dup(m, ms, (sip_header_t *)rs->sip_to);
	err |= sip_add_dup(m, ms, (sip_header_t *)rs->sip_call_id);
	err |= msg_header_insert(m, (msg_pub_t *)ms, (msg_header_t *)sip_cseq_create(home, cseq, method, name));
	if (err) {
		msg_destroy(m);
		return NULL;
	}
	return m;
}

/* The ACK for a callee's 2xx (resp, our Via removed) that we end ourselves, and with bye the BYE
 * after it (Reason: 503): as the caller would send them, along the route set beyond us, from
 * our address on the branch's flow. */
void end_callee_dialog(struct proxy_ctx *ctx, struct branch *b, msg_t *resp, bool bye)
{
	struct flow *out = flow_find(b->out_flow);
	sip_t *rs = sip_object(resp), *qs = sip_object(ctx->req);
	if (!out || !rs->sip_to || !rs->sip_call_id || !qs->sip_from || !qs->sip_cseq)
		return;
	for (int i = 0; i < (bye ? 2 : 1); i++) {
		msg_t *m = i ? callee_request(qs, rs, sip_method_bye, "BYE", qs->sip_cseq->cs_seq + 1)
			     : callee_request(qs, rs, sip_method_ack, "ACK", qs->sip_cseq->cs_seq);
		sip_t *ms = m ? sip_object(m) : NULL;
		int err = !ms;
		if (ms && i)
			err |= sip_add_make(m, ms, sip_reason_class, "SIP;cause=503;text=\"Media Relay Unavailable\"");
		if (ms)
			err |= msg_header_insert(m, (msg_pub_t *)ms, (msg_header_t *)make_via(msg_home(m), ms, out));
		if (err) {
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
void respond_up(struct proxy_ctx *ctx, struct branch *b, msg_t *up)
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
bool media_hold_branch(struct proxy_ctx *ctx, struct branch *b, msg_t *fwd, struct flow *in,
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
static struct ack_wait *ack_waits;

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

static void on_media_ack(void *arg, int status)
{
	struct ack_wait *w = arg;
	struct flow *in = flow_find(w->in), *out = flow_find(w->out);
	if (in && out)
		forward_ack(w->ack, in, out);
	ack_wait_free(w, false);
}

bool media_hold_ack(msg_t *ack, struct flow *in, struct flow *out)
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

void media_acks_shutdown(void)
{
	while (ack_waits)
		ack_wait_free(ack_waits, true);
}
