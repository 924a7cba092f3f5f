/** @file registrar.c  REGISTER processing: RFC 3261 §10.3, RFC 5626 outbound, RFC 3327 Path,
 *  RFC 5627 GRUU (the 200 gives every instance its pub-gruu and a new temp-gruu: gruu.h).
 *
 * A REGISTER is checked whole before anything changes: every Contact is read into a planned
 * operation (add, refresh or remove, with its key and expiry), every rule that can refuse the
 * request is applied to the plan, and only then is the location table touched. A refused
 * REGISTER therefore never leaves half of its contacts bound.
 *
 * Binding identity (the key, RFC 5626 §6 and §10.3 step 7):
 *   +sip.instance and reg-id with Supported: outbound  → "o:<instance>;<reg-id>" (outbound)
 *   +sip.instance otherwise                           → "i:<instance>"
 *   no instance, arrived over WS/WSS                  → "f:<flow id>:<uri>"
 *   no instance, any other transport                  → "u:<uri>"
 * The WebSocket rule exists because sipML5 tabs send identical Contacts (a fixed .invalid host)
 * over separate connections: keyed by URI alone, the second tab would steal the first's binding.
 */
#include "registrar/registrar.h"
#include "base/config.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/sipmsg.h"
#include "sip/self.h"
#include "sip/txn.h"
#include "registrar/gruu.h"
#include "registrar/location.h"
#include "registrar/store.h"
#include "transport/flow.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define REG_LIST_MAX 1024 /* bindings one AOR can list in a 200 (more than any max_bindings) */

/* Extensions a REGISTER may require of us (RFC 3327, RFC 5626, RFC 5627). */
static const char *const reg_supported_tags[] = {"path", "outbound", "gruu"};

struct reg_op {
	struct binding nb;	/* what the binding will be; strings in the request's home */
	struct binding *cur;	/* the existing binding with the same key, or NULL */
	unsigned long expires;	/* granted; 0 = remove */
	bool skip;		/* a later Contact of the same request has the same key */
};

static struct {
	bool running;
	const struct registrar_config *cfg;
	struct store store;
	registrar_auth_fn auth;
	bool warned_no_auth;
} R;

/* ---- small readers over sofia's parsed values ---- */

/* delta-seconds (RFC 3261 §25.1): digits only; values beyond 2^32-1 mean 2^32-1 (§10.2.1.1). */
static int reg_parse_delta(const char *s, unsigned long *out)
{
	if (!s || !*s)
		return -1;
	unsigned long long v = 0;
	for (const char *p = s; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		if (v < 0xffffffffULL)
			v = v * 10 + (unsigned)(*p - '0');
	}
	*out = v > 0xffffffffULL ? 0xffffffffUL : (unsigned long)v;
	return 0;
}

/* qvalue = ("0" ["." 0*3DIGIT]) / ("1" ["." 0*3("0")]) as thousandths. */
static int reg_parse_q(const char *s, int *out)
{
	if (!s)
		return -1;
	if (s[0] != '0' && s[0] != '1')
		return -1;
	int v = (s[0] - '0') * 1000;
	if (s[1] == '\0') {
		*out = v;
		return 0;
	}
	if (s[1] != '.')
		return -1;
	int scale = 100, n = 0;
	for (const char *p = s + 2; *p; p++, n++) {
		if (n == 3 || !isdigit((unsigned char)*p))
			return -1;
		v += (*p - '0') * scale;
		scale /= 10;
	}
	if (v > 1000)
		return -1;
	*out = v;
	return 0;
}

static bool reg_flow_is_ws(const struct flow *f) { return f && (f->proto == PROTO_WS || f->proto == PROTO_WSS); }

/* One header field value as text (no name, no CRLF), in home. */
/* Four strings (NULL as "") joined in home: the binding's key and the URI's trial request line
 * are built for every contact of every REGISTER, where su_sprintf cost about 1.3k instructions
 * each. */
static char *reg_join(su_home_t *home, const char *a, const char *b, const char *c, const char *d)
{
	const char *part[4] = {a, b, c, d};
	size_t len[4], total = 1;
	for (int i = 0; i < 4; i++)
		total += len[i] = part[i] ? strlen(part[i]) : 0;
	char *s = su_alloc(home, total), *p = s;
	if (!s)
		return NULL;
	for (int i = 0; i < 4; i++) {
		if (len[i])
			memcpy(p, part[i], len[i]);
		p += len[i];
	}
	*p = '\0';
	return s;
}

/* v in decimal in buf (24 bytes). */
static const char *reg_decimal(char buf[24], unsigned long long v)
{
	char *p = buf + 23;
	*p = '\0';
	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	return p;
}

static char *reg_field_text(su_home_t *home, const msg_header_t *h)
{
	char buf[1024];
	issize_t n = msg_header_field_e(buf, sizeof(buf), h, 0);
	if (n < 0)
		return NULL;
	if ((size_t)n < sizeof(buf))
		return su_strndup(home, buf, n);
	char *big = su_alloc(home, (isize_t)n + 1);
	if (!big || msg_header_field_e(big, n + 1, h, 0) != n)
		return NULL;
	big[n] = '\0';
	return big;
}

