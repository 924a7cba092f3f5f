/** @file sendq.c  Outgoing message queues of the libwebsockets-based transports. */
#include "transport/sendq.h"

#include <stdlib.h>
#include <string.h>

int sendq_add(struct sendq *q, const void *data, size_t len)
{
	struct sendq_msg *m = malloc(sizeof(*m) + LWS_PRE + len);
	if (!m)
		return -1;
	m->next = NULL;
	m->len = len;
	memcpy(m->buf + LWS_PRE, data, len);
	if (q->tail)
		q->tail->next = m;
	else
		q->head = m;
	q->tail = m;
	q->bytes += len;
	return 0;
}

struct sendq_msg *sendq_take(struct sendq *q)
{
	struct sendq_msg *m = q->head;
	if (!m)
		return NULL;
	q->head = m->next;
	if (!q->head)
		q->tail = NULL;
	q->bytes -= m->len;
	return m;
}

void sendq_clear(struct sendq *q)
{
	struct sendq_msg *m;
	while ((m = sendq_take(q)))
		free(m);
}
