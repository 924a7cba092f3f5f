/** @file auth.c  Digest challenges and checks, AOR ownership, and the relay policy.
 *
 * Every check runs on the loop thread and needs no state but the users table and the table of
 * used nonces: a challenge stores nothing (the nonce carries its own time and MAC), so a flood
 * of unauthenticated requests costs no memory.
 *
 * Order of the checks for one set of credentials, and what each failure gets:
 *   no credentials for our realm       → challenge (401/407)
 *   credentials that do not parse      → 400
 *   algorithm not offered, no qop=auth → challenge (counted as a failure)
 *   nonce not ours                     → challenge (failure)
 *   nonce expired                      → challenge with stale=true
 *   digest uri names someone else      → 400 (auth.strict_digest_uri: ≠ Request-URI)
 *   unknown user, wrong password       → challenge (failure; the same answer, so that user names
 *                                        cannot be probed)
 *   nc not higher than before          → challenge with stale=true (a resent request or a
 *                                        replay: the password was right, so no failure)
 *   user does not own the AOR          → 403
 */
#include "auth/auth.h"
#include "auth/digest.h"
#include "auth/nonce.h"
#include "auth/users.h"
#include "base/log.h"
#include "cluster/cluster.h"
#include "base/metrics.h"
#include "base/sipmsg.h"
#include "sip/txn.h"
#include "registrar/registrar.h"
#include "sip/self.h"
#include "transport/flow.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <ifaddrs.h>

#define NONCE_TABLE_MAX (256 * 1024 * 1024) /* one byte a challenge: 256 MiB at most */

struct alg_list {
	enum digest_alg alg[DIGEST__COUNT];
	int n;
};

static struct {
	bool running;
	const struct auth_config *cfg;
	struct users *users;
	struct alg_list net, ws; /* challenged on udp/tcp/tls, and on ws/wss */
	char (*local_addrs)[INET6_ADDRSTRLEN]; /* the host's addresses, for wildcard listeners */
	int n_local_addrs;
	struct cidr trusted[CONFIG_MAX_LIST];
	int n_trusted;
	bool challenge_all;
	bool warned_no_users;
} A;

/* ---- trusted peers ---- */

static bool peer_trusted(const struct flow *f)
{
	for (int i = 0; f && i < A.n_trusted; i++)
		if (net_cidr_match(&A.trusted[i], (const struct sockaddr *)&f->peer))
			return true;
	return false;
}

/* ---- configuration ---- */

const struct setting auth_settings[] = {
	SETTING_BOOL("auth.disabled", struct auth_config, no_auth, false),
	SETTING_STRING("auth.users_file", struct auth_config, users_file, ""),
	SETTING_STRING("auth.realm", struct auth_config, realm, ""),
	SETTING_LIST_OF("auth.algorithms", struct auth_config, auth_algorithms, "MD5", "SHA-256"),
	SETTING_BOOL("auth.repeat_first_challenge", struct auth_config, auth_repeat_first, true),
	SETTING_STRING("auth.nonce_secret", struct auth_config, nonce_secret, ""),
	SETTING_INT("auth.nonce_ttl", struct auth_config, nonce_ttl, 300),
	SETTING_INT("auth.nonce_table_size", struct auth_config, nonce_table_size, 16777216),
	SETTING_LIST_OF("auth.challenge_methods", struct auth_config, auth_challenge_methods, "*"),
	SETTING_LIST("auth.trusted_peers", struct auth_config, trusted_peers),
	SETTING_LIST_OF("auth.websocket_algorithms", struct auth_config, auth_ws_algorithms, "MD5"),
	SETTING_BOOL("auth.strict_digest_uri", struct auth_config, auth_strict_uri, false),
	SETTING_END,
};

static int check_algorithms(const char *setting, const struct string_list *names)
{
	int problems = 0;
	enum digest_alg alg;
	unsigned seen = 0;
	if (names->count == 0) {
		log_error("config: %s is empty (want e.g. [\"MD5\", \"SHA-256\"])", setting);
		problems++;
	}
	for (int i = 0; i < names->count; i++) {
		const char *name = names->item[i];
		if (digest_alg_parse(name, &alg) != 0) {
			log_error("config: %s: unknown '%s' (want MD5, SHA-256 or SHA-512-256)", setting, name);
			problems++;
		} else if (seen & (1u << alg)) {
			log_error("config: %s lists %s twice", setting, name);
			problems++;
		} else {
			seen |= 1u << alg;
		}
	}
	return problems;
}

