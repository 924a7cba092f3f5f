/** @file transport.c  Sending to a destination: an existing flow, or an address. */
#include "transport/transport.h"
#include "core/log.h"
#include "proxy/txn.h"
#include "transport/flow.h"

int transport_send(const struct txn_dest *dest, const char *data, size_t len)
{
	if (dest->flow_id)
		return flow_send(flow_find(dest->flow_id), data, len);
	/* Address targets need a network transport (UDP, TCP, TLS) listening for that protocol. */
	log_notice("no %s transport to send to an address", proto_name(dest->proto));
	return -1;
}
