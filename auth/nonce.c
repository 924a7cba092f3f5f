/** @file nonce.c  HMAC-signed, timestamped digest nonces and the nonce-count replay table. */
#include "auth/nonce.h"
#include "base/bytes.h"
#include "base/hmac.h"
#include "base/log.h"
#include "base/metrics.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONCE_MAC_HEX 32
#define NONCE_SKEW 5 /* seconds a nonce may seem to come from the future (clock steps) */

static unsigned char key[32];
static struct hmac_key *mac_key; /* HMAC-SHA256 under key (base/hmac.h) */

void nonce_shutdown(void)
{
	hmac_key_free(mac_key);
	mac_key = NULL;
}

int nonce_init(const char *secret)
{
	nonce_shutdown();
	if (secret && *secret) {
		/* A configured secret lets several nodes (or a restart) accept each other's nonces. */
		unsigned n = sizeof(key);
		if (EVP_Digest(secret, strlen(secret), key, &n, EVP_sha256(), NULL) != 1)
			return -1;
	} else if (RAND_bytes(key, sizeof(key)) != 1) {
		/* Without randomness the key could be guessed and nonces forged: no key, no start. */
		return -1;
	}
	mac_key = hmac_key_new(key, sizeof(key));
	return mac_key ? 0 : -1;
}

#define MAC_INPUT_MAX 511 /* a longer realm is cut: the MAC is still bound to its prefix */

/* The MAC over the first 32 hex digits (time and random), ":" and the realm. */
static void nonce_mac(const char *head, const char *realm, char out[NONCE_MAC_HEX + 1])
{
	if (!mac_key && nonce_init(NULL) != 0) {
		log_error("auth: no random bytes for the nonce key");
		abort(); /* a forgeable nonce is worse than no service */
	}
	size_t hlen = strnlen(head, 32);
	size_t rlen = realm ? strlen(realm) : 0;
	if (rlen > MAC_INPUT_MAX - hlen - 1)
		rlen = MAC_INPUT_MAX - hlen - 1;
	const void *piece[] = {head, ":", realm};
	const size_t len[] = {hlen, 1, rlen};
	unsigned char mac[HMAC_SHA256_LEN];
	if (hmac_sha256(mac_key, piece, len, 3, mac) != 0) {
		log_error("auth: the nonce MAC failed");
		abort(); /* no MAC, no way to tell our nonces from forged ones */
	}
	hex_lower(mac, NONCE_MAC_HEX / 2, out);
}

static uint32_t nc_issue(time_t now);
static uint32_t nc_epoch(void);

