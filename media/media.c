/** @file media.c  Offer, answer and delete in rtpengine for the calls that cross the proxy
 *  (media.h). A call is known by its Call-ID; it remembers which rtpengine took its offer (the
 *  rest of the call must reach the same one), the caller's tag, the branches of its initial
 *  INVITE (each its own offer in rtpengine, told apart by NG via-branch: rtpengine makes one
 *  "other side" per via-branch of the same from-tag), the callee whose 2xx took the call, both
 *  legs' flows and the state of the offer/answer exchange in progress. */
#include "media/media.h"
#include "media/rtpengine.h"
#include "base/log.h"
#include "base/metrics.h"
#include "transport/flow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_LEGS 16

/* One branch of the initial INVITE: its own offer in rtpengine, told apart by via-branch. */
struct leg {
	char branch[96]; /* the proxy's Via branch toward this callee */
	uint64_t flow;
	bool gone; /* its branch ended, or another one answered: deleted (or left to the call's end) */
};

struct call {
	char *call_id;
	char caller_tag[128];
	char callee_tag[128];  /* the To tag of the 2xx that took the call; "" before */
	uint32_t invite_cseq;  /* the initial INVITE's */
	int engine;	       /* the rtpengine holding the session; -1 before the first offer's answer */
	bool probing;	       /* engine < 0 and a request is out finding one: others wait for it */
	uint64_t flow[2];      /* caller's flow, and the answering callee's (0 before the 2xx) */
	struct leg legs[MAX_LEGS];
	int n_legs;
	bool offer_pending;    /* an offer went out and its answer has not come back */
	bool offer_in_request; /* it was in a request (else in a 2xx: the answer is in the ACK) */
	uint32_t offer_cseq;
	int refs;   /* the table's, plus one per operation in flight */
	bool ended; /* deleted: operations in flight find out when they complete */
	struct call *next, *prev;
};

struct media_op {
	struct call *call;
	struct rtpengine_req *req;
	msg_t *msg;
	bool offer;
	bool probe;  /* the request finding the call's rtpengine */
	bool queued; /* waits for the probe: dict is sent to the rtpengine it finds */
	char *dict;
	size_t len;
	int leg;     /* the leg (via-branch) it belongs to, -1 */
	bool wins;   /* a 2xx to the initial INVITE: its leg takes the call, the others go */
	media_cont_fn cont;
	void *arg;
	struct media_op *next, *prev;
};

static struct call *calls;
static struct media_op *ops;
static int n_calls;
static const struct media_config *config;
static bool stopping; /* shutdown: deletes go out, nobody waits for their answers */

static bool flow_is_webrtc(uint64_t id)
{
	struct flow *f = flow_find(id);
	return f && (f->proto == PROTO_WS || f->proto == PROTO_WSS);
}

static struct call *call_find(const char *call_id)
{
	for (struct call *c = calls; c; c = c->next)
		if (!c->ended && strcmp(c->call_id, call_id) == 0)
			return c;
	return NULL;
}

static void call_unref(struct call *c)
{
	if (--c->refs > 0)
		return;
	free(c->call_id);
	free(c);
}

static void call_unlink(struct call *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		calls = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->ended = true;
	n_calls--;
	metrics_set(M_MEDIA_SESSIONS, n_calls);
	call_unref(c);
}

/* A delete in flight, for its log line; at shutdown it is cancelled and freed. */
struct pending_delete {
	char *call_id;
	struct rtpengine_req *req;
	struct pending_delete *next, *prev;
};
static struct pending_delete *deletes;

static void pending_delete_free(struct pending_delete *d)
{
	if (d->prev)
		d->prev->next = d->next;
	else
		deletes = d->next;
	if (d->next)
		d->next->prev = d->prev;
	free(d->call_id);
	free(d);
}

