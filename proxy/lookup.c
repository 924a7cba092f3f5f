/** @file lookup.c  Next hops looked up by name (RFC 3263): a request, or the ACK of a 2xx, whose
 *  next hop is a host name waits in a `struct lookup` (its server transaction answers a CANCEL
 *  with 487 meanwhile) until resolve_start answers; the addresses found become the context's own
 *  failover list.
 */
#include "proxy/proxy_internal.h"
#include "base/log.h"
#include "base/metrics.h"
#include "sip/resolve.h"
#include "sip/txn.h"
#include "transport/flow.h"
#include "transport/transport.h"

#include <sofia-sip/hostdomain.h>
#include <sofia-sip/url.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A request, or the ACK of a 2xx, whose next hop is a host name waits here for its lookup. */
struct lookup {
	struct txn *st; /* the server transaction; NULL for an ACK, or once it is gone */
	msg_t *req;
	uint64_t in_flow;
	bool ack;
	bool cancelled;
	struct lookup *next, *prev;
};
static struct lookup *lookups; /* requests waiting for a next hop's name to be looked up */

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
		proxy_reply(st, NULL, n ? 480 : 404, n ? "Temporarily Unavailable" : "No Route To Domain");
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
		proxy_reply(st, NULL, 500, "Server Internal Error");
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
int lookup_next_hop(struct txn *st, msg_t *req, const url_t *url, struct flow *in, bool ack)
{
	if (resolve_init(proxy_cfg()->resolv_conf) != 0)
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
bool is_named_hop(const url_t *url)
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
const url_t *next_hop_url(sip_t *sip)
{
	return sip->sip_route ? sip->sip_route->r_url : sip->sip_request->rq_url;
}

void lookups_shutdown(void)
{
	while (lookups)
		lookup_free(lookups);
}
