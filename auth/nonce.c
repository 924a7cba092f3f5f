/** @file nonce.c  HMAC-signed, timestamped digest nonces and the nonce-count replay table. */
#include "auth/nonce.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONCE_MAC_HEX 32
#define NONCE_SKEW 5 /* seconds a nonce may seem to come from the future (clock steps) */

static unsigned char key[32];
static bool have_key;

void nonce_init(const char *secret)
{
	if (secret && *secret) {
		/* A configured secret lets several nodes (or a restart) accept each other's nonces. */
		unsigned n = sizeof(key);
		EVP_Digest(secret, strlen(secret), key, &n, EVP_sha256(), NULL);
	} else if (RAND_bytes(key, sizeof(key)) != 1) {
		/* Without randomness, nonces would be forgeable: fall back on something unguessable
		 * enough to keep working, and let the caller have logged the failure. */
		for (size_t i = 0; i < sizeof(key); i++)
			key[i] = (unsigned char)(rand() ^ (int)(uintptr_t)&key[i]);
	}
	have_key = true;
}

static void to_hex(const unsigned char *raw, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[2 * n] = '\0';
}

/* The MAC over the first 32 hex digits (time and random) and the realm. */
static void nonce_mac(const char *head, const char *realm, char out[NONCE_MAC_HEX + 1])
{
	if (!have_key)
		nonce_init(NULL);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	char buf[512];
	int len = snprintf(buf, sizeof(buf), "%.32s:%s", head, realm ? realm : "");
	if (len < 0 || (size_t)len >= sizeof(buf))
		len = (int)sizeof(buf) - 1; /* a realm this long is cut: still bound to its prefix */
	HMAC(EVP_sha256(), key, sizeof(key), (const unsigned char *)buf, (size_t)len, mac, &n);
	to_hex(mac, NONCE_MAC_HEX / 2, out);
}

void nonce_make(const char *realm, time_t now, char out[NONCE_LEN + 1])
{
	unsigned char rnd[8] = {0};
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		memcpy(rnd, &now, sizeof(rnd) < sizeof(now) ? sizeof(rnd) : sizeof(now));
	snprintf(out, 17, "%016" PRIx64, (uint64_t)now);
	to_hex(rnd, sizeof(rnd), out + 16);
	nonce_mac(out, realm, out + 32);
}

static bool all_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

enum nonce_verdict nonce_check(const char *nonce, const char *realm, time_t now, int ttl, time_t *issued)
{
	if (!nonce || strlen(nonce) != NONCE_LEN || !all_lower_hex(nonce, NONCE_LEN))
		return NONCE_INVALID;
	char mac[NONCE_MAC_HEX + 1];
	nonce_mac(nonce, realm, mac);
	if (CRYPTO_memcmp(mac, nonce + 32, NONCE_MAC_HEX) != 0)
		return NONCE_INVALID;
	uint64_t t = 0;
	for (int i = 0; i < 16; i++)
		t = t << 4 | (uint64_t)(nonce[i] <= '9' ? nonce[i] - '0' : nonce[i] - 'a' + 10);
	if (t > (uint64_t)now + NONCE_SKEW)
		return NONCE_INVALID;
	if (issued)
		*issued = (time_t)t;
	if ((uint64_t)now > t + (uint64_t)(ttl > 0 ? ttl : 0))
		return NONCE_STALE;
	return NONCE_VALID;
}

/* ---- the nonce-count table ---- */

struct nc_entry {
	char nonce[NONCE_LEN + 1];
	time_t issued;
	uint32_t nc;
	struct nc_entry *hnext;
	struct nc_entry *older, *newer; /* insertion order, for expiry and eviction */
};

static struct {
	struct nc_entry **buckets;
	size_t nbuckets, count, max;
	struct nc_entry *oldest, *newest;
	time_t floor; /* unknown nonces issued at or before this may have been forgotten */
} T;

static size_t nc_hash(const char *nonce)
{
	/* The nonce is our own MAC'd value; FNV over it spreads well enough. */
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = nonce; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return (size_t)(h & (T.nbuckets - 1));
}

int nc_table_init(size_t max)
{
	nc_table_shutdown();
	if (max < 1)
		max = 1;
	size_t nb = 64;
	while (nb < max && nb < ((size_t)1 << 24))
		nb <<= 1;
	T.buckets = calloc(nb, sizeof(*T.buckets));
	if (!T.buckets)
		return -1;
	T.nbuckets = nb;
	T.max = max;
	return 0;
}

static void nc_unlink(struct nc_entry *e)
{
	struct nc_entry **pp = &T.buckets[nc_hash(e->nonce)];
	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = e->hnext;
	if (e->older)
		e->older->newer = e->newer;
	else
		T.oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		T.newest = e->older;
	T.count--;
	free(e);
}

void nc_table_shutdown(void)
{
	while (T.oldest)
		nc_unlink(T.oldest);
	free(T.buckets);
	memset(&T, 0, sizeof(T));
}

size_t nc_table_count(void) { return T.count; }

enum nc_verdict nc_table_use(const char *nonce, time_t issued, uint32_t nc, time_t now, int ttl)
{
	if (!T.buckets && nc_table_init(1024) != 0)
		return NC_FORGOTTEN;
	/* Expired nonces are refused by their time stamp: forgetting them is safe. */
	while (T.oldest && T.oldest->issued + ttl < now)
		nc_unlink(T.oldest);
	for (struct nc_entry *e = T.buckets[nc_hash(nonce)]; e; e = e->hnext) {
		if (strcmp(e->nonce, nonce) != 0)
			continue;
		if (nc <= e->nc)
			return NC_REPLAY;
		e->nc = nc;
		return NC_OK;
	}
	if (issued <= T.floor)
		return NC_FORGOTTEN;
	if (T.count >= T.max) {
		if (T.oldest->issued > T.floor)
			T.floor = T.oldest->issued;
		nc_unlink(T.oldest);
	}
	struct nc_entry *e = calloc(1, sizeof(*e));
	if (!e)
		return NC_FORGOTTEN;
	snprintf(e->nonce, sizeof(e->nonce), "%s", nonce);
	e->issued = issued;
	e->nc = nc;
	size_t b = nc_hash(e->nonce);
	e->hnext = T.buckets[b];
	T.buckets[b] = e;
	e->older = T.newest;
	if (T.newest)
		T.newest->newer = e;
	else
		T.oldest = e;
	T.newest = e;
	T.count++;
	return NC_OK;
}