/* The Contact as registered, less its expires parameter: the time left is the binding's own
 * (expires_at), which each 200 gives as a fresh expires parameter after the others. */
static char *reg_contact_text(su_home_t *home, const sip_contact_t *m)
{
	if (!m->m_expires)
		return reg_field_text(home, (const msg_header_t *)m);
	size_t n = 0;
	while (m->m_params[n])
		n++;
	msg_param_t *params = su_zalloc(home, (n + 1) * sizeof(*params));
	if (!params)
		return NULL;
	memcpy(params, m->m_params, n * sizeof(*params));
	msg_params_remove(params, "expires");
	sip_contact_t copy = *m;
	copy.m_params = params;
	copy.m_expires = NULL;
	return reg_field_text(home, (const msg_header_t *)&copy);
}

/* Every Path value of the request, comma-separated, in home. */
static char *reg_path_text(su_home_t *home, const sip_path_t *path)
{
	char *all = NULL;
	for (const sip_path_t *p = path; p; p = p->r_next) {
		sip_path_t one = *p;
		one.r_next = NULL;
		char *v = reg_field_text(home, (const msg_header_t *)&one);
		if (!v)
			return NULL;
		all = all ? su_sprintf(home, "%s, %s", all, v) : v;
	}
	return all;
}

/* ---- answers ---- */

static void reg_reject(struct txn *st, msg_t *req, sip_t *sip, const char *aor, int status,
		       const char *reason, msg_hclass_t *extra_class, const char *extra_value)
{
	metrics_inc(M_REG_REJECTED);
	log_info("registrar: REGISTER %s (Call-ID %s) refused: %d %s", aor ? aor : "?",
		 sip->sip_call_id ? sip->sip_call_id->i_id : "?", status, reason);
	msg_t *resp = sipmsg_response(req, status, reason);
	if (resp && extra_class) {
		if (sip_add_make(resp, sip_object(resp), extra_class, extra_value) != 0) {
			msg_destroy(resp);
			resp = NULL;
		}
	}
	if (!resp) {
		txn_respond_status(st, 500, "Out Of Memory");
		return;
	}
	txn_respond(st, resp);
}

/* RFC 5627 §6: a binding with an instance gets its pub-gruu and a newly minted temp-gruu (each
 * one minted stays valid as long as this registration: gruu.h). 0, or -1 out of memory. */
static int reg_add_gruus(su_home_t *home, sip_contact_t *m, const struct binding *b)
{
	char *pub = gruu_public(home, b->aor, b->instance);
	char *tmp = gruu_temporary(home, b);
	int err = 0;
	if (pub)
		err |= msg_header_replace_param(home, (msg_common_t *)m, su_sprintf(home, "pub-gruu=\"%s\"", pub)) < 0;
	if (tmp) {
		err |= msg_header_replace_param(home, (msg_common_t *)m, su_sprintf(home, "temp-gruu=\"%s\"", tmp)) < 0;
		metrics_inc(M_REG_TEMP_GRUUS);
	}
	return err ? -1 : 0;
}

/* A constant header of the 200, as it is (nothing to parse; sipmsg_header_as_is). */
static msg_header_t *reg_as_is(su_home_t *home, msg_hclass_t *hc, const char *value)
{
	return sipmsg_header_as_is(home, hc, value, strlen(value));
}

/* One binding's Contact in the 200, with the seconds it has left. The stored contact is
 * sofia-sip's encoding of the registered one without its expires parameter, so the line is
 * that text and a fresh ";expires=" (sipmsg_header_as_is: no parse per 200, no encode). A
 * contact stored otherwise (by an earlier version, with an expires parameter of its own) and
 * one that is given GRUUs are parsed and have their parameters set by sofia-sip. */
static msg_header_t *reg_reply_contact(su_home_t *home, const struct binding *b, long left, bool gruu)
{
	char param[32];
	int plen = snprintf(param, sizeof(param), "expires=%ld", left);
	bool with_gruus = gruu && b->instance;
	if (!with_gruus && !strcasestr(b->contact, "expires")) {
		size_t clen = strlen(b->contact);
		char *value = su_alloc(home, (isize_t)(clen + 1 + (size_t)plen + 1));
		if (!value)
			return NULL;
		memcpy(value, b->contact, clen);
		value[clen] = ';';
		memcpy(value + clen + 1, param, (size_t)plen + 1);
		return sipmsg_header_as_is(home, sip_contact_class, value, clen + 1 + (size_t)plen);
	}
	sip_contact_t *m = sip_contact_make(home, b->contact);
	if (!m)
		return NULL;
	int err = msg_header_replace_param(home, (msg_common_t *)m, su_strdup(home, param)) < 0;
	if (with_gruus)
		err |= reg_add_gruus(home, m, b);
	return err ? NULL : (msg_header_t *)m;
}

/* The 200: every live binding of aor with its remaining time (and, for a UA that supports
 * GRUU, the GRUUs of each instance), Date, and the extensions used. */