static void on_deleted(void *arg, int index, enum ng_status status, const struct bencode *reply)
{
	struct pending_delete *d = arg;
	char reason[128] = "";
	if (!d)
		return;
	const char *call_id = d->call_id;
	if (status != NG_REPLY)
		log_warn("media: call %s: rtpengine %s did not answer delete", call_id, rtpengine_name(index));
	else if (!bencode_is_str(bencode_get(reply, "result"), "ok"))
		log_warn("media: call %s: rtpengine %s refused delete: %s", call_id, rtpengine_name(index),
			 bencode_get_str(reply, "error-reason", reason, sizeof(reason)) ? reason : "error");
	pending_delete_free(d);
}

/* An NG delete of the call, or of one leg (via_branch) of it, in its rtpengine. */
static void send_delete(struct call *c, const char *via_branch)
{
	struct bencode_writer w;
	bencode_w_init(&w);
	bencode_w_dict(&w);
	bencode_w_kv(&w, "command", "delete");
	bencode_w_kv(&w, "call-id", c->call_id);
	bencode_w_kv(&w, "from-tag", c->caller_tag);
	if (via_branch)
		bencode_w_kv(&w, "via-branch", via_branch);
	bencode_w_end(&w);
	struct pending_delete *d = stopping ? NULL : calloc(1, sizeof(*d));
	if (d && !(d->call_id = strdup(c->call_id))) {
		free(d);
		d = NULL;
	}
	if (d) {
		d->next = deletes;
		if (deletes)
			deletes->prev = d;
		deletes = d;
	}
	struct rtpengine_req *req = NULL;
	if (bencode_w_finish(&w) == 0 && (d || stopping))
		req = rtpengine_request(c->engine, "delete", w.buf, w.len, on_deleted, d);
	if (d && !req)
		pending_delete_free(d);
	else if (d)
		d->req = req;
	bencode_w_free(&w);
}

/* Delete c's session in its rtpengine and forget the call. */
static void call_delete(struct call *c, const char *why)
{
	if (c->engine >= 0) {
		send_delete(c, NULL);
		log_info("media: call %s ends (%s), session deleted in %s", c->call_id, why,
			 rtpengine_name(c->engine));
	}
	call_unlink(c);
}

static int leg_find(const struct call *c, const char *branch)
{
	for (int i = 0; branch && i < c->n_legs; i++)
		if (strcmp(c->legs[i].branch, branch) == 0)
			return i;
	return -1;
}

static bool other_live_leg(const struct call *c, int except)
{
	for (int i = 0; i < c->n_legs; i++)
		if (i != except && !c->legs[i].gone)
			return true;
	return false;
}

/* Leg i will not take the call: its own offer in rtpengine goes. The last live leg of a call
 * nobody has answered stays: the end of the INVITE deletes the whole call (or a failover branch
 * comes after it). */
static void leg_end(struct call *c, int i, const char *why)
{
	if (i < 0 || c->legs[i].gone)
		return;
	c->legs[i].gone = true;
	if (c->engine < 0 || (!c->callee_tag[0] && !other_live_leg(c, i)))
		return;
	send_delete(c, c->legs[i].branch);
	log_info("media: call %s: branch %s ends (%s), its leg deleted in %s", c->call_id, c->legs[i].branch,
		 why, rtpengine_name(c->engine));
}

/* A message of another dialog than the one that took the call (a forked INVITE that a second
 * callee answered too): rtpengine knows only the first. */
static bool other_dialog(const struct call *c, sip_t *sip)
{
	if (!c->callee_tag[0])
		return false;
	const char *ft = sip->sip_from ? sip->sip_from->a_tag : NULL, *tt = sip->sip_to ? sip->sip_to->a_tag : NULL;
	return !(ft && strcmp(ft, c->callee_tag) == 0) && !(tt && strcmp(tt, c->callee_tag) == 0);
}

/* ---- SDP in and out of a message ---- */

static bool has_sdp(sip_t *sip)
{
	return sip->sip_payload && sip->sip_payload->pl_len > 0 && sip->sip_content_type &&
	       sip->sip_content_type->c_type && strcasecmp(sip->sip_content_type->c_type, "application/sdp") == 0;
}

