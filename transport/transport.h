/** @file transport.h  Sending to a destination: an existing flow, or an address. */
#ifndef SIPEDGE_TRANSPORT_H
#define SIPEDGE_TRANSPORT_H
#include <stddef.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/url.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "base/config.h"
#include "base/sipmsg.h"

struct flow;
struct tls_config;

/** Where a transport hands every message it receives: given to it by the app at start. */
struct sip_receiver {
	/** One whole SIP message, or a CRLF keep-alive (a WebSocket message, a UDP datagram). */
	void (*message)(void *ctx, struct flow *f, const char *data, size_t len);
	/** A message already framed and parsed out of a TCP or TLS stream; borrowed. */
	void (*parsed)(void *ctx, struct flow *f, msg_t *msg);
	void *ctx;
};

/** What every transport starts with. Each opens the listeners of its own kinds; a port 0 is
 *  replaced by the port bound. */
struct transport_setup {
	uv_loop_t *loop;
	struct listen_spec *listen;
	int n_listen;
	const struct tls_config *tls;
	struct sip_receiver receiver;
};

/** Where a message goes: an existing flow, or an address (UDP or a new connection). */
struct transport_dest {
	uint64_t flow_id; /* nonzero: send on this flow only */
	enum transport_proto proto;
	struct sockaddr_storage addr;
	const struct listen_spec *local; /* which listener's address goes into Via */
};

/** Where a SIP URI with a numeric host leads (RFC 3263 §4 without DNS): maddr or the host,
 *  the port (default 5060, 5061 for sips and tls), the transport= parameter (default udp, tls
 *  for sips). 0 on success; -1 if the host is a name or the transport (ws, wss) cannot be
 *  reached by address. */
int transport_dest_from_url(const url_t *url, struct transport_dest *dest);
/** Where a response goes back over a new connection when the request's has closed (RFC 3261
 *  §18.2.2): TCP or TLS as the Via says, to its received address (else its sent-by host) at the
 *  sent-by port (default 5060, 5061 for TLS). -1 for other transports or a host that is a name. */
int transport_dest_from_via(const sip_via_t *via, struct transport_dest *dest);
/** The flow that reaches dest: dest->flow_id's if set, else the UDP flow to dest->addr.
 *  NULL if there is none and none can be made. */
struct flow *transport_flow_for(const struct transport_dest *dest);
/** Send data to dest: on dest->flow_id if set, else to dest->addr over dest->proto (a UDP
 *  datagram, or a new or reused TCP/TLS connection). 0 on success, -1 if it cannot be sent. */
int transport_send(const struct transport_dest *dest, const char *data, size_t len);

/** Encode msg and send it on flow f. 0 on success. */
int transport_send_msg(struct flow *f, msg_t *msg);

#endif