static void reg_answer_ok(struct txn *st, msg_t *req, sip_t *sip, const char *aor, bool outbound,
			  bool path)
{
	bool gruu = sip_has_feature(sip->sip_supported, "gruu");
	msg_t *resp = sipmsg_response(req, 200, "OK");
	if (!resp) {
		txn_respond_status(st, 500, "Out Of Memory");
		return;
	}
	sip_t *rs = sip_object(resp);
	su_home_t *home = msg_home(resp);
	int err = 0;
	static struct binding *list[REG_LIST_MAX];
	int n = location_bindings(aor, list, REG_LIST_MAX);
	time_t now = time(NULL);
	for (int i = 0; i < n; i++) {
		long left = (long)(list[i]->expires_at - now);
		msg_header_t *m = reg_reply_contact(home, list[i], left > 0 ? left : 0, gruu);
		if (!m) {
			log_warn("registrar: stored contact of %s does not parse: %s", aor, list[i]->contact);
			continue;
		}
		err |= msg_header_insert(resp, (msg_pub_t *)rs, m);
	}
	err |= msg_header_insert(resp, (msg_pub_t *)rs, (msg_header_t *)sipmsg_date_now(home));
	if (path && sip->sip_path)
		err |= sip_add_dup(resp, rs, (sip_header_t const *)sip->sip_path);
	if (outbound)
		err |= msg_header_insert(resp, (msg_pub_t *)rs, reg_as_is(home, sip_require_class, "outbound"));
	err |= msg_header_insert(resp, (msg_pub_t *)rs, reg_as_is(home, sip_supported_class, SIPEDGE_SUPPORTED));
	if (err) {
		msg_destroy(resp);
		txn_respond_status(st, 500, "Out Of Memory");
		return;
	}
	metrics_inc(M_REG_REGISTERS);
	txn_respond(st, resp);
}

/* ---- the request ---- */

/* Require (§8.2.2.3): everything but our extensions is refused with 420 and Unsupported. */
static char *reg_unsupported(su_home_t *home, const sip_require_t *req)
{
	char *list = NULL;
	for (; req; req = req->k_next) {
		for (msg_param_t const *t = req->k_items; t && *t; t++) {
			bool ok = false;
			for (size_t i = 0; i < sizeof(reg_supported_tags) / sizeof(reg_supported_tags[0]); i++)
				ok |= strcasecmp(*t, reg_supported_tags[i]) == 0;
			if (!ok)
				list = list ? su_sprintf(home, "%s, %s", list, *t) : su_strdup(home, *t);
		}
	}
	return list;
}

static bool reg_header_malformed(sip_t *sip, const char *name, const char *compact)
{
	for (sip_error_t *e = sip->sip_error; e; e = e->er_next) {
		const char *n = sipmsg_error_name(e);
		if (n && (strcasecmp(n, name) == 0 || (compact && strcasecmp(n, compact) == 0)))
			return true;
	}
	return false;
}

struct reg_ctx {
	struct txn *st;
	msg_t *req;
	sip_t *sip;
	struct flow *f;
	su_home_t *home;
	const char *aor;
	bool supported_outbound, supported_path;
	bool used_outbound;
};

/* Read one Contact into op. 0, or the status to refuse with and *reason. */
/* The binding of cur[] with key, or NULL. */
static struct binding *reg_current(struct binding **cur, int ncur, const char *key)
{
	for (int k = 0; k < ncur; k++)
		if (strcmp(cur[k]->key, key) == 0)
			return cur[k];
	return NULL;
}

