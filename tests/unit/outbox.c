/** @file outbox.c  Capturing flows for unit tests. */
#include "tests/unit/outbox.h"

#include <stdlib.h>
#include <string.h>

static int outbox_send(struct flow *f, const char *data, size_t len)
{
	struct outbox *b = f->impl;
	if (b->n < OUTBOX_MAX)
		b->msg[b->n++] = strndup(data, len);
	return 0;
}

static void outbox_close(struct flow *f) { (void)f; }

const struct flow_ops outbox_ops = {.send = outbox_send, .close = outbox_close};

void outbox_clear(struct outbox *b)
{
	for (int k = 0; k < b->n; k++)
		free(b->msg[k]);
	b->n = 0;
}

const char *outbox_find(const struct outbox *b, const char *prefix, const char *needle)
{
	for (int k = 0; k < b->n; k++)
		if (strncmp(b->msg[k], prefix, strlen(prefix)) == 0 && (!needle || strstr(b->msg[k], needle)))
			return b->msg[k];
	return NULL;
}