static int set_sdp(msg_t *msg, const char *sdp, size_t len)
{
	sip_t *sip = sip_object(msg);
	su_home_t *home = msg_home(msg);
	sip_payload_t *pl = sip_payload_create(home, sdp, (isize_t)len);
	sip_content_length_t *cl = sip_content_length_create(home, (uint32_t)len);
	if (!pl || !cl)
		return -1;
	if (msg_header_replace(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_payload, (msg_header_t *)pl) != 0)
		return -1;
	if (sip->sip_content_length)
		return msg_header_replace(msg, (msg_pub_t *)sip, (msg_header_t *)sip->sip_content_length,
					  (msg_header_t *)cl);
	return msg_header_insert(msg, (msg_pub_t *)sip, (msg_header_t *)cl);
}

/* The NG flags that make the SDP right for the leg it goes to. */
static void leg_flags(struct bencode_writer *w, bool webrtc, bool offer)
{
	bencode_w_kv(w, "ICE", webrtc ? "force" : "remove");
	/* DTLS: rtpengine offers a browser the passive role. In an answer to a browser's offer
	 * (actpass) it keeps the role it took when that offer came, active: it may already have sent
	 * its ClientHello once ICE was through, and an answer saying "passive" then leaves both ends
	 * waiting to be the client. Toward a plain leg no flag: RTP/AVP asks for no encryption
	 * there, and "DTLS=off" in an offer from a browser would make rtpengine refuse the browser's
	 * own DTLS-SRTP. Either mistake leaves the browser's leg without keys and no media flows. */
	if (webrtc && offer)
		bencode_w_kv(w, "DTLS", "passive");
	bencode_w_kv(w, "transport-protocol", webrtc ? "UDP/TLS/RTP/SAVPF" : "RTP/AVP");
	bencode_w_cstr(w, "rtcp-mux");
	bencode_w_list(w);
	bencode_w_cstr(w, webrtc ? "offer" : "demux");
	bencode_w_end(w);
	bencode_w_cstr(w, "SDES");
	bencode_w_list(w);
	bencode_w_cstr(w, "off");
	bencode_w_end(w);
	bencode_w_cstr(w, "replace");
	bencode_w_list(w);
	bencode_w_cstr(w, "origin");
	bencode_w_cstr(w, "session-connection");
	bencode_w_end(w);
	bencode_w_cstr(w, "flags");
	bencode_w_list(w);
	bencode_w_cstr(w, "trust-address");
	if (webrtc)
		bencode_w_cstr(w, "generate-mid");
	bencode_w_end(w);
}

static void op_unlink(struct media_op *op)
{
	if (op->prev)
		op->prev->next = op->next;
	else
		ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
	msg_unref(op->msg);
	call_unref(op->call);
	free(op->dict);
	free(op);
}

static bool refuse(void)
{
	return !config || strcmp(config->on_failure, "refuse") == 0;
}

static void on_reply(void *arg, int index, enum ng_status status, const struct bencode *reply);

static bool ops_queued(const struct call *c)
{
	for (const struct media_op *op = ops; op; op = op->next)
		if (op->queued && op->call == c)
			return true;
	return false;
}

/* The probe found the call's rtpengine (or failed: result, the call deleted): with send, the
 * requests that waited for it go there now, or end as it did; without (the probe was cancelled,
 * no rtpengine found), they all end with result. */
static void flush_queued(struct call *c, int result, bool send)
{
	for (;;) {
		struct media_op *op = ops;
		while (op && !(op->queued && op->call == c))
			op = op->next;
		if (!op)
			return;
		op->queued = false;
		if (send && !c->ended) {
			op->req = rtpengine_request(c->engine, op->offer ? "offer" : "answer", op->dict, op->len,
						    on_reply, op);
			if (op->req)
				continue;
			log_warn("media: call %s: rtpengine %s unreachable for a waiting %s", c->call_id,
				 rtpengine_name(c->engine), op->offer ? "offer" : "answer");
			result = 503;
		}
		media_cont_fn cont = op->cont;
		void *cont_arg = op->arg;
		op_unlink(op);
		cont(cont_arg, result);
	}
}