static int reg_plan_contact(struct reg_ctx *c, sip_contact_t *m, struct reg_op *op, struct binding **cur,
			    int ncur, const char **reason)
{
	const struct registrar_config *cfg = R.cfg;
	struct binding *nb = &op->nb;
	if (m->m_url->url_type != url_sip && m->m_url->url_type != url_sips) {
		*reason = "Contact URI must be sip or sips";
		return 400;
	}
	if (!m->m_url->url_host || !m->m_url->url_host[0]) {
		*reason = "Contact URI has no host";
		return 400;
	}
	/* §10.3 step 6: the expires parameter wins over the Expires header, then our default. */
	unsigned long e = (unsigned long)cfg->reg_default_expires;
	if (m->m_expires) {
		if (reg_parse_delta(m->m_expires, &e) != 0) {
			*reason = "Malformed expires parameter";
			return 400;
		}
	} else if (c->sip->sip_expires) {
		e = c->sip->sip_expires->ex_delta;
	}
	if (e != 0 && e < (unsigned long)cfg->reg_min_expires) {
		*reason = "Interval Too Brief";
		return 423;
	}
	if (e > (unsigned long)cfg->reg_max_expires)
		e = (unsigned long)cfg->reg_max_expires;
	op->expires = e;

	nb->q = 1000;
	if (m->m_q && reg_parse_q(m->m_q, &nb->q) != 0) {
		*reason = "Malformed q parameter";
		return 400;
	}
	char const *inst = msg_params_find(m->m_params, "+sip.instance=");
	char const *rid = msg_params_find(m->m_params, "reg-id=");
	if (inst) {
		nb->instance = msg_unquote_dup(c->home, inst);
		if (!nb->instance || !nb->instance[0]) {
			*reason = "Malformed +sip.instance parameter";
			return 400;
		}
	}
	if (rid) {
		unsigned long v;
		if (reg_parse_delta(rid, &v) != 0 || v < 1 || v > INT_MAX) {
			*reason = "Malformed reg-id parameter";
			return 400;
		}
		/* RFC 5626 §6: reg-id counts only with an instance and Supported: outbound. */
		if (inst && c->supported_outbound)
			nb->reg_id = (int)v;
	}
	/* RFC 5627 §6: a GRUU of ours as a contact would route to itself. */
	if (gruu_is_one(m->m_url) && self_is_our_domain(m->m_url->url_host)) {
		*reason = "Contact Is A GRUU";
		return 403;
	}
	nb->uri = url_as_string(c->home, m->m_url);
	nb->contact = reg_contact_text(c->home, m);
	if (!nb->uri || !nb->contact) {
		*reason = "Out Of Memory";
		return 500;
	}
	nb->aor = (char *)c->aor;
	nb->outbound = nb->reg_id != 0;
	char num[24];
	if (nb->outbound)
		nb->key = reg_join(c->home, "o:", nb->instance, ";",
				   reg_decimal(num, (unsigned)nb->reg_id));
	else if (nb->instance)
		nb->key = reg_join(c->home, "i:", nb->instance, NULL, NULL);
	else if (reg_flow_is_ws(c->f))
		nb->key = reg_join(c->home, "f:", reg_decimal(num, (unsigned long long)c->f->id),
				   ":", nb->uri);
	else
		nb->key = reg_join(c->home, "u:", nb->uri, NULL, NULL);
	nb->flow_id = c->f ? c->f->id : 0;
	nb->connection = c->f && proto_is_reliable(c->f->proto);
	nb->call_id = (char *)c->sip->sip_call_id->i_id;
	nb->cseq = c->sip->sip_cseq->cs_seq;
	nb->user_agent = c->sip->sip_user_agent ? (char *)c->sip->sip_user_agent->g_string : NULL;
	nb->updated_at = time(NULL);
	nb->expires_at = nb->updated_at + (time_t)e;
	if (!nb->key) {
		*reason = "Out Of Memory";
		return 500;
	}
	/* The URI becomes the Request-URI of requests to this binding. Between < and > sofia-sip
	 * takes spaces and the like into a URI, which would make a request line no one can parse
	 * (found by fuzz/fuzz_sip): it must read back as a request line. A refresh of a binding
	 * with the same URI was checked when that binding was made: the check is for new URIs. */
	op->cur = reg_current(cur, ncur, nb->key);
	if (op->cur && strcmp(op->cur->uri, nb->uri) == 0)
		return 0;
	char *line = reg_join(c->home, "INVITE ", nb->uri, " SIP/2.0", NULL);
	sip_request_t *rq = line ? sip_request_make(c->home, line) : NULL;
	if (!rq || strcmp(url_as_string(c->home, rq->rq_url), nb->uri) != 0) {
		*reason = "Malformed Contact URI";
		return 400;
	}
	return 0;
}

/* §10.3 step 7: an older or repeated request of the same Call-ID must not change a binding. */
static bool reg_out_of_order(const struct binding *cur, sip_t *sip)
{
	return cur->call_id && strcmp(cur->call_id, sip->sip_call_id->i_id) == 0 &&
	       sip->sip_cseq->cs_seq <= cur->cseq;
}

/* ---- holding the answer until the store has it (store.h, the durability rule) ---- */

/* The group of a REGISTER already answered (500): its writes still go, nobody waits for them. */
static void reg_stored_nobody(enum store_status status, void *arg) {}

/* A REGISTER whose changes are in the location table and on their way to the store. */
struct reg_pending {
	struct txn *st; /* NULL once the transaction is gone (shutdown): nobody to answer */
	char *aor;
	bool outbound, path;
	bool write_failed; /* a put or del failed before the commit */
};

static unsigned n_held;

static void reg_pending_gone(struct txn *t, void *arg)
{
	struct reg_pending *p = arg;
	p->st = NULL;
}

static const struct txn_user reg_pending_user = {.on_gone = reg_pending_gone};

static void reg_answer_unstored(struct txn *st, msg_t *req, const char *aor, enum store_status status)
{
	sip_t *sip = sip_object(req);
	if (status == STORE_UNAVAILABLE) {
		char after[16];
		snprintf(after, sizeof(after), "%d", R.cfg->reg_store_retry_after);
		metrics_inc(M_REG_STORE_UNAVAILABLE);
		reg_reject(st, req, sip, aor, 503, "Binding Store Unavailable", sip_retry_after_class, after);
	} else {
		reg_reject(st, req, sip, aor, 500, "Binding Store Write Failed", NULL, NULL);
	}
}