int auth_config_check(const struct auth_config *cfg)
{
	int problems = check_algorithms("auth.algorithms", &cfg->auth_algorithms);
	problems += check_algorithms("auth.websocket_algorithms", &cfg->auth_ws_algorithms);
	/* The realm goes into a quoted string of every challenge. */
	for (const char *p = cfg->realm ? cfg->realm : ""; *p; p++)
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20 || *p == 0x7f) {
			log_error("config: auth.realm must not contain quotes, backslashes or control characters");
			problems++;
			break;
		}
	if (cfg->nonce_ttl < 1 || cfg->nonce_ttl > 86400) {
		log_error("config: auth.nonce_ttl must be 1..86400 seconds");
		problems++;
	}
	if (cfg->nonce_table_size < 1 || cfg->nonce_table_size > NONCE_TABLE_MAX) {
		log_error("config: auth.nonce_table_size must be 1..%d", NONCE_TABLE_MAX);
		problems++;
	}
	for (int i = 0; i < cfg->trusted_peers.count; i++) {
		struct cidr c;
		if (net_cidr_parse(cfg->trusted_peers.item[i], &c) != 0) {
			log_error("config: auth.trusted_peers: '%s' is not an address or ADDRESS/BITS",
				  cfg->trusted_peers.item[i]);
			problems++;
		}
	}
	return problems;
}

/* ---- answers ---- */

enum auth_kind { KIND_WWW, KIND_PROXY };

struct auth_req {
	struct txn *st;
	msg_t *req;
	sip_t *sip;
	struct flow *f;
	enum auth_kind kind;
	const url_t *identity; /* To for REGISTER, From otherwise */
	const char *domain;    /* the domain of ours the identity belongs to (self_domain_of) */
	const char *realm;
	const char *username; /* once read from the credentials */
};

/* Browser clients (ws, wss) get their own list: they speak MD5 only, and sipML5 gives up on a
 * 401 that offers it several challenges for one realm. */
static const struct alg_list *algs_for(const struct flow *f)
{
	return f && (f->proto == PROTO_WS || f->proto == PROTO_WSS) ? &A.ws : &A.net;
}

static void auth_log(const struct auth_req *r, enum log_level level, const char *what)
{
	if (log_get_level() < level)
		return; /* the summary is not made for a line nobody reads */
	char summary[160];
	sipmsg_summary(r->sip, summary, sizeof(summary));
	log_msg(level, "auth: %s from %s (user '%s', %s " URL_PRINT_FORMAT "): %s", summary,
		r->f ? r->f->peer_text : "?", r->username ? r->username : "-",
		r->kind == KIND_WWW ? "To" : "From", URL_PRINT_ARGS(r->identity), what);
}

static void auth_challenge(struct auth_req *r, bool stale)
{
	int status = r->kind == KIND_WWW ? 401 : 407;
	msg_t *resp = sipmsg_response(r->req, status, NULL);
	if (!resp) {
		txn_respond_status(r->st, 500, "Out Of Memory");
		return;
	}
	char nonce[NONCE_LEN + 1];
	nonce_make(r->realm, time(NULL), nonce);
	const struct alg_list *algs = algs_for(r->f);
	msg_hclass_t *hc = r->kind == KIND_WWW ? sip_www_authenticate_class : sip_proxy_authenticate_class;
	int err = 0;
	/* One challenge per algorithm, in the configured order (RFC 8760: preferred first). Clients
	 * that read one header read the first (SIP.js) or the last (JsSIP: its parser keeps only the
	 * last WWW-Authenticate line), so the first challenge is repeated at the end when there are
	 * several. */
	int n = algs->n + (A.cfg->auth_repeat_first && algs->n > 1);
	for (int i = 0; i < n; i++) {
		enum digest_alg alg = algs->alg[i % algs->n];
		char *text = su_sprintf(msg_home(resp), "Digest realm=\"%s\", nonce=\"%s\", algorithm=%s, qop=\"auth\"%s",
					r->realm, nonce, digest_alg_name(alg), stale ? ", stale=true" : "");
		/* Our own words (the realm is one of our domains): sent as written, not parsed. */
		err |= !text || msg_header_insert(resp, (msg_pub_t *)sip_object(resp),
						  sipmsg_header_as_is(msg_home(resp), hc, text, strlen(text))) != 0;
	}
	if (err) {
		msg_destroy(resp);
		txn_respond_status(r->st, 500, "Out Of Memory");
		return;
	}
	metrics_inc(M_AUTH_CHALLENGES);
	if (stale)
		metrics_inc(M_AUTH_STALE);
	txn_respond(r->st, resp);
}

