/** @file store_sqlite.c  Bindings in an SQLite file, so that a restart finds them again.
 *
 * One table, one row per binding, keyed by (aor, key). Writes are group-committed: the first put
 * or del after a quiet spell opens a transaction that a timer commits registrar.store_batch_ms
 * later, so a burst of REGISTERs costs one commit. The REGISTERs of a batch wait for it
 * (commit() queues their done functions, which run once COMMIT has returned): a 200 is never
 * sent for a binding a crash could still lose. The file is in WAL mode with synchronous=FULL, so
 * a returned COMMIT is on disk, not only in the kernel's cache; that flush is paid once per batch.
 * A failed batch is rolled back and every REGISTER in it answered 500. A clean stop commits
 * the last batch and answers its REGISTERs.
 */
#include "registrar/store.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/metrics.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

struct waiter {
	store_done_fn done;
	void *arg;
};

struct sqlite_store {
	sqlite3 *db;
	sqlite3_stmt *put, *del;
	bool in_txn;
	bool txn_failed; /* a write of the open batch failed: it is rolled back, not committed */
	uv_timer_t commit;
	bool timer_open;
	int batch_ms;
	char *path;
	struct waiter *waiters; /* the REGISTERs whose answers wait for the open batch */
	size_t nwaiters, capwaiters;
};

static const char SCHEMA[] =
	"CREATE TABLE IF NOT EXISTS bindings ("
	" aor TEXT NOT NULL, key TEXT NOT NULL, contact TEXT NOT NULL, uri TEXT NOT NULL,"
	" instance TEXT, reg_id INTEGER NOT NULL, q INTEGER NOT NULL, flow_id INTEGER NOT NULL,"
	" path TEXT, call_id TEXT, cseq INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
	" outbound INTEGER NOT NULL, connection INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
	" reg_epoch INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (aor, key)) WITHOUT ROWID";
/* A database from before reg_epoch (RFC 5627 temp-gruus) gains the column; "duplicate column"
 * from a current one is ignored. Its bindings load with 0, and location_add draws an epoch. */
static const char SCHEMA_EPOCH[] = "ALTER TABLE bindings ADD COLUMN reg_epoch INTEGER NOT NULL DEFAULT 0";

static const char PUT[] = "INSERT OR REPLACE INTO bindings (aor, key, contact, uri, instance, reg_id, q,"
			  " flow_id, path, call_id, cseq, expires_at, outbound, connection, updated_at, reg_epoch)"
			  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";
static const char DEL[] = "DELETE FROM bindings WHERE aor = ?1 AND key = ?2";
static const char LOAD[] = "SELECT aor, key, contact, uri, instance, reg_id, q, flow_id, path, call_id,"
			   " cseq, expires_at, outbound, connection, updated_at, reg_epoch FROM bindings";

static int add_epoch_column(sqlite3 *db)
{
	int rc = sqlite3_exec(db, SCHEMA_EPOCH, NULL, NULL, NULL);
	return rc != SQLITE_OK && strstr(sqlite3_errmsg(db), "duplicate column") ? SQLITE_OK : rc;
}

static void failed(struct sqlite_store *q, const char *what)
{
	metrics_inc(M_REG_STORE_ERRORS);
	log_error("registrar: store sqlite %s: %s: %s", q->path, what, sqlite3_errmsg(q->db));
}

/* The batch is over (committed, or not): answer everyone who waited for it. The list is taken
 * first, as a done function may start the next batch. */
static void release_waiters(struct sqlite_store *q, enum store_status status)
{
	struct waiter *w = q->waiters;
	size_t n = q->nwaiters;
	q->waiters = NULL;
	q->nwaiters = q->capwaiters = 0;
	for (size_t i = 0; i < n; i++)
		w[i].done(status, w[i].arg);
	free(w);
}

static void commit(struct sqlite_store *q)
{
	if (!q->in_txn)
		return;
	q->in_txn = false;
	enum store_status status = STORE_OK;
	if (q->txn_failed || sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		if (!q->txn_failed)
			failed(q, "commit");
		sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
		status = STORE_FAILED;
	} else {
		metrics_inc(M_REG_STORE_COMMITS);
	}
	q->txn_failed = false;
	release_waiters(q, status);
}

static void on_commit_timer(uv_timer_t *t) { commit(t->data); }

