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

/** Check the auth settings of cfg; logs each problem and returns how many there are. */
int auth_config_check(const struct config *cfg);
/** Start: nonce key, nc table, users file, trusted peers; hook into the registrar and the proxy.
 *  -1 if the users file cannot be read (logged). */
int auth_init(const struct config *cfg);
/** Read the users file again (SIGHUP). On error the users in force stay. 0 on success. */
int auth_reload(void);
void auth_shutdown(void);

/** The registrar's check (registrar_auth_fn). */
int auth_register_check(struct txn *st, msg_t *req, sip_t *sip, struct flow *f, const char *aor);
/** The proxy's policy (proxy_policy_fn). */
int auth_request_policy(struct txn *st, msg_t *req, sip_t *sip, struct flow *f, enum proxy_dest dest);

/** An address block, "10.0.0.0/8", "2001:db8::/32" or a single address. */
struct cidr {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int bits;
};
int auth_cidr_parse(const char *text, struct cidr *out);
/** IPv4-mapped IPv6 addresses match IPv4 blocks. */
bool auth_cidr_match(const struct cidr *c, const struct sockaddr *sa);

#endif