/* A failed attempt: logged for the operator (and tools such as fail2ban), then challenged again. */
static int auth_fail(struct auth_req *r, const char *why, bool stale)
{
	if (!stale)
		metrics_inc(M_AUTH_FAILURES);
	auth_log(r, stale ? LOGL_INFO : LOGL_NOTICE, why);
	auth_challenge(r, stale);
	return 1;
}

static int auth_refuse(struct auth_req *r, int status, const char *reason, const char *why)
{
	if (status == 403)
		metrics_inc(M_AUTH_FORBIDDEN);
	else
		metrics_inc(M_AUTH_FAILURES);
	auth_log(r, LOGL_NOTICE, why);
	txn_respond_status(r->st, status, reason);
	return 1;
}

/* ---- the checks ---- */

static bool header_malformed(sip_t *sip, const char *name)
{
	for (sip_error_t *e = sip->sip_error; e; e = e->er_next) {
		const char *n = sipmsg_error_name(e);
		if (n && strcasecmp(n, name) == 0)
			return true;
	}
	return false;
}

static bool alg_offered(const struct alg_list *algs, enum digest_alg alg)
{
	for (int i = 0; i < algs->n; i++)
		if (algs->alg[i] == alg)
			return true;
	return false;
}

/* Equal as text, or equal as SIP URIs (case of the host, escaping). */
static bool uri_is_ruri(su_home_t *home, const char *digest_uri, const url_t *u, const url_t *ruri)
{
	char *text = url_as_string(home, ruri);
	if (text && strcmp(text, digest_uri) == 0)
		return true;
	return u && u->url_type == ruri->url_type && url_cmp_all(u, ruri) == 0;
}

static bool is_wildcard(const char *host) { return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0; }

/* A wildcard listener answers on every address of the host: one of those, and the listener's
 * port when the URI gives one. */
static bool names_a_wildcard_listener(const url_t *u)
{
	const char *host = u->url_host;
	size_t len = strlen(host);
	if (len > 2 && host[0] == '[' && host[len - 1] == ']') {
		host++;
		len -= 2;
	}
	bool local = false;
	for (int i = 0; i < A.n_local_addrs && !local; i++)
		local = strlen(A.local_addrs[i]) == len && strncasecmp(A.local_addrs[i], host, len) == 0;
	int port = u->url_port ? atoi(u->url_port) : 0, n = 0;
	const struct listen_spec *l = self_listeners(&n);
	for (int i = 0; local && i < n; i++)
		if (is_wildcard(l[i].host) && (!port || port == l[i].port))
			return true;
	return false;
}

/* RFC 3261 §22.4 has the server check that the digest uri names the resource the request is
 * for, so that an answer meant for another server is not taken here. Clients fill it in their own
 * ways: most copy the Request-URI, SIPp (without -auth_uri) puts the address it sends to
 * (sip:IP:PORT), others the domain they register with. So a uri naming us is accepted: one of
 * our domains (any user, any port), or a listener address with that listener's port or none.
 * One naming anything else is not. Replays are stopped by the nonce and its nc, not by the uri.
 * auth.strict_digest_uri wants the Request-URI itself. */
static bool uri_acceptable(su_home_t *home, const char *digest_uri, const url_t *ruri)
{
	url_t *u = url_make(home, digest_uri);
	if (uri_is_ruri(home, digest_uri, u, ruri))
		return true;
	if (A.cfg->auth_strict_uri || !u || (u->url_type != url_sip && u->url_type != url_sips) || !u->url_host)
		return false;
	return self_is_our_domain(u->url_host) || self_is_us(u) || names_a_wildcard_listener(u);
}

