/** @file limits.h  Per-source limits: connections per IP, requests per IP per second, bans.
 *
 * Every message a transport hands to the SIP core is counted against its source address in a
 * token bucket (limits.requests_per_second, refilled continuously, limits.burst deep). A source
 * that empties its bucket is banned for limits.ban_seconds: its messages are answered 503 with
 * Retry-After or dropped (limits.ban_action), and its new connections are refused.
 * Connection-oriented transports ask before taking one more connection from an address
 * (limits.max_connections_per_ip). Trusted peers (auth.trusted_peers) are never limited.
 * Per-address state lives in a hash and goes when it has nothing left to remember.
 */
#ifndef SIPEDGE_LIMITS_H
#define SIPEDGE_LIMITS_H
#include <stdbool.h>
#include <sys/socket.h>

#include "base/config.h"

enum limits_verdict {
	LIMITS_PASS,  /* go on */
	LIMITS_REPLY, /* banned: answer requests 503 with Retry-After, drop the rest */
	LIMITS_DROP,  /* banned: say nothing */
};

struct limits_config {
	int limit_conns_per_ip;	/* open connections per source address; 0 = no limit */
	int limit_rps;		/* requests per second per source address; 0 = no limit */
	int limit_burst;	/* token bucket depth: requests accepted at once */
	int limit_ban_seconds;	/* how long a source that exceeds the rate is banned */
	char *limit_ban_action; /* "reply" (503 + Retry-After) or "drop" */
	int limit_header_bytes; /* a request whose headers are longer gets 513 */
};
extern const struct setting limits_settings[];
/** Check the limits settings of cfg; logs each problem and returns how many there are. */
int limits_config_check(const struct limits_config *cfg);
/** Start with cfg's settings (kept by pointer); sources in the address blocks of trusted are
 *  never limited. The sweep timer runs on the loop. */
int limits_init(const struct limits_config *cfg, const struct string_list *trusted);
void limits_shutdown(void);

/** Count one message from peer. Before limits_init every message passes. */
enum limits_verdict limits_message(const struct sockaddr *peer);
/** Seconds left in peer's ban (at least 1), 0 if it is not banned. */
int limits_ban_remaining(const struct sockaddr *peer);
/** May peer open one more connection? Says why not in *why (for the log and the HTTP reply). */
bool limits_conn_allowed(const struct sockaddr *peer, const char **why);
/** A connection from peer opened / closed (pair every open with one close). */
void limits_conn_opened(const struct sockaddr *peer);
void limits_conn_closed(const struct sockaddr *peer);
/** Sources banned now. */
unsigned limits_banned_count(void);
/** Every source banned now: its address (numeric, no port) and the seconds left. */
typedef void (*limits_ban_fn)(const char *addr, int seconds_left, void *arg);
void limits_each_ban(limits_ban_fn fn, void *arg);
/** End the ban on a numeric address (the operator's pardon). 0 if it was banned, -1 if it was
 *  not, -2 if addr is not a numeric address. */
int limits_unban(const char *addr);
/** The settings and the trusted list (both kept by pointer) have new values: read the trusted
 *  address blocks again. Buckets and bans in progress stay as they are. */
void limits_reload(void);

#endif
