/** @file location.c  The location table: AORs hashed by name, bindings, expiry, flow index.
 *
 * Everything runs on the loop thread. Three indexes keep every operation independent of the
 * number of AORs: a hash of AORs by name (lookups and REGISTER), a hash of bindings by flow id
 * (a closing flow finds its bindings without a scan) and a binary min-heap of bindings by expiry
 * time driving one libuv timer for the whole table.
 *
 * An AOR whose last binding goes (unregistered, expired, flow closed) stays in the table, empty,
 * for reg_max_expires seconds so that the proxy can answer 480 (the user exists but is not
 * reachable now) instead of 404. Empty AORs wait in a FIFO (they all have the same retention, so
 * the head is always the oldest) that the same timer prunes; its length is bounded.
 */
#include "registrar/location.h"
#include "base/bytes.h"
#include "base/config.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/metrics.h"
#include "registrar/store.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <uv.h>

#define AOR_BUCKETS_MIN 1024 /* power of two; grows with the number of AORs */
#define FLOW_BUCKETS 1024    /* power of two */
#define GONE_MAX 65536       /* empty AORs remembered at most (oldest forgotten first) */

struct loc_aor;

struct loc_binding {
	struct binding b; /* first: a struct binding * handed out is a struct loc_binding * */
	struct loc_aor *owner;
	struct loc_binding *next;		 /* in the AOR, lookup order */
	struct loc_binding *fnext, **fprev;	 /* flow index chain (flow_id != 0) */
	size_t heap_idx;			 /* position in the expiry heap */
};

struct loc_aor {
	char *aor;
	unsigned hash;
	struct loc_aor *hnext;
	struct loc_binding *bindings;
	int count;
	time_t gone_at;			/* when it became empty; 0 while it has bindings */
	struct loc_aor *gnext, *gprev;	/* in the FIFO of empty AORs */
};

static struct {
	bool running;
	const struct registrar_config *cfg;
	struct loc_aor **buckets;
	unsigned nbuckets, naors, nbound; /* nbound: AORs with at least one binding */
	unsigned nbindings;
	struct loc_binding *flows[FLOW_BUCKETS];
	struct loc_binding **heap;
	size_t heap_n, heap_cap;
	struct loc_aor *gone_head, *gone_tail;
	unsigned ngone;
	uv_timer_t timer;
	struct store *store;
	unsigned store_errors; /* writes the store refused at once (the registrar answers 500) */
} T;

static const char *why_name(enum location_why why)
{
	switch (why) {
	case LOC_UNREGISTERED: return "unregistered";
	case LOC_EXPIRED: return "expired";
	case LOC_FLOW_CLOSED: return "flow closed";
	case LOC_REPLACED: return "replaced";
	case LOC_OPERATOR: return "by the operator";
	}
	return "?";
}

static int64_t now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static time_t retention(void) { return T.cfg ? T.cfg->reg_max_expires : 3600; }

/* ---- strings of a binding ---- */

static char *dup_or_null(const char *s, bool *fail)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*fail = true;
	return d;
}

void location_binding_clear(struct binding *b)
{
	free(b->aor);
	free(b->key);
	free(b->contact);
	free(b->uri);
	free(b->instance);
	free(b->path);
	free(b->call_id);
	free(b->user_agent);
	b->aor = b->key = b->contact = b->uri = b->instance = b->path = b->call_id = b->user_agent = NULL;
}

int location_binding_copy(struct binding *dst, const struct binding *src)
{
	bool fail = false;
	*dst = *src;
	dst->aor = dup_or_null(src->aor, &fail);
	dst->key = dup_or_null(src->key, &fail);
	dst->contact = dup_or_null(src->contact, &fail);
	dst->uri = dup_or_null(src->uri, &fail);
	dst->instance = dup_or_null(src->instance, &fail);
	dst->path = dup_or_null(src->path, &fail);
	dst->call_id = dup_or_null(src->call_id, &fail);
	dst->user_agent = dup_or_null(src->user_agent, &fail);
	if (fail) {
		location_binding_clear(dst);
		return -1;
	}
	return 0;
}