/* 0: authenticated as the owner of r->identity; otherwise answered. */
static int auth_verify(struct auth_req *r)
{
	const struct auth_config *cfg = A.cfg;
	sip_t *sip = r->sip;
	su_home_t *home = msg_home(r->req);
	const char *hname = r->kind == KIND_WWW ? "Authorization" : "Proxy-Authorization";

	if (users_count(A.users) == 0) {
		if (!A.warned_no_users)
			log_warn("auth: no users (auth.users_file / --users) and --no-auth not given: "
				 "refusing every request that needs credentials");
		A.warned_no_users = true;
		return auth_refuse(r, 403, "Authentication Not Configured",
				   "refused: no users file is configured");
	}
	if (header_malformed(sip, hname))
		return auth_refuse(r, 400, r->kind == KIND_WWW ? "Malformed Authorization Header"
							       : "Malformed Proxy-Authorization Header",
				   "malformed credentials header");

	msg_auth_t *h = r->kind == KIND_WWW ? sip->sip_authorization : sip->sip_proxy_authorization;
	struct digest_credentials c;
	for (; h; h = h->au_next) {
		if (!h->au_scheme || strcasecmp(h->au_scheme, "Digest") != 0)
			continue;
		if (digest_credentials_get(home, h->au_params, &c) != 0)
			return auth_refuse(r, 400, "Malformed Digest Credentials", "digest parameters do not parse");
		/* Credentials for another realm belong to someone further on (§22.3). */
		if (c.realm && strcmp(c.realm, r->realm) == 0)
			break;
	}
	if (!h) {
		auth_log(r, LOGL_DEBUG, "no credentials for our realm: challenged");
		auth_challenge(r, false);
		return 1;
	}
	r->username = c.username;
	if (!c.username || !*c.username || !c.nonce || !c.uri || !c.response)
		return auth_refuse(r, 400, "Incomplete Digest Credentials",
				   "credentials lack username, nonce, uri or response");

	enum digest_alg alg = DIGEST_MD5;
	if (c.algorithm && digest_alg_parse(c.algorithm, &alg) != 0)
		return auth_fail(r, "algorithm not supported", false);
	if (!alg_offered(algs_for(r->f), alg))
		return auth_fail(r, "algorithm not offered", false);
	if (!c.qop || strcasecmp(c.qop, "auth") != 0)
		return auth_fail(r, "credentials without qop=auth", false);
	uint32_t nc;
	if (digest_nc_parse(c.nc, &nc) != 0 || nc == 0 || !c.cnonce || !*c.cnonce)
		return auth_refuse(r, 400, "Malformed nc or cnonce", "malformed nc or cnonce");

	time_t now = time(NULL), issued = 0;
	switch (nonce_check(c.nonce, r->realm, now, cfg->nonce_ttl, &issued)) {
	case NONCE_INVALID: return auth_fail(r, "nonce is not ours", false);
	case NONCE_STALE: return auth_fail(r, "nonce expired: challenged with stale=true", true);
	case NONCE_VALID: break;
	}
	if (!uri_acceptable(home, c.uri, sip->sip_request->rq_url))
		return auth_refuse(r, 400,
				   cfg->auth_strict_uri ? "Digest URI Does Not Match Request-URI"
							: "Digest URI Names Another Server",
				   cfg->auth_strict_uri ? "digest uri is not the Request-URI"
							: "digest uri names neither the Request-URI nor us");

	const struct user_entry *user = users_find(A.users, c.username, r->domain);
	char ha1[DIGEST_HEX_MAX], expect[DIGEST_HEX_MAX];
	if (!user)
		return auth_fail(r, "unknown user", false);
	if (users_ha1(user, alg, r->realm, ha1) != 0)
		return auth_fail(r, "user has no HA1 for this algorithm", false);
	int rc = digest_response(alg, ha1, c.nonce, c.nc, c.cnonce, sip->sip_request->rq_method_name, c.uri, expect);
	memset(ha1, 0, sizeof(ha1));
	if (rc != 0)
		return auth_refuse(r, 500, "Server Internal Error", "digest computation failed");
	if (!digest_hex_equal(expect, c.response))
		return auth_fail(r, "wrong password", false);

	switch (nc_table_use(c.nonce, issued, nc, now)) {
	case NC_REPLAY:
		/* The digest matched, so whoever sent it knows the password or copied a request: a
		 * fresh nonce (stale=true) lets an honest client that resent its last credentials
		 * (SIP.js does on un-REGISTER) answer without a failure on record, and gives a
		 * replayer nothing. */
		metrics_inc(M_AUTH_REPLAYS);
		return auth_fail(r, "nonce count did not increase (resent or replayed): challenged with stale=true",
				 true);
	case NC_FORGOTTEN: return auth_fail(r, "nonce no longer tracked: challenged with stale=true", true);
	case NC_OK: break;
	}

	/* Authenticated; now authorized? The user part of the AOR is the user name (§22.1). */
	if (!r->identity->url_user || strcmp(r->identity->url_user, c.username) != 0)
		return auth_refuse(r, 403, "Forbidden (Identity Mismatch)",
				   "authenticated, but the user does not own the AOR");
	metrics_inc(M_AUTH_SUCCESS);
	auth_log(r, LOGL_INFO, r->kind == KIND_WWW ? "authenticated" : "authenticated (proxy)");
	/* Consumed: our realm's credentials are not for the next hop (§22.3). */
	if (r->kind == KIND_PROXY)
		msg_header_remove(r->req, (msg_pub_t *)sip, (msg_header_t *)h);
	return 0;
}

