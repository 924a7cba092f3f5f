/** @file cluster.c  The other nodes: their bindings, their heartbeats, signed requests (cluster.h).
 *
 * Two connections to the registrar's Redis, both on hiredis' async API on the loop: one for
 * commands (the heartbeat script, the reads of AORs, the SCAN of a full read), one subscribed to
 * sipedge:changes:DB (a subscribed connection can do nothing else). Neither is ever waited on:
 * the proxy reads the cache, which is at worst as old as the last announcement that reached us.
 *
 * Losing Redis loses nothing here: the cache and the node table stay as last known (calls to
 * remote users keep working while their nodes do), a timer tick reconnects, and after a new
 * subscription the cache is read whole again, since announcements made meanwhile were missed.
 * After any reconnect the heartbeats of the others are given one node_timeout before a missing
 * key counts as a dead node: if Redis itself restarted, every key went with it.
 *
 * A Redis that takes commands and does not answer them (stalled, stopped) or a path to it gone
 * silent never makes the socket fail: a command left unanswered for the store's timeout drops
 * both connections, as if they were lost (cmd_overdue).
 */
#include "cluster/cluster.h"
#include "cluster/seen.h"
#include "base/bytes.h"
#include "base/hmac.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/metrics.h"
#include "registrar/store.h"
#include "transport/flow.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <uv.h>

#define HEADER "X-Sipedge-Cluster"
#define AOR_BUCKETS 4096 /* power of two */
#define MAX_NODES 256
#define CONNECT_TIMEOUT_MS 2000
#define REPLY_TIMEOUT_MS 2000 /* registrar.store_timeout when the params give none */
#define CLOSE_GRACE_MS 300 /* how long the goodbye heartbeat may take at shutdown */
#define NODE_FORGET_S 86400 /* a node silent this long leaves sipedge:nodes */

/* The heartbeat: refresh ours, then every node's key (nil = lapsed). One round trip, atomic. */
static const char HEARTBEAT_LUA[] =
	"redis.call('SET', 'sipedge:node:{' .. ARGV[1] .. '}', ARGV[2], 'PX', ARGV[3]) "
	"local now = tonumber(redis.call('TIME')[1]) "
	"redis.call('ZADD', 'sipedge:nodes', now, ARGV[1]) "
	"redis.call('ZREMRANGEBYSCORE', 'sipedge:nodes', '-inf', now - tonumber(ARGV[4])) "
	"local out = {} "
	"for _, id in ipairs(redis.call('ZRANGE', 'sipedge:nodes', 0, -1)) do "
	"  out[#out + 1] = id "
	"  out[#out + 1] = redis.call('GET', 'sipedge:node:{' .. id .. '}') "
	"end "
	"return out";

/* Every binding hash of one AOR, by its index (the registrar's keys, store_redis.c). */
static const char FETCH_LUA[] =
	"local out = {} "
	"for _, k in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do "
	"  local h = redis.call('HGETALL', ARGV[1] .. k) "
	"  if #h > 0 then out[#out + 1] = h end "
	"end "
	"return out";

struct rbinding {
	struct binding b; /* owned strings */
	char *node;
	struct rbinding *next;
};

struct raor {
	char *aor;
	unsigned hash, gen;
	struct rbinding *list;
	struct raor *next;
};

struct node {
	char *id;
	char *advertise;      /* as its heartbeat says */
	char route_host[200]; /* "HOST:PORT", for the Route to its flows */
	struct transport_dest dest;
	bool usable; /* its advertise address parses */
	bool alive;
};

/* A command on the commands connection, from its sending to its reply (or the connection's end). */
struct sent {
	redisCallbackFn *fn;
	void *priv;
	uint64_t at_ms;
	struct sent *prev, *next;
};

struct conn {
	const char *name; /* "commands", "subscriber" */
	redisAsyncContext *ac;
	bool ready; /* commands: SELECT answered; subscriber: SUBSCRIBE confirmed */
	uint64_t started_ms;
};

static struct {
	bool on, closing, timer_open;
	const struct cluster_config *cfg;
	struct hmac_key *sign_key; /* HMAC-SHA256 under cluster.secret, keyed once */
	char *node;
	struct redis_addr addr;
	char where[160], channel[48], ttl_ms[16], forget_s[16];
	struct conn cmd, sub;
	struct sent *sent_head, *sent_tail; /* unanswered commands, oldest first */
	unsigned timeout_ms;		    /* how long one may wait: registrar.store_timeout */
	bool down_logged;
	uint64_t ready_at_ms; /* the commands connection came up (the grace for heartbeats) */
	bool resync_needed, resyncing;
	bool heartbeat_pending; /* a heartbeat script is on its way */
	bool stranger;		/* a binding names a node we have not read a heartbeat of */
	unsigned gen;
	struct raor *aors[AOR_BUCKETS];
	unsigned n_remote;
	struct node nodes[MAX_NODES];
	int n_nodes;
	uv_timer_t tick;
} C;

const struct setting cluster_settings[] = {
	SETTING_STRING("cluster.advertise", struct cluster_config, advertise, ""),
	SETTING_STRING("cluster.secret", struct cluster_config, secret, ""),
	SETTING_INT("cluster.node_timeout", struct cluster_config, node_timeout, 5),
	SETTING_INT("cluster.heartbeat_interval", struct cluster_config, heartbeat_interval, 1000),
	SETTING_INT("cluster.max_clock_skew", struct cluster_config, max_clock_skew, 30),
	SETTING_END,
};