/* ---- AOR hash ---- */

static unsigned hash_str(const char *s)
{
	return fnv1a_str(FNV1A_INIT, s);
}

static struct loc_aor *aor_find(const char *aor)
{
	if (!T.buckets || !aor)
		return NULL;
	unsigned h = hash_str(aor);
	for (struct loc_aor *a = T.buckets[h & (T.nbuckets - 1)]; a; a = a->hnext)
		if (a->hash == h && strcmp(a->aor, aor) == 0)
			return a;
	return NULL;
}

static void aor_grow(void)
{
	unsigned n = T.nbuckets * 2;
	struct loc_aor **nb = calloc(n, sizeof(*nb));
	if (!nb)
		return; /* longer chains, still correct */
	for (unsigned i = 0; i < T.nbuckets; i++) {
		struct loc_aor *a = T.buckets[i];
		while (a) {
			struct loc_aor *next = a->hnext;
			a->hnext = nb[a->hash & (n - 1)];
			nb[a->hash & (n - 1)] = a;
			a = next;
		}
	}
	free(T.buckets);
	T.buckets = nb;
	T.nbuckets = n;
}

static struct loc_aor *aor_get(const char *aor)
{
	struct loc_aor *a = aor_find(aor);
	if (a)
		return a;
	a = calloc(1, sizeof(*a));
	if (!a || !(a->aor = strdup(aor))) {
		free(a);
		return NULL;
	}
	if (T.naors >= T.nbuckets)
		aor_grow();
	a->hash = hash_str(aor);
	unsigned i = a->hash & (T.nbuckets - 1);
	a->hnext = T.buckets[i];
	T.buckets[i] = a;
	T.naors++;
	return a;
}

static void gone_unlink(struct loc_aor *a)
{
	if (!a->gone_at)
		return;
	if (a->gprev)
		a->gprev->gnext = a->gnext;
	else
		T.gone_head = a->gnext;
	if (a->gnext)
		a->gnext->gprev = a->gprev;
	else
		T.gone_tail = a->gprev;
	a->gnext = a->gprev = NULL;
	a->gone_at = 0;
	T.ngone--;
}

static void aor_free(struct loc_aor *a)
{
	struct loc_aor **pp = &T.buckets[a->hash & (T.nbuckets - 1)];
	while (*pp && *pp != a)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = a->hnext;
	gone_unlink(a);
	T.naors--;
	free(a->aor);
	free(a);
}

/* The AOR just lost its last binding: remember it for a while (480 rather than 404). */
static void aor_became_empty(struct loc_aor *a)
{
	T.nbound--;
	metrics_set(M_REG_AORS, T.nbound);
	if (T.ngone >= GONE_MAX && T.gone_head)
		aor_free(T.gone_head);
	a->gone_at = time(NULL);
	if (!a->gone_at)
		a->gone_at = 1;
	a->gprev = T.gone_tail;
	a->gnext = NULL;
	if (T.gone_tail)
		T.gone_tail->gnext = a;
	else
		T.gone_head = a;
	T.gone_tail = a;
	T.ngone++;
}

/* ---- expiry heap ---- */

static bool heap_less(size_t i, size_t j) { return T.heap[i]->b.expires_at < T.heap[j]->b.expires_at; }

static void heap_swap(size_t i, size_t j)
{
	struct loc_binding *t = T.heap[i];
	T.heap[i] = T.heap[j];
	T.heap[j] = t;
	T.heap[i]->heap_idx = i;
	T.heap[j]->heap_idx = j;
}

static void heap_fix(size_t i)
{
	while (i > 0 && heap_less(i, (i - 1) / 2)) {
		heap_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < T.heap_n && heap_less(l, m))
			m = l;
		if (r < T.heap_n && heap_less(r, m))
			m = r;
		if (m == i)
			break;
		heap_swap(i, m);
		i = m;
	}
}