/** realm is one we challenge with: the configured one, else one of our domains. */
static bool realm_is_ours(const char *realm)
{
	if (A.cfg->realm && A.cfg->realm[0])
		return strcmp(realm, A.cfg->realm) == 0;
	return self_is_our_domain(realm);
}

void auth_strip_credentials(msg_t *fwd, sip_t *sip)
{
	if (!A.running)
		return;
	msg_auth_t *h = sip->sip_proxy_authorization;
	while (h) {
		msg_auth_t *next = h->au_next;
		char const *realm = msg_params_find(h->au_params, "realm=");
		char *unquoted = realm ? msg_unquote_dup(NULL, realm) : NULL;
		if (unquoted && realm_is_ours(unquoted))
			msg_header_remove(fwd, (msg_pub_t *)sip, (msg_header_t *)h);
		su_free(NULL, unquoted);
		h = next;
	}
}

/* The realm: the configured one, else the identity's domain (our first domain for a user at one
 * of our listener addresses, so a stored HA1 of that domain fits). */
static const char *realm_for(const char *domain)
{
	return A.cfg->realm && A.cfg->realm[0] ? A.cfg->realm : domain;
}

int auth_register_check(struct txn *st, msg_t *req, sip_t *sip, struct flow *f, const char *aor)
{
	if (A.cfg->no_auth)
		return 0;
	/* The registrar has checked To: a sip/sips URI of one of our domains. */
	const url_t *to = sip->sip_to->a_url;
	const char *domain = self_domain_of(to) ? self_domain_of(to) : to->url_host;
	struct auth_req r = {.st = st, .req = req, .sip = sip, .f = f, .kind = KIND_WWW, .identity = to,
			     .domain = domain, .realm = realm_for(domain)};
	return auth_verify(&r);
}

static bool method_challenged(sip_t *sip)
{
	if (A.challenge_all)
		return true;
	const char *m = sip->sip_request->rq_method_name;
	for (int i = 0; i < A.cfg->auth_challenge_methods.count; i++)
		if (strcasecmp(A.cfg->auth_challenge_methods.item[i], m) == 0)
			return true;
	return false;
}

static int relay_denied(struct txn *st, sip_t *sip, struct flow *f, const char *why)
{
	char summary[160];
	sipmsg_summary(sip, summary, sizeof(summary));
	metrics_inc(M_RELAY_DENIED);
	log_notice("auth: %s from %s (From " URL_PRINT_FORMAT "): relaying denied: %s", summary,
		   f ? f->peer_text : "?", URL_PRINT_ARGS(sip->sip_from->a_url), why);
	txn_respond_status(st, 403, "Relaying Denied");
	return 1;
}

/* A request another node of the cluster forwards: that node has applied this policy already. */
/* A request another node signed: it checked the sender and forwards to a flow of ours, so it
 * goes on unchallenged, but only to us (a member never relays through us) and only once. -1:
 * not signed, the usual policy decides. */
