/** @file store.h  Where bindings persist: the small interface every binding store implements.
 *
 * The location table (location.c) is the truth while the daemon runs; a store is written
 * through on every change so that a restart (SQLite) or another node (Redis) can load the
 * bindings back. A store never calls back into the registrar except from load(). A binding is
 * identified by (aor, key); put replaces the record with the same identity.
 *
 * Implementations: memory (store_memory.c), sqlite (store_sqlite.c). Redis comes later and must
 * fit this.
 */
#ifndef SIPEDGE_STORE_H
#define SIPEDGE_STORE_H
#include "registrar/location.h"

struct store;

/** Called by load() once per stored binding; the binding is borrowed for the call. */
typedef void (*store_load_fn)(const struct binding *b, void *arg);

struct store_ops {
	const char *name; /* "memory", "sqlite", "redis" */
	/** Open with an implementation-specific spec (a file name, a URL; "" for memory). 0 = ok. */
	int (*open)(struct store *s, const char *spec);
	/** Insert or replace the binding (b->aor, b->key). 0 = ok. */
	int (*put)(struct store *s, const struct binding *b);
	/** Remove the binding (aor, key); removing an absent one is not an error. 0 = ok. */
	int (*del)(struct store *s, const char *aor, const char *key);
	/** Call fn for every stored binding (expired ones included: the caller drops them). */
	int (*load)(struct store *s, store_load_fn fn, void *arg);
	/** Release everything the store holds. */
	void (*close)(struct store *s);
};

struct store {
	const struct store_ops *ops;
	void *impl;
};

extern const struct store_ops store_memory_ops;
extern const struct store_ops store_sqlite_ops;

/** Open a store with ops and spec into s. 0 on success. */
int store_open(struct store *s, const struct store_ops *ops, const char *spec);
void store_close(struct store *s);
static inline int store_put(struct store *s, const struct binding *b) { return s->ops->put(s, b); }
static inline int store_del(struct store *s, const char *aor, const char *key)
{
	return s->ops->del(s, aor, key);
}
static inline int store_load(struct store *s, store_load_fn fn, void *arg) { return s->ops->load(s, fn, arg); }

#endif