/* ---- the advertise address: sip:HOST:PORT[;transport=udp|tcp|tls], HOST numeric ---- */

/* *dest and the "HOST:PORT" our Routes to that node carry; 0 if usable. The Route names no
 * transport: the token in it names a flow of any kind on that node, and a Route entry saying
 * transport=udp would read there as a UDP peer's token, which a forgotten flow may ignore. */
static int parse_advertise(const char *text, struct transport_dest *dest, char *route_host, size_t n)
{
	if (!text || strncasecmp(text, "sip:", 4) != 0 || strpbrk(text, " \t\r\n<>\",@") ||
	    strlen(text) + 16 >= n)
		return -1;
	su_home_t home[1] = {SU_HOME_INIT(home)};
	url_t *url = url_make(home, text);
	int rc = url && url->url_port && transport_dest_from_url(url, dest) == 0 ? 0 : -1;
	if (rc == 0)
		snprintf(route_host, n, "%.*s", (int)strcspn(text + 4, ";"), text + 4);
	su_home_deinit(home);
	return rc;
}

int cluster_config_check(const struct cluster_config *cfg)
{
	int problems = 0;
	if (!*cfg->advertise)
		return 0;
	struct transport_dest d;
	char rh[200];
	if (parse_advertise(cfg->advertise, &d, rh, sizeof(rh)) != 0) {
		log_error("config: cluster.advertise must be \"sip:HOST:PORT;transport=udp|tcp|tls\" with a "
			  "numeric HOST, not '%s'", cfg->advertise);
		problems++;
	}
	if (strlen(cfg->secret) < 16) {
		log_error("config: cluster.secret must be set (16 characters at least, the same on every node): "
			  "it signs the requests nodes send each other");
		problems++;
	}
	if (cfg->node_timeout < 2 || cfg->node_timeout > 300) {
		log_error("config: cluster.node_timeout must be 2..300 s, not %d", cfg->node_timeout);
		problems++;
	}
	if (cfg->heartbeat_interval < 100 || cfg->heartbeat_interval * 2 > cfg->node_timeout * 1000) {
		log_error("config: cluster.heartbeat_interval must be at least 100 ms and at most half of "
			  "cluster.node_timeout, not %d ms", cfg->heartbeat_interval);
		problems++;
	}
	if (cfg->max_clock_skew < 1 || cfg->max_clock_skew > 3600) {
		log_error("config: cluster.max_clock_skew must be 1..3600 s, not %d", cfg->max_clock_skew);
		problems++;
	}
	return problems;
}

bool cluster_enabled(void) { return C.on; }

/* ---- signed requests between nodes ---- */

static msg_unknown_t *find_header(sip_t *sip)
{
	for (msg_unknown_t *u = sip->sip_unknown; u; u = u->un_next)
		if (u->un_name && strcasecmp(u->un_name, HEADER) == 0)
			return u;
	return NULL;
}

/* One field of what is signed, length first, so that no value can run into the next. */
static void mac_field(EVP_MD_CTX *md, const char *value, size_t len)
{
	char prefix[24];
	int n = snprintf(prefix, sizeof(prefix), "%zu:", len);
	EVP_DigestUpdate(md, prefix, (size_t)n);
	EVP_DigestUpdate(md, value, len);
}

static void mac_text(EVP_MD_CTX *md, const char *value) { mac_field(md, value ? value : "", value ? strlen(value) : 0); }

static void mac_url(EVP_MD_CTX *md, const url_t *url)
{
	char buf[1024];
	int n = url ? url_e(buf, sizeof(buf), url) : 0;
	mac_field(md, buf, n > 0 && (size_t)n < sizeof(buf) ? (size_t)n : 0);
}

/* HMAC-SHA256 under cluster.secret of everything that decides where this request goes and
 * whom it is from: the node and time, the method, Request-URI, Call-ID and CSeq, the top Via's
 * branch (unique per hop), From with its tag, To, Contact, and the body. Route is not in it:
 * the receiver has taken its own entry out before it checks. 64 hex digits into out. */
static void signature(sip_t *sip, const char *node, long long ts, char out[65])
{
	char num[48];
	unsigned char digest[EVP_MAX_MD_SIZE], mac[HMAC_SHA256_LEN];
	unsigned int dlen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	out[0] = '\0';
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		return; /* an empty signature never verifies */
	}
	mac_text(md, node);
	snprintf(num, sizeof(num), "%lld", ts);
	mac_text(md, num);
	mac_text(md, sip->sip_request->rq_method_name);
	mac_url(md, sip->sip_request->rq_url);
	mac_text(md, sip->sip_call_id ? sip->sip_call_id->i_id : NULL);
	snprintf(num, sizeof(num), "%u", sip->sip_cseq ? sip->sip_cseq->cs_seq : 0);
	mac_text(md, num);
	mac_text(md, sip->sip_via ? sip->sip_via->v_branch : NULL);
	mac_url(md, sip->sip_from ? sip->sip_from->a_url : NULL);
	mac_text(md, sip->sip_from ? sip->sip_from->a_tag : NULL);
	mac_url(md, sip->sip_to ? sip->sip_to->a_url : NULL);
	mac_url(md, sip->sip_contact ? sip->sip_contact->m_url : NULL);
	mac_field(md, sip->sip_payload ? sip->sip_payload->pl_data : "", sip->sip_payload ? sip->sip_payload->pl_len : 0);
	int ok = EVP_DigestFinal_ex(md, digest, &dlen);
	EVP_MD_CTX_free(md);
	const void *piece[] = {digest};
	const size_t len[] = {dlen};
	if (ok != 1 || hmac_sha256(C.sign_key, piece, len, 1, mac) != 0)
		return;
	hex_lower(mac, sizeof(mac), out);
}

