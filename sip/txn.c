/** @file txn.c  The transaction layer (RFC 3261 §17, RFC 6026) on libuv timers.
 *
 * One table holds server and client transactions, keyed by top-Via branch, sent-by (server
 * side) and method (ACK keyed as INVITE, so it finds the INVITE it acknowledges). Each
 * transaction owns two timers: `retrans` (A, E, G) and `timeout` (B, D, F, H, I, J, K, L, M).
 * A terminated transaction leaves the table at once but its memory lives until libuv has
 * closed both timers, so a callback higher up the stack never touches freed memory.
 */
#include "sip/txn.h"
#include "base/bytes.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/metrics.h"
#include "transport/flow.h"
#include "transport/transport.h"

#include <assert.h>
#include <sofia-sip/htable.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* RFC 3261 §17.1.1.1 timer values, in milliseconds. */
#define T1 500
#define T2 4000
#define T4 5000

enum txn_side { SIDE_SERVER, SIDE_CLIENT };

struct txn {
	enum txn_side side;
	enum txn_state state;
	bool invite;
	bool reliable;
	msg_t *req;	     /* the request (server: received; client: sent) */
	char *key;	     /* table key */
	uint64_t flow_id;    /* server: the flow it arrived on; client: dest flow */
	struct transport_dest dest; /* client */
	char *out;	     /* last message sent, encoded: for retransmission */
	size_t out_len;
	char *ack;	     /* client INVITE: the ACK for a non-2xx final, encoded */
	size_t ack_len;
	int status;	     /* highest status sent (server) or received (client) */
	unsigned interval;   /* current retransmission interval */
	bool cancel_pending; /* client INVITE: CANCEL once a provisional arrives */
	bool cancelled;
	const struct txn_user *user;
	void *arg;
	uv_timer_t retrans, timeout;
	int open_handles;
	hash_value_t hash; /* of key */
	struct txn *cprev, *cnext; /* live client transactions, for a flow that goes */
};

/* sofia-sip's open-addressing table, grown before it is two thirds full: transactions linger
 * for Timer J/K (32 s over UDP), so a busy proxy holds hundreds of thousands at once. */
#define TXN_HASH(t) ((t)->hash)
/* htable.h declares the table parameter as `pr[1]` and defines it as `pr[]`, and defines
 * functions (insert) this file has no use for. */
#pragma GCC diagnostic push
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wunused-function"
#else
#pragma GCC diagnostic ignored "-Warray-parameter"
#endif
HTABLE_DECLARE_WITH(txn_table, tt, struct txn, size_t, hash_value_t);
HTABLE_PROTOS_WITH(txn_table, tt, struct txn, size_t, hash_value_t);
HTABLE_BODIES_WITH(txn_table, tt, struct txn, TXN_HASH, size_t, hash_value_t);
#pragma GCC diagnostic pop

static txn_table_t table;
static unsigned n_server, n_client;
/* Client transactions until they terminate: a closed flow fails the ones that use it without a
 * walk over the whole table, which holds every server transaction lingering for Timer J too. */
static struct txn *clients;

static const char *const state_names[] = {"calling",   "trying",   "proceeding", "completed",
					  "confirmed", "accepted", "terminated"};
const char *txn_state_name(enum txn_state s) { return state_names[s]; }

/* ---- table ---- */

static hash_value_t hash_key(const char *s)
{
	return fnv1a_str(FNV1A_INIT, s);
}

/* n strings (NULL as "") joined into one malloc'd string. The keys are built once or twice per
 * message: asprintf cost some 3.3k instructions a REGISTER, this a few hundred. */
static char *join(size_t n, const char *const part[])
{
	size_t len[10], total = 1;
	if (n > 10)
		return NULL;
	for (size_t i = 0; i < n; i++)
		total += len[i] = part[i] ? strlen(part[i]) : 0;
	char *key = malloc(total), *p = key;
	if (!key)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		memcpy(p, part[i] ? part[i] : "", len[i]);
		p += len[i];
	}
	*p = '\0';
	return key;
}

