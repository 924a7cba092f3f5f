/** @file auth.h  Who may do what through sipedge (RFC 3261 §22, RFC 7616, RFC 8760).
 *
 *  - REGISTER: digest authentication (401), and the authenticated user must own the To AOR.
 *  - Other requests from our users (From in one of our domains), out of dialog: 407 when the
 *    method is in auth.challenge_methods; the authenticated user must own the From AOR.
 *  - Relaying (a destination outside our domains): only for authenticated local users and
 *    trusted peers (auth.trusted_peers); anyone else gets 403.
 *  - Requests into our users from outside our domains: only from trusted peers.
 *  - In-dialog requests that carry our Record-Route flow token go on: the dialog was checked
 *    when it was made.
 * Credentials come from the users file (auth/users.h); nonces are ours (auth/nonce.h).
 */
#ifndef SIPEDGE_AUTH_H
#define SIPEDGE_AUTH_H
#include <stdbool.h>
#include <sys/socket.h>

#include "base/config.h"
#include "base/sipmsg.h"
#include "proxy/proxy.h"

struct flow;
struct txn;

struct auth_config {
	bool no_auth;
	char *users_file;
	char *realm; /* empty = the request's domain */
	struct string_list auth_algorithms;	  /* challenged in this order; MD5 first for SIP.js */
	bool auth_repeat_first;			  /* first challenge again at the end, for JsSIP */
	char *nonce_secret;			  /* HMAC key for nonces; random per run if empty */
	int nonce_ttl;				  /* seconds a nonce stays fresh */
	int nonce_table_size;			  /* challenges whose nc is tracked (one byte each) */
	struct string_list auth_challenge_methods; /* out-of-dialog requests from our users; "*" = all */
	struct string_list trusted_peers;	  /* CIDRs that may relay and call in unchallenged */
	struct string_list auth_ws_algorithms;	  /* challenged over ws/wss; browsers speak MD5 only */
	bool auth_strict_uri;			  /* digest uri must be the Request-URI itself */
};
extern const struct setting auth_settings[];
/** Check the auth settings of cfg; logs each problem and returns how many there are. */
int auth_config_check(const struct auth_config *cfg);
/** Start with cfg (kept by pointer): nonce key, nc table, users file, trusted peers. The app
 *  attaches auth_register_check to the registrar and auth_request_policy to the proxy.
 *  -1 if the users file cannot be read (logged). */
int auth_init(const struct auth_config *cfg);
/** Read the users file and the trusted peers again (SIGHUP, reload: cfg, kept by pointer, may
 *  hold new values). On error the users in force stay. 0 on success. */
int auth_reload(void);
void auth_shutdown(void);

/** The registrar's check (registrar_auth_fn). */
int auth_register_check(struct txn *st, msg_t *req, sip_t *sip, struct flow *f, const char *aor);
/** The proxy's forward filter (proxy_forward_fn): Proxy-Authorization for our realm leaves
 *  no request we forward, in dialog or not, ACK included (RFC 3261 §22.3: ours to consume). */
void auth_strip_credentials(msg_t *fwd, sip_t *sip);
/** The proxy's policy (proxy_policy_fn). */
int auth_request_policy(struct txn *st, msg_t *req, sip_t *sip, struct flow *f, enum proxy_dest dest);

#endif
