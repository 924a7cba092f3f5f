/** @file flow.h  The flow table: one entry per connection (WS, WSS, TCP, TLS) or UDP peer.
 *
 * A flow is the route back to a client. Transports create a flow when a connection opens and
 * destroy it when the connection is gone; everything else refers to flows by their 64-bit id
 * (flow_find), never by a long-lived pointer, so a closed connection can never be written to.
 * Flow tokens (HMAC-signed ids) go into Record-Route and Path so in-dialog requests find it.
 */
#ifndef SIPEDGE_FLOW_H
#define SIPEDGE_FLOW_H
#include "base/config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

struct flow;

struct flow_ops {
	/** Queue one SIP message (or keep-alive) for sending. 0 on success, -1 if it cannot be sent. */
	int (*send)(struct flow *f, const char *data, size_t len);
	/** Ask the transport to close the connection; it calls flow_destroy when it is gone. */
	void (*close)(struct flow *f);
};

struct flow {
	uint64_t id;
	enum transport_proto proto;
	struct sockaddr_storage peer;
	char peer_text[64]; /* "127.0.0.1:5060" or "[::1]:5060" for logs and received= */
	char peer_host[48]; /* numeric host without brackets */
	int peer_port;
	const struct listen_spec *local; /* the listener it arrived on */
	const struct flow_ops *ops;
	void *impl; /* the transport's connection object */
	bool closing;
	/* For the operator's console: when it opened, when it last carried anything, and what. */
	time_t opened_at, active_at; /* wall clock */
	uint64_t bytes_in, bytes_out;
	struct flow *hnext; /* hash chain */
};

struct flow_config {
	char *flow_secret; /* HMAC key for flow tokens; random per run if empty */
};
extern const struct setting flow_settings[];
void flow_init(const struct flow_config *cfg);
/** Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; turn such an address into plain
 *  IPv4 so that logs, received=, limits and comparisons see one form. */
void flow_unmap_v4(struct sockaddr_storage *ss);
/** Same peer: family, address and port (and IPv6 scope); padding and flow info do not count. */
bool flow_addr_equal(const struct sockaddr *a, const struct sockaddr *b);
/** Close every flow (at shutdown). */
void flow_close_all(void);
void flow_shutdown(void);

struct flow *flow_create(enum transport_proto proto, const struct sockaddr *peer,
			 const struct listen_spec *local, const struct flow_ops *ops, void *impl);
/** The transport says the connection is gone: observers run, the flow leaves the table, freed. */
void flow_destroy(struct flow *f);
struct flow *flow_find(uint64_t id);
int flow_send(struct flow *f, const char *data, size_t len);
void flow_close(struct flow *f);
unsigned flow_count(void);
/** A transport read len bytes on f (counted, and the flow was active now). */
void flow_received(struct flow *f, size_t len);
/** Every open flow (not closing), in no particular order; fn must not open or destroy flows. */
typedef void (*flow_each_fn)(const struct flow *f, void *arg);
void flow_each(flow_each_fn fn, void *arg);

/** Observers learn that a flow is going (registrar drops bindings, proxy fails branches). */
typedef void (*flow_gone_fn)(struct flow *f);
void flow_on_gone(flow_gone_fn fn);

/** Flow tokens: 32 hex digits, an id and its HMAC-SHA256 (truncated) under the configured secret. */
#define FLOW_TOKEN_LEN 32
void flow_token_make(uint64_t id, char out[FLOW_TOKEN_LEN + 1]);
/** 0 and *id if the token is well formed and its signature verifies, else -1. */
int flow_token_parse(const char *token, size_t len, uint64_t *id);

#endif