/* The store's verdict on the writes of one REGISTER: now it may be answered. */
static void reg_stored(enum store_status status, void *arg)
{
	struct reg_pending *p = arg;
	metrics_set(M_REG_STORE_HELD, --n_held);
	if (status == STORE_OK && p->write_failed)
		status = STORE_FAILED;
	if (!p->st) {
		log_info("registrar: REGISTER %s: stored (%d), but its transaction is gone: no answer",
			 p->aor, (int)status);
	} else {
		struct txn *st = p->st;
		txn_set_user(st, NULL, NULL);
		msg_t *req = txn_request(st);
		if (status != STORE_OK)
			reg_answer_unstored(st, req, p->aor, status);
		else
			reg_answer_ok(st, req, sip_object(req), p->aor, p->outbound, p->path);
	}
	free(p->aor);
	free(p);
}

/* The changes are applied: the 200 goes out once the store says they are durable. */
static void reg_commit_and_answer(struct reg_ctx *c, unsigned errors_before, bool path)
{
	struct reg_pending *p = calloc(1, sizeof(*p));
	if (p)
		p->aor = strdup(c->aor);
	if (!p || !p->aor) {
		free(p);
		/* The writes are queued all the same; only this answer cannot wait for them. */
		store_commit(&R.store, reg_stored_nobody, NULL);
		reg_reject(c->st, c->req, c->sip, c->aor, 500, "Out Of Memory", NULL, NULL);
		return;
	}
	p->st = c->st;
	p->outbound = c->used_outbound;
	p->path = path;
	p->write_failed = location_store_errors() != errors_before;
	txn_set_user(c->st, &reg_pending_user, p);
	metrics_set(M_REG_STORE_HELD, ++n_held);
	store_commit(&R.store, reg_stored, p); /* may answer before it returns (memory store) */
}

/* ---- the steps of one REGISTER ---- */

/* Malformed Contact or Expires headers do not parse into sip: refuse rather than ignore. */
static bool reg_refuse_malformed(struct reg_ctx *c)
{
	const char *what = reg_header_malformed(c->sip, "Contact", "m")	  ? "Malformed Contact header"
			   : reg_header_malformed(c->sip, "Expires", NULL) ? "Malformed Expires header"
									     : NULL;
	if (what)
		reg_reject(c->st, c->req, c->sip, c->aor, 400, what, NULL, NULL);
	return what != NULL;
}

/* A change the store cannot take now is refused before anything changes: 503, try later. */
static bool reg_refuse_store_down(struct reg_ctx *c)
{
	if (!c->sip->sip_contact || store_ready(&R.store))
		return false;
	reg_answer_unstored(c->st, c->req, c->aor, STORE_UNAVAILABLE);
	return true;
}

/* Contact: * — only alone and with Expires: 0 (§10.3 step 6): every binding goes. */
static void reg_remove_all(struct reg_ctx *c, int ncontacts, struct binding **cur, int ncur)
{
	sip_t *sip = c->sip;
	if (ncontacts != 1 || !sip->sip_expires || sip->sip_expires->ex_delta != 0) {
		reg_reject(c->st, c->req, sip, c->aor, 400,
			   ncontacts != 1 ? "Contact: * must be the only Contact" : "Contact: * requires Expires: 0",
			   NULL, NULL);
		return;
	}
	for (int i = 0; i < ncur; i++)
		if (reg_out_of_order(cur[i], sip)) {
			reg_reject(c->st, c->req, sip, c->aor, 500, "Out Of Order CSeq", NULL, NULL);
			return;
		}
	unsigned errors = location_store_errors();
	store_begin(&R.store);
	for (int i = 0; i < ncur; i++)
		location_remove(cur[i], LOC_UNREGISTERED);
	reg_commit_and_answer(c, errors, false);
}

/* Every Contact into ops[], matched with the current bindings. 0, or the status to refuse with. */
static int reg_plan(struct reg_ctx *c, struct reg_op *ops, struct binding **cur, int ncur, const char **reason)
{
	int i = 0;
	for (sip_contact_t *m = c->sip->sip_contact; m; m = m->m_next, i++) {
		int status = reg_plan_contact(c, m, &ops[i], cur, ncur, reason);
		if (status)
			return status;
		/* A later Contact with the same key wins over an earlier one. */
		for (int j = 0; j < i; j++)
			if (!ops[j].skip && strcmp(ops[j].nb.key, ops[i].nb.key) == 0)
				ops[j].skip = true;
	}
	return 0;
}

