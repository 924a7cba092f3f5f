/** @file transport.h  Sending to a destination: an existing flow, or an address. */
#ifndef SIPEDGE_TRANSPORT_H
#define SIPEDGE_TRANSPORT_H
#include <stddef.h>

struct txn_dest;

/** Send data to dest: on dest->flow_id if set, else to dest->addr over dest->proto (a UDP
 *  datagram, or a new or reused TCP/TLS connection). 0 on success, -1 if it cannot be sent. */
int transport_send(const struct txn_dest *dest, const char *data, size_t len);

#endif
