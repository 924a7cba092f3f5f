/** @file udp.h  SIP over UDP (RFC 3261 §18) on libuv.
 *
 * Each udp listener is one uv_udp_t socket. A UDP "flow" is one peer address on one listener:
 * found or created by address when a datagram arrives or when we send to an address, and
 * expired after udp.flow_idle_timeout seconds without traffic so that peers never leak.
 * Every datagram is one SIP message; the receive buffer holds the largest datagram there is, so
 * nothing is ever truncated.
 */
#ifndef SIPEDGE_UDP_H
#define SIPEDGE_UDP_H
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "base/config.h"
#include "transport/transport.h"

struct flow;

/** Open every udp listener of cfg on loop (a port 0 is replaced by the port bound); prints
 *  "listening udp HOST:PORT" per listener. 0 on success, -1 (logged) on failure. */
struct udp_config {
	int udp_flow_idle; /* seconds without traffic before a UDP peer is forgotten */
	int udp_max_flows; /* the least recently used peer makes room beyond this */
};
extern const struct setting udp_settings[];
int udp_config_check(const struct udp_config *cfg);

int udp_start(const struct udp_config *cfg, const struct transport_setup *setup);
/** Drop every UDP flow and close the sockets; the loop must run afterwards for handles to close. */
void udp_stop(void);

/** The flow to addr, sent from a udp listener of addr's address family (created if new).
 *  NULL if no such listener is open. */
struct flow *udp_flow_get(const struct sockaddr *addr);
/** The flow to addr from the same socket as flow f (a UDP flow). NULL on failure. */
struct flow *udp_flow_sibling(struct flow *f, const struct sockaddr *addr);
/** Expire flows idle since before now_ms (milliseconds of uv_now); returns how many went.
 *  Runs from a timer; exposed so tests can drive it. */
unsigned udp_expire(uint64_t now_ms);
/** Open UDP flows. */
unsigned udp_flow_count(void);

#endif