static char *make_key(enum txn_side side, sip_t *sip, const char *method)
{
	sip_via_t *v = sip->sip_via;
	const char *branch = v && v->v_branch ? v->v_branch : "";
	if (side == SIDE_SERVER && (!v || !v->v_branch || strncasecmp(branch, "z9hG4bK", 7) != 0)) {
		/* RFC 2543 peers: no usable branch; match on dialog identifiers instead. */
		char cseq[12], *c = cseq + sizeof(cseq);
		unsigned seq = sip->sip_cseq ? sip->sip_cseq->cs_seq : 0;
		*--c = '\0';
		do
			*--c = (char)('0' + seq % 10);
		while (seq /= 10);
		const char *part[] = {"S|", sip->sip_call_id ? sip->sip_call_id->i_id : "",
				      "|", sip->sip_from ? sip->sip_from->a_tag : "",
				      "|", c,
				      "|", method,
				      "|", v ? v->v_host : ""};
		return join(sizeof(part) / sizeof(*part), part);
	} else if (side == SIDE_SERVER) {
		const char *part[] = {"S|", branch, "|", v->v_host, ":", v->v_port, "|", method};
		return join(sizeof(part) / sizeof(*part), part);
	}
	const char *part[] = {"C|", branch, "|", method};
	return join(sizeof(part) / sizeof(*part), part);
}

static const char *key_method(sip_t *sip)
{
	sip_method_t m = sip->sip_cseq->cs_method;
	if (m == sip_method_ack || m == sip_method_invite)
		return "INVITE";
	return sip->sip_cseq->cs_method_name;
}

static struct txn *table_find(const char *key)
{
	if (!table.tt_size)
		return NULL;
	hash_value_t h = hash_key(key);
	for (struct txn **tt = txn_table_hash(&table, h); *tt; tt = txn_table_next(&table, tt))
		if ((*tt)->hash == h && strcmp((*tt)->key, key) == 0)
			return *tt;
	return NULL;
}

static int table_insert(struct txn *t)
{
	/* A table that could not grow still takes entries until its last free slot. */
	if (txn_table_is_full(&table) && txn_table_resize(NULL, &table, 0) != 0 &&
	    table.tt_used + 1 >= table.tt_size)
		return -1;
	t->hash = hash_key(t->key);
	txn_table_append(&table, t);
	return 0;
}

static void table_remove(struct txn *t) { txn_table_remove(&table, t); }

/* Every transaction in the table, into a new array (*n of them): to end them all while the
 * table changes under the loop. NULL with *n = 0 when there are none or memory ran out. */
static struct txn **table_snapshot(size_t *n)
{
	*n = 0;
	struct txn **all = table.tt_used ? malloc(table.tt_used * sizeof(*all)) : NULL;
	if (!all)
		return NULL;
	for (size_t i = 0; i < table.tt_size; i++)
		if (table.tt_table[i])
			all[(*n)++] = table.tt_table[i];
	return all;
}

/* ---- life cycle ---- */

static void on_handle_closed(uv_handle_t *h)
{
	struct txn *t = h->data;
	if (--t->open_handles > 0)
		return;
	if (t->req)
		msg_unref(t->req);
	free(t->out);
	free(t->ack);
	free(t->key);
	free(t);
}

static void terminate(struct txn *t)
{
	if (t->state == TXN_TERMINATED)
		return;
	t->state = TXN_TERMINATED;
	table_remove(t);
	if (t->side == SIDE_SERVER) {
		metrics_set(M_TXN_SERVER, --n_server);
	} else {
		metrics_set(M_TXN_CLIENT, --n_client);
		if (t->cprev)
			t->cprev->cnext = t->cnext;
		else
			clients = t->cnext;
		if (t->cnext)
			t->cnext->cprev = t->cprev;
	}
	const struct txn_user *user = t->user;
	t->user = NULL;
	if (user && user->on_gone)
		user->on_gone(t, t->arg);
	uv_timer_stop(&t->retrans);
	uv_timer_stop(&t->timeout);
	uv_close((uv_handle_t *)&t->retrans, on_handle_closed);
	uv_close((uv_handle_t *)&t->timeout, on_handle_closed);
}

