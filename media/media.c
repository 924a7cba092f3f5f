/** @file media.c  Offer, answer and delete in rtpengine for the calls that cross the proxy
 *  (media.h). A call is known by its Call-ID; it remembers which rtpengine took its offer (the
 *  rest of the call must reach the same one), the caller's tag, both legs' flows and the state
 *  of the offer/answer exchange in progress. */
#include "media/media.h"
#include "media/rtpengine.h"
#include "base/log.h"
#include "base/metrics.h"
#include "transport/flow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct call {
	char *call_id;
	char caller_tag[128];
	int engine;	       /* the rtpengine holding the session; -1 before the first offer's answer */
	uint64_t flow[2];      /* caller's and callee's flow */
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

static void on_deleted(void *arg, int index, enum ng_status status, const struct bencode *reply)
{
	char *call_id = arg;
	char reason[128] = "";
	if (!call_id)
		return;
	if (status != NG_REPLY)
		log_warn("media: call %s: rtpengine %s did not answer delete", call_id, rtpengine_name(index));
	else if (!bencode_is_str(bencode_get(reply, "result"), "ok"))
		log_warn("media: call %s: rtpengine %s refused delete: %s", call_id, rtpengine_name(index),
			 bencode_get_str(reply, "error-reason", reason, sizeof(reason)) ? reason : "error");
	free(call_id);
}

/* Delete c's session in its rtpengine and forget the call. */
static void call_delete(struct call *c, const char *why)
{
	if (c->engine >= 0) {
		struct bencode_writer w;
		bencode_w_init(&w);
		bencode_w_dict(&w);
		bencode_w_kv(&w, "command", "delete");
		bencode_w_kv(&w, "call-id", c->call_id);
		bencode_w_kv(&w, "from-tag", c->caller_tag);
		bencode_w_end(&w);
		char *arg = stopping ? NULL : strdup(c->call_id);
		if (bencode_w_finish(&w) == 0 && (arg || stopping) &&
		    rtpengine_request(c->engine, "delete", w.buf, w.len, on_deleted, arg))
			arg = NULL;
		free(arg);
		bencode_w_free(&w);
		log_info("media: call %s ends (%s), session deleted in %s", c->call_id, why,
			 rtpengine_name(c->engine));
	}
	call_unlink(c);
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
	free(op);
}

static bool refuse(void)
{
	return !config || strcmp(config->on_failure, "refuse") == 0;
}

static void on_reply(void *arg, int index, enum ng_status status, const struct bencode *reply)
{
	struct media_op *op = arg;
	struct call *c = op->call;
	op->req = NULL;
	const char *what = op->offer ? "offer" : "answer";
	int result = 0;
	char reason[160] = "";
	const struct bencode *sdp = status == NG_REPLY ? bencode_get(reply, "sdp") : NULL;
	if (status == NG_REPLY && bencode_is_str(bencode_get(reply, "result"), "ok") && sdp &&
	    sdp->type == BENCODE_STR) {
		if (!c->ended && c->engine < 0) {
			c->engine = index;
			metrics_inc(M_MEDIA_ANCHORED);
			log_info("media: call %s anchored in rtpengine %s", c->call_id, rtpengine_name(index));
		}
		if (set_sdp(op->msg, sdp->s, sdp->len) != 0)
			result = 500;
	} else {
		if (status == NG_REPLY)
			snprintf(reason, sizeof(reason), "%s",
				 bencode_get_str(reply, "error-reason", reason, sizeof(reason)) ? reason : "error");
		else
			snprintf(reason, sizeof(reason), "no answer");
		if (refuse()) {
			metrics_inc(M_MEDIA_REFUSED);
			log_warn("media: call %s: rtpengine %s failed the %s (%s): 503", c->call_id,
				 rtpengine_name(index), what, reason);
			result = 503;
		} else {
			metrics_inc(M_MEDIA_UNANCHORED);
			log_warn("media: call %s: rtpengine %s failed the %s (%s): going on unanchored",
				 c->call_id, rtpengine_name(index), what, reason);
		}
		if (!c->ended) {
			/* Unanchored from here on; what rtpengine may hold is deleted. */
			if (c->engine < 0)
				c->engine = index;
			call_delete(c, "rtpengine failure");
		}
	}
	media_cont_fn cont = op->cont;
	void *cont_arg = op->arg;
	op_unlink(op);
	cont(cont_arg, result);
}

