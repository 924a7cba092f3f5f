/** @file flow.c  The flow table and flow tokens. */
#include "transport/flow.h"
#include "base/bytes.h"
#include "base/hmac.h"
#include "base/log.h"
#include "base/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FLOW_BUCKETS 4096 /* power of two */
#define MAX_OBSERVERS 8

static struct flow *table[FLOW_BUCKETS];
static uint64_t next_id = 1;
static unsigned count;
static unsigned char secret[32];
static struct hmac_key *token_key; /* HMAC-SHA256 under secret (base/hmac.h) */
static flow_gone_fn observers[MAX_OBSERVERS];
static int n_observers;

static unsigned bucket(uint64_t id) { return (unsigned)(id * 0x9E3779B97F4A7C15ULL >> 52) & (FLOW_BUCKETS - 1); }

const struct setting flow_settings[] = {
	SETTING_STRING("proxy.flow_token_secret", struct flow_config, flow_secret, ""),
	SETTING_END,
};

void flow_init(const struct flow_config *cfg)
{
	const char *configured_secret = cfg ? cfg->flow_secret : NULL;
	if (configured_secret && configured_secret[0]) {
		/* Derive a fixed-size key so any secret length works and survives restarts. */
		unsigned int n = 0;
		EVP_Digest(configured_secret, strlen(configured_secret), secret, &n, EVP_sha256(), NULL);
	} else if (RAND_bytes(secret, sizeof(secret)) != 1) {
		log_error("flow: no random bytes for the flow token key");
		abort();
	}
	hmac_key_free(token_key);
	if (!(token_key = hmac_key_new(secret, sizeof(secret)))) {
		log_error("flow: no HMAC-SHA256 for the flow tokens");
		abort();
	}
	/* Ids start at a random point so tokens from an earlier run do not name new flows. */
	uint32_t start;
	if (RAND_bytes((unsigned char *)&start, sizeof(start)) == 1)
		next_id = ((uint64_t)start << 20) | 1;
}

void flow_unmap_v4(struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr))
		return;
	struct sockaddr_in a4;
	memset(&a4, 0, sizeof(a4));
	a4.sin_family = AF_INET;
	a4.sin_port = a6->sin6_port;
	memcpy(&a4.sin_addr, &a6->sin6_addr.s6_addr[12], 4);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &a4, sizeof(a4));
}

bool flow_addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->sa_family != AF_INET6)
		return false;
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
	return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
	       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

void flow_on_gone(flow_gone_fn fn)
{
	if (n_observers < MAX_OBSERVERS)
		observers[n_observers++] = fn;
}

static void describe_peer(struct flow *f)
{
	int port = 0;
	if (f->peer.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&f->peer;
		inet_ntop(AF_INET, &a->sin_addr, f->peer_host, sizeof(f->peer_host));
		port = ntohs(a->sin_port);
		snprintf(f->peer_text, sizeof(f->peer_text), "%s:%d", f->peer_host, port);
	} else if (f->peer.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&f->peer;
		inet_ntop(AF_INET6, &a->sin6_addr, f->peer_host, sizeof(f->peer_host));
		port = ntohs(a->sin6_port);
		snprintf(f->peer_text, sizeof(f->peer_text), "[%s]:%d", f->peer_host, port);
	} else {
		snprintf(f->peer_host, sizeof(f->peer_host), "unknown");
		snprintf(f->peer_text, sizeof(f->peer_text), "unknown");
	}
	f->peer_port = port;
}