static struct txn *txn_alloc(enum txn_side side, msg_t *req, char *key)
{
	struct txn *t = calloc(1, sizeof(*t));
	if (!t) {
		free(key);
		return NULL;
	}
	t->side = side;
	t->req = req;
	t->key = key;
	t->invite = sip_object(req)->sip_request->rq_method == sip_method_invite;
	uv_timer_init(loop_get(), &t->retrans);
	uv_timer_init(loop_get(), &t->timeout);
	t->retrans.data = t->timeout.data = t;
	t->open_handles = 2;
	if (table_insert(t) != 0) {
		log_error("txn: the transaction table cannot grow: request dropped");
		t->state = TXN_TERMINATED;
		t->req = NULL; /* the caller keeps it */
		uv_close((uv_handle_t *)&t->retrans, on_handle_closed);
		uv_close((uv_handle_t *)&t->timeout, on_handle_closed);
		return NULL;
	}
	if (side == SIDE_SERVER) {
		metrics_set(M_TXN_SERVER, ++n_server);
	} else {
		metrics_set(M_TXN_CLIENT, ++n_client);
		t->cnext = clients;
		if (clients)
			clients->cprev = t;
		clients = t;
	}
	return t;
}

static void on_terminate_timer(uv_timer_t *h) { terminate(h->data); }

/** Wait, then terminate (Timers D, I, J, K, L, M); reliable transports need no wait for some. */
static void linger(struct txn *t, uint64_t ms)
{
	uv_timer_stop(&t->retrans);
	uv_timer_start(&t->timeout, on_terminate_timer, ms, 0);
}

static void on_flow_gone(struct flow *f);

void txn_init(void) { flow_on_gone(on_flow_gone); }

void txn_shutdown(void)
{
	/* Terminated transactions stay allocated until their timers close: the pointers hold. */
	size_t n;
	struct txn **all = table_snapshot(&n);
	for (size_t i = 0; i < n; i++)
		terminate(all[i]);
	free(all);
	su_free(NULL, table.tt_table);
	memset(&table, 0, sizeof(table));
}

void txn_set_user(struct txn *t, const struct txn_user *user, void *arg)
{
	t->user = user;
	t->arg = arg;
}

void txn_detach(struct txn *t)
{
	if (t) {
		t->user = NULL;
		t->arg = NULL;
	}
}

void txn_abandon(struct txn *t)
{
	if (t)
		terminate(t);
}

msg_t *txn_request(const struct txn *t) { return t->req; }
uint64_t txn_flow_id(const struct txn *t) { return t->flow_id; }
enum txn_state txn_state(const struct txn *t) { return t->state; }
int txn_status(const struct txn *t) { return t->status; }

/* ---- server side ---- */

static int server_send(struct txn *t)
{
	if (!t->out)
		return 0;
	struct flow *f = flow_find(t->flow_id);
	struct transport_dest back;
	if (!f && transport_dest_from_via(sip_object(t->req)->sip_via, &back) == 0 &&
	    (f = transport_flow_for(&back))) {
		/* §18.2.2: the request's connection has closed; a new one to the Via takes the
		 * response, and any that follow. */
		log_info("txn %s: flow %llu is gone, response sent over a new connection (flow %llu)",
			 t->key, (unsigned long long)t->flow_id, (unsigned long long)f->id);
		t->flow_id = f->id;
	}
	if (!f) {
		log_info("txn %s: flow %llu is gone, response not sent", t->key,
			 (unsigned long long)t->flow_id);
		return -1;
	}
	if (flow_send(f, t->out, t->out_len) != 0)
		return -1;
	return 0;
}

struct txn *txn_server_create(msg_t *req, struct flow *f)
{
	sip_t *sip = sip_object(req);
	char *key = make_key(SIDE_SERVER, sip, key_method(sip));
	if (!key)
		return NULL;
	struct txn *t = txn_alloc(SIDE_SERVER, req, key);
	if (!t)
		return NULL;
	msg_ref(req); /* the transaction's own reference */
	t->flow_id = f->id;
	t->reliable = proto_is_reliable(f->proto);
	t->state = t->invite ? TXN_PROCEEDING : TXN_TRYING;
	if (t->invite)
		txn_respond_status(t, 100, "Trying"); /* §16.2: stops the caller's retransmissions */
	return t;
}

