/** @file outbox.h  Capturing flows for unit tests: what sipedge sends on a flow is kept, in order. */
#ifndef SIPEDGE_TEST_OUTBOX_H
#define SIPEDGE_TEST_OUTBOX_H
#include "transport/flow.h"

#define OUTBOX_MAX 32

struct outbox {
	char *msg[OUTBOX_MAX];
	int n;
};

/** flow_ops whose impl is a struct outbox: send keeps a copy, close does nothing. */
extern const struct flow_ops outbox_ops;
void outbox_clear(struct outbox *b);
/** The first message starting with prefix (and containing needle, if given), or NULL. */
const char *outbox_find(const struct outbox *b, const char *prefix, const char *needle);

#endif