static void on_reply(void *arg, int index, enum ng_status status, const struct bencode *reply)
{
	struct media_op *op = arg;
	struct call *c = op->call;
	op->req = NULL;
	c->refs++; /* the call outlives op for the flush */
	bool probe = op->probe;
	if (probe)
		c->probing = false;
	const char *what = op->offer ? "offer" : "answer";
	int result = 0;
	char reason[160] = "";
	const struct bencode *sdp = status == NG_REPLY ? bencode_get(reply, "sdp") : NULL;
	bool ok = status == NG_REPLY && bencode_is_str(bencode_get(reply, "result"), "ok") && sdp &&
		  sdp->type == BENCODE_STR;
	if (ok) {
		if (!c->ended && c->engine < 0) {
			c->engine = index;
			metrics_inc(M_MEDIA_ANCHORED);
			log_info("media: call %s anchored in rtpengine %s", c->call_id, rtpengine_name(index));
		}
		if (set_sdp(op->msg, sdp->s, sdp->len) != 0)
			result = 500;
		if (op->wins && !c->ended)
			for (int i = 0; i < c->n_legs; i++)
				if (i != op->leg)
					leg_end(c, i, "another branch answered");
	} else {
		if (status == NG_REPLY)
			snprintf(reason, sizeof(reason), "%s",
				 bencode_get_str(reply, "error-reason", reason, sizeof(reason)) ? reason : "error");
		else
			snprintf(reason, sizeof(reason), "no answer");
		bool branch_only = !c->ended && op->offer && op->leg >= 0 && c->engine >= 0 &&
				   !c->callee_tag[0] && other_live_leg(c, op->leg);
		if (branch_only) {
			/* One branch of a forked call: that branch fails, the others go on anchored (a
			 * call cannot be anchored toward some callees and not others). */
			log_warn("media: call %s: rtpengine %s failed the offer for branch %s (%s): 503 for that branch",
				 c->call_id, rtpengine_name(index), c->legs[op->leg].branch, reason);
			c->legs[op->leg].gone = true;
			result = 503;
		} else if (refuse()) {
			metrics_inc(M_MEDIA_REFUSED);
			log_warn("media: call %s: rtpengine %s failed the %s (%s): 503", c->call_id,
				 rtpengine_name(index), what, reason);
			result = 503;
		} else {
			metrics_inc(M_MEDIA_UNANCHORED);
			log_warn("media: call %s: rtpengine %s failed the %s (%s): going on unanchored",
				 c->call_id, rtpengine_name(index), what, reason);
		}
		if (!c->ended && !branch_only) {
			/* Unanchored from here on (or refused); what rtpengine may hold is deleted. */
			if (c->engine < 0)
				c->engine = index;
			call_delete(c, "rtpengine failure");
		}
	}
	media_cont_fn cont = op->cont;
	void *cont_arg = op->arg;
	op_unlink(op);
	cont(cont_arg, result);
	if (probe)
		flush_queued(c, result, true);
	call_unref(c);
}