bool txn_server_absorb(msg_t *req, sip_t *sip, struct flow *f)
{
	char *key = make_key(SIDE_SERVER, sip, key_method(sip));
	if (!key)
		return false;
	struct txn *t = table_find(key);
	free(key);
	if (!t)
		return false;
	if (sip->sip_request->rq_method == sip_method_ack) {
		if (!t->invite)
			return false;
		if (t->state == TXN_COMPLETED) {
			/* §17.2.1: the ACK for our non-2xx final; stop retransmitting (Timer I). */
			t->state = TXN_CONFIRMED;
			uv_timer_stop(&t->retrans);
			linger(t, t->reliable ? 0 : T4);
			return true;
		}
		/* RFC 6026: in Accepted an ACK belongs to the 2xx and is forwarded end to end. */
		return t->state == TXN_CONFIRMED;
	}
	/* A retransmission: resend the last response (if any) and absorb. */
	metrics_inc(M_TXN_RETRANS_ABSORBED);
	if (t->state == TXN_PROCEEDING || t->state == TXN_COMPLETED || t->state == TXN_TRYING)
		server_send(t);
	log_debug("txn %s: retransmission from %s absorbed", t->key, f->peer_text);
	return true;
}

struct txn *txn_server_find_invite(sip_t *cancel)
{
	char *key = make_key(SIDE_SERVER, cancel, "INVITE");
	if (!key)
		return NULL;
	struct txn *t = table_find(key);
	free(key);
	return t && t->side == SIDE_SERVER ? t : NULL;
}

void txn_server_cancel(struct txn *t)
{
	if (!t || t->side != SIDE_SERVER || t->state != TXN_PROCEEDING)
		return;
	if (t->user && t->user->on_cancel)
		t->user->on_cancel(t, t->arg);
}

static void on_timer_g(uv_timer_t *h)
{
	struct txn *t = h->data;
	server_send(t);
	t->interval = t->interval * 2 < T2 ? t->interval * 2 : T2;
	uv_timer_start(&t->retrans, on_timer_g, t->interval, 0);
}

static void on_timer_h(uv_timer_t *h)
{
	struct txn *t = h->data;
	log_info("txn %s: no ACK for final response (Timer H)", t->key);
	terminate(t);
}

int txn_respond(struct txn *t, msg_t *resp)
{
	if (!t || t->side != SIDE_SERVER || t->state == TXN_TERMINATED ||
	    t->state == TXN_COMPLETED || t->state == TXN_CONFIRMED) {
		msg_destroy(resp);
		return -1;
	}
	sip_t *rs = sip_object(resp);
	int status = rs->sip_status->st_status;
	if (t->state == TXN_ACCEPTED && status < 200) {
		msg_destroy(resp);
		return -1;
	}
	size_t len;
	char *buf = sipmsg_encode(resp, &len);
	msg_destroy(resp);
	if (!buf)
		return -1;
	free(t->out);
	t->out = buf;
	t->out_len = len;
	if (status > t->status)
		t->status = status;
	int rc = server_send(t);
	if (status < 200) {
		t->state = TXN_PROCEEDING;
	} else if (t->invite && status < 300) {
		/* RFC 6026 Accepted: absorb INVITE retransmissions, pass 2xx retransmissions (Timer L). */
		t->state = TXN_ACCEPTED;
		linger(t, 64 * T1);
	} else if (t->invite) {
		t->state = TXN_COMPLETED;
		if (!t->reliable) {
			t->interval = T1;
			uv_timer_start(&t->retrans, on_timer_g, T1, 0);
		}
		uv_timer_start(&t->timeout, on_timer_h, 64 * T1, 0);
	} else {
		t->state = TXN_COMPLETED;
		linger(t, t->reliable ? 0 : 64 * T1); /* Timer J */
	}
	return rc;
}

int txn_respond_status(struct txn *t, int status, const char *reason)
{
	if (!t)
		return -1;
	msg_t *resp = sipmsg_response(t->req, status, reason);
	if (!resp)
		return -1;
	return txn_respond(t, resp);
}

/* ---- client side ---- */

static int client_send(struct txn *t, const char *data, size_t len)
{
	return transport_send(&t->dest, data, len);
}

static void client_fail(struct txn *t, int status)
{
	const struct txn_user *user = t->user;
	if (user && user->on_fail)
		user->on_fail(t, status, t->arg);
	terminate(t);
}

