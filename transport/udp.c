/** @file udp.c  SIP over UDP (RFC 3261 §18) on libuv.
 *
 * One uv_udp_t per listener; one flow per (listener, peer address), kept in a hash for lookup
 * and in a least-recently-used list for idle expiry: a datagram in or out moves the flow to the
 * tail, the sweep timer takes flows from the head until it finds one still in use. When
 * udp.max_flows is reached the least recently used flow makes room, so a flood of spoofed
 * source addresses costs a bounded amount of memory.
 */
#include "transport/udp.h"
#include "base/bytes.h"
#include "base/log.h"
#include "base/metrics.h"
#include "transport/flow.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The largest UDP payload there is (IPv6 without jumbograms: 65535 - 8); one more byte lets
 * libuv report anything larger as partial instead of silently cutting it. */
#define UDP_BUF_SIZE 65536
#define UDP_BUCKETS 4096 /* power of two */

struct udp_listener {
	uv_udp_t handle;
	struct listen_spec *spec;
	char *buf; /* receive buffer: each datagram is handled before the next is read */
	bool open;
	struct udp_listener *next;
};

struct udp_flow {
	struct flow *flow;
	struct udp_listener *l;
	uint64_t last_ms;		  /* uv_now of the last datagram in or out */
	struct udp_flow *hnext;		  /* hash chain */
	struct udp_flow *lru_prev, *lru_next; /* oldest first */
};

struct udp_send {
	uv_udp_send_t req;
	size_t len;
	char data[]; /* the datagram, owned until the send completes */
};

static struct {
	uv_loop_t *loop;
	struct udp_listener *listeners;
	struct udp_flow *table[UDP_BUCKETS];
	struct udp_flow *lru_head, *lru_tail;
	unsigned count;
	uint64_t idle_ms;
	unsigned max_flows;
	struct sip_receiver receiver;
	uv_timer_t sweep;
	bool sweep_open;
} U;

static int udp_flow_send(struct flow *f, const char *data, size_t len);
static void udp_flow_close(struct flow *f);
static const struct flow_ops udp_ops = {.send = udp_flow_send, .close = udp_flow_close};

/* ---- the flow table ---- */

static unsigned addr_hash(const struct udp_listener *l, const struct sockaddr *a)
{
	const unsigned char *p;
	size_t n;
	uint16_t port;
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)a;
		p = (const unsigned char *)&s->sin6_addr;
		n = sizeof(s->sin6_addr);
		port = s->sin6_port;
	} else {
		const struct sockaddr_in *s = (const void *)a;
		p = (const unsigned char *)&s->sin_addr;
		n = sizeof(s->sin_addr);
		port = s->sin_port;
	}
	const unsigned char port_bytes[] = {(unsigned char)(port & 0xff), (unsigned char)(port >> 8)};
	uint32_t h = fnv1a(FNV1A_INIT ^ (uint32_t)(uintptr_t)l, p, n);
	return fnv1a(h, port_bytes, sizeof(port_bytes)) & (UDP_BUCKETS - 1);
}

static void lru_unlink(struct udp_flow *u)
{
	if (u->lru_prev)
		u->lru_prev->lru_next = u->lru_next;
	else
		U.lru_head = u->lru_next;
	if (u->lru_next)
		u->lru_next->lru_prev = u->lru_prev;
	else
		U.lru_tail = u->lru_prev;
	u->lru_prev = u->lru_next = NULL;
}

static void lru_append(struct udp_flow *u)
{
	u->lru_prev = U.lru_tail;
	u->lru_next = NULL;
	if (U.lru_tail)
		U.lru_tail->lru_next = u;
	else
		U.lru_head = u;
	U.lru_tail = u;
}

static void touch(struct udp_flow *u)
{
	u->last_ms = uv_now(U.loop);
	if (U.lru_tail != u) {
		lru_unlink(u);
		lru_append(u);
	}
}

static struct udp_flow *table_find(const struct udp_listener *l, const struct sockaddr *a)
{
	for (struct udp_flow *u = U.table[addr_hash(l, a)]; u; u = u->hnext)
		if (u->l == l && flow_addr_equal((const struct sockaddr *)&u->flow->peer, a))
			return u;
	return NULL;
}

/** Take u out of the table and the list, then let the flow go (observers run). */
static void udp_flow_free(struct udp_flow *u)
{
	struct udp_flow **pp = &U.table[addr_hash(u->l, (const struct sockaddr *)&u->flow->peer)];
	while (*pp && *pp != u)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = u->hnext;
	lru_unlink(u);
	U.count--;
	struct flow *f = u->flow;
	free(u);
	flow_destroy(f);
}