static int heap_push(struct loc_binding *lb)
{
	if (T.heap_n == T.heap_cap) {
		size_t cap = T.heap_cap ? T.heap_cap * 2 : 64;
		struct loc_binding **nh = realloc(T.heap, cap * sizeof(*nh));
		if (!nh)
			return -1;
		T.heap = nh;
		T.heap_cap = cap;
	}
	lb->heap_idx = T.heap_n;
	T.heap[T.heap_n++] = lb;
	heap_fix(lb->heap_idx);
	return 0;
}

static void heap_remove(struct loc_binding *lb)
{
	size_t i = lb->heap_idx;
	T.heap_n--;
	if (i != T.heap_n) {
		T.heap[i] = T.heap[T.heap_n];
		T.heap[i]->heap_idx = i;
		heap_fix(i);
	}
}

/* ---- flow index ---- */

static unsigned flow_bucket(uint64_t id) { return (unsigned)(id * 0x9E3779B97F4A7C15ULL >> 40) & (FLOW_BUCKETS - 1); }

static void flow_link(struct loc_binding *lb)
{
	if (!lb->b.flow_id)
		return;
	struct loc_binding **head = &T.flows[flow_bucket(lb->b.flow_id)];
	lb->fnext = *head;
	if (*head)
		(*head)->fprev = &lb->fnext;
	lb->fprev = head;
	*head = lb;
}

static void flow_unlink(struct loc_binding *lb)
{
	if (!lb->fprev)
		return;
	*lb->fprev = lb->fnext;
	if (lb->fnext)
		lb->fnext->fprev = lb->fprev;
	lb->fnext = NULL;
	lb->fprev = NULL;
}

/* ---- order within an AOR: q descending, then the most recently refreshed first ---- */

static void aor_unlink_binding(struct loc_aor *a, struct loc_binding *lb)
{
	struct loc_binding **pp = &a->bindings;
	while (*pp && *pp != lb)
		pp = &(*pp)->next;
	if (*pp)
		*pp = lb->next;
	lb->next = NULL;
}

static void aor_link_binding(struct loc_aor *a, struct loc_binding *lb)
{
	struct loc_binding **pp = &a->bindings;
	while (*pp && ((*pp)->b.q > lb->b.q ||
		       ((*pp)->b.q == lb->b.q && (*pp)->b.updated_at > lb->b.updated_at)))
		pp = &(*pp)->next;
	lb->next = *pp;
	*pp = lb;
}

/* ---- the timer ---- */

static void timer_arm(void);

static void on_timer(uv_timer_t *t)
{
	time_t now = time(NULL);
	while (T.heap_n && T.heap[0]->b.expires_at <= now)
		location_remove(&T.heap[0]->b, LOC_EXPIRED);
	while (T.gone_head && T.gone_head->gone_at + retention() <= now)
		aor_free(T.gone_head);
	timer_arm();
}

static void timer_arm(void)
{
	if (!T.running)
		return;
	int64_t next = -1;
	if (T.heap_n)
		next = (int64_t)T.heap[0]->b.expires_at * 1000;
	if (T.gone_head) {
		int64_t g = ((int64_t)T.gone_head->gone_at + retention()) * 1000;
		if (next < 0 || g < next)
			next = g;
	}
	if (next < 0) {
		uv_timer_stop(&T.timer);
		return;
	}
	int64_t delay = next - now_ms();
	/* The loop's cached time may lag the wall clock; a timer that fires a little early only
	 * finds nothing due and re-arms for the remainder. */
	uv_timer_start(&T.timer, on_timer, delay > 0 ? (uint64_t)delay : 0, 0);
}

/* ---- public: the registrar's side ---- */

static void log_binding(const char *what, const struct binding *b)
{
	long left = (long)(b->expires_at - time(NULL));
	log_info("registrar: binding %s: aor %s contact %s flow %llu expires %ld%s", what, b->aor,
		 b->uri, (unsigned long long)b->flow_id, left < 0 ? 0 : left,
		 b->outbound ? " (outbound)" : "");
}