/* The first 64 bits of a verified signature (hex digits): key enough to tell copies. */
static uint64_t sig_key(const char *sig)
{
	uint64_t k = 0;
	for (int i = 0; i < 16; i++) {
		char c = sig[i];
		k = k << 4 | (uint64_t)(c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0');
	}
	return k;
}

void cluster_unsign(msg_t *msg)
{
	sip_t *sip = sip_object(msg);
	msg_unknown_t *u;
	while (sip && (u = find_header(sip)))
		msg_header_remove(msg, (msg_pub_t *)sip, (msg_header_t *)u);
}

int cluster_sign(msg_t *msg)
{
	sip_t *sip = sip_object(msg);
	if (!C.on || !sip || !sip->sip_request)
		return -1;
	cluster_unsign(msg);
	long long ts = (long long)time(NULL);
	char sig[65], text[512];
	signature(sip, C.node, ts, sig);
	snprintf(text, sizeof(text), "%s %lld %s", C.node, ts, sig);
	msg_header_t *h = msg_header_alloc(msg_home(msg), sip_unknown_class, 0);
	msg_unknown_t *u = (msg_unknown_t *)h;
	if (!u)
		return -1;
	u->un_name = HEADER;
	u->un_value = su_strdup(msg_home(msg), text);
	return u->un_value ? msg_header_insert(msg, (msg_pub_t *)sip, h) : -1;
}

enum cluster_sender cluster_sender(sip_t *sip, char *node, size_t n)
{
	msg_unknown_t *u = find_header(sip);
	if (node && n)
		node[0] = '\0';
	if (!u)
		return CLUSTER_NOT_SIGNED;
	if (!C.on)
		return CLUSTER_FORGED; /* alone: nobody may speak for a node of ours */
	char who[64], sig[65], expect[65];
	long long ts;
	if (!u->un_value || sscanf(u->un_value, "%63s %lld %64s", who, &ts, sig) != 3)
		return CLUSTER_FORGED;
	if (node && n)
		snprintf(node, n, "%s", who);
	long long skew = (long long)time(NULL) - ts;
	if (strcmp(who, C.node) == 0 || skew > C.cfg->max_clock_skew || -skew > C.cfg->max_clock_skew)
		return CLUSTER_FORGED;
	signature(sip, who, ts, expect);
	if (strlen(sig) != 64 || strlen(expect) != 64 || CRYPTO_memcmp(sig, expect, 64) != 0)
		return CLUSTER_FORGED;
	/* A signature is good for one request: the same one again is a copy (a retransmission
	 * never gets here, the transaction layer absorbs it). */
	return seen_check_and_add(sig_key(sig), time(NULL)) ? CLUSTER_REPLAYED : CLUSTER_MEMBER;
}

/* ---- the node table ---- */

static struct node *node_find(const char *id)
{
	for (int i = 0; i < C.n_nodes; i++)
		if (strcmp(C.nodes[i].id, id) == 0)
			return &C.nodes[i];
	return NULL;
}

static int count_alive(void)
{
	int n = 0;
	for (int i = 0; i < C.n_nodes; i++)
		n += C.nodes[i].alive;
	return n;
}

/* Connection bindings the cache holds for node (for the log of its death). */
static unsigned node_connection_bindings(const char *id)
{
	unsigned n = 0;
	for (unsigned i = 0; i < AOR_BUCKETS; i++)
		for (struct raor *a = C.aors[i]; a; a = a->next)
			for (struct rbinding *rb = a->list; rb; rb = rb->next)
				n += (rb->b.connection || rb->b.outbound) && strcmp(rb->node, id) == 0;
	return n;
}

/* One node's heartbeat as just read: advertise is NULL when its key has lapsed. */
static void node_seen(const char *id, const char *advertise, bool grace)
{
	if (strcmp(id, C.node) == 0)
		return;
	struct node *nd = node_find(id);
	if (!nd && !advertise)
		return; /* never seen alive: nothing to forget */
	if (!nd) {
		if (C.n_nodes == MAX_NODES || !(C.nodes[C.n_nodes].id = strdup(id)))
			return;
		nd = &C.nodes[C.n_nodes++];
	}
	if (!advertise) {
		if (nd->alive && !grace) {
			nd->alive = false;
			metrics_inc(M_CLUSTER_NODE_DOWN);
			log_notice("cluster: node %s is down (its heartbeat lapsed): its %u connection bindings "
				   "are unreachable, its UDP bindings are still reached directly",
				   id, node_connection_bindings(id));
		}
		return;
	}
	if (!nd->advertise || strcmp(nd->advertise, advertise) != 0) {
		free(nd->advertise);
		nd->advertise = strdup(advertise);
		nd->usable = parse_advertise(advertise, &nd->dest, nd->route_host, sizeof(nd->route_host)) == 0;
		if (!nd->usable)
			log_warn("cluster: node %s advertises '%s', which is not a usable address", id, advertise);
	}
	if (!nd->alive) {
		nd->alive = true;
		log_notice("cluster: node %s is up at %s", id, advertise);
	}
}

/* ---- commands, timed until their replies ---- */

/* hiredis calls this once per command: with its reply, or with NULL when the connection goes
 * first (lost, or freed by us), in the order they were sent. */
static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct sent *s = priv;
	if (s->prev)
		s->prev->next = s->next;
	else
		C.sent_head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		C.sent_tail = s->prev;
	redisCallbackFn *fn = s->fn;
	void *fn_priv = s->priv;
	free(s);
	fn(ac, reply, fn_priv);
}