static int cluster_policy(struct txn *st, sip_t *sip, struct flow *f, enum proxy_dest dest)
{
	char node[64], summary[160];
	enum cluster_sender who = cluster_sender(sip, node, sizeof(node));
	if (who == CLUSTER_NOT_SIGNED)
		return -1;
	sipmsg_summary(sip, summary, sizeof(summary));
	if (who == CLUSTER_MEMBER && dest != PROXY_DEST_FOREIGN) {
		log_info("auth: %s from %s: forwarded by cluster node %s", summary, f ? f->peer_text : "?", node);
		return 0;
	}
	metrics_inc(M_CLUSTER_REFUSED);
	log_notice("auth: %s from %s: refused: its X-Sipedge-Cluster (node '%s') %s", summary, f ? f->peer_text : "?",
		   node,
		   who == CLUSTER_REPLAYED ? "was seen before (a copy)"
		   : who == CLUSTER_MEMBER ? "is good, but the request is not for us (members do not relay)"
					   : "does not verify under cluster.secret, is too old, or names this node");
	txn_respond_status(st, 403, "Forbidden (Cluster Signature)");
	return 1;
}

int auth_request_policy(struct txn *st, msg_t *req, sip_t *sip, struct flow *f, enum proxy_dest dest)
{
	int member = cluster_policy(st, sip, f, dest);
	if (member >= 0)
		return member;
	if (dest == PROXY_DEST_DIALOG)
		return 0;
	if (peer_trusted(f))
		return 0;
	const url_t *from = sip->sip_from->a_url;
	/* One of our users: From in one of our domains, or at one of our listener addresses (SIPp
	 * scenarios write From as sip:USER@[remote_ip]:[remote_port], the address they send to). */
	const char *domain = self_domain_of(from);
	bool from_ours = domain != NULL;
	if (A.cfg->no_auth) {
		/* No credentials exist, so nobody is an authenticated local user. */
		if (dest == PROXY_DEST_FOREIGN)
			return relay_denied(st, sip, f, "--no-auth and not a trusted peer");
		return 0;
	}
	if (!from_ours) {
		if (dest == PROXY_DEST_FOREIGN)
			return relay_denied(st, sip, f, "not our user and not a trusted peer");
		char summary[160];
		sipmsg_summary(sip, summary, sizeof(summary));
		metrics_inc(M_AUTH_FORBIDDEN);
		log_notice("auth: %s from %s (From " URL_PRINT_FORMAT "): refused: not from our domains "
			   "and not a trusted peer", summary, f ? f->peer_text : "?", URL_PRINT_ARGS(from));
		txn_respond_status(st, 403, "Forbidden (Not A Trusted Peer)");
		return 1;
	}
	/* Relaying always needs credentials; calls between our users as configured. */
	if (dest == PROXY_DEST_LOCAL && !method_challenged(sip))
		return 0;
	struct auth_req r = {.st = st, .req = req, .sip = sip, .f = f, .kind = KIND_PROXY, .identity = from,
			     .domain = domain, .realm = realm_for(domain)};
	return auth_verify(&r);
}

/* ---- life cycle ---- */

static int load_users(void)
{
	const char *path = A.cfg->users_file;
	if (!path || !*path)
		return 0;
	struct users *u = users_load(path);
	if (!u)
		return -1;
	users_free(A.users);
	A.users = u;
	A.warned_no_users = false;
	metrics_set(M_AUTH_USERS, (int64_t)users_count(u));
	log_notice("auth: %zu user%s loaded from %s", users_count(u), users_count(u) == 1 ? "" : "s", path);
	return 0;
}

static void parse_trusted(void)
{
	A.n_trusted = 0;
	for (int i = 0; i < A.cfg->trusted_peers.count && i < CONFIG_MAX_LIST; i++)
		if (net_cidr_parse(A.cfg->trusted_peers.item[i], &A.trusted[A.n_trusted]) == 0)
			A.n_trusted++;
}

static void algs_from(const struct string_list *names, struct alg_list *out)
{
	out->n = 0;
	for (int i = 0; i < names->count && out->n < DIGEST__COUNT; i++)
		if (digest_alg_parse(names->item[i], &out->alg[out->n]) == 0)
			out->n++;
	if (out->n == 0)
		out->alg[out->n++] = DIGEST_MD5;
}

