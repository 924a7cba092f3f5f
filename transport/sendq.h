/** @file sendq.h  A connection's queue of outgoing messages, each with LWS_PRE bytes of headroom
 *  so that libwebsockets can write its framing in front without copying. */
#ifndef SIPEDGE_SENDQ_H
#define SIPEDGE_SENDQ_H
#include <libwebsockets.h>
#include <stddef.h>

struct sendq_msg {
	struct sendq_msg *next;
	size_t len;
	unsigned char buf[]; /* LWS_PRE bytes of headroom, then the message */
};

struct sendq {
	struct sendq_msg *head, *tail;
	size_t bytes; /* queued, for back-pressure limits */
};

/** Append a copy of data. 0, or -1 when out of memory. */
int sendq_add(struct sendq *q, const void *data, size_t len);
/** The oldest message, removed from the queue (the caller frees it), or NULL. */
struct sendq_msg *sendq_take(struct sendq *q);
static inline unsigned char *sendq_data(struct sendq_msg *m) { return m->buf + LWS_PRE; }
void sendq_clear(struct sendq *q);

#endif