static struct udp_flow *flow_for(struct udp_listener *l, const struct sockaddr *a)
{
	struct udp_flow *u = table_find(l, a);
	if (u)
		return u;
	/* A flow heard in this very loop turn may be the one whose request is being handled
	 * right now (the caller holds it): never evict that one, go over the cap a little. */
	if (U.count >= U.max_flows && U.lru_head && U.lru_head->last_ms < uv_now(U.loop)) {
		metrics_inc(M_UDP_FLOWS_EVICTED);
		log_notice("udp: %u flows (udp.max_flows): dropping the least recently used, %s",
			   U.count, U.lru_head->flow->peer_text);
		udp_flow_free(U.lru_head);
	}
	u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->flow = flow_create(PROTO_UDP, a, l->spec, &udp_ops, u);
	if (!u->flow) {
		free(u);
		return NULL;
	}
	u->l = l;
	unsigned b = addr_hash(l, a);
	u->hnext = U.table[b];
	U.table[b] = u;
	lru_append(u);
	u->last_ms = uv_now(U.loop);
	U.count++;
	return u;
}

unsigned udp_expire(uint64_t now_ms)
{
	unsigned n = 0;
	while (U.lru_head && U.lru_head->last_ms + U.idle_ms <= now_ms) {
		log_debug("udp: flow %llu %s idle, expired", (unsigned long long)U.lru_head->flow->id,
			  U.lru_head->flow->peer_text);
		udp_flow_free(U.lru_head);
		n++;
	}
	if (n)
		metrics_add(M_UDP_FLOWS_EXPIRED, n);
	return n;
}

static void on_sweep(uv_timer_t *h) { udp_expire(uv_now(h->loop)); }

unsigned udp_flow_count(void) { return U.count; }

/* ---- flow operations ---- */

static void on_sent(uv_udp_send_t *req, int status)
{
	struct udp_send *s = (struct udp_send *)req;
	if (status < 0) {
		metrics_inc(M_UDP_SEND_ERRORS);
		log_notice("udp: send of %zu bytes failed: %s", s->len, uv_strerror(status));
	}
	free(s);
}

static int udp_flow_send(struct flow *f, const char *data, size_t len)
{
	struct udp_flow *u = f->impl;
	if (!u->l->open)
		return -1;
	if (len > UDP_BUF_SIZE - 1) {
		metrics_inc(M_UDP_SEND_ERRORS);
		log_notice("udp: %zu bytes do not fit a datagram to %s", len, f->peer_text);
		return -1;
	}
	touch(u);
	if (log_get_level() >= LOGL_DEBUG)
		log_debug("udp send to flow %llu %s:\n%.*s", (unsigned long long)f->id, f->peer_text,
			  (int)len, data);
	uv_buf_t buf = uv_buf_init((char *)data, (unsigned)len);
	const struct sockaddr *to = (const struct sockaddr *)&f->peer;
	/* Most datagrams leave at once; only a full socket buffer needs a copy and a callback. */
	int rc = uv_udp_try_send(&u->l->handle, &buf, 1, to);
	if (rc >= 0)
		return 0;
	if (rc != UV_EAGAIN) {
		metrics_inc(M_UDP_SEND_ERRORS);
		log_notice("udp: send to %s failed: %s", f->peer_text, uv_strerror(rc));
		return -1;
	}
	struct udp_send *s = malloc(sizeof(*s) + len);
	if (!s)
		return -1;
	s->len = len;
	memcpy(s->data, data, len);
	buf = uv_buf_init(s->data, (unsigned)len);
	rc = uv_udp_send(&s->req, &u->l->handle, &buf, 1, to, on_sent);
	if (rc < 0) {
		free(s);
		metrics_inc(M_UDP_SEND_ERRORS);
		log_notice("udp: send to %s failed: %s", f->peer_text, uv_strerror(rc));
		return -1;
	}
	return 0;
}

/* A UDP flow has no connection to wind down: closing it is forgetting the peer. */
static void udp_flow_close(struct flow *f) { udp_flow_free(f->impl); }

/* ---- receiving ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct udp_listener *l = h->data;
	*buf = uv_buf_init(l->buf, UDP_BUF_SIZE);
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
		    unsigned flags)
{
	struct udp_listener *l = h->data;
	if (nread < 0) {
		log_notice("udp %s:%d: receive error: %s", l->spec->host, l->spec->port,
			   uv_strerror((int)nread));
		return;
	}
	if (nread == 0 || !addr)
		return; /* nothing more to read, or an empty datagram */
	metrics_inc(M_UDP_DATAGRAMS_IN);
	if (flags & UV_UDP_PARTIAL) {
		metrics_inc(M_UDP_TRUNCATED);
		log_notice("udp %s:%d: datagram larger than %d bytes dropped", l->spec->host,
			   l->spec->port, UDP_BUF_SIZE - 1);
		return;
	}
	if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)
		return;
	struct udp_flow *u = flow_for(l, addr);
	if (!u)
		return;
	touch(u);
	flow_received(u->flow, (size_t)nread);
	U.receiver.message(U.receiver.ctx, u->flow, buf->base, (size_t)nread);
}

/* ---- listeners ---- */

static struct udp_listener *listener_for(int family)
{
	for (struct udp_listener *l = U.listeners; l; l = l->next) {
		if (!l->open)
			continue;
		bool v6 = strchr(l->spec->host, ':') != NULL;
		if (v6 == (family == AF_INET6))
			return l;
	}
	return NULL;
}

