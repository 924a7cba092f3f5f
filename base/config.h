/** @file config.h  Runtime configuration: embedded defaults, the libconfig file, then the command line. */
#ifndef SIPEDGE_CONFIG_H
#define SIPEDGE_CONFIG_H
#include <stdbool.h>
#include <stddef.h>

#define CONFIG_MAX_LISTEN 16
#define CONFIG_MAX_LIST 32

enum transport_proto { PROTO_UDP, PROTO_TCP, PROTO_TLS, PROTO_WS, PROTO_WSS };

struct listen_spec {
	enum transport_proto proto;
	char host[64]; /* numeric address, no brackets */
	int port;
};

struct string_list {
	char *item[CONFIG_MAX_LIST];
	int count;
};

struct config {
	struct listen_spec listen[CONFIG_MAX_LISTEN];
	int n_listen;
	struct string_list domains; /* we are registrar for these */
	char *log_level;

	/* TLS (wss and tls listeners, outbound tls connections) */
	char *tls_cert, *tls_key, *tls_ca;
	bool tls_verify_peer;	/* outbound: the server's certificate must verify (tls.ca or system CAs) */
	bool tls_verify_client; /* tls listeners: clients must present a certificate signed by tls.ca */

	/* TCP and TLS connections */
	int tcp_idle_timeout; /* seconds without traffic before a connection is closed; 0 = never */
	int tcp_max_message;  /* bytes; a larger message closes the connection */

	/* WebSocket */
	int ws_max_message;   /* bytes; larger messages close with 1009 */
	int ws_ping_interval; /* seconds; 0 = off */
	int ws_pong_timeout;  /* seconds to wait for the pong */
	int ws_handshake_timeout; /* seconds an HTTP request or upgrade may take (slowloris) */
	struct string_list ws_origins; /* empty = any Origin */

	/* UDP */
	int udp_flow_idle; /* seconds without traffic before a UDP peer is forgotten */
	int udp_max_flows; /* the least recently used peer makes room beyond this */

	/* routing to the network */
	struct string_list upstreams; /* SIP URIs tried in order (failover) */
	bool route_foreign;	      /* other domains go upstream (else 403) */
	bool route_unregistered;      /* users of our domains without a binding go upstream */
	int upstream_timeout;	      /* ms without any response before the next upstream */
	char *resolv_conf;	      /* DNS servers for upstream names and next hops (RFC 3263), resolv.conf syntax */

	/* registrar */
	int reg_min_expires, reg_max_expires, reg_default_expires;
	int reg_max_bindings; /* per AOR */
	bool reg_drop_on_flow_close;
	bool reg_edge; /* registrar.mode = "edge": REGISTER goes to routing.upstreams with Path */
	char *reg_store;      /* "memory" or "sqlite" (registrar/store.h) */
	char *reg_store_path; /* the SQLite file */

	/* auth (auth/auth.h) */
	bool no_auth;
	char *users_file;
	char *realm; /* empty = the request's domain */
	struct string_list auth_algorithms;	  /* challenged in this order; MD5 first for SIP.js */
	bool auth_repeat_first;			  /* first challenge again at the end, for JsSIP */
	char *nonce_secret;			  /* HMAC key for nonces; random per run if empty */
	int nonce_ttl;				  /* seconds a nonce stays fresh */
	int nonce_table_size;			  /* used nonces remembered for nc replay checks */
	struct string_list auth_challenge_methods; /* out-of-dialog requests from our users; "*" = all */
	struct string_list trusted_peers;	  /* CIDRs that may relay and call in unchallenged */

	/* per-source limits (transport/limits.h) */
	int limit_conns_per_ip;	 /* open connections per source address; 0 = no limit */
	int limit_rps;		 /* requests per second per source address; 0 = no limit */
	int limit_burst;	 /* token bucket depth: requests accepted at once */
	int limit_ban_seconds;	 /* how long a source that exceeds the rate is banned */
	char *limit_ban_action;	 /* "reply" (503 + Retry-After) or "drop" */
	int limit_header_bytes;	 /* a request whose headers are longer gets 513 */

	/* proxy */
	int timer_c;       /* seconds, RFC 3261 §16.8 (> 180) */
	char *flow_secret; /* HMAC key for flow tokens; random per run if empty */

	/* ---- media (media/rtpengine.h): rtpengine anchoring; checked by media_config_check ---- */
	struct string_list media_rtpengine; /* "udp:HOST:PORT", tried in order (failover) */
	char *media_relay;		    /* "cross", "always" or "never" */
	char *media_on_failure;		    /* "refuse" (503) or "unanchored" (SDP passes as it is) */
	int media_ping_interval;	    /* seconds between NG pings to each rtpengine */
	int media_ng_timeout;		    /* ms an NG request may take, retransmissions included */
	/* ---- end of media ---- */

	/* HTTP */
	char *web_root; /* directory served at / and /phone/ ("" = none) */

	char *path; /* the file it was read from */
};

/** Fill cfg with the embedded defaults. */
void config_defaults(struct config *cfg);
/** Read a libconfig file over cfg. 0 on success; on error logs file:line: reason and returns -1. */
int config_load(struct config *cfg, const char *path);
/** Parse "ws:127.0.0.1:8080" or "ws:[::1]:8080". 0 on success. */
int config_parse_listen(const char *text, struct listen_spec *out);
int config_add_listen(struct config *cfg, const char *text);
int string_list_add(struct string_list *list, const char *value);
void string_list_clear(struct string_list *list);
/** Replace *slot with a copy of value. */
void config_set_string(char **slot, const char *value);
/** Check the whole configuration for consistency; logs each problem, returns the number found. */
int config_validate(const struct config *cfg);
bool config_is_our_domain(const struct config *cfg, const char *host);
const char *proto_name(enum transport_proto proto);     /* "ws" */
const char *proto_via_name(enum transport_proto proto); /* "WS" */
bool proto_is_reliable(enum transport_proto proto);
bool proto_is_secure(enum transport_proto proto);
void config_free(struct config *cfg);

/** The configuration in force (owned by main). */
extern struct config *g_config;

#endif