/* A command on the commands connection, its reply due within C.timeout_ms (on_tick looks).
 * REDIS_OK when it was queued; fn is then called exactly once. */
static int cmd_send(redisCallbackFn *fn, void *priv, const char *fmt, ...)
{
	struct sent *s = C.cmd.ac ? malloc(sizeof(*s)) : NULL;
	if (!s)
		return REDIS_ERR;
	*s = (struct sent){fn, priv, uv_now(loop_get()), C.sent_tail, NULL};
	va_list ap;
	va_start(ap, fmt);
	int rc = redisvAsyncCommand(C.cmd.ac, on_reply, s, fmt, ap);
	va_end(ap);
	if (rc != REDIS_OK) {
		free(s);
		return rc;
	}
	if (C.sent_tail)
		C.sent_tail->next = s;
	else
		C.sent_head = s;
	C.sent_tail = s;
	return REDIS_OK;
}

/* ---- the cache of the other nodes' bindings ---- */

static unsigned hash_str(const char *s)
{
	return fnv1a_str(FNV1A_INIT, s);
}

static struct raor **raor_slot(const char *aor)
{
	unsigned h = hash_str(aor);
	struct raor **pp = &C.aors[h & (AOR_BUCKETS - 1)];
	while (*pp && ((*pp)->hash != h || strcmp((*pp)->aor, aor) != 0))
		pp = &(*pp)->next;
	return pp;
}

static void raor_clear(struct raor *a)
{
	while (a->list) {
		struct rbinding *rb = a->list;
		a->list = rb->next;
		location_binding_clear(&rb->b);
		free(rb->node);
		free(rb);
		C.n_remote--;
	}
}

static void raor_unlink(struct raor **pp)
{
	struct raor *a = *pp;
	*pp = a->next;
	raor_clear(a);
	free(a->aor);
	free(a);
}

/* One binding hash into a, if it is another node's and complete. */
static void raor_add(struct raor *a, const redisReply *h)
{
	struct binding b;
	const char *node = NULL;
	if (store_redis_binding(h, &b, &node) != 0 || !node || strcmp(node, C.node) == 0 ||
	    strcmp(b.aor, a->aor) != 0)
		return;
	if (!node_find(node))
		C.stranger = true;
	struct rbinding *rb = calloc(1, sizeof(*rb));
	if (!rb || !(rb->node = strdup(node)) || location_binding_copy(&rb->b, &b) != 0) {
		if (rb)
			free(rb->node);
		free(rb);
		return;
	}
	/* Highest q first, as the location table orders its own. */
	struct rbinding **pp = &a->list;
	while (*pp && (*pp)->b.q >= rb->b.q)
		pp = &(*pp)->next;
	rb->next = *pp;
	*pp = rb;
	C.n_remote++;
}

static void heartbeat(void);

/* The AOR as Redis has it now replaces what the cache had. */
static void on_fetched(redisAsyncContext *ac, void *reply, void *priv)
{
	char *aor = priv;
	const redisReply *rp = reply;
	if (C.closing || !rp || rp->type != REDIS_REPLY_ARRAY) {
		if (!C.closing && rp)
			log_warn("cluster: reading %s failed: %s", aor, rp->type == REDIS_REPLY_ERROR ? rp->str : "bad reply");
		if (!C.closing)
			C.resync_needed = true; /* read everything again once the connection is back */
		free(aor);
		return;
	}
	struct raor **pp = raor_slot(aor);
	if (!*pp && (*pp = calloc(1, sizeof(**pp)))) {
		(*pp)->aor = strdup(aor);
		(*pp)->hash = hash_str(aor);
		if (!(*pp)->aor) {
			free(*pp);
			*pp = NULL;
		}
	}
	if (*pp) {
		raor_clear(*pp);
		(*pp)->gen = C.gen;
		for (size_t i = 0; i < rp->elements; i++)
			raor_add(*pp, rp->element[i]);
		if (!(*pp)->list)
			raor_unlink(pp);
	}
	metrics_set(M_CLUSTER_REMOTE_BINDINGS, C.n_remote);
	free(aor);
	/* A node that has just started may register users before our next tick reads its
	 * heartbeat: read it now rather than call its users unreachable meanwhile. */
	if (C.stranger && !C.heartbeat_pending)
		heartbeat();
	C.stranger = false;
}