struct flow *udp_flow_get(const struct sockaddr *addr)
{
	if (!addr || (addr->sa_family != AF_INET && addr->sa_family != AF_INET6))
		return NULL;
	struct udp_listener *l = listener_for(addr->sa_family);
	if (!l) {
		log_notice("udp: no %s listener to send from", addr->sa_family == AF_INET6 ? "IPv6" : "IPv4");
		return NULL;
	}
	struct udp_flow *u = flow_for(l, addr);
	return u ? u->flow : NULL;
}

struct flow *udp_flow_sibling(struct flow *f, const struct sockaddr *addr)
{
	if (!f || f->proto != PROTO_UDP || !addr || addr->sa_family != f->peer.ss_family)
		return NULL;
	struct udp_flow *u = f->impl;
	if (!u->l->open)
		return NULL;
	struct udp_flow *s = flow_for(u->l, addr);
	return s ? s->flow : NULL;
}

static int listener_open(struct listen_spec *spec)
{
	struct sockaddr_storage ss;
	int rc = strchr(spec->host, ':') ? uv_ip6_addr(spec->host, spec->port, (struct sockaddr_in6 *)&ss)
					 : uv_ip4_addr(spec->host, spec->port, (struct sockaddr_in *)&ss);
	if (rc != 0) {
		log_error("udp: bad address %s", spec->host);
		return -1;
	}
	struct udp_listener *l = calloc(1, sizeof(*l));
	if (!l)
		return -1;
	l->buf = malloc(UDP_BUF_SIZE);
	if (!l->buf) {
		free(l);
		return -1;
	}
	l->spec = spec;
	uv_udp_init(U.loop, &l->handle);
	l->handle.data = l;
	l->open = true;
	l->next = U.listeners;
	U.listeners = l;
	/* IPv6 sockets take IPv6 only, so [::] and 0.0.0.0 can both be listeners. */
	unsigned flags = ss.ss_family == AF_INET6 ? UV_UDP_IPV6ONLY : 0;
	rc = uv_udp_bind(&l->handle, (const struct sockaddr *)&ss, flags);
	if (rc == 0)
		rc = uv_udp_recv_start(&l->handle, on_alloc, on_recv);
	if (rc != 0) {
		log_error("udp: cannot listen on %s:%d: %s", spec->host, spec->port, uv_strerror(rc));
		return -1;
	}
	/* Bigger socket buffers ride out bursts (retransmissions of many transactions at once). */
	int size = 4 * 1024 * 1024;
	uv_recv_buffer_size((uv_handle_t *)&l->handle, &size);
	struct sockaddr_storage bound;
	int blen = sizeof(bound);
	if (uv_udp_getsockname(&l->handle, (struct sockaddr *)&bound, &blen) == 0)
		spec->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
							       : ((struct sockaddr_in *)&bound)->sin_port);
	if (strchr(spec->host, ':'))
		printf("listening udp [%s]:%d\n", spec->host, spec->port);
	else
		printf("listening udp %s:%d\n", spec->host, spec->port);
	log_info("udp: listening on %s:%d", spec->host, spec->port);
	return 0;
}

const struct setting udp_settings[] = {
	SETTING_INT("udp.flow_idle_timeout", struct udp_config, udp_flow_idle, 600),
	SETTING_INT("udp.max_flows", struct udp_config, udp_max_flows, 65536),
	SETTING_END,
};

int udp_config_check(const struct udp_config *cfg)
{
	if (cfg->udp_flow_idle < 1 || cfg->udp_max_flows < 1) {
		log_error("config: udp.flow_idle_timeout and udp.max_flows must be positive");
		return 1;
	}
	return 0;
}

int udp_start(const struct udp_config *cfg, const struct transport_setup *setup)
{
	uv_loop_t *loop = setup->loop;
	U.receiver = setup->receiver;
	U.loop = loop;
	U.idle_ms = (uint64_t)cfg->udp_flow_idle * 1000;
	U.max_flows = (unsigned)cfg->udp_max_flows;
	int rc = 0;
	for (int i = 0; i < setup->n_listen && rc == 0; i++)
		if (setup->listen[i].proto == PROTO_UDP)
			rc = listener_open(&setup->listen[i]);
	if (!U.listeners)
		return rc;
	uv_timer_init(loop, &U.sweep);
	U.sweep_open = true;
	/* A quarter of the idle time: a flow outlives its timeout by at most that much. */
	uint64_t every = U.idle_ms / 4 < 250 ? 250 : U.idle_ms / 4;
	if (every > 30000)
		every = 30000;
	uv_timer_start(&U.sweep, on_sweep, every, every);
	return rc;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct udp_listener *l = h->data;
	free(l->buf);
	free(l);
}

void udp_stop(void)
{
	while (U.lru_head)
		udp_flow_free(U.lru_head);
	if (U.sweep_open) {
		U.sweep_open = false;
		uv_timer_stop(&U.sweep);
		uv_close((uv_handle_t *)&U.sweep, NULL);
	}
	struct udp_listener *l = U.listeners;
	U.listeners = NULL;
	while (l) {
		struct udp_listener *next = l->next;
		l->open = false;
		uv_udp_recv_stop(&l->handle);
		uv_close((uv_handle_t *)&l->handle, on_listener_closed);
		l = next;
	}
}