static void algs_text(const struct alg_list *algs, char *out, size_t size)
{
	out[0] = '\0';
	for (int i = 0; i < algs->n; i++)
		snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? ", " : "", digest_alg_name(algs->alg[i]));
}

/* With a wildcard listener, the host's addresses (a digest uri may name any of them). */
static void load_local_addrs(void)
{
	int nl = 0;
	bool wildcard = false;
	const struct listen_spec *l = self_listeners(&nl);
	for (int i = 0; i < nl; i++)
		wildcard |= is_wildcard(l[i].host);
	struct ifaddrs *list = NULL;
	if (!wildcard || getifaddrs(&list) != 0)
		return;
	int n = 0;
	for (struct ifaddrs *i = list; i; i = i->ifa_next)
		n += i->ifa_addr && (i->ifa_addr->sa_family == AF_INET || i->ifa_addr->sa_family == AF_INET6);
	A.local_addrs = calloc((size_t)n + 1, sizeof(*A.local_addrs));
	for (struct ifaddrs *i = list; A.local_addrs && i; i = i->ifa_next) {
		const struct sockaddr *sa = i->ifa_addr;
		const void *a = !sa ? NULL
			: sa->sa_family == AF_INET ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
			: sa->sa_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
			: NULL;
		if (a && inet_ntop(sa->sa_family, a, A.local_addrs[A.n_local_addrs], INET6_ADDRSTRLEN))
			A.n_local_addrs++;
	}
	freeifaddrs(list);
}

int auth_init(const struct auth_config *cfg)
{
	auth_shutdown();
	A.cfg = cfg;
	algs_from(&cfg->auth_algorithms, &A.net);
	algs_from(&cfg->auth_ws_algorithms, &A.ws);
	load_local_addrs();
	parse_trusted();
	A.challenge_all = false;
	for (int i = 0; i < cfg->auth_challenge_methods.count; i++)
		if (strcmp(cfg->auth_challenge_methods.item[i], "*") == 0)
			A.challenge_all = true;
	if (nonce_init(cfg->nonce_secret) != 0) {
		log_error("auth: no random bytes for the nonce key (set auth.nonce_secret, or fix the system's random source)");
		return -1;
	}
	if (nc_table_init((size_t)cfg->nonce_table_size, cfg->nonce_ttl) != 0) {
		log_error("auth: out of memory");
		return -1;
	}
	if (cfg->no_auth) {
		if (cfg->users_file && *cfg->users_file)
			log_warn("auth: --no-auth (auth.disabled) is set: the users file %s is not used",
				 cfg->users_file);
	} else if (load_users() != 0) {
		nc_table_shutdown();
		return -1;
	} else if (!A.users) {
		log_warn("auth: no users file (auth.users_file or --users) and --no-auth not given: "
			 "every REGISTER will be refused with 403");
		A.warned_no_users = true;
	}
	char net[64], ws[64];
	algs_text(&A.net, net, sizeof(net));
	algs_text(&A.ws, ws, sizeof(ws));
	log_info("auth: %s; algorithms %s (ws, wss: %s); digest uri %s; nonces live %d s; %d trusted peer "
		 "block%s; realm %s",
		 cfg->no_auth ? "OFF" : "on", net, ws, cfg->auth_strict_uri ? "= Request-URI" : "naming us",
		 cfg->nonce_ttl, A.n_trusted, A.n_trusted == 1 ? "" : "s",
		 cfg->realm && *cfg->realm ? cfg->realm : "(the request's domain)");
	A.running = true;
	return 0;
}

int auth_reload(void)
{
	if (!A.running)
		return -1;
	/* auth.trusted_peers may have changed in the configuration it keeps by pointer. */
	parse_trusted();
	if (A.cfg->no_auth || !A.cfg->users_file || !*A.cfg->users_file) {
		log_info("auth: reload: no users file in use");
		return 0;
	}
	if (load_users() != 0) {
		log_error("auth: reload of %s failed: keeping the %zu users in force", A.cfg->users_file,
			  users_count(A.users));
		return -1;
	}
	return 0;
}

void auth_shutdown(void)
{
	users_free(A.users);
	nc_table_shutdown();
	nonce_shutdown();
	free(A.local_addrs);
	memset(&A, 0, sizeof(A));
	metrics_set(M_AUTH_USERS, 0);
}
