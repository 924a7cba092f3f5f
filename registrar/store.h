/** @file store.h  Where bindings persist: the small interface every binding store implements.
 *
 * The location table (location.c) is the truth while the daemon runs; a store is written
 * through on every change so that a restart (SQLite, Redis) or another node (Redis) can load the
 * bindings back. A store never calls back into the registrar except from load() and through the
 * completion of commit(). A binding is identified by (aor, key); put replaces the record with the
 * same identity.
 *
 * The durability rule: a REGISTER is answered 200 only once what it changed is stored. The
 * registrar brackets the writes of one request with begin() and commit(); commit() calls its
 * done function once every write since begin() is durable (SQLite: its transaction committed;
 * Redis: the server acknowledged the MULTI/EXEC), or has failed. done may run before commit()
 * returns (the memory store) or later from the loop. Writes outside a bracket (expiry, a closed
 * flow) go the same way but nobody waits for them.
 *
 * Implementations: memory (store_memory.c), sqlite (store_sqlite.c), redis (store_redis.c).
 */
#ifndef SIPEDGE_STORE_H
#define SIPEDGE_STORE_H
#include "registrar/location.h"

#include <stdbool.h>
#include <stddef.h>

struct store;

/** Called by load() once per stored binding; the binding is borrowed for the call. */
typedef void (*store_load_fn)(const struct binding *b, void *arg);

/** How a group of writes ended: a SIP status for the REGISTER that waits on it. */
enum store_status {
	STORE_OK = 0,		  /* durable */
	STORE_FAILED = 500,	  /* the store refused or lost the writes */
	STORE_UNAVAILABLE = 503,  /* the store could not be reached (try again later) */
};
typedef void (*store_done_fn)(enum store_status status, void *arg);

/** What open() gets besides its spec: settings some stores need. */
struct store_params {
	const char *spec;     /* a file name (sqlite), a URL (redis), "" (memory) */
	const char *password; /* redis AUTH; "" = none, or the one in the URL */
	const char *node;     /* this node's name (cluster.node_id), recorded with every binding */
	int batch_ms;	      /* sqlite: how long a group commit collects writes */
	int timeout_ms;	      /* redis: how long one MULTI/EXEC may wait for its reply (0 = 2000) */
};

struct store_ops {
	const char *name; /* "memory", "sqlite", "redis" */
	/** Open (and, for a network store, connect). 0 = ok. */
	int (*open)(struct store *s, const struct store_params *p);
	/** Insert or replace the binding (b->aor, b->key). 0 = queued (or done). */
	int (*put)(struct store *s, const struct binding *b);
	/** Remove the binding (aor, key); removing an absent one is not an error. 0 = queued. */
	int (*del)(struct store *s, const char *aor, const char *key);
	/** Call fn for every stored binding of this node (expired ones included: the caller drops
	 *  them). Runs at start, before the loop. */
	int (*load)(struct store *s, store_load_fn fn, void *arg);
	/** Open a group of writes; NULL when every write is a group of its own anyway. */
	void (*begin)(struct store *s);
	/** Close the group: done(status, arg) once it is durable or failed (see above). */
	void (*commit)(struct store *s, store_done_fn done, void *arg);
	/** false while writes cannot succeed (Redis unreachable); NULL = always true. */
	bool (*ready)(struct store *s);
	/** Finish what is pending (the waiting done functions run) and release everything. */
	void (*close)(struct store *s);
};

struct store {
	const struct store_ops *ops;
	void *impl;
};

extern const struct store_ops store_memory_ops;
extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_redis_ops;

/** A Redis address, redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] (port 6379 and database 0 when
 *  left out). The password runs to the last '@' and its %XX escapes are decoded. The strings are
 *  malloc'ed; password is NULL when the URL has none. */
struct redis_addr {
	char *host, *password;
	int port, db;
};
int redis_addr_parse(const char *url, struct redis_addr *a);
struct redisReply;
/** A binding hash as HGETALL returns it (the keys store_redis writes) into b, and the node that
 *  holds its flow into *node. The strings are borrowed from the reply. 0, or -1 if the hash is
 *  gone or lacks a field every binding has. Shared by loading and the cluster's cache. */
int store_redis_binding(const struct redisReply *h, struct binding *b, const char **node);
void redis_addr_clear(struct redis_addr *a);
/** url for a log line: a password in it (between "redis://…:" and the last '@') becomes "***";
 *  any other text is copied as it is. Truncated to fit out[n]; returns out. */
const char *redis_url_masked(const char *url, char *out, size_t n);
/** The pub/sub channel every binding change of database DB is announced on (its message: the
 *  AOR), so that the other nodes sharing the store read that AOR again (cluster/cluster.c). */
#define STORE_REDIS_CHANNEL "sipedge:changes:%d"

/** The implementation called name ("memory", "sqlite", "redis"), or NULL. */
const struct store_ops *store_find(const char *name);
/** Open a store with ops and p into s. 0 on success. */
int store_open(struct store *s, const struct store_ops *ops, const struct store_params *p);
void store_close(struct store *s);
static inline int store_put(struct store *s, const struct binding *b) { return s->ops->put(s, b); }
static inline int store_del(struct store *s, const char *aor, const char *key)
{
	return s->ops->del(s, aor, key);
}
static inline int store_load(struct store *s, store_load_fn fn, void *arg) { return s->ops->load(s, fn, arg); }
static inline void store_begin(struct store *s)
{
	if (s->ops->begin)
		s->ops->begin(s);
}
static inline void store_commit(struct store *s, store_done_fn done, void *arg) { s->ops->commit(s, done, arg); }
static inline bool store_ready(struct store *s) { return !s->ops->ready || s->ops->ready(s); }

#endif