static void fetch_aor(const char *aor)
{
	char *copy = strdup(aor), *index = NULL, *prefix = NULL;
	if (asprintf(&index, "sipedge:aor:{%s}", aor) < 0)
		index = NULL; /* its value is undefined on failure */
	if (asprintf(&prefix, "sipedge:b:{%s}:", aor) < 0)
		prefix = NULL;
	bool sent = copy && index && prefix && C.cmd.ready &&
		    cmd_send(on_fetched, copy, "EVAL %s 1 %s %s", FETCH_LUA, index, prefix) ==
			    REDIS_OK;
	if (!sent) {
		free(copy);
		C.resync_needed = true; /* read everything again once we can */
	}
	free(index);
	free(prefix);
}

/* ---- reading the whole cache again (after every subscription) ---- */

static void on_resynced(redisAsyncContext *ac, void *reply, void *priv)
{
	if (C.closing)
		return;
	C.resyncing = false;
	if (!reply) {
		C.resync_needed = true;
		return;
	}
	/* Every AOR Redis still had was read in this round; the others are gone. */
	unsigned aors = 0;
	for (unsigned i = 0; i < AOR_BUCKETS; i++) {
		struct raor **pp = &C.aors[i];
		while (*pp) {
			if ((*pp)->gen != C.gen) {
				raor_unlink(pp);
				continue;
			}
			aors++;
			pp = &(*pp)->next;
		}
	}
	metrics_set(M_CLUSTER_REMOTE_BINDINGS, C.n_remote);
	log_info("cluster: read the other nodes' bindings: %u bindings of %u AORs", C.n_remote, aors);
}

static void on_scan(redisAsyncContext *ac, void *reply, void *priv)
{
	const redisReply *rp = reply;
	if (C.closing)
		return;
	if (!rp || rp->type != REDIS_REPLY_ARRAY || rp->elements != 2 || rp->element[0]->type != REDIS_REPLY_STRING ||
	    rp->element[1]->type != REDIS_REPLY_ARRAY) {
		C.resyncing = false;
		C.resync_needed = true;
		return;
	}
	const redisReply *keys = rp->element[1];
	for (size_t i = 0; i < keys->elements; i++) {
		const char *k = keys->element[i]->type == REDIS_REPLY_STRING ? keys->element[i]->str : "";
		const char *open = strchr(k, '{'), *close = strrchr(k, '}');
		if (!open || !close || close <= open + 1)
			continue;
		char *aor = strndup(open + 1, (size_t)(close - open - 1));
		if (aor)
			fetch_aor(aor);
		free(aor);
	}
	/* Replies come in order: the PING after the last page's reads ends the round. */
	const char *cursor = rp->element[0]->str;
	int rc = strcmp(cursor, "0") != 0
			 ? cmd_send(on_scan, NULL, "SCAN %s MATCH sipedge:aor:* COUNT 500", cursor)
			 : cmd_send(on_resynced, NULL, "PING");
	if (rc != REDIS_OK) {
		C.resyncing = false;
		C.resync_needed = true;
	}
}

static void resync_start(void)
{
	C.resync_needed = false;
	C.resyncing = true;
	C.gen++;
	if (cmd_send(on_scan, NULL, "SCAN 0 MATCH sipedge:aor:* COUNT 500") != REDIS_OK) {
		C.resyncing = false;
		C.resync_needed = true;
	}
}

/* ---- the heartbeat ---- */

static void on_heartbeat(redisAsyncContext *ac, void *reply, void *priv)
{
	const redisReply *rp = reply;
	C.heartbeat_pending = false;
	if (C.closing || !rp)
		return;
	if (rp->type != REDIS_REPLY_ARRAY) {
		log_warn("cluster: heartbeat refused: %s", rp->type == REDIS_REPLY_ERROR ? rp->str : "bad reply");
		return;
	}
	/* After a reconnect, the others may not have written their keys again yet (after a Redis
	 * restart none is left): a node reconnects within a tick, or a tick after a connection
	 * attempt that hung (a Redis still starting takes connections it does not answer), and then
	 * has a full timeout before its missing key means anything. */
	bool grace = uv_now(loop_get()) - C.ready_at_ms < (uint64_t)C.cfg->node_timeout * 1000 +
								   2 * (uint64_t)C.cfg->heartbeat_interval +
								   CONNECT_TIMEOUT_MS;
	for (size_t i = 0; i + 1 < rp->elements; i += 2) {
		const redisReply *id = rp->element[i], *adv = rp->element[i + 1];
		bool stopped = adv->type == REDIS_REPLY_STRING && !adv->str[0]; /* said goodbye: no grace */
		if (id->type == REDIS_REPLY_STRING)
			node_seen(id->str, adv->type == REDIS_REPLY_STRING && !stopped ? adv->str : NULL,
				  grace && !stopped);
	}
	/* A node that left sipedge:nodes (silent for a day) is gone too. */
	for (int i = 0; i < C.n_nodes; i++) {
		bool listed = false;
		for (size_t j = 0; j < rp->elements && !listed; j += 2)
			listed = rp->element[j]->type == REDIS_REPLY_STRING && strcmp(rp->element[j]->str, C.nodes[i].id) == 0;
		if (!listed && !grace)
			node_seen(C.nodes[i].id, NULL, false);
	}
	metrics_set(M_CLUSTER_NODES, count_alive());
}

