/** @file store_redis.c  Bindings in Redis: written through, expiring with their registration.
 *
 * Keys (doc/configuration.md lists them for operators):
 *   sipedge:b:{AOR}:KEY   a hash per binding: aor, key, contact, uri, instance, reg_id, q,
 *                         flow_id, path, call_id, cseq, expires_at, outbound, connection,
 *                         updated_at, reg_epoch, node. Its Redis TTL ends with the registration.
 *   sipedge:aor:{AOR}     a sorted set per AOR: the KEYs of its bindings, scored by expires_at,
 *                         expiring with the last of them.
 * {AOR} is a Redis Cluster hash tag: every key of one AOR lands in the same slot. `node` names
 * the sipedge node that holds the binding's flow (cluster.node_id): a node loads only its own
 * bindings at start, and the other nodes sharing the Redis tell from it where a user's flow lives.
 * Every write also PUBLISHes the AOR on sipedge:changes:DB inside the same MULTI/EXEC, so the
 * nodes' caches of each other's bindings (cluster/cluster.c) read it again as soon as it is
 * stored, and never before.
 *
 * Writes go on hiredis' async API on the daemon's libuv loop (hiredis' own adapter). The writes
 * of one REGISTER are one MULTI/EXEC; its answer waits for EXEC's reply (store.h). Writes queue
 * behind AUTH and SELECT on a connection still being set up (the stale bindings deleted at
 * start do). While Redis cannot be reached ready() is false (REGISTERs get 503), the bindings
 * already in memory still route calls, and a timer reconnects with a doubling backoff. Loading at start uses hiredis'
 * blocking API once, before the loop runs; a Redis that cannot be reached then stops the start,
 * as an SQLite file that cannot be opened does.
 */
#include "registrar/store.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/metrics.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 5000
#define CONNECT_TIMEOUT_MS 2000 /* hiredis 0.14 has no timeout for an async connect */
#define WRITE_TIMEOUT_MS 2000	/* registrar.store_timeout when the params give none */
#define SCAN_COUNT "500"

struct waiter;

struct redis_store {
	char *host, *password, *node, *where; /* where: "HOST:PORT/DB" for the log */
	int port, db;
	char channel[48]; /* where every change is announced to the other nodes */
	redisAsyncContext *ac; /* NULL while disconnected */
	bool ready;	       /* connected, and AUTH and SELECT acknowledged */
	bool first;	       /* the connection made at open, just after a blocking probe succeeded */
	bool closing;
	bool in_group;	  /* between begin() and commit() */
	bool group_failed; /* a write of the group could not be sent: commit() fails it whole */
	int group_writes;  /* writes of the group; MULTI was sent when > 0 */
	uv_timer_t retry;
	/* Every EXEC sent and not yet answered, oldest first, each with its deadline; the timer is
	 * set for the oldest. A deadline passed drops the connection (registrar.store_timeout). */
	struct waiter *head, *tail;
	uv_timer_t deadline;
	unsigned timeout_ms;
	int open_handles; /* retry and deadline: r is freed once both are closed */
	unsigned backoff_ms;
	bool down_logged; /* one warning per outage */
};

/* ---- redis://[:PASSWORD@]HOST[:PORT][/DB] ---- */

void redis_addr_clear(struct redis_addr *a)
{
	free(a->host);
	free(a->password);
	a->host = a->password = NULL;
}

