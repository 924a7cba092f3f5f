/** @file net.c  See net.h. */
#include "base/net.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static const char *const proto_names[] = {"udp", "tcp", "tls", "ws", "wss"};
static const char *const proto_via_names[] = {"UDP", "TCP", "TLS", "WS", "WSS"};

const char *proto_name(enum transport_proto proto) { return proto_names[proto]; }
const char *proto_via_name(enum transport_proto proto) { return proto_via_names[proto]; }
bool proto_is_reliable(enum transport_proto proto) { return proto != PROTO_UDP; }
bool proto_is_secure(enum transport_proto proto) { return proto == PROTO_TLS || proto == PROTO_WSS; }

int proto_parse(const char *text, size_t len)
{
	for (int i = 0; i < PROTO__COUNT; i++)
		if (strlen(proto_names[i]) == len && strncasecmp(text, proto_names[i], len) == 0)
			return i;
	return -1;
}

int net_cidr_parse(const char *text, struct cidr *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(text, '/');
	size_t hl = slash ? (size_t)(slash - text) : strlen(text);
	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, text, hl);
	host[hl] = '\0';
	memset(out, 0, sizeof(*out));
	int max;
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	out->bits = max;
	if (slash) {
		char *end;
		long b = strtol(slash + 1, &end, 10);
		if (slash[1] == '\0' || *end != '\0' || b < 0 || b > max)
			return -1;
		out->bits = (int)b;
	}
	return 0;
}

static bool prefix_equal(const unsigned char *a, const unsigned char *b, int bits)
{
	int bytes = bits / 8, rest = bits % 8;
	if (memcmp(a, b, (size_t)bytes) != 0)
		return false;
	if (!rest)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

bool net_cidr_match(const struct cidr *c, const struct sockaddr *sa)
{
	static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return c->family == AF_INET && prefix_equal(c->addr, (const unsigned char *)&in->sin_addr, c->bits);
	}
	if (sa->sa_family != AF_INET6)
		return false;
	const unsigned char *a6 = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	if (c->family == AF_INET6)
		return prefix_equal(c->addr, a6, c->bits);
	/* ::ffff:10.1.2.3 from a dual-stack listener is the IPv4 peer 10.1.2.3. */
	return memcmp(a6, v4mapped, sizeof(v4mapped)) == 0 && prefix_equal(c->addr, a6 + 12, c->bits);
}

