/** @file registrar.c  REGISTER processing: RFC 3261 §10.3, RFC 5626 outbound, RFC 3327 Path.
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
#include "registrar/location.h"
#include "registrar/store.h"
#include "transport/flow.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* The 200: every live binding of aor with its remaining time, Date, and the extensions used. */
static void reg_answer_ok(struct txn *st, msg_t *req, sip_t *sip, const char *aor, bool outbound,
			  bool path)
{
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
		sip_contact_t *m = sip_contact_make(home, list[i]->contact);
		if (!m) {
			log_warn("registrar: stored contact of %s does not parse: %s", aor, list[i]->contact);
			continue;
		}
		long left = (long)(list[i]->expires_at - now);
		char param[32];
		snprintf(param, sizeof(param), "expires=%ld", left > 0 ? left : 0);
		err |= msg_header_replace_param(home, (msg_common_t *)m, su_strdup(home, param)) < 0;
		err |= msg_header_insert(resp, (msg_pub_t *)rs, (msg_header_t *)m);
	}
	err |= msg_header_insert(resp, (msg_pub_t *)rs, (msg_header_t *)sip_date_create(home, sip_now()));
	if (path && sip->sip_path)
		err |= sip_add_dup(resp, rs, (sip_header_t const *)sip->sip_path);
	if (outbound)
		err |= sip_add_make(resp, rs, sip_require_class, "outbound");
	err |= sip_add_make(resp, rs, sip_supported_class, SIPEDGE_SUPPORTED);
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
static int reg_plan_contact(struct reg_ctx *c, sip_contact_t *m, struct reg_op *op, const char **reason)
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
	nb->uri = url_as_string(c->home, m->m_url);
	nb->contact = reg_field_text(c->home, (const msg_header_t *)m);
	if (!nb->uri || !nb->contact) {
		*reason = "Out Of Memory";
		return 500;
	}
	/* The URI becomes the Request-URI of requests to this binding. Between < and > sofia-sip
	 * takes spaces and the like into a URI, which would make a request line no one can parse
	 * (found by fuzz/fuzz_sip): it must read back as a request line. */
	char *line = su_sprintf(c->home, "INVITE %s SIP/2.0", nb->uri);
	sip_request_t *rq = line ? sip_request_make(c->home, line) : NULL;
	if (!rq || strcmp(url_as_string(c->home, rq->rq_url), nb->uri) != 0) {
		*reason = "Malformed Contact URI";
		return 400;
	}
	nb->aor = (char *)c->aor;
	nb->outbound = nb->reg_id != 0;
	if (nb->outbound)
		nb->key = su_sprintf(c->home, "o:%s;%d", nb->instance, nb->reg_id);
	else if (nb->instance)
		nb->key = su_sprintf(c->home, "i:%s", nb->instance);
	else if (reg_flow_is_ws(c->f))
		nb->key = su_sprintf(c->home, "f:%llu:%s", (unsigned long long)c->f->id, nb->uri);
	else
		nb->key = su_sprintf(c->home, "u:%s", nb->uri);
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
	return 0;
}

/* §10.3 step 7: an older or repeated request of the same Call-ID must not change a binding. */
static bool reg_out_of_order(const struct binding *cur, sip_t *sip)
{
	return cur->call_id && strcmp(cur->call_id, sip->sip_call_id->i_id) == 0 &&
	       sip->sip_cseq->cs_seq <= cur->cseq;
}