int media_call_open(sip_t *sip, uint64_t from, const uint64_t *to, int n)
{
	if (!sip || !sip->sip_request || sip->sip_request->rq_method != sip_method_invite || !sip->sip_call_id ||
	    !sip->sip_cseq || !sip->sip_from || !sip->sip_to || sip->sip_to->a_tag)
		return 0;
	enum media_relay policy = rtpengine_relay();
	if (policy == MEDIA_RELAY_NEVER)
		return 0;
	if (call_find(sip->sip_call_id->i_id))
		return 1;
	/* Anchored when the policy wants it toward any of the callees: then toward all of them (a
	 * caller's media cannot go through rtpengine for one branch and around it for another). */
	bool wanted = false;
	for (int i = 0; i < n && !wanted; i++)
		wanted = to[i] && media_relay_wanted(policy, flow_is_webrtc(from), flow_is_webrtc(to[i]));
	if (!wanted)
		return 0;
	struct call *c = calloc(1, sizeof(*c));
	if (!c || !(c->call_id = strdup(sip->sip_call_id->i_id))) {
		free(c);
		return 0;
	}
	snprintf(c->caller_tag, sizeof(c->caller_tag), "%s", sip->sip_from->a_tag ? sip->sip_from->a_tag : "");
	c->invite_cseq = sip->sip_cseq->cs_seq;
	c->engine = -1;
	c->flow[0] = from;
	c->refs = 1;
	c->next = calls;
	if (calls)
		calls->prev = c;
	calls = c;
	n_calls++;
	metrics_set(M_MEDIA_SESSIONS, n_calls);
	return 1;
}

/* ---- media_sdp, step by step ---- */

/** The anchored call whose SDP msg carries (an INVITE, UPDATE or ACK, or a 1xx-2xx to one), or
 *  NULL: the message passes untouched. */
static struct call *sdp_call(sip_t *sip)
{
	if (!sip || !sip->sip_call_id || !sip->sip_cseq || !sip->sip_from || !sip->sip_to)
		return NULL;
	if (rtpengine_relay() == MEDIA_RELAY_NEVER)
		return NULL;
	sip_method_t method = sip->sip_cseq->cs_method;
	if (method != sip_method_invite && method != sip_method_update && method != sip_method_ack)
		return NULL;
	if (!sip->sip_request && (sip->sip_status->st_status >= 300 || sip->sip_status->st_status == 100))
		return NULL;
	struct call *c = call_find(sip->sip_call_id->i_id); /* opened by media_call_open, or not anchored */
	if (!c || !has_sdp(sip) || other_dialog(c, sip))
		return NULL;
	return c;
}

/** The leg of an initial INVITE's branch, known by the proxy's Via branch (a new one for a
 *  branch's request), or -1 for a message of no branch. */
static int sdp_leg(struct call *c, bool initial, bool request, const char *via_branch, uint64_t to)
{
	int leg = initial ? leg_find(c, via_branch) : -1;
	if (initial && via_branch && request && leg < 0 && c->n_legs < MAX_LEGS) {
		leg = c->n_legs++;
		snprintf(c->legs[leg].branch, sizeof(c->legs[leg].branch), "%s", via_branch);
		c->legs[leg].flow = to;
		c->legs[leg].gone = false;
	}
	return leg;
}

/** Offer or answer, the call's offer state moved on: an answer is the SDP that comes back in
 *  the exchange an offer opened. */
static bool sdp_is_offer(struct call *c, sip_t *sip)
{
	bool request = sip->sip_request != NULL;
	uint32_t cseq = sip->sip_cseq->cs_seq;
	bool answer = c->offer_pending && cseq == c->offer_cseq &&
		      ((c->offer_in_request && !request) ||
		       (!c->offer_in_request && sip->sip_cseq->cs_method == sip_method_ack));
	/* 183 then 200 with the same answer, or another branch's: an answer to the same offer again */
	bool repeat = !c->offer_pending && !request && c->offer_in_request && cseq == c->offer_cseq;
	bool offer = !answer && !repeat;
	if (offer) {
		c->offer_pending = true;
		c->offer_in_request = request;
		c->offer_cseq = cseq;
	} else {
		c->offer_pending = false;
	}
	return offer;
}

/** The call's flows and callee as msg shows them; true if it is the 2xx to the initial INVITE
 *  that takes the call for its callee (its dialog) from here on: a 2xx of another branch passes
 *  untouched, and the other branches' legs go. */