/* The rules over the whole plan. 0, or the status to refuse with. */
static int reg_check_plan(struct reg_ctx *c, const struct reg_op *ops, int n, int ncur, const char **reason)
{
	sip_t *sip = c->sip;
	int noutbound = 0, after = ncur;
	for (int i = 0; i < n; i++)
		noutbound += ops[i].nb.outbound;
	/* RFC 5626 §6: one flow per REGISTER; an edge in front of us must speak outbound too. */
	if (noutbound > 1) {
		*reason = "More than one Contact with reg-id";
		return 400;
	}
	if (noutbound && sip->sip_path) {
		const sip_path_t *first_hop = sip->sip_path;
		while (first_hop->r_next)
			first_hop = first_hop->r_next;
		if (!url_has_param(first_hop->r_url, "ob")) {
			*reason = "First Hop Lacks Outbound Support";
			return 439;
		}
	}
	for (int i = 0; i < n; i++) {
		if (ops[i].skip)
			continue;
		if (ops[i].cur && reg_out_of_order(ops[i].cur, sip)) {
			*reason = "Out Of Order CSeq";
			return 500;
		}
		if (!ops[i].cur && ops[i].expires)
			after++;
		else if (ops[i].cur && !ops[i].expires)
			after--;
	}
	/* Refuse growth beyond the limit, but never a refresh: a lowered limit must not lock
	 * out users who are already over it. */
	if (after > R.cfg->reg_max_bindings && after > ncur) {
		*reason = "Too Many Bindings";
		return 403;
	}
	return 0;
}

/* Everything is checked: change the table (and, through it, the store). 0 or 500. */
static int reg_apply(struct reg_ctx *c, struct reg_op *ops, int n, char *path)
{
	for (int i = 0; i < n; i++) {
		struct reg_op *op = &ops[i];
		if (op->skip)
			continue;
		op->nb.path = path;
		if (!op->expires) {
			if (op->cur)
				location_remove(op->cur, LOC_UNREGISTERED);
			continue;
		}
		if (op->nb.outbound)
			c->used_outbound = true;
		if (op->cur ? location_update(op->cur, &op->nb) != 0 : !location_add(&op->nb))
			return 500;
	}
	return 0;
}

static void reg_refuse(struct reg_ctx *c, int status, const char *reason)
{
	if (status == 423) {
		char min[16];
		snprintf(min, sizeof(min), "%d", R.cfg->reg_min_expires);
		reg_reject(c->st, c->req, c->sip, c->aor, 423, reason, sip_min_expires_class, min);
	} else {
		reg_reject(c->st, c->req, c->sip, c->aor, status, reason, NULL, NULL);
	}
}

/* Contacts that add, refresh or remove bindings: plan, check, apply, then answer once stored. */
static void reg_change(struct reg_ctx *c, int ncontacts, struct binding **cur, int ncur)
{
	const char *reason = NULL;
	char *path = NULL;
	struct reg_op *ops = ncontacts ? calloc((size_t)ncontacts, sizeof(*ops)) : NULL;
	int status = ncontacts && !ops ? 500 : 0;
	if (status)
		reason = "Out Of Memory";
	if (!status)
		status = reg_plan(c, ops, cur, ncur, &reason);
	if (!status)
		status = reg_check_plan(c, ops, ncontacts, ncur, &reason);
	if (!status && c->sip->sip_path && ncontacts && !(path = reg_path_text(c->home, c->sip->sip_path))) {
		status = 500;
		reason = "Out Of Memory";
	}
	if (status) {
		reg_refuse(c, status, reason);
		free(ops);
		return;
	}
	unsigned errors = location_store_errors();
	store_begin(&R.store);
	int rc = reg_apply(c, ops, ncontacts, path);
	free(ops);
	if (rc != 0) {
		store_commit(&R.store, reg_stored_nobody, NULL); /* what was applied still goes */
		reg_reject(c->st, c->req, c->sip, c->aor, 500, "Out Of Memory", NULL, NULL);
		return;
	}
	reg_commit_and_answer(c, errors, path != NULL);
}

static void reg_process(struct reg_ctx *c)
{
	if (reg_refuse_malformed(c) || reg_refuse_store_down(c))
		return;
	static struct binding *cur[REG_LIST_MAX];
	int ncur = location_bindings(c->aor, cur, REG_LIST_MAX);
	bool star = false;
	int ncontacts = 0;
	for (sip_contact_t *m = c->sip->sip_contact; m; m = m->m_next, ncontacts++)
		star |= m->m_url->url_type == url_any;
	if (star)
		reg_remove_all(c, ncontacts, cur, ncur);
	else
		reg_change(c, ncontacts, cur, ncur);
}

