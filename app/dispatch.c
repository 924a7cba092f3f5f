/** @file dispatch.c  Dispatch of every SIP message a transport receives.
 *
 * Runs on the loop thread: parse, check, then hand responses to the client transactions and
 * requests to their server transaction and the room that handles them (registrar, ourselves,
 * proxy). Every rejection here gets a status whose phrase says what was wrong.
 */
#include "app/dispatch.h"
#include "base/config.h"
#include "sip/self.h"
#include "base/log.h"
#include "base/metrics.h"
#include "proxy/proxy.h"
#include "sip/txn.h"
#include "registrar/registrar.h"
#include "transport/flow.h"
#include "transport/udp.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_util.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Extensions we implement for requests addressed to us (Require → 420 otherwise). */
static const char *const supported_here[] = {"path", "outbound", "gruu", NULL};

static const struct limits_config *limits_cfg;
static bool edge_mode;

void dispatch_init(const struct limits_config *limits, bool edge)
{
	limits_cfg = limits;
	edge_mode = edge;
}

static void receive_message(void *ctx, struct flow *f, const char *data, size_t len)
{
	dispatch_receive(f, data, len);
}

static void receive_parsed(void *ctx, struct flow *f, msg_t *msg) { dispatch_receive_msg(f, msg); }

struct sip_receiver dispatch_receiver(void)
{
	return (struct sip_receiver){.message = receive_message, .parsed = receive_parsed, .ctx = NULL};
}

static void reply_stateless(struct flow *f, msg_t *req, int status, const char *reason)
{
	msg_t *resp = sipmsg_response(req, status, reason);
	if (!resp)
		return;
	transport_send_msg(f, resp);
	msg_destroy(resp);
}

/** A Require option we do not support, or NULL. */
static const char *unsupported_require(sip_t *sip)
{
	if (!sip->sip_require)
		return NULL;
	for (int i = 0; sip->sip_require->k_items && sip->sip_require->k_items[i]; i++) {
		const char *opt = sip->sip_require->k_items[i];
		bool ok = false;
		for (int j = 0; supported_here[j]; j++)
			if (strcasecmp(opt, supported_here[j]) == 0)
				ok = true;
		if (!ok)
			return opt;
	}
	return NULL;
}

static void answer_420(struct txn *st, msg_t *req, const char *option)
{
	msg_t *resp = sipmsg_response(req, 420, "Bad Extension");
	if (!resp)
		return;
	sip_add_make(resp, sip_object(resp), sip_unsupported_class, option);
	txn_respond(st, resp);
}

/** OPTIONS addressed to sipedge itself (§11.2). */
static void answer_options(struct txn *st, msg_t *req)
{
	msg_t *resp = sipmsg_response(req, 200, "OK");
	if (!resp)
		return;
	sip_t *rs = sip_object(resp);
	sip_add_make(resp, rs, sip_allow_class, SIPEDGE_ALLOW);
	sip_add_make(resp, rs, sip_supported_class, SIPEDGE_SUPPORTED);
	sip_add_make(resp, rs, sip_accept_class, "application/sdp");
	txn_respond(st, resp);
}

static void handle_request(struct flow *f, msg_t *msg, sip_t *sip)
{
	metrics_inc(M_SIP_REQUESTS_IN);
	const char *reason = NULL;
	/* RFC 7118 §5.1: over WebSocket, as over UDP, the message boundary is known. */
	bool cl_optional = f->proto == PROTO_WS || f->proto == PROTO_WSS || f->proto == PROTO_UDP;
	int status = sipmsg_check_request(msg, sip, cl_optional, &reason);
	sip_method_t method = sip->sip_request->rq_method;
	if (status) {
		metrics_inc(M_SIP_REJECTED);
		/* An ACK is never answered; without a readable Via there is no way back. A reply
		 * that lacks the other missing headers still tells the sender what was wrong. */
		bool answer = method != sip_method_ack && sip->sip_via;
		log_notice("flow %llu %s: %s%d %s", (unsigned long long)f->id, f->peer_text,
			   answer ? "" : "not answered: ", status, reason);
		if (answer)
			reply_stateless(f, msg, status, reason);
		return;
	}
	if (txn_server_absorb(msg, sip, f))
		return;
	if (method == sip_method_ack) {
		proxy_ack(msg, sip, f);
		return;
	}
	struct txn *st = txn_server_create(msg, f);
	if (!st) {
		reply_stateless(f, msg, 500, "Server Internal Error");
		return;
	}
	url_t const *ruri = sip->sip_request->rq_url;
	bool to_us = self_is_us(ruri) && !sip->sip_route;
	/* In edge mode the registrar is upstream: the proxy forwards REGISTER with our Path. */
	if (method == sip_method_register && to_us && !ruri->url_user && !edge_mode) {
		const char *opt = unsupported_require(sip);
		if (opt)
			answer_420(st, msg, opt);
		else
			registrar_handle(st, msg, sip, f);
		return;
	}
	if (method == sip_method_unknown && to_us && !ruri->url_user) {
		/* §8.2.1: a method we do not know, addressed to us rather than to a user. */
		msg_t *resp = sipmsg_response(msg, 501, "Not Implemented");
		if (resp) {
			sip_add_make(resp, sip_object(resp), sip_allow_class, SIPEDGE_ALLOW);
			txn_respond(st, resp);
		}
		return;
	}
	if (method == sip_method_options && to_us && !ruri->url_user) {
		const char *opt = unsupported_require(sip);
		if (opt)
			answer_420(st, msg, opt);
		else
			answer_options(st, msg);
		return;
	}
	proxy_request(st, msg, sip, f);
}