static int hex_digit(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* s[0..n) with its %XX escapes decoded (a '%' not followed by two hex digits stays as it is);
 * NULL when out of memory or when it would hold a NUL (%00), which AUTH cannot carry. */
static char *percent_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int hi = s[i] == '%' && i + 2 < n ? hex_digit(s[i + 1]) : -1;
		int lo = hi >= 0 ? hex_digit(s[i + 2]) : -1;
		if (lo >= 0) {
			*o = (char)(hi << 4 | lo);
			if (!*o) {
				free(out);
				return NULL;
			}
			o++;
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* Where the password of url lies: [*pw, *at), or false when it has none. The userinfo runs to
 * the last '@' (a password may hold '@'), and the password from its first ':'. */
static bool url_password(const char *url, const char **pw, const char **at)
{
	if (strncmp(url, "redis://", 8) != 0)
		return false;
	const char *p = url + strlen("redis://");
	const char *last = strrchr(p, '@');
	if (!last)
		return false;
	const char *colon = memchr(p, ':', (size_t)(last - p));
	*pw = colon ? colon + 1 : p; /* "user:password@" keeps the password */
	*at = last;
	return true;
}

const char *redis_url_masked(const char *url, char *out, size_t n)
{
	const char *pw, *at;
	if (!n)
		return out;
	if (!url_password(url, &pw, &at))
		snprintf(out, n, "%s", url);
	else
		snprintf(out, n, "%.*s***%s", (int)(pw - url), url, at);
	return out;
}

int redis_addr_parse(const char *url, struct redis_addr *a)
{
	memset(a, 0, sizeof(*a));
	if (strncmp(url, "redis://", 8) != 0)
		return -1;
	const char *p = url + strlen("redis://");
	const char *pw, *at = NULL;
	if (url_password(url, &pw, &at)) {
		a->password = percent_decode(pw, (size_t)(at - pw));
		p = at + 1;
	}
	const char *end = p + strcspn(p, "/");
	const char *port = NULL;
	if (*p == '[') { /* [IPv6] */
		const char *close = memchr(p, ']', (size_t)(end - p));
		if (!close) {
			redis_addr_clear(a);
			return -1;
		}
		a->host = strndup(p + 1, (size_t)(close - p - 1));
		port = close[1] == ':' ? close + 2 : NULL;
	} else {
		const char *colon = memchr(p, ':', (size_t)(end - p));
		a->host = strndup(p, (size_t)((colon ? colon : end) - p));
		port = colon ? colon + 1 : NULL;
	}
	a->port = port ? atoi(port) : 6379;
	a->db = *end == '/' && end[1] ? atoi(end + 1) : 0;
	if (!a->host || !*a->host || a->port <= 0 || a->port > 65535 || a->db < 0 || (at && !a->password)) {
		redis_addr_clear(a);
		return -1;
	}
	return 0;
}

static int parse_url(struct redis_store *r, const char *url)
{
	struct redis_addr a;
	if (redis_addr_parse(url, &a) != 0)
		return -1;
	r->host = a.host;
	r->port = a.port;
	r->db = a.db;
	if (a.password) {
		free(r->password);
		r->password = a.password;
	}
	size_t n = strlen(r->host) + 32;
	r->where = malloc(n);
	if (r->where)
		snprintf(r->where, n, "%s:%d/%d", r->host, r->port, r->db);
	snprintf(r->channel, sizeof(r->channel), STORE_REDIS_CHANNEL, r->db);
	return r->where ? 0 : -1;
}

/* ---- commands ---- */

#define CMD_MAX 40

struct cmd {
	int argc;
	const char *argv[CMD_MAX];
	size_t len[CMD_MAX];
	char num[12][24];
	int nnum;
};

static void arg(struct cmd *c, const char *s)
{
	if (c->argc < CMD_MAX) {
		c->argv[c->argc] = s;
		c->len[c->argc++] = strlen(s);
	}
}

static void arg_num(struct cmd *c, long long v)
{
	if (c->nnum < 12) {
		snprintf(c->num[c->nnum], sizeof(c->num[0]), "%lld", v);
		arg(c, c->num[c->nnum++]);
	}
}

/* A field only when it has a value: absent fields read back as NULL. */
static void field(struct cmd *c, const char *name, const char *v)
{
	if (v) {
		arg(c, name);
		arg(c, v);
	}
}

static void field_num(struct cmd *c, const char *name, long long v)
{
	arg(c, name);
	arg_num(c, v);
}

static char *binding_key(const char *aor, const char *key)
{
	char *k = NULL;
	return asprintf(&k, "sipedge:b:{%s}:%s", aor, key) < 0 ? NULL : k;
}

static char *aor_key(const char *aor)
{
	char *k = NULL;
	return asprintf(&k, "sipedge:aor:{%s}", aor) < 0 ? NULL : k;
}

static int send_cmd(struct redis_store *r, struct cmd *c, redisCallbackFn *fn, void *priv)
{
	if (!r->ac)
		return -1;
	return redisAsyncCommandArgv(r->ac, fn, priv, c->argc, c->argv, c->len) == REDIS_OK ? 0 : -1;
}

static int send_words(struct redis_store *r, redisCallbackFn *fn, void *priv, int n, const char **words)
{
	struct cmd c = {0};
	for (int i = 0; i < n; i++)
		arg(&c, words[i]);
	return send_cmd(r, &c, fn, priv);
}

/* ---- the verdict of one EXEC ---- */

static enum store_status exec_status(const redisReply *reply)
{
	if (!reply)
		return STORE_UNAVAILABLE; /* the connection went before the answer came */
	if (reply->type != REDIS_REPLY_ARRAY)
		return STORE_FAILED; /* EXECABORT: a command was refused when queued */
	for (size_t i = 0; i < reply->elements; i++)
		if (reply->element[i]->type == REDIS_REPLY_ERROR)
			return STORE_FAILED;
	return STORE_OK;
}

struct waiter {
	struct redis_store *r;
	store_done_fn done; /* NULL: a write nobody waits for (expiry, a closed flow) */
	void *arg;
	uint64_t deadline; /* loop time (ms) by which EXEC's reply is due */
	struct waiter *prev, *next;
};

static void on_deadline(uv_timer_t *t);

/* The timer follows the oldest EXEC still unanswered. */
static void arm_deadline(struct redis_store *r)
{
	if (!r->head || r->closing) {
		uv_timer_stop(&r->deadline);
		return;
	}
	uint64_t now = uv_now(loop_get());
	uv_timer_start(&r->deadline, on_deadline, r->head->deadline > now ? r->head->deadline - now : 0, 0);
}

static void waiter_unlink(struct redis_store *r, struct waiter *w)
{
	bool was_head = r->head == w;
	if (w->prev)
		w->prev->next = w->next;
	else
		r->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		r->tail = w->prev;
	w->prev = w->next = NULL;
	if (was_head)
		arm_deadline(r);
}

/* hiredis calls this once per EXEC: with its reply, or with NULL when the connection goes
 * (lost, or freed by us: a deadline passed, the store closes) before the reply came. Once the
 * context is freed no later reply can reach it, so each waiter is answered exactly once. */
static void on_exec(redisAsyncContext *ac, void *reply, void *priv)
{
	struct waiter *w = priv;
	struct redis_store *r = w->r;
	waiter_unlink(r, w);
	enum store_status status = exec_status(reply);
	if (status == STORE_OK) {
		metrics_inc(M_REG_STORE_COMMITS);
	} else {
		metrics_inc(M_REG_STORE_ERRORS);
		const redisReply *rp = reply;
		log_warn("registrar: store redis %s: write %s%s", r->where,
			 status == STORE_UNAVAILABLE ? "lost with the connection" : "refused: ",
			 rp && rp->type == REDIS_REPLY_ERROR ? rp->str : "");
	}
	if (w->done)
		w->done(status, w->arg);
	free(w);
}

/* EXEC of the open MULTI; done(status) once Redis has answered it, or its deadline passed. */
static void exec_group(struct redis_store *r, store_done_fn done, void *arg)
{
	struct waiter *w = malloc(sizeof(*w));
	const char *exec[] = {"EXEC"};
	if (w)
		*w = (struct waiter){r, done, arg, uv_now(loop_get()) + r->timeout_ms, NULL, NULL};
	if (!w || send_words(r, on_exec, w, 1, exec) != 0) {
		free(w);
		if (done)
			done(STORE_UNAVAILABLE, arg);
		return;
	}
	w->prev = r->tail;
	if (r->tail)
		r->tail->next = w;
	else
		r->head = w;
	r->tail = w;
	if (r->head == w)
		arm_deadline(r);
}

/* A MULTI that will not be EXECed: DISCARD it, or drop a connection that cannot take even that
 * (it would stay inside the transaction, and the next MULTI be refused). */
static void discard_group(struct redis_store *r)
{
	const char *discard[] = {"DISCARD"};
	if (r->ac && send_words(r, NULL, NULL, 1, discard) != 0)
		redisAsyncDisconnect(r->ac);
}

/* Every write is inside a MULTI: the REGISTER's group, or one of its own. In a group MULTI goes
 * with the first write, and counts only once it was sent: if it could not be, the group fails
 * (nothing of it is sent after it). */
static int write_start(struct redis_store *r)
{
	const char *multi[] = {"MULTI"};
	if (r->in_group && r->group_failed)
		return -1;
	if (r->in_group && r->group_writes > 0) {
		r->group_writes++;
		return 0;
	}
	if (!r->ac || send_words(r, NULL, NULL, 1, multi) != 0)
		return -1; /* between connection attempts, or the connection is going */
	if (r->in_group)
		r->group_writes = 1;
	return 0;
}

/* The end of one write (rc: 0 when everything was sent, or -1): a group fails whole at commit();
 * a write of its own is EXECed, or DISCARDed if part of it could not be sent. */
static int write_end(struct redis_store *r, int rc, bool started)
{
	if (r->in_group) {
		if (rc != 0)
			r->group_failed = true;
	} else if (started) {
		if (rc == 0)
			exec_group(r, NULL, NULL);
		else
			discard_group(r);
	}
	return rc;
}

/* ---- store_ops ---- */

static int rd_put(struct store *s, const struct binding *b)
{
	struct redis_store *r = s->impl;
	char *k = binding_key(b->aor, b->key), *ak = aor_key(b->aor);
	int rc = -1;
	bool started = k && ak && b->contact && b->uri && write_start(r) == 0;
	if (started) {
		struct cmd del = {0}, hset = {0}, exp = {0}, zadd = {0}, znx = {0}, zgt = {0}, prune = {0};
		arg(&del, "DEL"), arg(&del, k);
		arg(&hset, "HSET"), arg(&hset, k);
		field(&hset, "aor", b->aor), field(&hset, "key", b->key), field(&hset, "contact", b->contact);
		field(&hset, "uri", b->uri), field(&hset, "instance", b->instance), field(&hset, "path", b->path);
		field(&hset, "call_id", b->call_id), field(&hset, "node", r->node);
		field_num(&hset, "reg_id", b->reg_id), field_num(&hset, "q", b->q);
		field_num(&hset, "flow_id", (long long)b->flow_id), field_num(&hset, "cseq", b->cseq);
		field_num(&hset, "expires_at", (long long)b->expires_at);
		field_num(&hset, "outbound", b->outbound), field_num(&hset, "connection", b->connection);
		field_num(&hset, "updated_at", (long long)b->updated_at);
		field_num(&hset, "reg_epoch", (long long)b->reg_epoch);
		arg(&exp, "EXPIREAT"), arg(&exp, k), arg_num(&exp, (long long)b->expires_at);
		arg(&zadd, "ZADD"), arg(&zadd, ak), arg_num(&zadd, (long long)b->expires_at), arg(&zadd, b->key);
		/* The index lives as long as its longest binding: NX sets a first expiry, GT extends. */
		arg(&znx, "EXPIREAT"), arg(&znx, ak), arg_num(&znx, (long long)b->expires_at), arg(&znx, "NX");
		arg(&zgt, "EXPIREAT"), arg(&zgt, ak), arg_num(&zgt, (long long)b->expires_at), arg(&zgt, "GT");
		arg(&prune, "ZREMRANGEBYSCORE"), arg(&prune, ak), arg(&prune, "-inf");
		arg_num(&prune, (long long)time(NULL));
		struct cmd publish = {0};
		arg(&publish, "PUBLISH"), arg(&publish, r->channel), arg(&publish, b->aor);
		struct cmd *all[] = {&del, &hset, &exp, &zadd, &znx, &zgt, &prune, &publish};
		rc = 0;
		for (size_t i = 0; i < sizeof(all) / sizeof(all[0]) && rc == 0; i++)
			rc = send_cmd(r, all[i], NULL, NULL);
	}
	write_end(r, rc, started);
	free(k);
	free(ak);
	return rc;
}

static int rd_del(struct store *s, const char *aor, const char *key)
{
	struct redis_store *r = s->impl;
	char *k = binding_key(aor, key), *ak = aor_key(aor);
	int rc = -1;
	bool started = k && ak && write_start(r) == 0;
	if (started) {
		const char *del[] = {"DEL", k}, *zrem[] = {"ZREM", ak, key}, *pub[] = {"PUBLISH", r->channel, aor};
		rc = send_words(r, NULL, NULL, 2, del);
		rc = rc ? rc : send_words(r, NULL, NULL, 3, zrem);
		rc = rc ? rc : send_words(r, NULL, NULL, 3, pub);
	}
	write_end(r, rc, started);
	free(k);
	free(ak);
	return rc;
}

static void rd_begin(struct store *s)
{
	struct redis_store *r = s->impl;
	r->in_group = true;
	r->group_failed = false;
	r->group_writes = 0;
}

static void rd_commit(struct store *s, store_done_fn done, void *arg)
{
	struct redis_store *r = s->impl;
	bool wrote = r->in_group && r->group_writes > 0, failed = r->in_group && r->group_failed;
	r->in_group = false;
	if (failed) {
		/* Part of the group could not be sent: none of it may be applied. */
		if (wrote)
			discard_group(r);
		log_warn("registrar: store redis %s: a write could not be sent%s: the REGISTER is refused",
			 r->where, r->ac ? "" : " (no connection)");
		done(r->ac ? STORE_FAILED : STORE_UNAVAILABLE, arg);
	} else if (!wrote) {
		done(STORE_OK, arg); /* nothing changed: nothing to wait for */
	} else {
		exec_group(r, done, arg);
	}
}

/* The first connection counts as ready while it is set up: the probe at open has just reached
 * Redis, and writes queue behind AUTH and SELECT (if it fails after all, they are answered 503). */
static bool rd_ready(struct store *s)
{
	struct redis_store *r = s->impl;
	return r->ready || (r->first && r->ac);
}

/* ---- connecting, and reconnecting with backoff ---- */

static void connect_async(struct redis_store *r);

static void on_retry(uv_timer_t *t) { connect_async(t->data); }

/* The connection is lost or was refused: say so once per outage and try again later. */
static void went_down(struct redis_store *r, const char *why)
{
	r->ready = false;
	r->first = false;
	metrics_set(M_REG_STORE_UP, 0);
	if (r->closing)
		return;
	metrics_inc(M_REG_STORE_RECONNECTS);
	if (!r->down_logged)
		log_warn("registrar: store redis %s: unreachable (%s): REGISTERs get 503 until it is back; "
			 "retrying with backoff", r->where, why);
	else
		log_info("registrar: store redis %s: still unreachable (%s), next try in %u ms", r->where,
			 why, r->backoff_ms);
	r->down_logged = true;
	uv_timer_start(&r->retry, on_retry, r->backoff_ms, 0);
	r->backoff_ms = r->backoff_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : r->backoff_ms * 2;
}

/* The oldest EXEC was not answered in time: a Redis that takes commands but does not answer them
 * (stalled: DEBUG SLEEP, a stopped process, a full disk under appendfsync always). Freeing the
 * connection answers every write on it 503 at once (on_exec with no reply) and no late reply can
 * arrive after; the reconnect with backoff follows, as for a connection lost. */
static void on_deadline(uv_timer_t *t)
{
	struct redis_store *r = t->data;
	if (!r->head || !r->ac || r->closing)
		return;
	if (r->head->deadline > uv_now(loop_get())) {
		arm_deadline(r);
		return;
	}
	unsigned n = 0;
	for (const struct waiter *w = r->head; w; w = w->next)
		n++;
	metrics_inc(M_REG_STORE_TIMEOUTS);
	log_warn("registrar: store redis %s: a write not acknowledged within %u ms (registrar.store_timeout): "
		 "dropping the connection; %u write%s unanswered get 503", r->where, r->timeout_ms, n,
		 n == 1 ? "" : "s");
	redisAsyncContext *ac = r->ac;
	r->ac = NULL;
	redisAsyncFree(ac); /* on_exec(NULL) for each: the waiting REGISTERs get 503 */
	went_down(r, "a write timed out");
}

/* SELECT's reply: AUTH (queued before it) and SELECT went through; writes may go. */
static void on_selected(redisAsyncContext *ac, void *reply, void *priv)
{
	struct redis_store *r = priv;
	const redisReply *rp = reply;
	if (!rp)
		return; /* the connection went: on_disconnect says so */
	if (rp->type == REDIS_REPLY_ERROR) {
		log_error("registrar: store redis %s: %s", r->where, rp->str);
		redisAsyncDisconnect(ac);
		return;
	}
	uv_timer_stop(&r->retry); /* the connect watchdog */
	r->ready = true;
	r->backoff_ms = RETRY_MIN_MS;
	metrics_set(M_REG_STORE_UP, 1);
	if (r->down_logged)
		log_notice("registrar: store redis %s: reachable again", r->where);
	else
		log_info("registrar: store redis %s: connected", r->where);
	r->down_logged = false;
}

static void on_auth(redisAsyncContext *ac, void *reply, void *priv)
{
	struct redis_store *r = priv;
	const redisReply *rp = reply;
	if (rp && rp->type == REDIS_REPLY_ERROR)
		log_error("registrar: store redis %s: AUTH refused: %s", r->where, rp->str);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct redis_store *r = ac->data;
	if (status != REDIS_OK && r->ac == ac) {
		r->ac = NULL; /* hiredis frees it after this call */
		went_down(r, ac->errstr);
	}
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct redis_store *r = ac->data;
	if (r->ac != ac)
		return; /* freed by us (watchdog, close): already handled */
	r->ac = NULL;
	went_down(r, status == REDIS_OK ? "connection closed" : ac->errstr);
}

/* A connection not set up in time (a Redis that drops SYNs or hangs) is given up. */
static void on_connect_timeout(uv_timer_t *t)
{
	struct redis_store *r = t->data;
	if (r->ready || !r->ac)
		return;
	redisAsyncContext *ac = r->ac;
	r->ac = NULL;
	redisAsyncFree(ac); /* its queued writes are answered 503 */
	went_down(r, "connect timed out");
}

static void connect_async(struct redis_store *r)
{
	redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
	if (!ac || ac->err) {
		char why[128];
		snprintf(why, sizeof(why), "%s", ac ? ac->errstr : "out of memory");
		if (ac)
			redisAsyncFree(ac);
		went_down(r, why);
		return;
	}
	ac->data = r;
	if (redisLibuvAttach(ac, loop_get()) != REDIS_OK) {
		redisAsyncFree(ac);
		went_down(r, "cannot watch its socket");
		return;
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	r->ac = ac;
	uv_timer_start(&r->retry, on_connect_timeout, CONNECT_TIMEOUT_MS, 0);
	/* Queued now, sent once connected; every write comes after them on the same connection. */
	char db[16];
	snprintf(db, sizeof(db), "%d", r->db);
	if (*r->password)
		redisAsyncCommand(ac, on_auth, r, "AUTH %s", r->password);
	redisAsyncCommand(ac, on_selected, r, "SELECT %s", db);
}

/* ---- loading at start (blocking, before the loop runs) ---- */

static redisContext *connect_sync(struct redis_store *r)
{
	struct timeval tv = {2, 0};
	redisContext *c = redisConnectWithTimeout(r->host, r->port, tv);
	redisReply *rp = NULL;
	if (c && !c->err && *r->password) {
		rp = redisCommand(c, "AUTH %s", r->password);
		if (!rp || rp->type == REDIS_REPLY_ERROR)
			log_error("registrar: store redis %s: AUTH refused: %s", r->where, rp ? rp->str : c->errstr);
		else
			freeReplyObject(rp), rp = NULL;
	}
	if (c && !c->err && !rp) {
		rp = redisCommand(c, "SELECT %d", r->db);
		if (rp && rp->type != REDIS_REPLY_ERROR) {
			freeReplyObject(rp);
			return c;
		}
	}
	log_error("registrar: store redis %s: cannot connect: %s", r->where,
		  !c ? "out of memory" : c->err ? c->errstr : rp ? rp->str : "no answer");
	if (rp)
		freeReplyObject(rp);
	if (c)
		redisFree(c);
	return NULL;
}

static const char *hash_get(const redisReply *h, const char *name)
{
	for (size_t i = 0; i + 1 < h->elements; i += 2)
		if (h->element[i]->type == REDIS_REPLY_STRING && strcmp(h->element[i]->str, name) == 0 &&
		    h->element[i + 1]->type == REDIS_REPLY_STRING)
			return h->element[i + 1]->str;
	return NULL;
}

static long long hash_num(const redisReply *h, const char *name)
{
	const char *v = hash_get(h, name);
	return v ? strtoll(v, NULL, 10) : 0;
}

int store_redis_binding(const struct redisReply *h, struct binding *b, const char **node)
{
	memset(b, 0, sizeof(*b));
	if (!h || h->type != REDIS_REPLY_ARRAY || h->elements == 0)
		return -1; /* expired between SCAN (or an announcement) and HGETALL */
	*node = hash_get(h, "node");
	*b = (struct binding){
		.aor = (char *)hash_get(h, "aor"),
		.key = (char *)hash_get(h, "key"),
		.contact = (char *)hash_get(h, "contact"),
		.uri = (char *)hash_get(h, "uri"),
		.instance = (char *)hash_get(h, "instance"),
		.reg_id = (int)hash_num(h, "reg_id"),
		.q = (int)hash_num(h, "q"),
		.flow_id = (uint64_t)hash_num(h, "flow_id"),
		.path = (char *)hash_get(h, "path"),
		.call_id = (char *)hash_get(h, "call_id"),
		.cseq = (uint32_t)hash_num(h, "cseq"),
		.expires_at = (time_t)hash_num(h, "expires_at"),
		.outbound = hash_num(h, "outbound") != 0,
		.connection = hash_num(h, "connection") != 0,
		.updated_at = (time_t)hash_num(h, "updated_at"),
		.reg_epoch = (uint64_t)hash_num(h, "reg_epoch"),
	};
	return b->aor && b->key && b->contact && b->uri ? 0 : -1;
}

/* One binding's hash into fn, if it is this node's. Strings are borrowed from the reply. */
static void load_one(struct redis_store *r, const redisReply *h, store_load_fn fn, void *arg)
{
	struct binding b;
	const char *node = NULL;
	if (store_redis_binding(h, &b, &node) != 0)
		return;
	if (node && strcmp(node, r->node) != 0)
		return; /* another node's flow */
	fn(&b, arg);
}

/* One SCAN page: HGETALL of each key, pipelined. */
static int load_page(struct redis_store *r, redisContext *c, const redisReply *keys, store_load_fn fn, void *arg)
{
	size_t sent = 0;
	for (size_t i = 0; i < keys->elements; i++) {
		const redisReply *k = keys->element[i];
		if (!k || k->type != REDIS_REPLY_STRING || !k->str)
			continue; /* SCAN names keys with strings: anything else is not a key */
		if (redisAppendCommand(c, "HGETALL %b", k->str, k->len) != REDIS_OK)
			return -1;
		sent++;
	}
	for (size_t i = 0; i < sent; i++) {
		redisReply *h = NULL;
		if (redisGetReply(c, (void **)&h) != REDIS_OK)
			return -1;
		load_one(r, h, fn, arg);
		freeReplyObject(h);
	}
	return 0;
}

/* Deletions fn asks for (stale bindings) are queued on the async connection, which sends them
 * once the loop runs. */
static int rd_load(struct store *s, store_load_fn fn, void *arg)
{
	struct redis_store *r = s->impl;
	redisContext *c = connect_sync(r);
	if (!c)
		return -1;
	char cursor[32] = "0";
	int rc = 0;
	do {
		redisReply *rp = redisCommand(c, "SCAN %s MATCH sipedge:b:* COUNT " SCAN_COUNT, cursor);
		if (!rp || rp->type != REDIS_REPLY_ARRAY || rp->elements != 2 ||
		    rp->element[0]->type != REDIS_REPLY_STRING || rp->element[1]->type != REDIS_REPLY_ARRAY) {
			rc = -1;
			if (rp)
				freeReplyObject(rp);
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", rp->element[0]->str);
		rc = load_page(r, c, rp->element[1], fn, arg);
		freeReplyObject(rp);
	} while (rc == 0 && strcmp(cursor, "0") != 0);
	if (rc != 0) {
		metrics_inc(M_REG_STORE_ERRORS);
		log_error("registrar: store redis %s: load failed: %s", r->where, c->err ? c->errstr : "bad reply");
	}
	redisFree(c);
	return rc;
}

static void free_store(struct redis_store *r)
{
	free(r->host);
	free(r->password);
	free(r->node);
	free(r->where);
	free(r);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct redis_store *r = h->data;
	if (--r->open_handles == 0)
		free_store(r);
}

static int rd_open(struct store *s, const struct store_params *p)
{
	struct redis_store *r = calloc(1, sizeof(*r));
	if (!r)
		return -1;
	r->password = strdup(p->password ? p->password : "");
	r->node = strdup(p->node && *p->node ? p->node : "sipedge");
	if (!r->password || !r->node || parse_url(r, p->spec) != 0) {
		char shown[512];
		log_error("registrar: store redis: '%s' is not redis://[:PASSWORD@]HOST[:PORT][/DB]",
			  redis_url_masked(p->spec, shown, sizeof(shown)));
		free_store(r);
		return -1;
	}
	/* Reachable at start, or the daemon does not start (as with an SQLite file). */
	redisContext *probe = connect_sync(r);
	if (!probe) {
		free_store(r);
		return -1;
	}
	redisFree(probe);
	uv_timer_init(loop_get(), &r->retry);
	r->retry.data = r;
	uv_timer_init(loop_get(), &r->deadline);
	r->deadline.data = r;
	r->open_handles = 2;
	r->timeout_ms = p->timeout_ms > 0 ? (unsigned)p->timeout_ms : WRITE_TIMEOUT_MS;
	r->backoff_ms = RETRY_MIN_MS;
	r->first = true;
	s->impl = r;
	connect_async(r);
	return 0;
}

static void rd_close(struct store *s)
{
	struct redis_store *r = s->impl;
	if (!r)
		return;
	r->closing = true;
	uv_timer_stop(&r->retry);
	uv_timer_stop(&r->deadline);
	/* Writes still unanswered get their callbacks now (no reply: 503 to their REGISTERs). */
	if (r->ac) {
		redisAsyncContext *ac = r->ac;
		r->ac = NULL;
		redisAsyncFree(ac);
	}
	r->ready = false;
	metrics_set(M_REG_STORE_UP, 0);
	uv_close((uv_handle_t *)&r->retry, on_handle_closed);
	uv_close((uv_handle_t *)&r->deadline, on_handle_closed); /* the last one frees r */
	s->impl = NULL;
}

const struct store_ops store_redis_ops = {
	.name = "redis",
	.open = rd_open,
	.put = rd_put,
	.del = rd_del,
	.load = rd_load,
	.begin = rd_begin,
	.commit = rd_commit,
	.ready = rd_ready,
	.close = rd_close,
};
