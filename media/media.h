/** @file media.h  The call life cycle in rtpengine, as the proxy sees it: each message with SDP
 *  that crosses the proxy goes through media_sdp at the point where it would be sent; the end of
 *  a call (BYE, a failed or cancelled initial INVITE, a connection that dies) through
 *  media_call_end. Whether a call is anchored at all is decided by media_call_open before the
 *  initial INVITE's branches start, from the caller's and every callee's transport and
 *  media.relay: anchored toward one callee, it is anchored toward all of them.
 *
 * Forking: each branch of the initial INVITE gets its own offer (NG via-branch: the proxy's Via
 * branch toward that callee), made for that callee's leg; the first 2xx takes the call, the
 * other branches' legs are deleted in rtpengine, and messages of another callee's dialog (a
 * second 2xx) pass untouched.
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

/** An initial INVITE (sip) from flow `from` is about to be forked to the n flows `to` (0: not
 *  known yet): open its call when media.relay anchors it toward any of them. 1: anchored. */
int media_call_open(sip_t *sip, uint64_t from, const uint64_t *to, int n);
/** msg (a request, a response or an ACK, with or without SDP) goes from flow `from` to flow
 *  `to`. via_branch: for the initial INVITE and its responses, the proxy's Via branch of the
 *  branch it goes out on or came back on (NULL otherwise). MEDIA_PASS, MEDIA_WAIT (then *op is
 *  set until cont runs or media_op_cancel), or a SIP status to answer at once (503: no
 *  rtpengine, media.on_failure = "refuse"). cont's status 503 for a response: rtpengine failed
 *  its answer and media.on_failure is "refuse" (the call's session is gone). */
int media_sdp(msg_t *msg, uint64_t from, uint64_t to, const char *via_branch, media_cont_fn cont, void *arg,
	      struct media_op **op);
/** The caller of cont is gone (its context ended): cont will not run. If op was finding the
 *  call's rtpengine, the operations queued behind it end now: their cont runs with 503. */
void media_op_cancel(struct media_op *op);
/** The call of sip (Call-ID, From tag) ends: its rtpengine session is deleted. why: for the log. */
void media_call_end(sip_t *sip, const char *why);
/** The branch via_branch of the initial INVITE of sip's call ended without taking the call (a
 *  non-2xx final, a timeout): its leg in rtpengine is deleted. */
void media_branch_end(sip_t *sip, const char *via_branch, const char *why);
/** Calls with a session in rtpengine. */
int media_calls(void);

#endif
