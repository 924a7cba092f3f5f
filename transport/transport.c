/** @file transport.c  Sending to a destination: an existing flow, or an address. */
#include "transport/transport.h"
#include "base/log.h"
#include "transport/flow.h"
#include "transport/stream.h"
#include "transport/udp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/** host (bracketed or not) as a numeric address into ss. 0 on success. */
static int numeric_addr(const char *host, int port, struct sockaddr_storage *ss)
{
	char buf[64];
	size_t n = strlen(host);
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, host, n);
	buf[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, buf, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(AF_INET6, buf, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		return 0;
	}
	return -1;
}

/* A port as written in a URI or a Via, or the transport's default (5061 for TLS, else 5060) when
 * there is none; -1 if it is not a port number. */
static int port_or_default(const char *text, enum transport_proto proto)
{
	if (!text || !*text)
		return proto == PROTO_TLS ? 5061 : 5060;
	char *end;
	long p = strtol(text, &end, 10);
	return *end || p < 1 || p > 65535 ? -1 : (int)p;
}

int transport_dest_from_url(const url_t *url, struct transport_dest *dest)
{
	if (!url || !url->url_host || (url->url_type != url_sip && url->url_type != url_sips))
		return -1;
	memset(dest, 0, sizeof(*dest));
	bool secure = url->url_type == url_sips;
	char transport[16] = "", maddr[64] = "";
	if (url->url_params) {
		url_param(url->url_params, "transport", transport, sizeof(transport));
		url_param(url->url_params, "maddr", maddr, sizeof(maddr));
	}
	if (!transport[0] || strcasecmp(transport, "udp") == 0)
		dest->proto = secure ? PROTO_TLS : PROTO_UDP;
	else if (strcasecmp(transport, "tcp") == 0)
		dest->proto = secure ? PROTO_TLS : PROTO_TCP;
	else if (strcasecmp(transport, "tls") == 0)
		dest->proto = PROTO_TLS;
	else
		return -1; /* ws/wss peers are reached only through their own connections */
	int port = port_or_default(url->url_port, dest->proto);
	return port < 0 ? -1 : numeric_addr(maddr[0] ? maddr : url->url_host, port, &dest->addr);
}

int transport_dest_from_via(const sip_via_t *via, struct transport_dest *dest)
{
	if (!via || !via->v_protocol || !via->v_host)
		return -1;
	memset(dest, 0, sizeof(*dest));
	if (strcasecmp(via->v_protocol, "SIP/2.0/TCP") == 0)
		dest->proto = PROTO_TCP;
	else if (strcasecmp(via->v_protocol, "SIP/2.0/TLS") == 0)
		dest->proto = PROTO_TLS;
	else
		return -1;
	int port = port_or_default(via->v_port, dest->proto);
	return port < 0 ? -1
			: numeric_addr(via->v_received ? via->v_received : via->v_host, port, &dest->addr);
}

struct flow *transport_flow_for(const struct transport_dest *dest)
{
	if (dest->flow_id)
		return flow_find(dest->flow_id);
	switch (dest->proto) {
	case PROTO_UDP:
		return udp_flow_get((const struct sockaddr *)&dest->addr);
	case PROTO_TCP:
	case PROTO_TLS:
		return stream_flow_get(dest->proto, (const struct sockaddr *)&dest->addr);
	default:
		log_notice("no %s transport to send to an address", proto_name(dest->proto));
		return NULL;
	}
}

int transport_send(const struct transport_dest *dest, const char *data, size_t len)
{
	struct flow *f = transport_flow_for(dest);
	return f ? flow_send(f, data, len) : -1;
}

int transport_send_msg(struct flow *f, msg_t *msg)
{
	size_t len;
	char *buf = sipmsg_encode(msg, &len);
	if (!buf)
		return -1;
	if (log_get_level() >= LOGL_DEBUG)
		log_debug("send to flow %llu %s:\n%.*s", f ? (unsigned long long)f->id : 0ULL,
			  f ? f->peer_text : "-", (int)len, buf);
	int rc = flow_send(f, buf, len);
	free(buf);
	return rc;
}