static bool sdp_take_dialog(struct call *c, sip_t *sip, bool initial, uint64_t from, uint64_t to)
{
	bool request = sip->sip_request != NULL;
	const char *to_tag = sip->sip_to->a_tag;
	bool wins = initial && !request && sip->sip_status->st_status < 300 && sip->sip_status->st_status >= 200 &&
		    to_tag;
	if (wins) {
		snprintf(c->callee_tag, sizeof(c->callee_tag), "%s", to_tag);
		c->flow[1] = from;
	}
	if (!initial && c->flow[1] == 0)
		c->flow[1] = request ? to : from;
	return wins;
}

/** The NG offer or answer for msg's SDP into w; 0, or -1 (out of memory). */
static int sdp_ng_request(struct bencode_writer *w, const struct call *c, sip_t *sip, bool offer, int leg,
			  uint64_t to)
{
	/* Tags: the offerer's is from-tag, the answerer's to-tag. Requests carry offers from their
	 * From (the answer in an ACK answers the To's offer in the 2xx); responses carry offers
	 * from their To. */
	const char *from_tag = sip->sip_from->a_tag, *to_tag = sip->sip_to->a_tag;
	bool offerer_is_from = sip->sip_request ? offer : !offer;
	const char *ng_from = offerer_is_from ? from_tag : to_tag, *ng_to = offerer_is_from ? to_tag : from_tag;
	bencode_w_init(w);
	bencode_w_dict(w);
	bencode_w_kv(w, "command", offer ? "offer" : "answer");
	bencode_w_kv(w, "call-id", sip->sip_call_id->i_id);
	bencode_w_kv(w, "from-tag", ng_from ? ng_from : "");
	if (ng_to)
		bencode_w_kv(w, "to-tag", ng_to);
	if (leg >= 0)
		bencode_w_kv(w, "via-branch", c->legs[leg].branch);
	bencode_w_cstr(w, "sdp");
	bencode_w_str(w, sip->sip_payload->pl_data, sip->sip_payload->pl_len);
	leg_flags(w, flow_is_webrtc(to), offer);
	bencode_w_end(w);
	if (bencode_w_finish(w) != 0) {
		bencode_w_free(w);
		return -1;
	}
	return 0;
}

/** A new operation on c for msg, in the list; NULL if out of memory. */
static struct media_op *op_new(struct call *c, msg_t *msg, bool offer, int leg, bool wins, media_cont_fn cont,
			       void *arg)
{
	struct media_op *op = calloc(1, sizeof(*op));
	if (!op)
		return NULL;
	op->call = c;
	c->refs++;
	op->msg = msg_ref(msg);
	op->offer = offer;
	op->leg = leg;
	op->wins = wins;
	op->cont = cont;
	op->arg = arg;
	op->next = ops;
	if (ops)
		ops->prev = op;
	ops = op;
	return op;
}

/** Another branch's offer is finding the call's rtpengine: op (taking the request in w) goes
 *  where it does. MEDIA_WAIT, or 500. */
static int op_queue(struct media_op *op, struct bencode_writer *w)
{
	op->dict = malloc(w->len);
	if (!op->dict) {
		bencode_w_free(w);
		op_unlink(op);
		return 500;
	}
	memcpy(op->dict, w->buf, w->len);
	op->len = w->len;
	op->queued = true;
	bencode_w_free(w);
	return MEDIA_WAIT;
}

/** Send op's request (in w, taken) to the call's rtpengine, or to find one (the probe).
 *  MEDIA_WAIT; or, no rtpengine to send it to, 503 or MEDIA_PASS as media.on_failure says. */
static int op_send(struct media_op *op, struct bencode_writer *w)
{
	struct call *c = op->call;
	bool offer = op->offer;
	op->probe = c->engine < 0;
	c->probing = op->probe;
	op->req = rtpengine_request(c->engine, offer ? "offer" : "answer", w->buf, w->len, on_reply, op);
	bencode_w_free(w);
	if (op->req)
		return MEDIA_WAIT;
	c->probing = false;
	op_unlink(op);
	log_warn("media: call %s: no rtpengine to send the %s to", c->call_id, offer ? "offer" : "answer");
	if (refuse()) {
		metrics_inc(M_MEDIA_REFUSED);
		call_delete(c, "no rtpengine");
		return 503;
	}
	metrics_inc(M_MEDIA_UNANCHORED);
	call_delete(c, "no rtpengine");
	return MEDIA_PASS;
}