static void store_write(const struct binding *b)
{
	if (T.store && store_put(T.store, b) != 0) {
		T.store_errors++;
		log_warn("registrar: store %s: could not save binding of %s", T.store->ops->name, b->aor);
	}
}

unsigned location_store_errors(void) { return T.store_errors; }

/* A new registration epoch: 63 random bits (a signed 64-bit column holds it), never 0. */
static uint64_t new_epoch(void)
{
	uint64_t e = 0;
	while (e == 0) {
		if (RAND_bytes((unsigned char *)&e, sizeof(e)) != 1) {
			log_error("registrar: no random bytes for a registration epoch");
			abort();
		}
		e &= 0x7fffffffffffffffULL;
	}
	return e;
}

struct binding *location_add(const struct binding *b)
{
	if (!T.running || !b->aor || !b->key)
		return NULL;
	struct loc_binding *lb = calloc(1, sizeof(*lb));
	if (!lb)
		return NULL;
	if (location_binding_copy(&lb->b, b) != 0) {
		free(lb);
		return NULL;
	}
	if (!lb->b.reg_epoch)
		lb->b.reg_epoch = new_epoch();
	if (!lb->b.registered_at)
		lb->b.registered_at = time(NULL);
	struct loc_aor *a = aor_get(b->aor);
	if (!a || heap_push(lb) != 0) {
		location_binding_clear(&lb->b);
		free(lb);
		return NULL; /* an AOR created here stays as an empty, unbound entry: harmless */
	}
	lb->owner = a;
	if (a->count++ == 0) {
		gone_unlink(a);
		T.nbound++;
		metrics_set(M_REG_AORS, T.nbound);
	}
	aor_link_binding(a, lb);
	flow_link(lb);
	T.nbindings++;
	metrics_set(M_REG_BINDINGS, T.nbindings);
	store_write(&lb->b);
	log_binding("added", &lb->b);
	timer_arm();
	return &lb->b;
}

/* The strings of a binding a refresh may change, in the same order for cur and from. */
#define REFRESHED_STRINGS(b) {&(b)->contact, &(b)->uri, &(b)->instance, &(b)->path, &(b)->call_id, &(b)->user_agent}

int location_update(struct binding *cur, const struct binding *from)
{
	struct loc_binding *lb = (struct loc_binding *)cur;
	bool moved = cur->flow_id != from->flow_id;
	/* A refresh mostly repeats what the binding holds: only a string that differs is copied,
	 * all of them before anything changes, so that a failed copy leaves the binding as it was. */
	char **have[] = REFRESHED_STRINGS(cur);
	char *const *want[] = REFRESHED_STRINGS((struct binding *)from);
	char *fresh[sizeof(have) / sizeof(have[0])];
	bool fail = false;
	for (size_t i = 0; i < sizeof(have) / sizeof(have[0]); i++) {
		bool same = *have[i] && *want[i] ? strcmp(*have[i], *want[i]) == 0 : *have[i] == *want[i];
		fresh[i] = same ? *have[i] : dup_or_null(*want[i], &fail);
	}
	if (fail) {
		for (size_t i = 0; i < sizeof(have) / sizeof(have[0]); i++)
			if (fresh[i] != *have[i])
				free(fresh[i]);
		return -1;
	}
	/* The same registration while the Call-ID is the same (RFC 5627 §6: its temp-gruus live on). */
	bool same_call = cur->call_id && from->call_id && strcmp(cur->call_id, from->call_id) == 0;
	/* Identity and owner stay; everything the REGISTER says is taken. */
	struct binding nb = *from;
	nb.reg_epoch = same_call && cur->reg_epoch ? cur->reg_epoch : new_epoch();
	nb.aor = cur->aor;
	nb.key = cur->key;
	nb.registered_at = cur->registered_at;
	char **into[] = REFRESHED_STRINGS(&nb);
	for (size_t i = 0; i < sizeof(have) / sizeof(have[0]); i++) {
		if (fresh[i] != *have[i])
			free(*have[i]);
		*into[i] = fresh[i];
	}
	flow_unlink(lb);
	aor_unlink_binding(lb->owner, lb);
	*cur = nb;
	flow_link(lb);
	aor_link_binding(lb->owner, lb);
	heap_fix(lb->heap_idx);
	store_write(cur);
	log_binding(moved ? "refreshed over a new flow" : "refreshed", cur);
	timer_arm();
	return 0;
}