static void reg_process(struct reg_ctx *c)
{
	const struct registrar_config *cfg = R.cfg;
	sip_t *sip = c->sip;
	const char *reason = NULL;
	int status = 0;

	/* Malformed Contact or Expires headers do not parse into sip: refuse rather than ignore. */
	if (reg_header_malformed(sip, "Contact", "m")) {
		reg_reject(c->st, c->req, sip, c->aor, 400, "Malformed Contact header", NULL, NULL);
		return;
	}
	if (reg_header_malformed(sip, "Expires", NULL)) {
		reg_reject(c->st, c->req, sip, c->aor, 400, "Malformed Expires header", NULL, NULL);
		return;
	}

	static struct binding *cur[REG_LIST_MAX];
	int ncur = location_bindings(c->aor, cur, REG_LIST_MAX);

	/* Contact: * — only alone and with Expires: 0 (§10.3 step 6). */
	bool star = false;
	int ncontacts = 0;
	for (sip_contact_t *m = sip->sip_contact; m; m = m->m_next) {
		ncontacts++;
		if (m->m_url->url_type == url_any)
			star = true;
	}
	if (star) {
		if (ncontacts != 1 || !sip->sip_expires || sip->sip_expires->ex_delta != 0) {
			reg_reject(c->st, c->req, sip, c->aor, 400,
				   ncontacts != 1 ? "Contact: * must be the only Contact"
						  : "Contact: * requires Expires: 0",
				   NULL, NULL);
			return;
		}
		for (int i = 0; i < ncur; i++)
			if (reg_out_of_order(cur[i], sip)) {
				reg_reject(c->st, c->req, sip, c->aor, 500, "Out Of Order CSeq", NULL, NULL);
				return;
			}
		for (int i = 0; i < ncur; i++)
			location_remove(cur[i], LOC_UNREGISTERED);
		reg_answer_ok(c->st, c->req, sip, c->aor, false, false);
		return;
	}

	struct reg_op *ops = ncontacts ? calloc((size_t)ncontacts, sizeof(*ops)) : NULL;
	if (ncontacts && !ops) {
		reg_reject(c->st, c->req, sip, c->aor, 500, "Out Of Memory", NULL, NULL);
		return;
	}
	int i = 0, noutbound = 0;
	for (sip_contact_t *m = sip->sip_contact; m; m = m->m_next, i++) {
		status = reg_plan_contact(c, m, &ops[i], &reason);
		if (status)
			break;
		if (ops[i].nb.outbound)
			noutbound++;
		/* A later Contact with the same key wins over an earlier one. */
		for (int j = 0; j < i; j++)
			if (!ops[j].skip && strcmp(ops[j].nb.key, ops[i].nb.key) == 0)
				ops[j].skip = true;
		for (int k = 0; k < ncur; k++)
			if (strcmp(cur[k]->key, ops[i].nb.key) == 0)
				ops[i].cur = cur[k];
	}
	if (status == 423) {
		char min[16];
		snprintf(min, sizeof(min), "%d", cfg->reg_min_expires);
		reg_reject(c->st, c->req, sip, c->aor, 423, reason, sip_min_expires_class, min);
		goto done;
	}
	if (status) {
		reg_reject(c->st, c->req, sip, c->aor, status, reason, NULL, NULL);
		goto done;
	}
	/* RFC 5626 §6: one flow per REGISTER; an edge in front of us must speak outbound too. */
	if (noutbound > 1) {
		reg_reject(c->st, c->req, sip, c->aor, 400, "More than one Contact with reg-id", NULL, NULL);
		goto done;
	}
	if (noutbound && sip->sip_path) {
		const sip_path_t *first_hop = sip->sip_path;
		while (first_hop->r_next)
			first_hop = first_hop->r_next;
		if (!url_has_param(first_hop->r_url, "ob")) {
			reg_reject(c->st, c->req, sip, c->aor, 439, "First Hop Lacks Outbound Support", NULL, NULL);
			goto done;
		}
	}
	int after = ncur;
	for (i = 0; i < ncontacts; i++) {
		if (ops[i].skip)
			continue;
		if (ops[i].cur && reg_out_of_order(ops[i].cur, sip)) {
			reg_reject(c->st, c->req, sip, c->aor, 500, "Out Of Order CSeq", NULL, NULL);
			goto done;
		}
		if (!ops[i].cur && ops[i].expires)
			after++;
		else if (ops[i].cur && !ops[i].expires)
			after--;
	}
	/* Refuse growth beyond the limit, but never a refresh: a lowered limit must not lock
	 * out users who are already over it. */
	if (after > cfg->reg_max_bindings && after > ncur) {
		reg_reject(c->st, c->req, sip, c->aor, 403, "Too Many Bindings", NULL, NULL);
		goto done;
	}

	char *path = NULL;
	if (sip->sip_path && ncontacts) {
		path = reg_path_text(c->home, sip->sip_path);
		if (!path) {
			reg_reject(c->st, c->req, sip, c->aor, 500, "Out Of Memory", NULL, NULL);
			goto done;
		}
	}
	/* Everything is checked: apply. */
	for (i = 0; i < ncontacts; i++) {
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
		if (op->cur ? location_update(op->cur, &op->nb) != 0 : !location_add(&op->nb)) {
			reg_reject(c->st, c->req, sip, c->aor, 500, "Out Of Memory", NULL, NULL);
			goto done;
		}
	}
	reg_answer_ok(c->st, c->req, sip, c->aor, c->used_outbound, path != NULL);
done:
	free(ops);
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
	char *aor = sipmsg_aor(to);
	if (!aor) {
		reg_reject(st, req, sip, NULL, 400, "To URI has no host", NULL, NULL);
		return;
	}
	c.aor = aor;
	/* §10.3 step 5 (checked early: no point challenging for a domain we do not serve). */
	if (!self_is_our_domain(to->url_host)) {
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

const struct setting registrar_settings[] = {
	SETTING_INT("registrar.min_expires", struct registrar_config, reg_min_expires, 60),
	SETTING_INT("registrar.max_expires", struct registrar_config, reg_max_expires, 3600),
	SETTING_INT("registrar.default_expires", struct registrar_config, reg_default_expires, 3600),
	SETTING_INT("registrar.max_bindings_per_aor", struct registrar_config, reg_max_bindings, 10),
	SETTING_BOOL("registrar.drop_bindings_on_flow_close", struct registrar_config, reg_drop_on_flow_close, true),
	SETTING_STRING("registrar.mode", struct registrar_config, reg_mode, "local"),
	SETTING_STRING("registrar.store", struct registrar_config, reg_store, "memory"),
	SETTING_STRING("registrar.store_path", struct registrar_config, reg_store_path, ""),
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
	if (strcmp(cfg->reg_store, "memory") != 0 && strcmp(cfg->reg_store, "sqlite") != 0) {
		log_error("config: registrar.store must be \"memory\" or \"sqlite\", not '%s'", cfg->reg_store);
		problems++;
	} else if (strcmp(cfg->reg_store, "sqlite") == 0 && !*cfg->reg_store_path) {
		log_error("config: registrar.store = \"sqlite\" needs registrar.store_path (the database file)");
		problems++;
	}
	return problems;
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
	bool sqlite = strcmp(cfg->reg_store, "sqlite") == 0;
	const struct store_ops *ops = sqlite ? &store_sqlite_ops : &store_memory_ops;
	if (store_open(&R.store, ops, sqlite ? cfg->reg_store_path : "") != 0) {
		log_error("registrar: cannot open the %s store", ops->name);
		return -1;
	}
	if (location_init(&R.store, cfg) != 0) {
		store_close(&R.store);
		log_error("registrar: out of memory");
		return -1;
	}
	R.running = true;
	log_info("registrar: store %s%s%s; expires %d..%d (default %d), at most %d bindings per AOR%s",
		 R.store.ops->name, sqlite ? " " : "", sqlite ? cfg->reg_store_path : "",
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
	location_shutdown();
	store_close(&R.store);
	R.warned_no_auth = false;
}
