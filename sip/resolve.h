/** @file resolve.h  RFC 3263 §4 server location for SIP URIs with a host name.
 *
 * NAPTR, then SRV, then A and AAAA, with sofia-sip's sresolv running on the libuv loop (its
 * sockets under uv_poll, its retransmissions on a uv timer): a lookup never blocks the loop.
 * The answer comes through a callback: later, or at once when no question could be sent.
 */
#ifndef SIPEDGE_RESOLVE_H
#define SIPEDGE_RESOLVE_H
#include "base/config.h"

#include <stdint.h>
#include <sys/socket.h>
#include <sofia-sip/url.h>

#define RESOLVE_MAX_TARGETS 8

struct resolve_target {
	struct sockaddr_storage addr; /* address and port */
	enum transport_proto proto;
};

/** n targets in the order they should be tried (n = 0: the name did not resolve); ttl is the
 *  smallest time to live among the records used, in seconds. */
typedef void (*resolve_done_fn)(void *arg, const struct resolve_target *targets, int n, uint32_t ttl);

/** Create the resolver from a resolv.conf file (sofia-sip syntax: nameserver, port, options).
 *  0 on success. */
int resolve_init(const char *resolv_conf);
/** Forget every lookup under way (their callbacks never run) and close the resolver. */
void resolve_shutdown(void);
/** Look up url's host (a name, not an address). -1 if the lookup cannot start (done never
 *  runs then). */
int resolve_start(const url_t *url, resolve_done_fn done, void *arg);

#endif
