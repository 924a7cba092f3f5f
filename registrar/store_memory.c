/** @file store_memory.c  The in-memory binding store: copies of bindings hashed by (aor, key).
 *
 * The reference implementation of store.h: it keeps what a persistent store would write, so the
 * registrar's write-through path and the interface's contract (put replaces, del of an absent
 * record is fine, load returns everything) are exercised and tested before SQLite and Redis
 * exist. It lives as long as the process: nothing survives a restart.
 */
#include "registrar/store.h"
#include "base/bytes.h"

#include <stdlib.h>
#include <string.h>

/* Buckets double when there are twice as many records (a power of two, never fewer than this):
 * a fixed table made every put a walk along a chain once bindings ran into the ten thousands. */
#define MEM_MIN_BUCKETS 1024

struct mem_rec {
	struct binding b;
	unsigned hash;
	struct mem_rec *next;
};

struct mem_store {
	struct mem_rec **buckets;
	unsigned nbuckets;
	unsigned count;
};

static unsigned rec_hash(const char *aor, const char *key)
{
	return fnv1a_str(fnv1a(fnv1a_str(FNV1A_INIT, aor), "\n", 1), key);
}

static struct mem_rec **rec_slot(struct mem_store *m, const char *aor, const char *key, unsigned h)
{
	struct mem_rec **pp = &m->buckets[h & (m->nbuckets - 1)];
	while (*pp && !((*pp)->hash == h && strcmp((*pp)->b.aor, aor) == 0 && strcmp((*pp)->b.key, key) == 0))
		pp = &(*pp)->next;
	return pp;
}

/* Rehash into twice the buckets; on allocation failure the table stays as it is (still right,
 * only slower). */
static void mem_grow(struct mem_store *m)
{
	unsigned n = m->nbuckets * 2;
	struct mem_rec **nb = calloc(n, sizeof(*nb));
	if (!nb)
		return;
	for (unsigned i = 0; i < m->nbuckets; i++) {
		struct mem_rec *r = m->buckets[i];
		while (r) {
			struct mem_rec *next = r->next;
			r->next = nb[r->hash & (n - 1)];
			nb[r->hash & (n - 1)] = r;
			r = next;
		}
	}
	free(m->buckets);
	m->buckets = nb;
	m->nbuckets = n;
}

static int mem_open(struct store *s, const struct store_params *p)
{
	struct mem_store *m = calloc(1, sizeof(*m));
	if (m)
		m->buckets = calloc(MEM_MIN_BUCKETS, sizeof(*m->buckets));
	if (!m || !m->buckets) {
		free(m);
		return -1;
	}
	m->nbuckets = MEM_MIN_BUCKETS;
	s->impl = m;
	return 0;
}

static int mem_put(struct store *s, const struct binding *b)
{
	struct mem_store *m = s->impl;
	if (!b->aor || !b->key)
		return -1;
	unsigned h = rec_hash(b->aor, b->key);
	struct mem_rec **pp = rec_slot(m, b->aor, b->key, h);
	struct binding copy;
	if (location_binding_copy(&copy, b) != 0)
		return -1;
	if (*pp) {
		location_binding_clear(&(*pp)->b);
		(*pp)->b = copy;
		return 0;
	}
	struct mem_rec *r = calloc(1, sizeof(*r));
	if (!r) {
		location_binding_clear(&copy);
		return -1;
	}
	r->b = copy;
	r->hash = h;
	*pp = r;
	if (++m->count > 2 * m->nbuckets)
		mem_grow(m);
	return 0;
}

static int mem_del(struct store *s, const char *aor, const char *key)
{
	struct mem_store *m = s->impl;
	struct mem_rec **pp = rec_slot(m, aor, key, rec_hash(aor, key));
	struct mem_rec *r = *pp;
	if (r) {
		*pp = r->next;
		location_binding_clear(&r->b);
		free(r);
		m->count--;
	}
	return 0;
}

static int mem_load(struct store *s, store_load_fn fn, void *arg)
{
	struct mem_store *m = s->impl;
	for (unsigned i = 0; i < m->nbuckets; i++)
		for (struct mem_rec *r = m->buckets[i]; r; r = r->next)
			fn(&r->b, arg);
	return 0;
}

/* Nothing to wait for: what is in memory is all this store promises. */
static void mem_commit(struct store *s, store_done_fn done, void *arg) { done(STORE_OK, arg); }

static void mem_close(struct store *s)
{
	struct mem_store *m = s->impl;
	if (!m)
		return;
	for (unsigned i = 0; i < m->nbuckets; i++) {
		struct mem_rec *r = m->buckets[i];
		while (r) {
			struct mem_rec *next = r->next;
			location_binding_clear(&r->b);
			free(r);
			r = next;
		}
	}
	free(m->buckets);
	free(m);
	s->impl = NULL;
}

const struct store_ops store_memory_ops = {
	.name = "memory",
	.open = mem_open,
	.put = mem_put,
	.del = mem_del,
	.load = mem_load,
	.commit = mem_commit,
	.close = mem_close,
};

const struct store_ops *store_find(const char *name)
{
	static const struct store_ops *const all[] = {&store_memory_ops, &store_sqlite_ops, &store_redis_ops};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (strcmp(all[i]->name, name) == 0)
			return all[i];
	return NULL;
}

int store_open(struct store *s, const struct store_ops *ops, const struct store_params *p)
{
	s->ops = ops;
	s->impl = NULL;
	return ops->open(s, p);
}

void store_close(struct store *s)
{
	if (s->ops)
		s->ops->close(s);
	s->ops = NULL;
}