struct flow *flow_create(enum transport_proto proto, const struct sockaddr *peer,
			 const struct listen_spec *local, const struct flow_ops *ops, void *impl)
{
	struct flow *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->id = next_id++;
	f->proto = proto;
	if (peer)
		memcpy(&f->peer, peer,
		       peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	describe_peer(f);
	f->local = local;
	f->ops = ops;
	f->impl = impl;
	f->opened_at = f->active_at = time(NULL);
	unsigned b = bucket(f->id);
	f->hnext = table[b];
	table[b] = f;
	count++;
	metrics_set(M_FLOWS, count);
	log_info("flow %llu open: %s from %s (%u open)", (unsigned long long)f->id, proto_name(proto),
		 f->peer_text, count);
	return f;
}

void flow_destroy(struct flow *f)
{
	if (!f)
		return;
	for (int i = 0; i < n_observers; i++)
		observers[i](f);
	struct flow **pp = &table[bucket(f->id)];
	while (*pp && *pp != f)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = f->hnext;
	count--;
	metrics_set(M_FLOWS, count);
	log_info("flow %llu closed: %s from %s (%u open)", (unsigned long long)f->id,
		 proto_name(f->proto), f->peer_text, count);
	free(f);
}

struct flow *flow_find(uint64_t id)
{
	for (struct flow *f = table[bucket(id)]; f; f = f->hnext)
		if (f->id == id)
			return f->closing ? NULL : f;
	return NULL;
}

int flow_send(struct flow *f, const char *data, size_t len)
{
	if (!f || f->closing)
		return -1;
	int rc = f->ops->send(f, data, len);
	if (rc == 0) {
		metrics_inc(M_SIP_SENT);
		f->bytes_out += len;
		f->active_at = time(NULL);
	}
	return rc;
}

void flow_received(struct flow *f, size_t len)
{
	if (!f)
		return;
	f->bytes_in += len;
	f->active_at = time(NULL);
}

void flow_each(flow_each_fn fn, void *arg)
{
	for (unsigned b = 0; b < FLOW_BUCKETS; b++)
		for (const struct flow *f = table[b]; f; f = f->hnext)
			if (!f->closing)
				fn(f, arg);
}

void flow_close(struct flow *f)
{
	if (!f || f->closing)
		return;
	f->closing = true;
	f->ops->close(f);
}

unsigned flow_count(void) { return count; }

void flow_close_all(void)
{
	for (unsigned b = 0; b < FLOW_BUCKETS; b++) {
		struct flow *f = table[b];
		while (f) {
			struct flow *next = f->hnext;
			flow_close(f);
			f = next;
		}
	}
}

void flow_shutdown(void)
{
	/* Transports destroy their flows as they close; anything left is freed here. */
	for (unsigned b = 0; b < FLOW_BUCKETS; b++) {
		while (table[b])
			flow_destroy(table[b]);
	}
	OPENSSL_cleanse(secret, sizeof(secret));
	hmac_key_free(token_key);
	token_key = NULL;
}

/* The id's eight bytes, most significant first, then the first eight of their MAC. */
static void token_bytes(uint64_t id, unsigned char out[16])
{
	for (int i = 0; i < 8; i++)
		out[i] = (unsigned char)(id >> (56 - 8 * i));
	const void *piece[] = {out};
	const size_t len[] = {8};
	unsigned char mac[HMAC_SHA256_LEN];
	if (!token_key || hmac_sha256(token_key, piece, len, 1, mac) != 0) {
		log_error("flow: the flow token MAC failed");
		abort(); /* a token without its MAC would let anyone name any flow */
	}
	memcpy(out + 8, mac, 8);
}

void flow_token_make(uint64_t id, char out[FLOW_TOKEN_LEN + 1])
{
	unsigned char raw[16];
	token_bytes(id, raw);
	hex_lower(raw, sizeof(raw), out); /* "%016llx" and eight "%02x" */
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int flow_token_parse(const char *token, size_t len, uint64_t *id)
{
	if (!token || len != FLOW_TOKEN_LEN)
		return -1;
	unsigned char raw[16];
	for (int i = 0; i < 16; i++) {
		int hi = hexval(token[2 * i]), lo = hexval(token[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		raw[i] = (unsigned char)(hi << 4 | lo);
	}
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | raw[i];
	unsigned char want[16];
	token_bytes(v, want);
	if (CRYPTO_memcmp(want + 8, raw + 8, 8) != 0)
		return -1;
	*id = v;
	return 0;
}