/** Same numeric address? Via hosts may be bracketed IPv6 or names (never equal to an address). */
static bool host_is_addr(const char *host, const char *addr)
{
	size_t n = strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
		return strlen(addr) == n - 2 && strncasecmp(host + 1, addr, n - 2) == 0;
	return strcasecmp(host, addr) == 0;
}

/** §18.2.1 and RFC 3581 §4: note in the top Via where the request really came from. Over
 *  WebSocket the Via host is a made-up name by design (RFC 7118) and the connection is the
 *  way back, so nothing is added there. */
static void via_mark_source(msg_t *msg, sip_t *sip, struct flow *f)
{
	sip_via_t *v = sip->sip_via;
	if (!v || !v->v_host || f->proto == PROTO_WS || f->proto == PROTO_WSS ||
	    (f->peer.ss_family != AF_INET && f->peer.ss_family != AF_INET6))
		return;
	/* The header keeps pointers to its parameters: they must live in the message's home. */
	su_home_t *home = msg_home(msg);
	bool changed = false;
	if (v->v_rport || !host_is_addr(v->v_host, f->peer_host)) {
		char *param = su_sprintf(home, "received=%s", f->peer_host);
		changed |= param && msg_header_replace_param(home, v->v_common, param) >= 0;
	}
	if (v->v_rport) {
		char *param = su_sprintf(home, "rport=%d", f->peer_port);
		changed |= param && msg_header_replace_param(home, v->v_common, param) >= 0;
	}
	if (changed)
		msg_fragment_clear(v->v_common);
}

/** §18.2.2: over UDP without rport, responses go to the source address but the sent-by port. */
static struct flow *udp_reply_flow(sip_t *sip, struct flow *f)
{
	sip_via_t *v = sip->sip_via;
	if (f->proto != PROTO_UDP || !v || v->v_rport || v->v_maddr)
		return f;
	int port = v->v_port ? atoi(v->v_port) : 5060;
	if (port <= 0 || port > 65535 || port == f->peer_port)
		return f;
	struct sockaddr_storage to = f->peer;
	if (to.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&to)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)&to)->sin_port = htons((uint16_t)port);
	struct flow *r = udp_flow_sibling(f, (struct sockaddr *)&to);
	return r ? r : f;
}

static void dispatch(struct flow *f, msg_t *msg);

/** The phrase of the 400 for a message the parser refused: what its request line was missing,
 *  else the first header that failed to parse, else why the whole failed ("NUL byte in
 *  header", "body shorter than Content-Length"). */
static void unparsable_reason(sip_t *sip, const char *fault, const char *why, char *out, size_t n)
{
	const char *bad = NULL;
	for (sip_error_t *e = sip->sip_error; e && !bad; e = e->er_next)
		bad = sipmsg_error_name(e);
	if (fault)
		snprintf(out, n, "%s", fault);
	else if (bad && strcmp(why, "NUL byte in header") != 0)
		snprintf(out, n, "Malformed %s header", bad);
	else
		snprintf(out, n, "%c%s", toupper((unsigned char)why[0]), why + 1);
}

/** A message the parser refused: if enough of it reads as a request with a top Via, answer 400
 *  saying what was wrong; anything else is dropped. The log says which of the two happened. */
static void answer_unparsable(struct flow *f, const char *data, size_t len, const char *why)
{
	const char *fault = NULL;
	msg_t *msg = sipmsg_parse_salvage(data, len, &fault);
	if (!msg) {
		log_notice("flow %llu %s: dropped %zu bytes: %s", (unsigned long long)f->id, f->peer_text,
			   len, why);
		return;
	}
	sip_t *sip = sip_object(msg);
	char reason[80];
	unparsable_reason(sip, fault, why, reason, sizeof(reason));
	metrics_inc(M_SIP_REJECTED);
	if (sip->sip_request->rq_method == sip_method_ack) {
		log_notice("flow %llu %s: ACK not answered (%s)", (unsigned long long)f->id, f->peer_text,
			   reason);
	} else {
		log_notice("flow %llu %s: 400 %s", (unsigned long long)f->id, f->peer_text, reason);
		reply_stateless(udp_reply_flow(sip, f), msg, 400, reason);
	}
	msg_destroy(msg);
}

/** A banned source's request, answered 503 with the time left in Retry-After (RFC 3261
 *  §21.5.4); anything else from it (responses, ACK, garbage) is dropped unanswered. */