void nonce_make(const char *realm, time_t now, char out[NONCE_LEN + 1])
{
	/* Uniqueness comes from the table's epoch and the issue number; unforgeability from the
	 * MAC. The issue number is what the nc table indexes, so that a nonce costs no memory
	 * until it is used and its slot is known without a search. */
	uint32_t seq = nc_issue(now);
	uint32_t epoch = nc_epoch();
	unsigned char head[16];
	for (int i = 0; i < 8; i++)
		head[i] = (unsigned char)((uint64_t)now >> (56 - 8 * i));
	for (int i = 0; i < 4; i++) {
		head[8 + i] = (unsigned char)(epoch >> (24 - 8 * i));
		head[12 + i] = (unsigned char)(seq >> (24 - 8 * i));
	}
	hex_lower(head, sizeof(head), out); /* "%016" PRIx64 "%08" PRIx32 "%08" PRIx32 */
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

/* ---- the nonce-count table ----
 *
 * Our own nonces carry the epoch of the table and an issue number. The table is a ring of
 * one byte per issue number (the highest nc seen, 0 = never used), so every nonce issued in
 * the last `slots` challenges is tracked exactly, however long its client takes to answer and
 * however many other nonces are used meanwhile: a correct answer is never refused for the
 * table's sake, a replayed nc always is. Issuing a nonce reclaims the slot of the one issued
 * `slots` challenges before; a nonce that old is refused as forgotten (NC_FORGOTTEN: a new
 * challenge with stale=true), and if it was used and still fresh that counts as an eviction
 * (sipedge_auth_nonces_evicted_total: the table is too small for the challenge rate).
 *
 * A slot holds nc up to 254; a nonce used more often moves to the hash table (NC_IN_HASH).
 * The hash table also tracks nonces of another epoch: made by another node that shares
 * auth.nonce_secret, or by an earlier run. Those carry no slot, so the hash keeps them with a
 * floor: when full it drops the oldest, and every unknown foreign nonce issued no later than it
 * is refused as forgotten, so forgetting never lets a replay through.
 */

#define NC_IN_HASH 255
#define NC_BLOCK 1024 /* issue numbers per recorded issue time (for the eviction counter) */
#define NC_HASH_MAX 65536

struct nc_entry {
	char nonce[NONCE_LEN + 1];
	time_t issued;
	uint32_t nc;
	struct nc_entry *hnext;
	struct nc_entry *older, *newer; /* insertion order, for expiry and eviction */
};

static struct {
	/* the ring of our own nonces */
	uint8_t *ring;
	uint32_t slots; /* a power of two, so issue numbers wrap around 2^32 consistently */
	uint32_t block; /* issue numbers per entry of block_time */
	time_t *block_time; /* when the first nonce of each block of the ring was issued */
	time_t reclaim_time; /* issue time of the block being reclaimed now */
	uint32_t epoch, next; /* next: the issue number of the next nonce */
	size_t used; /* slots holding an nc */
	int ttl;
	/* the hash of nonces used more than 254 times and of foreign nonces */
	struct nc_entry **buckets;
	size_t nbuckets, count, max;
	struct nc_entry *oldest, *newest;
	time_t floor; /* unknown foreign nonces issued at or before this may have been forgotten */
} T;

static size_t nc_hash(const char *nonce)
{
	/* The nonce is our own MAC'd value; FNV over it spreads well enough. */
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = nonce; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return (size_t)(h & (T.nbuckets - 1));
}

static uint32_t pow2_at_least(size_t n)
{
	uint32_t p = 64;
	while (p < n && p < ((uint32_t)1 << 30))
		p <<= 1;
	return p;
}

static uint32_t random_u32(void)
{
	uint32_t v = 0;
	if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
		v = (uint32_t)rand() ^ (uint32_t)time(NULL);
	return v;
}

int nc_table_init(size_t max, int ttl)
{
	nc_table_shutdown();
	T.slots = pow2_at_least(max);
	T.block = T.slots < NC_BLOCK ? T.slots : NC_BLOCK;
	T.ring = calloc(T.slots, 1); /* untouched pages cost nothing until challenges reach them */
	T.block_time = calloc(T.slots / T.block, sizeof(*T.block_time));
	T.max = max < NC_HASH_MAX ? (max ? max : 1) : NC_HASH_MAX;
	size_t nb = 64;
	while (nb < T.max)
		nb <<= 1;
	T.buckets = calloc(nb, sizeof(*T.buckets));
	if (!T.ring || !T.block_time || !T.buckets) {
		nc_table_shutdown();
		return -1;
	}
	T.nbuckets = nb;
	T.ttl = ttl > 0 ? ttl : 1;
	/* A new epoch: nonces of an earlier table are foreign to this one, never read as slots. */
	T.epoch = random_u32();
	T.next = random_u32();
	return 0;
}

static bool nc_ready(void) { return T.ring || nc_table_init(1024, 300) == 0; }

static uint32_t nc_epoch(void) { return nc_ready() ? T.epoch : 0; }

/* The issue number for a nonce made now; its slot forgets the nonce made `slots` before. */
static uint32_t nc_issue(time_t now)
{
	if (!nc_ready())
		return 0;
	uint32_t seq = T.next++, slot = seq & (T.slots - 1);
	if (slot % T.block == 0) {
		/* 0: the block began before the table did; its nonces count as fresh. */
		time_t t = T.block_time[slot / T.block];
		T.reclaim_time = t ? t : now;
		T.block_time[slot / T.block] = now;
	}
	if (T.ring[slot] != 0) {
		T.used -= T.ring[slot] != NC_IN_HASH;
		if (T.reclaim_time + T.ttl >= now)
			metrics_inc(M_AUTH_NONCES_EVICTED);
	}
	T.ring[slot] = 0;
	return seq;
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
	free(T.ring);
	free(T.block_time);
	memset(&T, 0, sizeof(T));
}

size_t nc_table_count(void) { return T.count + T.used; }

static struct nc_entry *hash_find(const char *nonce)
{
	for (struct nc_entry *e = T.buckets[nc_hash(nonce)]; e; e = e->hnext)
		if (strcmp(e->nonce, nonce) == 0)
			return e;
	return NULL;
}

/* Record a nonce in the hash; when full the oldest goes and raises the floor. */
static bool hash_insert(const char *nonce, time_t issued, uint32_t nc, time_t now)
{
	if (T.count >= T.max) {
		if (T.oldest->issued > T.floor)
			T.floor = T.oldest->issued;
		if (T.oldest->issued + T.ttl >= now)
			metrics_inc(M_AUTH_NONCES_EVICTED);
		nc_unlink(T.oldest);
	}
	struct nc_entry *e = calloc(1, sizeof(*e));
	if (!e)
		return false;
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
	return true;
}

static enum nc_verdict hash_use(struct nc_entry *e, uint32_t nc)
{
	if (nc <= e->nc)
		return NC_REPLAY;
	e->nc = nc;
	return NC_OK;
}

static uint32_t hex_u32(const char *eight_digits)
{
	char buf[9];
	memcpy(buf, eight_digits, 8);
	buf[8] = '\0';
	return (uint32_t)strtoul(buf, NULL, 16);
}

/* Made by this table (its epoch)? nonce_check has verified the MAC, so the digits are ours. */
static bool own_epoch(const char *nonce)
{
	return strlen(nonce) == NONCE_LEN && all_lower_hex(nonce + 16, 16) && hex_u32(nonce + 16) == T.epoch;
}

static enum nc_verdict own_use(const char *nonce, time_t issued, uint32_t nc, time_t now)
{
	uint32_t seq = hex_u32(nonce + 24);
	uint32_t age = T.next - seq; /* wraps with the issue numbers */
	if (age == 0 || age > T.slots)
		return NC_FORGOTTEN; /* its slot went to a newer nonce */
	uint8_t *slot = &T.ring[seq & (T.slots - 1)];
	if (*slot == NC_IN_HASH) {
		struct nc_entry *e = hash_find(nonce);
		return e ? hash_use(e, nc) : NC_FORGOTTEN; /* dropped from the hash: cannot tell */
	}
	if (nc <= *slot)
		return NC_REPLAY;
	T.used += *slot == 0;
	if (nc < NC_IN_HASH) {
		*slot = (uint8_t)nc;
		return NC_OK;
	}
	T.used--;
	if (!hash_insert(nonce, issued, nc, now)) {
		*slot = 0;
		return NC_FORGOTTEN;
	}
	*slot = NC_IN_HASH;
	return NC_OK;
}

static enum nc_verdict foreign_use(const char *nonce, time_t issued, uint32_t nc, time_t now)
{
	struct nc_entry *e = hash_find(nonce);
	if (e)
		return hash_use(e, nc);
	if (issued <= T.floor)
		return NC_FORGOTTEN;
	return hash_insert(nonce, issued, nc, now) ? NC_OK : NC_FORGOTTEN;
}

enum nc_verdict nc_table_use(const char *nonce, time_t issued, uint32_t nc, time_t now)
{
	if (!nc_ready())
		return NC_FORGOTTEN;
	/* Expired nonces are refused by their time stamp: forgetting them is safe. */
	while (T.oldest && T.oldest->issued + T.ttl < now)
		nc_unlink(T.oldest);
	if (own_epoch(nonce))
		return own_use(nonce, issued, nc, now);
	return foreign_use(nonce, issued, nc, now);
}
