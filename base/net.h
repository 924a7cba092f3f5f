/** @file net.h  What every room says about the network: transport protocols and address blocks. */
#ifndef SIPEDGE_NET_H
#define SIPEDGE_NET_H
#include <stdbool.h>
#include <stddef.h>
#include <strings.h>
#include <sys/socket.h>

enum transport_proto { PROTO_UDP, PROTO_TCP, PROTO_TLS, PROTO_WS, PROTO_WSS, PROTO__COUNT };

const char *proto_name(enum transport_proto proto);     /* "ws" */
const char *proto_via_name(enum transport_proto proto); /* "WS" */
bool proto_is_reliable(enum transport_proto proto);
bool proto_is_secure(enum transport_proto proto);
/** The protocol named by the len bytes at text ("ws", case-insensitive), or -1. */
int proto_parse(const char *text, size_t len);

/** An address block, "10.0.0.0/8", "2001:db8::/32" or a single address. */
struct cidr {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int bits;
};
int net_cidr_parse(const char *text, struct cidr *out);
/** IPv4-mapped IPv6 addresses match IPv4 blocks. */
bool net_cidr_match(const struct cidr *c, const struct sockaddr *sa);

#endif