void registrar_handle(struct txn *st, msg_t *req, sip_t *sip, struct flow *f)
{
	struct reg_ctx c = {.st = st, .req = req, .sip = sip, .f = f, .home = msg_home(req)};
	if (!R.running) {
		txn_respond_status(st, 503, "Registrar Not Running");
		return;
	}
	if (!sip->sip_to || !sip->sip_call_id || !sip->sip_cseq) {
		reg_reject(st, req, sip, NULL, 400, "Missing To, Call-ID or CSeq", NULL, NULL);
		return;
	}
	url_t const *to = sip->sip_to->a_url;
	if (to->url_type != url_sip && to->url_type != url_sips) {
		reg_reject(st, req, sip, NULL, 400, "To must be a sip or sips URI", NULL, NULL);
		return;
	}
	/* An AOR at one of our listener addresses is one of our first domain, as the proxy reads
	 * a Request-URI there: one user, however a client spells where it registers. */
	const char *domain = self_domain_of(to);
	url_t as_ours = *to;
	if (domain) {
		as_ours.url_host = domain;
		as_ours.url_port = NULL;
	}
	char *aor = sipmsg_aor(&as_ours);
	if (!aor) {
		reg_reject(st, req, sip, NULL, 400, "To URI has no host", NULL, NULL);
		return;
	}
	c.aor = aor;
	/* §10.3 step 5 (checked early: no point challenging for a domain we do not serve). */
	if (!domain) {
		reg_reject(st, req, sip, aor, 404, "Not Found (domain not served here)", NULL, NULL);
		goto out;
	}
	/* Step 2: Require. */
	char *unsupported = reg_unsupported(c.home, sip->sip_require);
	if (unsupported) {
		reg_reject(st, req, sip, aor, 420, "Bad Extension", sip_unsupported_class, unsupported);
		goto out;
	}
	c.supported_outbound = sip_has_feature(sip->sip_supported, "outbound");
	c.supported_path = sip_has_feature(sip->sip_supported, "path");
	/* RFC 3327 §5.3: Path is stored only for a UA that said it supports it. */
	if (sip->sip_path && !c.supported_path) {
		reg_reject(st, req, sip, aor, 420, "Bad Extension (Path without Supported: path)",
			   sip_unsupported_class, "path");
		goto out;
	}
	/* Steps 3-4: authentication and authorization, before any binding changes. */
	if (R.auth) {
		if (R.auth(st, req, sip, f, aor) != 0)
			goto out; /* answered by the auth module */
	} else {
		if (!R.warned_no_auth)
			log_warn("registrar: no authentication attached: refusing every REGISTER");
		R.warned_no_auth = true;
		reg_reject(st, req, sip, aor, 403, "Authentication Not Configured", NULL, NULL);
		goto out;
	}
	reg_process(&c);
out:
	free(aor);
}

void registrar_set_auth(registrar_auth_fn fn) { R.auth = fn; }

static void reg_flow_gone(struct flow *f)
{
	/* A UDP flow is only a peer address that went quiet: the contact may still be reachable,
	 * so only a closed connection takes its bindings along. */
	if (!R.running || !R.cfg->reg_drop_on_flow_close || !proto_is_reliable(f->proto))
		return;
	int n = location_drop_flow(f->id);
	if (n)
		log_info("registrar: flow %llu (%s) closed: %d binding%s dropped", (unsigned long long)f->id,
			 f->peer_text, n, n == 1 ? "" : "s");
}

const char *registrar_node_id(const struct registrar_config *cfg)
{
	static char host[256];
	if (*cfg->cluster_node_id)
		return cfg->cluster_node_id;
	if (!host[0] && (gethostname(host, sizeof(host) - 1) != 0 || !host[0]))
		snprintf(host, sizeof(host), "sipedge");
	return host;
}

/* Which store, where, how long a batch may wait, and the name this node records. */
static int registrar_store_check(const struct registrar_config *cfg)
{
	int problems = 0;
	const char *st = cfg->reg_store;
	if (!store_find(st)) {
		log_error("config: registrar.store must be \"memory\", \"sqlite\" or \"redis\", not '%s'", st);
		problems++;
	} else if (strcmp(st, "sqlite") == 0 && !*cfg->reg_store_path) {
		log_error("config: registrar.store = \"sqlite\" needs registrar.store_path (the database file)");
		problems++;
	} else if (strcmp(st, "redis") == 0 && strncmp(cfg->reg_store_path, "redis://", 8) != 0) {
		log_error("config: registrar.store = \"redis\" needs registrar.store_path = \"redis://HOST:PORT/DB\", "
			  "not '%s'", cfg->reg_store_path);
		problems++;
	}
	if (cfg->reg_store_batch_ms < 0 || cfg->reg_store_batch_ms > 1000) {
		log_error("config: registrar.store_batch_ms must be 0..1000, not %d", cfg->reg_store_batch_ms);
		problems++;
	}
	if (cfg->reg_store_timeout < 100 || cfg->reg_store_timeout > 60000) {
		log_error("config: registrar.store_timeout must be 100..60000 ms, not %d", cfg->reg_store_timeout);
		problems++;
	}
	if (cfg->reg_store_retry_after < 1 || cfg->reg_store_retry_after > 3600) {
		log_error("config: registrar.store_retry_after must be 1..3600, not %d", cfg->reg_store_retry_after);
		problems++;
	}
	size_t secret = strlen(cfg->reg_gruu_secret);
	if (secret && secret < 16) {
		log_error("config: registrar.gruu_secret must be empty (random per run) or at least 16 characters");
		problems++;
	}
	if (strpbrk(cfg->cluster_node_id, " \t\r\n{};,")) {
		log_error("config: cluster.node_id must be a name without spaces, braces, ';' or ',', not '%s'",
			  cfg->cluster_node_id);
		problems++;
	}
	return problems;
}