/* Writes join the open batch, or open one and set its commit going. */
static int begin(struct sqlite_store *q)
{
	if (q->in_txn)
		return 0;
	if (sqlite3_exec(q->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		failed(q, "begin");
		return -1;
	}
	q->in_txn = true;
	if (q->timer_open)
		uv_timer_start(&q->commit, on_commit_timer, (uint64_t)q->batch_ms, 0);
	return 0;
}

/* The REGISTER's writes are in the open batch (or failed at once): it waits for the commit. */
static void sq_commit(struct store *s, store_done_fn done, void *arg)
{
	struct sqlite_store *q = s->impl;
	if (!q->in_txn) {
		done(STORE_OK, arg); /* nothing written (or all of it committed already) */
		return;
	}
	if (q->nwaiters == q->capwaiters) {
		size_t cap = q->capwaiters ? q->capwaiters * 2 : 64;
		struct waiter *w = realloc(q->waiters, cap * sizeof(*w));
		if (!w) {
			done(STORE_FAILED, arg);
			return;
		}
		q->waiters = w;
		q->capwaiters = cap;
	}
	q->waiters[q->nwaiters++] = (struct waiter){done, arg};
}

static void on_timer_closed(uv_handle_t *h) { free(h->data); }

static void release(struct sqlite_store *q)
{
	sqlite3_finalize(q->put);
	sqlite3_finalize(q->del);
	sqlite3_close(q->db);
	free(q->path);
	if (q->timer_open) {
		uv_timer_stop(&q->commit);
		uv_close((uv_handle_t *)&q->commit, on_timer_closed); /* frees q */
	} else {
		free(q);
	}
}

static int sq_open(struct store *s, const struct store_params *p)
{
	const char *spec = p->spec;
	struct sqlite_store *q = calloc(1, sizeof(*q));
	if (!q)
		return -1;
	q->path = strdup(spec);
	if (!q->path || !*spec) {
		log_error("registrar: store sqlite needs a file (registrar.store_path)");
		free(q->path);
		free(q);
		return -1;
	}
	if (sqlite3_open_v2(spec, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK ||
	    sqlite3_exec(q->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;", NULL, NULL,
			 NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(q->db, 1000) != SQLITE_OK ||
	    sqlite3_exec(q->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK ||
	    add_epoch_column(q->db) != SQLITE_OK ||
	    sqlite3_prepare_v2(q->db, PUT, -1, &q->put, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(q->db, DEL, -1, &q->del, NULL) != SQLITE_OK) {
		log_error("registrar: store sqlite %s: cannot open: %s", spec,
			  q->db ? sqlite3_errmsg(q->db) : "out of memory");
		release(q);
		return -1;
	}
	uv_timer_init(loop_get(), &q->commit);
	q->commit.data = q;
	q->timer_open = true;
	q->batch_ms = p->batch_ms > 0 ? p->batch_ms : 0;
	s->impl = q;
	return 0;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static int run(struct sqlite_store *q, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE) {
		failed(q, what);
		q->txn_failed = true; /* what the batch acknowledges must be all of it */
		return -1;
	}
	return 0;
}

static int sq_put(struct store *s, const struct binding *b)
{
	struct sqlite_store *q = s->impl;
	if (!b->aor || !b->key || !b->contact || !b->uri || begin(q) != 0)
		return -1;
	sqlite3_stmt *st = q->put;
	bind_text(st, 1, b->aor);
	bind_text(st, 2, b->key);
	bind_text(st, 3, b->contact);
	bind_text(st, 4, b->uri);
	bind_text(st, 5, b->instance);
	sqlite3_bind_int(st, 6, b->reg_id);
	sqlite3_bind_int(st, 7, b->q);
	sqlite3_bind_int64(st, 8, (sqlite3_int64)b->flow_id);
	bind_text(st, 9, b->path);
	bind_text(st, 10, b->call_id);
	sqlite3_bind_int64(st, 11, b->cseq);
	sqlite3_bind_int64(st, 12, (sqlite3_int64)b->expires_at);
	sqlite3_bind_int(st, 13, b->outbound);
	sqlite3_bind_int(st, 14, b->connection);
	sqlite3_bind_int64(st, 15, (sqlite3_int64)b->updated_at);
	sqlite3_bind_int64(st, 16, (sqlite3_int64)b->reg_epoch);
	return run(q, st, "put");
}

static int sq_del(struct store *s, const char *aor, const char *key)
{
	struct sqlite_store *q = s->impl;
	if (begin(q) != 0)
		return -1;
	bind_text(q->del, 1, aor);
	bind_text(q->del, 2, key);
	return run(q, q->del, "delete");
}

static char *column_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *v = sqlite3_column_text(st, i);
	return v ? strdup((const char *)v) : NULL;
}

static int sq_load(struct store *s, store_load_fn fn, void *arg)
{
	struct sqlite_store *q = s->impl;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(q->db, LOAD, -1, &st, NULL) != SQLITE_OK) {
		failed(q, "load");
		return -1;
	}
	/* Read every row first: fn may write to the store (stale records go), and a table must not
	 * change under a running SELECT. */
	struct binding *all = NULL;
	size_t n = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			struct binding *grown = realloc(all, cap * sizeof(*all));
			if (!grown)
				break;
			all = grown;
		}
		struct binding *b = &all[n++];
		*b = (struct binding){
			.aor = column_dup(st, 0),
			.key = column_dup(st, 1),
			.contact = column_dup(st, 2),
			.uri = column_dup(st, 3),
			.instance = column_dup(st, 4),
			.reg_id = sqlite3_column_int(st, 5),
			.q = sqlite3_column_int(st, 6),
			.flow_id = (uint64_t)sqlite3_column_int64(st, 7),
			.path = column_dup(st, 8),
			.call_id = column_dup(st, 9),
			.cseq = (uint32_t)sqlite3_column_int64(st, 10),
			.expires_at = (time_t)sqlite3_column_int64(st, 11),
			.outbound = sqlite3_column_int(st, 12) != 0,
			.connection = sqlite3_column_int(st, 13) != 0,
			.updated_at = (time_t)sqlite3_column_int64(st, 14),
			.reg_epoch = (uint64_t)sqlite3_column_int64(st, 15),
		};
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		failed(q, "load");
	sqlite3_finalize(st);
	for (size_t i = 0; i < n; i++) {
		if (all[i].aor && all[i].key && all[i].contact && all[i].uri)
			fn(&all[i], arg);
		location_binding_clear(&all[i]);
	}
	free(all);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void sq_close(struct store *s)
{
	struct sqlite_store *q = s->impl;
	if (!q)
		return;
	commit(q); /* a clean stop keeps the last batch and answers its REGISTERs */
	release(q);
	s->impl = NULL;
}

const struct store_ops store_sqlite_ops = {
	.name = "sqlite",
	.open = sq_open,
	.put = sq_put,
	.del = sq_del,
	.load = sq_load,
	.commit = sq_commit,
	.close = sq_close,
};