/* One heartbeat at a time: pending until its reply (or the connection's end) calls on_heartbeat.
 * A command that could not be queued (no connection, or it is going) leaves none pending. */
static void heartbeat(void)
{
	if (C.heartbeat_pending || !C.cmd.ac)
		return;
	C.heartbeat_pending = cmd_send(on_heartbeat, NULL, "EVAL %s 0 %s %s %s %s", HEARTBEAT_LUA,
				       C.node, C.cfg->advertise, C.ttl_ms, C.forget_s) == REDIS_OK;
	if (!C.heartbeat_pending)
		log_warn("cluster: redis %s: heartbeat not sent (%s)", C.where,
			 C.cmd.ac->errstr[0] ? C.cmd.ac->errstr : "the connection is going");
}

/* ---- connections ---- */

static void redis_up_changed(void)
{
	bool up = C.cmd.ready && C.sub.ready;
	metrics_set(M_CLUSTER_REDIS_UP, up);
	if (up && C.down_logged) {
		log_notice("cluster: redis %s: reachable again", C.where);
		C.down_logged = false;
	}
}

static void conn_lost(struct conn *c, const char *why)
{
	c->ac = NULL;
	c->ready = false;
	if (c == &C.sub)
		C.resync_needed = true; /* announcements will be missed until we subscribe again */
	if (c == &C.cmd)
		C.resyncing = false;
	metrics_set(M_CLUSTER_REDIS_UP, 0);
	if (C.closing)
		return;
	if (!C.down_logged)
		log_warn("cluster: redis %s: %s connection lost (%s): the other nodes' bindings stay as last "
			 "known; reconnecting every heartbeat", C.where, c->name, why);
	C.down_logged = true;
}

/* Give a connection up now: what it carried is answered with no reply (fetches and reads of the
 * whole cache fail, and are made good by a full read once we are back); the next tick makes it
 * again. */
static void conn_drop(struct conn *c, const char *why)
{
	redisAsyncContext *ac = c->ac;
	if (!ac)
		return;
	c->ac = NULL;
	c->ready = false;
	redisAsyncFree(ac);
	conn_lost(c, why);
}

/* The oldest command unanswered past the timeout: a Redis that takes commands and does not answer
 * them (stalled, stopped, swapping), or a path to it gone silent (a firewall or NAT that forgot
 * the connection, a host gone without a reset), which TCP gives up only after many minutes.
 * Nothing else would end it: a heartbeat waits for the last one's reply, so ours would stop for
 * good and the others take us for dead, and reads would never be answered. Both connections are
 * dropped and made again at once: the subscriber goes to the same Redis over the same path, and
 * a new subscription reads the whole cache again, which also makes up for the reads lost here.
 * Looked at every tick: found at most a heartbeat_interval after it passed. */
static void cmd_overdue(uint64_t now)
{
	if (!C.sent_head || now - C.sent_head->at_ms <= C.timeout_ms)
		return;
	unsigned n = 0;
	for (const struct sent *s = C.sent_head; s; s = s->next)
		n++;
	metrics_inc(M_CLUSTER_REDIS_TIMEOUTS);
	log_warn("cluster: redis %s: %u command%s not answered within %u ms "
		 "(registrar.store_timeout): dropping the connections; heartbeats resume once "
		 "Redis answers again", C.where, n, n == 1 ? "" : "s", C.timeout_ms);
	C.down_logged = true; /* the outage's one warning */
	conn_drop(&C.cmd, "a command timed out");
	conn_drop(&C.sub, "dropped with the commands connection");
}

/* The subscriber is sent nothing after SUBSCRIBE and so has no reply to time. A Redis that
 * stalls publishes nothing meanwhile (announcements are made by commands it would have to run),
 * so a stall costs the subscriber nothing; what does lose announcements is a path that goes
 * silent under the idle connection, and that only the kernel can find: TCP keepalive, probing
 * once the connection has been idle for the timeout (in whole seconds), every second, given up
 * after three probes unanswered (hiredis then reports the connection lost). A PING would not
 * do: hiredis 0.14 never hands the reply to a PING on a subscribed connection to its callback. */
static void keepalive(redisAsyncContext *ac)
{
	int fd = ac->c.fd, on = 1, idle = (int)((C.timeout_ms + 999) / 1000), every = 1, probes = 3;
	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &every, sizeof(every)) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof(probes)) != 0)
		log_warn("cluster: redis %s: no TCP keepalive on the subscriber connection: %s",
			 C.where, strerror(errno));
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct conn *c = ac->data;
	if (status != REDIS_OK && c->ac == ac)
		conn_lost(c, ac->errstr); /* hiredis frees it after this call */
}

static void close_timer(void);

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct conn *c = ac->data;
	if (c->ac != ac)
		return; /* freed by us: already handled */
	conn_lost(c, status == REDIS_OK ? "closed" : ac->errstr);
	if (C.closing && c == &C.cmd)
		close_timer(); /* the heartbeat's DEL went through */
}

static void on_selected(redisAsyncContext *ac, void *reply, void *priv)
{
	const redisReply *rp = reply;
	if (!rp || C.closing)
		return;
	if (rp->type == REDIS_REPLY_ERROR) {
		/* LOADING (a Redis restarting) or a refused AUTH: the next tick tries again. */
		log_warn("cluster: redis %s: %s", C.where, rp->str);
		redisAsyncDisconnect(ac);
		return;
	}
	C.cmd.ready = true;
	C.ready_at_ms = uv_now(loop_get());
	redis_up_changed();
	heartbeat(); /* at once: the others learn of us without waiting for a tick */
}

