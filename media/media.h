/** @file media.h  The call life cycle in rtpengine, as the proxy sees it: each message with SDP
 *  that crosses the proxy goes through media_sdp at the point where it would be sent; the end of
 *  a call (BYE, a failed or cancelled initial INVITE, a connection that dies) through
 *  media_call_end. Whether a call is anchored at all is decided on its first offer, from the two
 *  legs' transports and media.relay.
 *
 * Offer and answer are told apart by the offer/answer state of the call (RFC 3264): the first
 * SDP of an exchange is an offer (INVITE, re-INVITE, UPDATE, or a 200 to an INVITE without SDP),
 * the SDP that comes back in a response to that request, or in the ACK of that 200, the answer.
 * Toward a WebRTC leg (ws, wss) the SDP asks for ICE, DTLS-SRTP (rtpengine passive in its own
 * offers, active in answers to a browser's offer) and UDP/TLS/RTP/SAVPF with rtcp-mux; toward a plain leg, RTP/AVP without ICE or DTLS, rtcp-mux
 * demultiplexed. */
#ifndef SIPEDGE_MEDIA_H
#define SIPEDGE_MEDIA_H
#include <stdint.h>

#include "base/sipmsg.h"

#define MEDIA_PASS 0 /* nothing to do: send the message as it is, now */
#define MEDIA_WAIT 1 /* the message goes to rtpengine: cont runs later */

struct media_op;
/** status 0: send the message (its SDP now rtpengine's); otherwise answer the request with
 *  status (503) instead, or drop a response/ACK. */
typedef void (*media_cont_fn)(void *arg, int status);

struct media_config;
/** Start with cfg's settings (kept by pointer): watch flows, so that a call whose connection
 *  dies is deleted. */
void media_init(const struct media_config *cfg);
/** Forget every call and pending operation (no callbacks run). */
void media_shutdown(void);

/** msg (a request, a response or an ACK, with or without SDP) goes from flow `from` to flow
 *  `to`. MEDIA_PASS, MEDIA_WAIT (then *op is set until cont runs or media_op_cancel), or a SIP
 *  status to answer at once (503: no rtpengine, media.on_failure = "refuse"). */
int media_sdp(msg_t *msg, uint64_t from, uint64_t to, media_cont_fn cont, void *arg, struct media_op **op);
/** The caller of cont is gone (its context ended): cont will not run. */
void media_op_cancel(struct media_op *op);
/** The call of sip (Call-ID, From tag) ends: its rtpengine session is deleted. why: for the log. */
void media_call_end(sip_t *sip, const char *why);
/** Calls with a session in rtpengine. */
int media_calls(void);

#endif