int media_sdp(msg_t *msg, uint64_t from, uint64_t to, media_cont_fn cont, void *arg, struct media_op **opp)
{
	sip_t *sip = sip_object(msg);
	if (!sip || !sip->sip_call_id || !sip->sip_cseq || !sip->sip_from || !sip->sip_to)
		return MEDIA_PASS;
	enum media_relay policy = rtpengine_relay();
	if (policy == MEDIA_RELAY_NEVER)
		return MEDIA_PASS;
	bool request = sip->sip_request != NULL;
	sip_method_t method = sip->sip_cseq->cs_method;
	if (method != sip_method_invite && method != sip_method_update && method != sip_method_ack)
		return MEDIA_PASS;
	if (!request && (sip->sip_status->st_status >= 300 || sip->sip_status->st_status == 100))
		return MEDIA_PASS;
	const char *call_id = sip->sip_call_id->i_id;
	struct call *c = call_find(call_id);
	if (!c) {
		/* Only an initial INVITE between legs the policy anchors starts one: with an offer, or
		 * without SDP (a late offer: the offer comes in the 2xx, the answer in the ACK, and
		 * those must find the call). */
		if (!request || method != sip_method_invite || sip->sip_to->a_tag ||
		    !media_relay_wanted(policy, flow_is_webrtc(from), flow_is_webrtc(to)))
			return MEDIA_PASS;
		c = calloc(1, sizeof(*c));
		if (!c || !(c->call_id = strdup(call_id))) {
			free(c);
			return 500;
		}
		snprintf(c->caller_tag, sizeof(c->caller_tag), "%s", sip->sip_from->a_tag ? sip->sip_from->a_tag : "");
		c->engine = -1;
		c->flow[0] = from;
		c->flow[1] = to;
		c->refs = 1;
		c->next = calls;
		if (calls)
			calls->prev = c;
		calls = c;
		n_calls++;
		metrics_set(M_MEDIA_SESSIONS, n_calls);
	}
	if (!has_sdp(sip))
		return MEDIA_PASS;
	if (c->flow[1] == 0 || (c->flow[1] != to && c->flow[1] != from && c->flow[0] != from && c->flow[0] != to))
		c->flow[1] = to;
	/* Offer or answer: an answer is the SDP that comes back in the exchange an offer opened. */
	uint32_t cseq = sip->sip_cseq->cs_seq;
	bool answer = c->offer_pending && cseq == c->offer_cseq &&
		      ((c->offer_in_request && !request) || (!c->offer_in_request && method == sip_method_ack));
	/* 183 then 200 with the same answer: an answer to the same offer again */
	bool repeat = !c->offer_pending && !request && c->offer_in_request && cseq == c->offer_cseq;
	bool offer = !answer && !repeat;
	if (offer) {
		c->offer_pending = true;
		c->offer_in_request = request;
		c->offer_cseq = cseq;
	} else {
		c->offer_pending = false;
	}
	/* Tags: the offerer's is from-tag, the answerer's to-tag. */
	const char *from_tag = sip->sip_from->a_tag, *to_tag = sip->sip_to->a_tag;
	/* Requests carry offers from their From (the answer in an ACK answers the To's offer in
	 * the 2xx); responses carry offers from their To. */
	bool offerer_is_from = request ? offer : !offer;
	const char *ng_from = offerer_is_from ? from_tag : to_tag, *ng_to = offerer_is_from ? to_tag : from_tag;
	struct bencode_writer w;
	bencode_w_init(&w);
	bencode_w_dict(&w);
	bencode_w_kv(&w, "command", offer ? "offer" : "answer");
	bencode_w_kv(&w, "call-id", call_id);
	bencode_w_kv(&w, "from-tag", ng_from ? ng_from : "");
	if (ng_to)
		bencode_w_kv(&w, "to-tag", ng_to);
	bencode_w_cstr(&w, "sdp");
	bencode_w_str(&w, sip->sip_payload->pl_data, sip->sip_payload->pl_len);
	leg_flags(&w, flow_is_webrtc(to), offer);
	bencode_w_end(&w);
	struct media_op *op = calloc(1, sizeof(*op));
	if (bencode_w_finish(&w) != 0 || !op) {
		bencode_w_free(&w);
		free(op);
		return 500;
	}
	op->call = c;
	c->refs++;
	op->msg = msg_ref(msg);
	op->offer = offer;
	op->cont = cont;
	op->arg = arg;
	op->next = ops;
	if (ops)
		ops->prev = op;
	ops = op;
	op->req = rtpengine_request(c->engine, offer ? "offer" : "answer", w.buf, w.len, on_reply, op);
	bencode_w_free(&w);
	if (!op->req) {
		op_unlink(op);
		log_warn("media: call %s: no rtpengine to send the %s to", call_id, offer ? "offer" : "answer");
		if (refuse()) {
			metrics_inc(M_MEDIA_REFUSED);
			call_delete(c, "no rtpengine");
			return 503;
		}
		metrics_inc(M_MEDIA_UNANCHORED);
		call_delete(c, "no rtpengine");
		return MEDIA_PASS;
	}
	*opp = op;
	return MEDIA_WAIT;
}

void media_op_cancel(struct media_op *op)
{
	if (!op)
		return;
	rtpengine_cancel(op->req);
	op_unlink(op);
}

void media_call_end(sip_t *sip, const char *why)
{
	if (!sip || !sip->sip_call_id)
		return;
	struct call *c = call_find(sip->sip_call_id->i_id);
	if (c)
		call_delete(c, why);
}

int media_calls(void) { return n_calls; }

/* A connection of a call's leg closed: nobody will send its BYE. A UDP flow that is forgotten
 * is no reason: the peer is still there. */
static void on_flow_gone(struct flow *f)
{
	if (f->proto == PROTO_UDP)
		return;
	struct call *c = calls;
	while (c) {
		struct call *next = c->next;
		if (c->flow[0] == f->id || c->flow[1] == f->id)
			call_delete(c, "connection closed");
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
	stopping = true;
	while (ops)
		media_op_cancel(ops);
	while (calls)
		call_delete(calls, "shutdown");
	stopping = false;
}