const struct setting registrar_settings[] = {
	SETTING_INT("registrar.min_expires", struct registrar_config, reg_min_expires, 60),
	SETTING_INT("registrar.max_expires", struct registrar_config, reg_max_expires, 3600),
	SETTING_INT("registrar.default_expires", struct registrar_config, reg_default_expires, 3600),
	SETTING_INT("registrar.max_bindings_per_aor", struct registrar_config, reg_max_bindings, 10),
	SETTING_BOOL("registrar.drop_bindings_on_flow_close", struct registrar_config, reg_drop_on_flow_close, true),
	SETTING_STRING("registrar.mode", struct registrar_config, reg_mode, "local"),
	SETTING_STRING("registrar.store", struct registrar_config, reg_store, "memory"),
	SETTING_STRING("registrar.store_path", struct registrar_config, reg_store_path, ""),
	SETTING_INT("registrar.store_batch_ms", struct registrar_config, reg_store_batch_ms, 0),
	SETTING_STRING("registrar.store_password", struct registrar_config, reg_store_password, ""),
	SETTING_INT("registrar.store_retry_after", struct registrar_config, reg_store_retry_after, 5),
	SETTING_INT("registrar.store_timeout", struct registrar_config, reg_store_timeout, 2000),
	/* The name the store records with each binding; the rest of the cluster's settings are
	 * cluster/'s, which reads this one through registrar_node_id. */
	SETTING_STRING("cluster.node_id", struct registrar_config, cluster_node_id, ""),
	SETTING_STRING("registrar.gruu_secret", struct registrar_config, reg_gruu_secret, ""),
	SETTING_END,
};

bool registrar_config_is_edge(const struct registrar_config *cfg) { return strcmp(cfg->reg_mode, "edge") == 0; }

int registrar_config_check(const struct registrar_config *cfg)
{
	int problems = 0;
	if (cfg->reg_min_expires < 1 || cfg->reg_max_expires < cfg->reg_min_expires ||
	    cfg->reg_default_expires < cfg->reg_min_expires ||
	    cfg->reg_default_expires > cfg->reg_max_expires) {
		log_error("config: need 1 <= registrar.min_expires <= default_expires <= max_expires");
		problems++;
	}
	if (cfg->reg_max_bindings < 1) {
		log_error("config: registrar.max_bindings_per_aor must be at least 1");
		problems++;
	}
	if (strcmp(cfg->reg_mode, "local") != 0 && strcmp(cfg->reg_mode, "edge") != 0) {
		log_error("config: registrar.mode must be \"local\" or \"edge\", not '%s'", cfg->reg_mode);
		problems++;
	}
	return problems + registrar_store_check(cfg);
}

int registrar_init(const struct registrar_config *cfg)
{
	static bool observing;
	if (R.running)
		return 0;
	/* flow.c keeps observers for the life of the process: register once, act while running. */
	if (!observing) {
		flow_on_gone(reg_flow_gone);
		observing = true;
	}
	R.cfg = cfg;
	if (gruu_init(cfg->reg_gruu_secret) != 0) {
		log_error("registrar: cannot make the temp-gruu key");
		return -1;
	}
	const struct store_ops *ops = store_find(cfg->reg_store);
	struct store_params params = {
		.spec = ops == &store_memory_ops ? "" : cfg->reg_store_path,
		.password = cfg->reg_store_password,
		.node = registrar_node_id(cfg),
		.batch_ms = cfg->reg_store_batch_ms,
		.timeout_ms = cfg->reg_store_timeout,
	};
	if (!ops || store_open(&R.store, ops, &params) != 0) {
		log_error("registrar: cannot open the %s store", cfg->reg_store);
		return -1;
	}
	/* The location table is itself the memory store: it keeps every binding for the life of
	 * the process, which is all the memory store promises. Writing each binding through to a
	 * second copy in store_memory.c (kept as the interface's reference implementation, and
	 * tested as one) cost a copy of every binding and a hash walk per REGISTER: a tenth of the
	 * daemon's time under a UDP REGISTER load (tests/bench/README.md). The store stays open:
	 * REGISTERs still go through its begin/commit, which the memory store answers at once. */
	if (location_init(ops == &store_memory_ops ? NULL : &R.store, cfg) != 0) {
		store_close(&R.store);
		log_error("registrar: out of memory");
		return -1;
	}
	R.running = true;
	char shown[512];
	log_info("registrar: store %s%s%s; expires %d..%d (default %d), at most %d bindings per AOR%s",
		 R.store.ops->name, *params.spec ? " " : "", redis_url_masked(params.spec, shown, sizeof(shown)),
		 cfg->reg_min_expires, cfg->reg_max_expires,
		 cfg->reg_default_expires, cfg->reg_max_bindings,
		 cfg->reg_drop_on_flow_close ? ", dropped with their flow" : "");
	return 0;
}

void registrar_shutdown(void)
{
	if (!R.running)
		return;
	R.running = false;
	/* The store first: its last writes are committed and the REGISTERs waiting for them are
	 * answered while the table still lists their bindings. */
	store_close(&R.store);
	location_shutdown();
	gruu_shutdown();
	R.warned_no_auth = false;
}