void location_remove(struct binding *b, enum location_why why)
{
	struct loc_binding *lb = (struct loc_binding *)b;
	struct loc_aor *a = lb->owner;
	log_info("registrar: binding removed (%s): aor %s contact %s flow %llu", why_name(why), b->aor,
		 b->uri, (unsigned long long)b->flow_id);
	if (why == LOC_EXPIRED)
		metrics_inc(M_REG_EXPIRED);
	else if (why == LOC_FLOW_CLOSED)
		metrics_inc(M_REG_FLOW_DROPPED);
	if (T.store && store_del(T.store, b->aor, b->key) != 0) {
		T.store_errors++;
		log_warn("registrar: store %s: could not delete binding of %s", T.store->ops->name, b->aor);
	}
	heap_remove(lb);
	flow_unlink(lb);
	aor_unlink_binding(a, lb);
	location_binding_clear(b);
	free(lb);
	T.nbindings--;
	metrics_set(M_REG_BINDINGS, T.nbindings);
	if (--a->count == 0)
		aor_became_empty(a);
	/* No re-arm here: a timer that fires for a binding already gone finds nothing due. */
}

int location_drop_flow(uint64_t flow_id)
{
	if (!T.running || !flow_id)
		return 0;
	int n = 0;
	struct loc_binding *lb = T.flows[flow_bucket(flow_id)];
	while (lb) {
		struct loc_binding *next = lb->fnext;
		if (lb->b.flow_id == flow_id) {
			location_remove(&lb->b, LOC_FLOW_CLOSED);
			n++;
		}
		lb = next;
	}
	if (n)
		timer_arm();
	return n;
}

int location_bindings(const char *aor, struct binding **out, int max)
{
	struct loc_aor *a = aor_find(aor);
	if (!a)
		return 0;
	time_t now = time(NULL);
	int n = 0;
	for (struct loc_binding *lb = a->bindings; lb && n < max; lb = lb->next)
		if (lb->b.expires_at > now)
			out[n++] = &lb->b;
	return n;
}

void location_each(const char *aor, location_each_fn fn, void *arg)
{
	time_t now = time(NULL);
	if (aor) {
		struct loc_aor *a = aor_find(aor);
		for (struct loc_binding *lb = a ? a->bindings : NULL; lb; lb = lb->next)
			if (lb->b.expires_at > now)
				fn(&lb->b, arg);
		return;
	}
	for (unsigned i = 0; i < T.nbuckets; i++)
		for (struct loc_aor *a = T.buckets[i]; a; a = a->hnext)
			for (struct loc_binding *lb = a->bindings; lb; lb = lb->next)
				if (lb->b.expires_at > now)
					fn(&lb->b, arg);
}

int location_remove_by_key(const char *aor, const char *key)
{
	struct loc_aor *a = T.running ? aor_find(aor) : NULL;
	int n = 0;
	/* An AOR that becomes empty stays in the table (remembered as gone), so a stays valid. */
	struct loc_binding *lb = a ? a->bindings : NULL;
	while (lb) {
		struct loc_binding *next = lb->next;
		if (!key || strcmp(lb->b.key, key) == 0) {
			location_remove(&lb->b, LOC_OPERATOR);
			n++;
		}
		lb = next;
	}
	return n;
}

unsigned location_binding_count(void) { return T.nbindings; }
unsigned location_aor_count(void) { return T.nbound; }

/* ---- public: the proxy's side ---- */

int location_lookup(const char *aor, const struct binding **out, int max)
{
	return location_bindings(aor, (struct binding **)out, max);
}

enum aor_state location_aor_state(const char *aor)
{
	struct loc_aor *a = aor_find(aor);
	if (!a)
		return AOR_UNKNOWN;
	time_t now = time(NULL);
	for (struct loc_binding *lb = a->bindings; lb; lb = lb->next)
		if (lb->b.expires_at > now)
			return AOR_BOUND;
	return AOR_NO_BINDING;
}

