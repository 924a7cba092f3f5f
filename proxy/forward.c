/** @file forward.c  The copy of a request that goes to one target (RFC 3261 §16.6): Max-Forwards,
 *  our Via (whose branch carries the loop hash §16.3 looks for), Record-Route and edge-mode Path
 *  entries with flow tokens, the forward filter; and the stateless forwarding of an ACK for a 2xx.
 */
#include "proxy/proxy_internal.h"
#include "base/bytes.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/sipmsg.h"
#include "cluster/cluster.h"
#include "sip/self.h"
#include "transport/flow.h"
#include "transport/transport.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BRANCH_PREFIX "z9hG4bK-se"

static proxy_forward_fn forward_filter;

void proxy_set_forward_filter(proxy_forward_fn fn) { forward_filter = fn; }

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

/* Loop-detection hash (§16.3 step 4, §16.6 step 8): FNV-1a over what identifies this request,
 * the Request-URI as sofia-sip encodes it, Call-ID, From and To tags, CSeq method and number,
 * each piece hashed where it lies rather than printed into one string first (printing was a
 * tenth of a proxied call's instructions: this runs for each Via we add and check). */
static uint32_t loop_hash(sip_t *sip)
{
	char uri[1024];
	issize_t n = url_e(uri, sizeof(uri), sip->sip_request->rq_url);
	size_t ulen = n < 0 ? 0 : (size_t)n < sizeof(uri) ? (size_t)n : sizeof(uri) - 1;
	const char *part[] = {sip->sip_call_id->i_id, sip->sip_from->a_tag ? sip->sip_from->a_tag : "",
			      sip->sip_to->a_tag ? sip->sip_to->a_tag : "",
			      sip->sip_cseq->cs_method_name ? sip->sip_cseq->cs_method_name : ""};
	uint32_t h = fnv1a(FNV1A_INIT, uri, ulen);
	for (size_t i = 0; i < sizeof(part) / sizeof(part[0]); i++)
		h = fnv1a_str(fnv1a(h, "|", 1), part[i]);
	uint32_t seq = sip->sip_cseq->cs_seq;
	return fnv1a(fnv1a(h, "|", 1), &seq, sizeof(seq));
}

/* BRANCH_PREFIX and the loop hash in eight hex digits: how our Vias' branches begin. */
static size_t loop_prefix(sip_t *sip, char out[32])
{
	size_t n = strlen(BRANCH_PREFIX);
	memcpy(out, BRANCH_PREFIX, n);
	uint32_t h = loop_hash(sip);
	const unsigned char be[] = {(unsigned char)(h >> 24), (unsigned char)(h >> 16), (unsigned char)(h >> 8),
				    (unsigned char)h};
	hex_lower(be, sizeof(be), out + n);
	return n + 2 * sizeof(be);
}

bool is_looping(sip_t *sip)
{
	char prefix[32];
	size_t plen = loop_prefix(sip, prefix);
	for (sip_via_t *v = sip->sip_via; v; v = v->v_next) {
		if (!v->v_branch || strncmp(v->v_branch, prefix, plen) != 0)
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

sip_via_t *make_via(su_home_t *home, sip_t *sip, struct flow *out)
{
	char host[80], port[8], branch[64], rnd[17];
	listener_host(out->local, host, sizeof(host));
	snprintf(port, sizeof(port), "%d", out->local ? out->local->port : 5060);
	sipmsg_random_token(rnd, sizeof(rnd));
	char prefix[32];
	loop_prefix(sip, prefix);
	snprintf(branch, sizeof(branch), "branch=%s.%s", prefix, rnd);
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
msg_t *make_forward(msg_t *req, const char *ruri, struct flow *in, struct flow *out, bool path,
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

void forward_ack(msg_t *ack, struct flow *in, struct flow *out)
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