int media_sdp(msg_t *msg, uint64_t from, uint64_t to, const char *via_branch, media_cont_fn cont, void *arg,
	      struct media_op **opp)
{
	sip_t *sip = sip_object(msg);
	struct call *c = sdp_call(sip);
	if (!c)
		return MEDIA_PASS;
	bool request = sip->sip_request != NULL;
	bool initial = sip->sip_cseq->cs_method == sip_method_invite && sip->sip_cseq->cs_seq == c->invite_cseq &&
		       !c->callee_tag[0];
	int leg = sdp_leg(c, initial, request, via_branch, to);
	if (leg >= 0 && c->legs[leg].gone)
		return MEDIA_PASS; /* a branch that lost: its session is gone */
	bool offer = sdp_is_offer(c, sip);
	bool wins = sdp_take_dialog(c, sip, initial, from, to);
	struct bencode_writer w;
	if (sdp_ng_request(&w, c, sip, offer, leg, to) != 0)
		return 500;
	struct media_op *op = op_new(c, msg, offer, leg, wins, cont, arg);
	if (!op) {
		bencode_w_free(&w);
		return 500;
	}
	int rc = c->engine < 0 && c->probing ? op_queue(op, &w) : op_send(op, &w);
	if (rc == MEDIA_WAIT)
		*opp = op;
	return rc;
}

void media_op_cancel(struct media_op *op)
{
	if (!op)
		return;
	struct call *c = op->call;
	bool probe = op->probe && op->req;
	if (probe)
		c->probing = false;
	rtpengine_cancel(op->req);
	c->refs++; /* the call outlives op for the flush */
	op_unlink(op);
	if (probe) {
		/* No rtpengine was found for the call: what waited for it ends as if none answered. */
		if (ops_queued(c))
			log_warn("media: call %s: the request finding its rtpengine was cancelled: 503 for those "
				 "waiting on it", c->call_id);
		flush_queued(c, 503, false);
	}
	call_unref(c);
}

void media_call_end(sip_t *sip, const char *why)
{
	if (!sip || !sip->sip_call_id)
		return;
	struct call *c = call_find(sip->sip_call_id->i_id);
	if (c && !other_dialog(c, sip))
		call_delete(c, why);
}

void media_branch_end(sip_t *sip, const char *via_branch, const char *why)
{
	if (!sip || !sip->sip_call_id || !via_branch)
		return;
	struct call *c = call_find(sip->sip_call_id->i_id);
	if (c)
		leg_end(c, leg_find(c, via_branch), why);
}

int media_calls(void) { return n_calls; }

/* A connection of a call's leg closed: nobody will send its BYE (the caller's, or the answering
 * callee's), or a ringing branch is gone. A UDP flow that is forgotten is no reason: the peer is
 * still there. */
static void on_flow_gone(struct flow *f)
{
	if (f->proto == PROTO_UDP)
		return;
	struct call *c = calls;
	while (c) {
		struct call *next = c->next;
		if (c->flow[0] == f->id || c->flow[1] == f->id) {
			call_delete(c, "connection closed");
		} else if (!c->callee_tag[0]) {
			for (int i = 0; i < c->n_legs; i++)
				if (c->legs[i].flow == f->id)
					leg_end(c, i, "connection closed");
		}
		c = next;
	}
}

void media_init(const struct media_config *cfg)
{
	config = cfg;
	static bool watching;
	if (!watching)
		flow_on_gone(on_flow_gone);
	watching = true;
}

void media_shutdown(void)
{
	while (deletes) {
		rtpengine_cancel(deletes->req);
		pending_delete_free(deletes);
	}
	stopping = true;
	while (ops)
		media_op_cancel(ops);
	while (calls)
		call_delete(calls, "shutdown");
	stopping = false;
}