static void on_message(redisAsyncContext *ac, void *reply, void *priv)
{
	const redisReply *rp = reply;
	if (rp && !C.closing && rp->type == REDIS_REPLY_ERROR) {
		log_warn("cluster: redis %s: SUBSCRIBE refused: %s", C.where, rp->str);
		redisAsyncDisconnect(ac); /* the next tick tries again */
		return;
	}
	if (!rp || C.closing || rp->type != REDIS_REPLY_ARRAY || rp->elements < 3 ||
	    rp->element[0]->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(rp->element[0]->str, "subscribe") == 0) {
		C.sub.ready = true;
		C.resync_needed = true;
		log_info("cluster: redis %s: subscribed to %s", C.where, C.channel);
		redis_up_changed();
	} else if (strcmp(rp->element[0]->str, "message") == 0 && rp->element[2]->type == REDIS_REPLY_STRING) {
		metrics_inc(M_CLUSTER_UPDATES);
		fetch_aor(rp->element[2]->str);
	}
}

static void on_auth(redisAsyncContext *ac, void *reply, void *priv)
{
	const redisReply *rp = reply;
	if (rp && rp->type == REDIS_REPLY_ERROR && !C.closing)
		log_error("cluster: redis %s: AUTH refused: %s", C.where, rp->str);
}

static void conn_start(struct conn *c)
{
	redisAsyncContext *ac = redisAsyncConnect(C.addr.host, C.addr.port);
	if (!ac || ac->err || redisLibuvAttach(ac, loop_get()) != REDIS_OK) {
		conn_lost(c, ac && ac->err ? ac->errstr : "cannot connect");
		if (ac)
			redisAsyncFree(ac);
		return;
	}
	ac->data = c;
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	c->ac = ac;
	c->ready = false;
	c->started_ms = uv_now(loop_get());
	if (C.addr.password && *C.addr.password)
		redisAsyncCommand(ac, on_auth, NULL, "AUTH %s", C.addr.password);
	if (c == &C.cmd) {
		redisAsyncCommand(ac, on_selected, NULL, "SELECT %d", C.addr.db);
	} else {
		keepalive(ac);
		redisAsyncCommand(ac, on_message, NULL, "SUBSCRIBE %s", C.channel);
	}
}

/* A connection not set up in time (a Redis that drops SYNs, or refused AUTH) is given up. */
static void conn_watch(struct conn *c, uint64_t now)
{
	if (!c->ac) {
		conn_start(c);
	} else if (!c->ready && now - c->started_ms > CONNECT_TIMEOUT_MS) {
		conn_drop(c, "not set up in time");
	}
}

static void on_tick(uv_timer_t *t)
{
	uint64_t now = uv_now(loop_get());
	cmd_overdue(now);
	conn_watch(&C.cmd, now);
	conn_watch(&C.sub, now);
	if (C.cmd.ready && !C.heartbeat_pending) /* a Redis slower than a tick gets no pile of them */
		heartbeat();
	if (C.cmd.ready && C.sub.ready && C.resync_needed && !C.resyncing)
		resync_start();
}

/* ---- lookups (the proxy's side) ---- */

int cluster_lookup(const char *aor, struct cluster_target *out, int max, struct cluster_miss *miss)
{
	*miss = (struct cluster_miss){.all_outbound = true};
	struct raor *a = C.on && aor ? *raor_slot(aor) : NULL;
	time_t now = time(NULL);
	int n = 0;
	for (struct rbinding *rb = a ? a->list : NULL; rb && n < max; rb = rb->next) {
		if (rb->b.expires_at <= now)
			continue;
		miss->known = true;
		struct cluster_target *t = &out[n];
		memset(t, 0, sizeof(*t));
		t->b = &rb->b;
		t->node = rb->node;
		if (!rb->b.connection && !rb->b.outbound) {
			/* A UDP phone is at its Contact address, whichever node it registered with. */
			su_home_t home[1] = {SU_HOME_INIT(home)};
			url_t *url = url_make(home, rb->b.uri);
			n += url && transport_dest_from_url(url, &t->dest) == 0;
			su_home_deinit(home);
			continue;
		}
		const struct node *nd = node_find(rb->node);
		if (!nd || !nd->alive || !nd->usable) {
			miss->gone++;
			miss->all_outbound &= rb->b.outbound;
			continue;
		}
		/* The holder's own Record-Route form: its token (the shared proxy.flow_token_secret)
		 * names the flow, so it delivers there as it would an in-dialog request. */
		char token[FLOW_TOKEN_LEN + 1];
		flow_token_make(rb->b.flow_id, token);
		t->dest = nd->dest;
		snprintf(t->route, sizeof(t->route), "<sip:%s@%s;lr%s>", token, nd->route_host,
			 rb->b.outbound ? ";ob" : "");
		n++;
	}
	if (!miss->gone)
		miss->all_outbound = false;
	return n;
}

/* ---- start and stop ---- */

