/** @file ng.h  A client of rtpengine's NG control protocol on a libuv UDP socket.
 *
 * A request is "COOKIE SPACE bencoded-dict" in one datagram; rtpengine answers with the same
 * cookie and caches its answer, so a retransmission of the same bytes is safe (an offer is not
 * done twice). Each request gets a fresh cookie, is sent up to NG_SENDS times within the
 * client's timeout, and ends in exactly one callback: the decoded reply, or a timeout. Replies
 * from any other address than the rtpengine's, with an unknown cookie, or that do not decode
 * are dropped (counted by the caller through ng_client_stats). */
#ifndef SIPEDGE_NG_H
#define SIPEDGE_NG_H
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "media/bencode.h"

#define NG_SENDS 3 /* the first send and two retransmissions */

enum ng_status { NG_REPLY, NG_TIMEOUT, NG_SEND_FAILED };

struct ng_client;
struct ng_req;

/** reply is the decoded dictionary (valid only during the call) when status is NG_REPLY;
 *  latency_us is the time from the first send to the reply. */
typedef void (*ng_cb)(void *arg, enum ng_status status, const struct bencode *reply,
		      uint64_t latency_us);

/** A client for the rtpengine at addr; timeout_ms bounds each request. NULL on socket errors. */
struct ng_client *ng_client_new(uv_loop_t *loop, const struct sockaddr *addr, int timeout_ms);
/** Send dict (one encoded bencode dictionary, without the cookie). Returns a handle that stays
 *  valid until the callback has run or ng_cancel; NULL when out of memory (no callback). */
struct ng_req *ng_send(struct ng_client *c, const char *dict, size_t len, ng_cb cb, void *arg);
/** Forget a request: its callback will not run. */
void ng_cancel(struct ng_req *r);
/** Requests in flight. */
int ng_pending(const struct ng_client *c);
/** Datagrams dropped: foreign source, unknown cookie, undecodable. */
uint64_t ng_dropped(const struct ng_client *c);
/** Cancel every request (no callbacks) and close the socket; the memory goes when libuv has closed it. */
void ng_client_free(struct ng_client *c);

#endif