static void on_timer_retransmit(uv_timer_t *h)
{
	struct txn *t = h->data;
	if (client_send(t, t->out, t->out_len) != 0) {
		client_fail(t, 503);
		return;
	}
	/* Timer A doubles without bound; Timer E doubles up to T2 (and sits at T2 once proceeding). */
	if (t->invite)
		t->interval *= 2;
	else
		t->interval = t->state == TXN_PROCEEDING ? T2
			      : t->interval * 2 < T2	 ? t->interval * 2
							 : T2;
	uv_timer_start(&t->retrans, on_timer_retransmit, t->interval, 0);
}

static void on_timer_b(uv_timer_t *h)
{
	struct txn *t = h->data;
	log_info("txn %s: no response (Timer %s)", t->key, t->invite ? "B" : "F");
	client_fail(t, 408);
}

static void on_first_send_failed(uv_timer_t *h) { client_fail(h->data, 503); }

struct txn *txn_client_create(msg_t *req, const struct transport_dest *dest, const struct txn_user *user,
			      void *arg)
{
	sip_t *sip = sip_object(req);
	char *key = make_key(SIDE_CLIENT, sip, key_method(sip));
	if (!key) {
		msg_destroy(req);
		return NULL;
	}
	size_t len;
	char *buf = sipmsg_encode(req, &len);
	if (!buf) {
		free(key);
		msg_destroy(req);
		return NULL;
	}
	struct txn *t = txn_alloc(SIDE_CLIENT, req, key);
	if (!t) {
		free(buf);
		msg_destroy(req);
		return NULL;
	}
	t->out = buf;
	t->out_len = len;
	t->dest = *dest;
	t->flow_id = dest->flow_id;
	t->reliable = dest->flow_id ? proto_is_reliable(dest->proto) : proto_is_reliable(dest->proto);
	t->user = user;
	t->arg = arg;
	t->state = t->invite ? TXN_CALLING : TXN_TRYING;
	if (client_send(t, buf, len) != 0) {
		/* The owner learns on the loop's next turn, not from inside this call, which has not
		 * yet given it the transaction to know its callbacks by. */
		uv_timer_start(&t->timeout, on_first_send_failed, 0, 0);
		return t;
	}
	if (!t->reliable) {
		t->interval = T1;
		uv_timer_start(&t->retrans, on_timer_retransmit, T1, 0);
	}
	uv_timer_start(&t->timeout, on_timer_b, 64 * T1, 0); /* Timer B / F */
	return t;
}

/** The CANCEL for a client INVITE (§9.1): same R-URI, Call-ID, From, To, CSeq number, top Via
 *  and Route as the INVITE. */
static msg_t *build_cancel_or_ack(struct txn *t, sip_method_t method, const char *name, sip_t *resp)
{
	sip_t *rq = sip_object(t->req);
	msg_t *m = msg_create(sipmsg_mclass(), 0);
	if (!m)
		return NULL;
	sip_t *s = sip_object(m);
	su_home_t *home = msg_home(m);
	int err = 0;
	err |= msg_header_insert(m, (msg_pub_t *)s,
				 (msg_header_t *)sip_request_create(home, method, name,
								    (url_string_t *)rq->sip_request->rq_url, NULL));
	err |= msg_header_insert(m, (msg_pub_t *)s,
				 msg_header_dup_one(home, (msg_header_t *)rq->sip_via));
	if (rq->sip_route)
		err |= sip_add_dup(m, s, (sip_header_t *)rq->sip_route);
	err |= sip_add_make(m, s, sip_max_forwards_class, "70");
	err |= sip_add_dup(m, s, (sip_header_t *)rq->sip_from);
	err |= sip_add_dup(m, s, (sip_header_t *)(resp ? resp->sip_to : rq->sip_to));
	err |= sip_add_dup(m, s, (sip_header_t *)rq->sip_call_id);
	err |= msg_header_insert(m, (msg_pub_t *)s,
				 (msg_header_t *)sip_cseq_create(home, rq->sip_cseq->cs_seq, method, name));
	if (err) {
		msg_destroy(m);
		return NULL;
	}
	return m;
}