int cluster_init(const struct cluster_config *cfg, const struct cluster_params *p)
{
	if (C.on || !*cfg->advertise)
		return 0;
	memset(&C, 0, sizeof(C));
	C.cfg = cfg;
	C.cmd.name = "commands";
	C.sub.name = "subscriber";
	if (!p->redis_url || redis_addr_parse(p->redis_url, &C.addr) != 0 || !(C.node = strdup(p->node))) {
		log_error("cluster: cluster.advertise needs registrar.store = \"redis\" with a redis:// store_path");
		redis_addr_clear(&C.addr);
		return -1;
	}
	if (!(C.sign_key = hmac_key_new((const unsigned char *)cfg->secret, strlen(cfg->secret)))) {
		log_error("cluster: no HMAC-SHA256 for the signatures between nodes");
		free(C.node);
		C.node = NULL;
		redis_addr_clear(&C.addr);
		return -1;
	}
	if (!C.addr.password && p->redis_password && *p->redis_password)
		C.addr.password = strdup(p->redis_password);
	snprintf(C.where, sizeof(C.where), "%s:%d/%d", C.addr.host, C.addr.port, C.addr.db);
	snprintf(C.channel, sizeof(C.channel), STORE_REDIS_CHANNEL, C.addr.db);
	snprintf(C.ttl_ms, sizeof(C.ttl_ms), "%d", cfg->node_timeout * 1000);
	snprintf(C.forget_s, sizeof(C.forget_s), "%d", NODE_FORGET_S);
	C.timeout_ms = p->redis_timeout_ms > 0 ? (unsigned)p->redis_timeout_ms : REPLY_TIMEOUT_MS;
	/* A command lost on a silent path is found up to a tick after its timeout, and it was sent
	 * up to a tick after the last heartbeat that went through: past node_timeout the others
	 * have taken us for dead before the connection is made again. */
	unsigned interval = (unsigned)cfg->heartbeat_interval;
	if (C.timeout_ms + 2 * interval >= (unsigned)cfg->node_timeout * 1000)
		log_warn("cluster: registrar.store_timeout (%u ms) and two "
			 "cluster.heartbeat_interval reach cluster.node_timeout (%d s): "
			 "a connection to Redis that stops answering is given up only "
			 "after the other nodes have taken this one for dead",
			 C.timeout_ms, cfg->node_timeout);
	C.on = true;
	/* A signature is refused past max_clock_skew either side of now: keep each for two. */
	seen_init(2 * cfg->max_clock_skew);
	uv_timer_init(loop_get(), &C.tick);
	C.timer_open = true;
	conn_start(&C.cmd);
	conn_start(&C.sub);
	uv_timer_start(&C.tick, on_tick, (uint64_t)cfg->heartbeat_interval, (uint64_t)cfg->heartbeat_interval);
	log_info("cluster: node %s at %s, redis %s; a node is dead %d s after its last heartbeat (every %d ms)",
		 C.node, cfg->advertise, C.where, cfg->node_timeout, cfg->heartbeat_interval);
	return 0;
}

static void on_tick_closed(uv_handle_t *h)
{
	hmac_key_free(C.sign_key);
	free(C.node);
	redis_addr_clear(&C.addr);
	memset(&C, 0, sizeof(C));
}

static void close_timer(void)
{
	if (!C.timer_open)
		return;
	C.timer_open = false;
	uv_timer_stop(&C.tick);
	uv_close((uv_handle_t *)&C.tick, on_tick_closed);
}

/* The goodbye did not make it in time: give the connection up. */
static void on_close_grace(uv_timer_t *t)
{
	if (C.cmd.ac) {
		redisAsyncContext *ac = C.cmd.ac;
		C.cmd.ac = NULL;
		redisAsyncFree(ac);
	}
	close_timer();
}

void cluster_shutdown(void)
{
	if (!C.on || C.closing)
		return;
	C.closing = true;
	seen_shutdown();
	for (unsigned i = 0; i < AOR_BUCKETS; i++)
		while (C.aors[i])
			raor_unlink(&C.aors[i]);
	for (int i = 0; i < C.n_nodes; i++) {
		free(C.nodes[i].id);
		free(C.nodes[i].advertise);
	}
	C.n_nodes = 0;
	metrics_set(M_CLUSTER_REMOTE_BINDINGS, 0);
	metrics_set(M_CLUSTER_NODES, 0);
	metrics_set(M_CLUSTER_REDIS_UP, 0);
	if (C.sub.ac) {
		redisAsyncContext *ac = C.sub.ac;
		C.sub.ac = NULL;
		redisAsyncFree(ac);
	}
	uv_timer_stop(&C.tick);
	if (C.cmd.ready) {
		/* Gone now, not in node_timeout: an empty address tells the others at their next
		 * heartbeat, even those still in their grace after a reconnect. */
		char key[160];
		snprintf(key, sizeof(key), "sipedge:node:{%s}", C.node);
		redisAsyncCommand(C.cmd.ac, NULL, NULL, "SET %s %s PX %s", key, "", C.ttl_ms);
		redisAsyncDisconnect(C.cmd.ac); /* after the replies; on_disconnect closes the timer */
		uv_timer_start(&C.tick, on_close_grace, CLOSE_GRACE_MS, 0);
		return;
	}
	if (C.cmd.ac) {
		redisAsyncContext *ac = C.cmd.ac;
		C.cmd.ac = NULL;
		redisAsyncFree(ac);
	}
	close_timer();
}