/* ---- start and stop ---- */

struct load_ctx {
	time_t now;
	int loaded, dropped;
	struct binding *stale; /* to delete from the store once its load() is done */
	int nstale, capstale;
};

static void on_load(const struct binding *b, void *arg)
{
	struct load_ctx *c = arg;
	/* A connection of an earlier run is closed; a UDP peer is still at its address. */
	bool dead_flow = b->flow_id && b->connection && T.cfg && T.cfg->reg_drop_on_flow_close;
	if (b->expires_at <= c->now || dead_flow) {
		/* Expired, or it lived on a connection of an earlier run: it can never be reached. */
		if (c->nstale == c->capstale) {
			int cap = c->capstale ? c->capstale * 2 : 16;
			struct binding *ns = realloc(c->stale, (size_t)cap * sizeof(*ns));
			if (!ns)
				return;
			c->stale = ns;
			c->capstale = cap;
		}
		memset(&c->stale[c->nstale], 0, sizeof(c->stale[0]));
		c->stale[c->nstale].aor = b->aor ? strdup(b->aor) : NULL;
		c->stale[c->nstale].key = b->key ? strdup(b->key) : NULL;
		c->nstale++;
		c->dropped++;
		return;
	}
	/* Loading must not write back what it reads. */
	struct store *s = T.store;
	T.store = NULL;
	if (location_add(b))
		c->loaded++;
	T.store = s;
}

int location_init(struct store *store, const struct registrar_config *cfg)
{
	if (T.running)
		return 0;
	memset(&T, 0, sizeof(T));
	T.cfg = cfg;
	T.nbuckets = AOR_BUCKETS_MIN;
	T.buckets = calloc(T.nbuckets, sizeof(*T.buckets));
	if (!T.buckets)
		return -1;
	uv_timer_init(loop_get(), &T.timer);
	T.running = true;
	metrics_set(M_REG_BINDINGS, 0);
	metrics_set(M_REG_AORS, 0);
	if (store) {
		T.store = store;
		struct load_ctx c = {.now = time(NULL)};
		int rc = store_load(store, on_load, &c);
		T.store = store;
		for (int i = 0; i < c.nstale; i++) {
			if (c.stale[i].aor && c.stale[i].key)
				store_del(store, c.stale[i].aor, c.stale[i].key);
			location_binding_clear(&c.stale[i]);
		}
		free(c.stale);
		if (rc != 0)
			log_warn("registrar: store %s: loading bindings failed", store->ops->name);
		if (c.loaded || c.dropped)
			log_notice("registrar: store %s: %d bindings loaded, %d stale dropped",
				   store->ops->name, c.loaded, c.dropped);
	}
	return 0;
}

void location_shutdown(void)
{
	if (!T.running)
		return;
	T.running = false;
	uv_timer_stop(&T.timer);
	uv_close((uv_handle_t *)&T.timer, NULL);
	/* Free without touching the store: what it holds is what a restart loads. */
	for (unsigned i = 0; i < T.nbuckets; i++) {
		struct loc_aor *a = T.buckets[i];
		while (a) {
			struct loc_aor *anext = a->hnext;
			struct loc_binding *lb = a->bindings;
			while (lb) {
				struct loc_binding *next = lb->next;
				location_binding_clear(&lb->b);
				free(lb);
				lb = next;
			}
			free(a->aor);
			free(a);
			a = anext;
		}
	}
	free(T.buckets);
	free(T.heap);
	T.buckets = NULL;
	T.heap = NULL;
	T.heap_n = T.heap_cap = 0;
	T.naors = T.nbound = T.nbindings = T.ngone = 0;
	T.gone_head = T.gone_tail = NULL;
	memset(T.flows, 0, sizeof(T.flows));
	T.store = NULL;
	metrics_set(M_REG_BINDINGS, 0);
	metrics_set(M_REG_AORS, 0);
}
