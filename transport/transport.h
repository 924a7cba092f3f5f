/** @file transport.h  Sending to a destination: an existing flow, or an address. */
#ifndef SIPEDGE_TRANSPORT_H
#define SIPEDGE_TRANSPORT_H
#include <stddef.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/url.h>

struct flow;
struct txn_dest;

/** Where a SIP URI with a numeric host leads (RFC 3263 §4 without DNS): maddr or the host,
 *  the port (default 5060, 5061 for sips and tls), the transport= parameter (default udp, tls
 *  for sips). 0 on success; -1 if the host is a name or the transport (ws, wss) cannot be
 *  reached by address. */
int transport_dest_from_url(const url_t *url, struct txn_dest *dest);
/** Where a response goes back over a new connection when the request's has closed (RFC 3261
 *  §18.2.2): TCP or TLS as the Via says, to its received address (else its sent-by host) at the
 *  sent-by port (default 5060, 5061 for TLS). -1 for other transports or a host that is a name. */
int transport_dest_from_via(const sip_via_t *via, struct txn_dest *dest);
/** The flow that reaches dest: dest->flow_id's if set, else the UDP flow to dest->addr.
 *  NULL if there is none and none can be made. */
struct flow *transport_flow_for(const struct txn_dest *dest);
/** Send data to dest: on dest->flow_id if set, else to dest->addr over dest->proto (a UDP
 *  datagram, or a new or reused TCP/TLS connection). 0 on success, -1 if it cannot be sent. */
int transport_send(const struct txn_dest *dest, const char *data, size_t len);

#endif
