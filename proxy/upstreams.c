/** @file upstreams.c  routing.upstreams: the configured next hops for other domains (and, in
 *  edge mode, the registrar), the RFC 3263 lookups of their names and the refresh of those
 *  when their records expire, and the new list a reload brings.
 */
#include "proxy/proxy_internal.h"
#include "base/config.h"
#include "base/log.h"
#include "base/loop.h"
#include "sip/resolve.h"
#include "transport/flow.h"
#include "transport/transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <sofia-sip/hostdomain.h>
#include <sofia-sip/url.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/** routing.upstreams as proxy_cfg() says now; the entries in use before are retired. -1 (logged) if
 *  one cannot be used. */
int upstreams_configure(void)
{
	int old = n_cfgs;
	struct upstream_cfg *prev[MAX_UPSTREAMS];
	memcpy(prev, cfgs, sizeof(prev));
	n_cfgs = 0;
	int rc = 0;
	for (int i = 0; i < proxy_cfg()->upstreams.count && n_cfgs < MAX_UPSTREAMS; i++) {
		struct upstream_cfg *c = calloc(1, sizeof(*c));
		if (!c || !(c->uri = strdup(proxy_cfg()->upstreams.item[i]))) {
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
		if (resolve_init(proxy_cfg()->resolv_conf) != 0)
			return -1;
		uv_timer_init(loop_get(), &c->refresh);
		c->refresh.data = c;
		c->timer_open = true;
		on_refresh(&c->refresh);
	}
	return rc;
}

/** Did this request come from one of the upstreams (so it must not go straight back)? Address
 *  and port: on one host several peers share an address. */
bool from_upstream(const struct flow *in)
{
	for (int i = 0; i < n_upstreams; i++)
		if (flow_addr_equal((const struct sockaddr *)&upstreams[i].dest.addr,
				    (const struct sockaddr *)&in->peer))
			return true;
	return false;
}

int upstreams_start(void)
{
	n_cfgs = 0;
	n_upstreams = 0;
	return upstreams_configure();
}

void upstreams_shutdown(void)
{
	for (int i = 0; i < n_cfgs; i++) {
		cfgs[i]->lookup_pending = false;
		upstream_cfg_retire(cfgs[i]);
	}
	n_cfgs = 0;
	n_upstreams = 0;
}

int upstreams_configured(void) { return n_cfgs; }
int upstreams_count(void) { return n_upstreams; }
const struct upstream *upstream_at(int i) { return &upstreams[i]; }
