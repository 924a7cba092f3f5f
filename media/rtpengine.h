/** @file rtpengine.h  The configured set of rtpengines (media.rtpengine), in order: each one
 *  health-checked with an NG ping every media.ping_interval seconds; a request goes to the first
 *  that answers its pings and, when that one stays silent, to the next (failover). Also the
 *  media.relay policy: which calls are anchored at all. */
#ifndef SIPEDGE_RTPENGINE_H
#define SIPEDGE_RTPENGINE_H
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "base/config.h"
#include "media/ng.h"

#define RTPENGINE_MAX 8

enum media_relay { MEDIA_RELAY_NEVER, MEDIA_RELAY_CROSS, MEDIA_RELAY_ALWAYS };

/** The media.* settings: rtpengine anchoring. */
struct media_config {
	struct string_list rtpengine; /* "udp:HOST:PORT", tried in order (failover) */
	char *relay;		      /* "cross", "always" or "never" */
	char *on_failure;	      /* "refuse" (503) or "unanchored" (SDP passes as it is) */
	int ping_interval;	      /* seconds between NG pings to each rtpengine */
	int ng_timeout;		      /* ms an NG request may take, retransmissions included */
};
extern const struct setting media_settings[];
/** Check the media.* settings; logs each problem, returns how many. */
int media_config_check(const struct media_config *cfg);
/** Open one NG socket per configured rtpengine and start pinging them. 0 on success. */
int rtpengine_init(uv_loop_t *loop, const struct media_config *cfg);
/** Stop the pings, cancel every request (callbacks do not run), close the sockets. */
void rtpengine_shutdown(void);

int rtpengine_count(void);
const char *rtpengine_name(int index); /* as configured: "udp:127.0.0.1:22222" */
bool rtpengine_is_up(int index);
/** media.relay as configured; MEDIA_RELAY_NEVER when no rtpengine is configured. */
enum media_relay rtpengine_relay(void);
/** Whether a call between these two legs is anchored under policy: cross anchors only when one
 *  leg is WebRTC (ws/wss) and the other is not. */
bool media_relay_wanted(enum media_relay policy, bool caller_webrtc, bool callee_webrtc);

struct rtpengine_req;
/** index: the rtpengine that answered (or was tried last); reply valid during the call only. */
typedef void (*rtpengine_cb)(void *arg, int index, enum ng_status status, const struct bencode *reply);

/** Send an NG request (dict: one encoded dictionary holding "command"). pin >= 0 sends only to
 *  that rtpengine (answer, delete and query must reach the one holding the call); pin < 0 goes
 *  to the first one up, then on a timeout to the next, each tried once. NULL: nothing to send
 *  to (no callback will run). */
struct rtpengine_req *rtpengine_request(int pin, const char *command, const char *dict, size_t len,
					rtpengine_cb cb, void *arg);
void rtpengine_cancel(struct rtpengine_req *r);

#endif