static void send_cancel(struct txn *t)
{
	if (t->cancelled)
		return;
	t->cancelled = true;
	msg_t *cancel = build_cancel_or_ack(t, sip_method_cancel, "CANCEL", NULL);
	if (!cancel)
		return;
	/* The CANCEL is its own transaction; nobody waits for its 200. */
	txn_client_create(cancel, &t->dest, NULL, NULL);
}

void txn_client_cancel(struct txn *t)
{
	if (!t || t->side != SIDE_CLIENT || !t->invite)
		return;
	if (t->state == TXN_PROCEEDING)
		send_cancel(t);
	else if (t->state == TXN_CALLING)
		t->cancel_pending = true; /* §9.1: wait for a provisional response */
}

static void send_ack(struct txn *t, sip_t *resp)
{
	if (!t->ack) {
		msg_t *ack = build_cancel_or_ack(t, sip_method_ack, "ACK", resp);
		if (!ack)
			return;
		t->ack = sipmsg_encode(ack, &t->ack_len);
		msg_destroy(ack);
		if (!t->ack)
			return;
	}
	client_send(t, t->ack, t->ack_len);
}

bool txn_client_receive(msg_t *resp, sip_t *sip, struct flow *f)
{
	char *key = make_key(SIDE_CLIENT, sip, key_method(sip));
	if (!key)
		return false;
	struct txn *t = table_find(key);
	free(key);
	if (!t || t->side != SIDE_CLIENT)
		return false;
	int status = sip->sip_status->st_status;
	const struct txn_user *user = t->user;
	if (status < 200) {
		if (t->state != TXN_CALLING && t->state != TXN_TRYING && t->state != TXN_PROCEEDING)
			return true;
		t->state = TXN_PROCEEDING;
		if (t->invite) {
			/* Timers A and B stop; the proxy's Timer C takes over. */
			uv_timer_stop(&t->retrans);
			uv_timer_stop(&t->timeout);
			if (t->cancel_pending)
				send_cancel(t);
		}
		if (status > t->status)
			t->status = status;
		if (user && user->on_response)
			user->on_response(t, resp, sip, t->arg);
		return true;
	}
	if (t->invite && status < 300) {
		/* RFC 6026: every 2xx (also retransmissions, also from other forks) goes up. */
		if (t->state != TXN_ACCEPTED) {
			t->state = TXN_ACCEPTED;
			linger(t, 64 * T1); /* Timer M */
		}
		t->status = status;
		if (user && user->on_response)
			user->on_response(t, resp, sip, t->arg);
		return true;
	}
	if (t->invite) {
		if (t->state == TXN_COMPLETED || t->state == TXN_ACCEPTED) {
			if (t->state == TXN_COMPLETED)
				send_ack(t, sip); /* a retransmitted final: ACK again, absorb */
			return true;
		}
		t->state = TXN_COMPLETED;
		t->status = status;
		send_ack(t, sip);
		linger(t, t->reliable ? 0 : 32000); /* Timer D */
		if (user && user->on_response)
			user->on_response(t, resp, sip, t->arg);
		return true;
	}
	if (t->state == TXN_COMPLETED)
		return true;
	t->state = TXN_COMPLETED;
	t->status = status;
	linger(t, t->reliable ? 0 : T4); /* Timer K */
	if (user && user->on_response)
		user->on_response(t, resp, sip, t->arg);
	return true;
}

/** A flow went away: client transactions that can only use it fail now, not at Timer B/F. */
static void on_flow_gone(struct flow *f)
{
	/* Collect first: failing one may start or end others (the proxy CANCELs its siblings). */
	struct txn **hit = NULL;
	size_t n = 0, cap = 0;
	for (struct txn *t = clients; t; t = t->cnext) {
		if (t->flow_id != f->id ||
		    (t->state != TXN_CALLING && t->state != TXN_TRYING && t->state != TXN_PROCEEDING))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			struct txn **grown = realloc(hit, cap * sizeof(*hit));
			if (!grown)
				break;
			hit = grown;
		}
		hit[n++] = t;
	}
	/* Terminated transactions stay allocated until their timers close, so the pointers hold. */
	for (size_t i = 0; i < n; i++)
		if (hit[i]->state != TXN_TERMINATED)
			client_fail(hit[i], 480);
	free(hit);
}
