/** @file ng.c  NG protocol client: cookies, retransmission, reply matching (ng.h). */
#include "media/ng.h"
#include "base/log.h"

#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NG_MAX_DATAGRAM 65536
#define COOKIE_LEN 24

struct ng_req {
	struct ng_client *client;
	struct ng_req *prev, *next; /* the client's requests in flight */
	uv_timer_t timer;	    /* retransmission and the final timeout */
	char cookie[COOKIE_LEN + 1];
	char *wire; /* cookie, space, dict */
	size_t wire_len;
	int sends;
	uint64_t started_us;
	ng_cb cb;
	void *arg;
};

struct ng_client {
	uv_udp_t udp;
	uv_loop_t *loop;
	struct sockaddr_storage addr;
	int timeout_ms;
	struct ng_req *reqs;
	int pending;
	uint64_t counter, dropped;
	char prefix[17]; /* random per client: a stray reply for a previous run never matches */
	char *rbuf;
};

static uint64_t now_us(uv_loop_t *loop)
{
	uv_update_time(loop);
	return uv_hrtime() / 1000;
}

static bool same_addr(const struct sockaddr *a, const struct sockaddr_storage *b)
{
	if (a->sa_family != b->ss_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
	return x->sin6_port == y->sin6_port &&
	       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

static void req_free_cb(uv_handle_t *h)
{
	struct ng_req *r = h->data;
	free(r->wire);
	free(r);
}

/* Take r out of its client and release it; the callback (if any) is the caller's business. */
static void req_end(struct ng_req *r)
{
	struct ng_client *c = r->client;
	if (r->prev)
		r->prev->next = r->next;
	else
		c->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	c->pending--;
	uv_timer_stop(&r->timer);
	uv_close((uv_handle_t *)&r->timer, req_free_cb);
}

static void send_done(uv_udp_send_t *s, int status)
{
	free(s);
}

static int req_transmit(struct ng_req *r)
{
	/* Each send carries its own copy of the bytes: it may still be queued in libuv when the
	 * request has ended (a reply to an earlier send) and been freed. */
	uv_udp_send_t *s = malloc(sizeof(*s) + r->wire_len);
	if (!s)
		return -1;
	char *copy = (char *)(s + 1);
	memcpy(copy, r->wire, r->wire_len);
	uv_buf_t b = uv_buf_init(copy, (unsigned)r->wire_len);
	int rc = uv_udp_send(s, &r->client->udp, &b, 1, (const struct sockaddr *)&r->client->addr, send_done);
	if (rc != 0) {
		free(s);
		return -1;
	}
	r->sends++;
	return 0;
}

static void on_timer(uv_timer_t *t)
{
	struct ng_req *r = t->data;
	if (r->sends < NG_SENDS && req_transmit(r) == 0)
		return; /* the repeating timer fires again */
	ng_cb cb = r->cb;
	void *arg = r->arg;
	uint64_t waited = now_us(r->client->loop) - r->started_us;
	req_end(r);
	cb(arg, NG_TIMEOUT, NULL, waited);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct ng_client *c = h->data;
	*buf = uv_buf_init(c->rbuf, NG_MAX_DATAGRAM);
}

static void on_recv(uv_udp_t *udp, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
		    unsigned flags)
{
	struct ng_client *c = udp->data;
	if (nread <= 0 || !from)
		return;
	if (!same_addr(from, &c->addr) || (flags & UV_UDP_PARTIAL)) {
		c->dropped++;
		return;
	}
	const char *sp = memchr(buf->base, ' ', (size_t)nread);
	if (!sp) {
		c->dropped++;
		return;
	}
	size_t clen = (size_t)(sp - buf->base);
	struct ng_req *r = c->reqs;
	while (r && !(clen == COOKIE_LEN && memcmp(r->cookie, buf->base, clen) == 0))
		r = r->next;
	if (!r) {
		c->dropped++; /* a late answer to a retransmission, or not ours */
		return;
	}
	struct bencode_doc doc;
	if (bencode_decode(&doc, sp + 1, (size_t)nread - clen - 1) != 0 || doc.root->type != BENCODE_DICT) {
		if (doc.items)
			bencode_doc_free(&doc);
		c->dropped++;
		log_warn("rtpengine: undecodable NG reply to %s (%zd bytes)", r->cookie, nread);
		return; /* a retransmission may still bring a good one */
	}
	ng_cb cb = r->cb;
	void *arg = r->arg;
	uint64_t latency = now_us(c->loop) - r->started_us;
	req_end(r);
	cb(arg, NG_REPLY, doc.root, latency);
	bencode_doc_free(&doc);
}

struct ng_client *ng_client_new(uv_loop_t *loop, const struct sockaddr *addr, int timeout_ms)
{
	struct ng_client *c = calloc(1, sizeof(*c));
	if (!c || !(c->rbuf = malloc(NG_MAX_DATAGRAM))) {
		free(c);
		return NULL;
	}
	c->loop = loop;
	c->timeout_ms = timeout_ms;
	memcpy(&c->addr, addr, addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							    : sizeof(struct sockaddr_in));
	unsigned char rnd[8];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memset(rnd, 0, sizeof(rnd));
	for (int i = 0; i < 8; i++)
		snprintf(c->prefix + 2 * i, 3, "%02x", rnd[i]);
	struct sockaddr_storage any = {0};
	any.ss_family = addr->sa_family; /* port 0 on the wildcard address of the same family */
	uv_udp_init(loop, &c->udp);
	c->udp.data = c;
	if (uv_udp_bind(&c->udp, (struct sockaddr *)&any, 0) != 0 ||
	    uv_udp_recv_start(&c->udp, on_alloc, on_recv) != 0) {
		log_error("rtpengine: cannot open an NG socket");
		ng_client_free(c);
		return NULL;
	}
	return c;
}

struct ng_req *ng_send(struct ng_client *c, const char *dict, size_t len, ng_cb cb, void *arg)
{
	struct ng_req *r = calloc(1, sizeof(*r));
	if (!r || !(r->wire = malloc(COOKIE_LEN + 1 + len))) {
		free(r);
		return NULL;
	}
	snprintf(r->cookie, sizeof(r->cookie), "%s%08llx", c->prefix, (unsigned long long)++c->counter);
	memcpy(r->wire, r->cookie, COOKIE_LEN);
	r->wire[COOKIE_LEN] = ' ';
	memcpy(r->wire + COOKIE_LEN + 1, dict, len);
	r->wire_len = COOKIE_LEN + 1 + len;
	r->client = c;
	r->cb = cb;
	r->arg = arg;
	r->started_us = now_us(c->loop);
	uv_timer_init(c->loop, &r->timer);
	r->timer.data = r;
	r->next = c->reqs;
	if (c->reqs)
		c->reqs->prev = r;
	c->reqs = r;
	c->pending++;
	/* A send that fails now is retried by the timer like a lost datagram. */
	(void)req_transmit(r);
	uint64_t interval = (uint64_t)(c->timeout_ms / NG_SENDS);
	if (interval < 1)
		interval = 1;
	uv_timer_start(&r->timer, on_timer, interval, interval);
	return r;
}

void ng_cancel(struct ng_req *r)
{
	if (r)
		req_end(r);
}

int ng_pending(const struct ng_client *c) { return c->pending; }
uint64_t ng_dropped(const struct ng_client *c) { return c->dropped; }

static void client_free_cb(uv_handle_t *h)
{
	struct ng_client *c = h->data;
	free(c->rbuf);
	free(c);
}

void ng_client_free(struct ng_client *c)
{
	if (!c)
		return;
	while (c->reqs)
		req_end(c->reqs);
	uv_close((uv_handle_t *)&c->udp, client_free_cb);
}