static void answer_banned_msg(struct flow *f, msg_t *msg)
{
	sip_t *sip = sip_object(msg);
	if (sip->sip_request && sip->sip_request->rq_method != sip_method_ack && sip->sip_via &&
	    sip->sip_cseq && sip->sip_call_id && sip->sip_from && sip->sip_to) {
		msg_t *resp = sipmsg_response(msg, 503, "Service Unavailable");
		if (resp) {
			char secs[16];
			int left = limits_ban_remaining((const struct sockaddr *)&f->peer);
			snprintf(secs, sizeof(secs), "%d", left > 0 ? left : 1);
			sip_add_make(resp, sip_object(resp), sip_retry_after_class, secs);
			transport_send_msg(udp_reply_flow(sip, f), resp);
			msg_destroy(resp);
		}
	}
}

static void answer_banned(struct flow *f, const char *data, size_t len)
{
	const char *why = NULL;
	msg_t *msg = sipmsg_parse(data, len, &why);
	if (!msg)
		return;
	answer_banned_msg(f, msg);
	msg_destroy(msg);
}

void dispatch_receive(struct flow *f, const char *data, size_t len)
{
	const struct sockaddr *peer = (const struct sockaddr *)&f->peer;
	bool keepalive = sipmsg_is_keepalive(data, len);
	/* Keep-alives are not requests and cost nothing to answer, but a banned source gets
	 * nothing at all, not even a pong. */
	enum limits_verdict verdict = keepalive
		? (limits_ban_remaining(peer) > 0 ? LIMITS_DROP : LIMITS_PASS)
		: limits_message(peer);
	if (verdict != LIMITS_PASS) {
		log_debug("flow %llu %s: banned source, %zu bytes %s", (unsigned long long)f->id,
			  f->peer_text, len, verdict == LIMITS_REPLY ? "answered 503" : "dropped");
		if (verdict == LIMITS_REPLY && !keepalive)
			answer_banned(f, data, len);
		return;
	}
	if (keepalive) {
		/* RFC 5626 §4.4.1: a double CRLF ping gets a single CRLF pong. */
		if (len >= 4) {
			metrics_inc(M_KEEPALIVE_PINGS);
			flow_send(f, "\r\n", 2);
		}
		return;
	}
	const char *why = NULL;
	msg_t *msg = sipmsg_parse(data, len, &why);
	if (!msg) {
		metrics_inc(M_SIP_PARSE_ERRORS);
		answer_unparsable(f, data, len, why);
		return;
	}
	sip_t *sip = sip_object(msg);
	size_t body = sip->sip_payload ? sip->sip_payload->pl_len : 0;
	if (sip->sip_request && limits_cfg->limit_header_bytes > 0 && len > body &&
	    len - body > (size_t)limits_cfg->limit_header_bytes) {
		metrics_inc(M_SIP_REJECTED);
		log_notice("flow %llu %s: %zu bytes of headers (limits.max_header_size %d): 513",
			   (unsigned long long)f->id, f->peer_text, len - body, limits_cfg->limit_header_bytes);
		if (sip->sip_request->rq_method != sip_method_ack && sip->sip_via)
			reply_stateless(udp_reply_flow(sip, f), msg, 513, "Message Too Large");
		msg_destroy(msg);
		return;
	}
	if (log_get_level() >= LOGL_DEBUG)
		log_debug("recv from flow %llu %s:\n%.*s", (unsigned long long)f->id, f->peer_text,
			  (int)len, data);
	dispatch(f, msg);
	msg_unref(msg);
}

void dispatch_receive_msg(struct flow *f, msg_t *msg)
{
	/* Streams frame and parse their messages themselves: the per-source limits apply here. */
	enum limits_verdict verdict = limits_message((const struct sockaddr *)&f->peer);
	if (verdict != LIMITS_PASS) {
		log_debug("flow %llu %s: banned source, message %s", (unsigned long long)f->id,
			  f->peer_text, verdict == LIMITS_REPLY ? "answered 503" : "dropped");
		if (verdict == LIMITS_REPLY)
			answer_banned_msg(f, msg);
		return;
	}
	dispatch(f, msg);
}

/** Responses to the client transactions, requests to their server transaction and room. */
static void dispatch(struct flow *f, msg_t *msg)
{
	sip_t *sip = sip_object(msg);
	if (sip->sip_request) {
		via_mark_source(msg, sip, f);
		handle_request(udp_reply_flow(sip, f), msg, sip);
	} else {
		metrics_inc(M_SIP_RESPONSES_IN);
		if (!sipmsg_response_ok(sip) || msg_get_flags(msg, MSG_FLG_TRUNC))
			log_notice("flow %llu %s: dropped malformed response", (unsigned long long)f->id,
				   f->peer_text);
		else if (!txn_client_receive(msg, sip, f))
			log_info("flow %llu %s: response matches no transaction",
				 (unsigned long long)f->id, f->peer_text);
	}
}
