/** @file config.c  Configuration: embedded defaults, a libconfig file, command-line overrides. */
#include "base/config.h"
#include "auth/auth.h"
#include "media/rtpengine.h"
#include "transport/limits.h"
#include "base/log.h"

#include <arpa/inet.h>
#include <libconfig.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct config *g_config;

static const char *const proto_names[] = {"udp", "tcp", "tls", "ws", "wss"};
static const char *const proto_via_names[] = {"UDP", "TCP", "TLS", "WS", "WSS"};

const char *proto_name(enum transport_proto proto) { return proto_names[proto]; }
const char *proto_via_name(enum transport_proto proto) { return proto_via_names[proto]; }
bool proto_is_reliable(enum transport_proto proto) { return proto != PROTO_UDP; }
bool proto_is_secure(enum transport_proto proto) { return proto == PROTO_TLS || proto == PROTO_WSS; }

void config_set_string(char **slot, const char *value)
{
	free(*slot);
	*slot = value ? strdup(value) : NULL;
}

int string_list_add(struct string_list *list, const char *value)
{
	if (list->count >= CONFIG_MAX_LIST)
		return -1;
	list->item[list->count++] = strdup(value);
	return 0;
}

void string_list_clear(struct string_list *list)
{
	for (int i = 0; i < list->count; i++)
		free(list->item[i]);
	list->count = 0;
}

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	config_set_string(&cfg->log_level, "info");
	cfg->ws_max_message = 65536;
	cfg->ws_ping_interval = 30;
	cfg->ws_pong_timeout = 10;
	cfg->ws_handshake_timeout = 10;
	cfg->tls_verify_peer = true;
	cfg->tls_verify_client = false;
	cfg->tcp_idle_timeout = 3600;
	cfg->tcp_max_message = 65536;
	cfg->udp_flow_idle = 600;
	cfg->udp_max_flows = 65536;
	cfg->route_foreign = true;
	cfg->route_unregistered = false;
	cfg->upstream_timeout = 5000;
	config_set_string(&cfg->resolv_conf, "/etc/resolv.conf");
	cfg->reg_min_expires = 60;
	cfg->reg_max_expires = 3600;
	cfg->reg_default_expires = 3600;
	cfg->reg_max_bindings = 10;
	cfg->reg_drop_on_flow_close = true;
	config_set_string(&cfg->reg_store, "memory");
	config_set_string(&cfg->reg_store_path, "");
	cfg->timer_c = 180;
	cfg->limit_conns_per_ip = 20;
	cfg->limit_rps = 20;
	cfg->limit_burst = 100;
	cfg->limit_ban_seconds = 60;
	config_set_string(&cfg->limit_ban_action, "reply");
	cfg->limit_header_bytes = 32768;
	config_set_string(&cfg->users_file, "");
	config_set_string(&cfg->realm, "");
	string_list_add(&cfg->auth_algorithms, "MD5");
	string_list_add(&cfg->auth_algorithms, "SHA-256");
	cfg->auth_repeat_first = true;
	config_set_string(&cfg->nonce_secret, "");
	cfg->nonce_ttl = 300;
	cfg->nonce_table_size = 16384;
	string_list_add(&cfg->auth_challenge_methods, "*");
	config_set_string(&cfg->flow_secret, "");
	config_set_string(&cfg->tls_cert, "");
	config_set_string(&cfg->tls_key, "");
	config_set_string(&cfg->tls_ca, "");
	config_set_string(&cfg->web_root, "");
	/* media */
	config_set_string(&cfg->media_relay, "cross");
	config_set_string(&cfg->media_on_failure, "refuse");
	cfg->media_ping_interval = 10;
	cfg->media_ng_timeout = 1000;
}

int config_parse_listen(const char *text, struct listen_spec *out)
{
	const char *colon = strchr(text, ':');
	if (!colon)
		return -1;
	size_t plen = (size_t)(colon - text);
	int proto = -1;
	for (int i = 0; i < 5; i++)
		if (strlen(proto_names[i]) == plen && strncasecmp(text, proto_names[i], plen) == 0)
			proto = i;
	if (proto < 0)
		return -1;
	const char *host = colon + 1, *host_end, *port;
	if (*host == '[') {
		host_end = strchr(host, ']');
		if (!host_end || host_end[1] != ':')
			return -1;
		host++;
		port = host_end + 2;
	} else {
		host_end = strrchr(host, ':');
		if (!host_end)
			return -1;
		port = host_end + 1;
	}
	size_t hlen = (size_t)(host_end - host);
	if (hlen == 0 || hlen >= sizeof(out->host))
		return -1;
	char *end;
	long p = strtol(port, &end, 10);
	if (*port == '\0' || *end != '\0' || p < 0 || p > 65535)
		return -1;
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	unsigned char probe[sizeof(struct in6_addr)];
	if (inet_pton(AF_INET, out->host, probe) != 1 && inet_pton(AF_INET6, out->host, probe) != 1)
		return -1;
	out->proto = (enum transport_proto)proto;
	out->port = (int)p;
	return 0;
}

int config_add_listen(struct config *cfg, const char *text)
{
	if (cfg->n_listen >= CONFIG_MAX_LISTEN) {
		log_error("config: too many listeners (max %d)", CONFIG_MAX_LISTEN);
		return -1;
	}
	if (config_parse_listen(text, &cfg->listen[cfg->n_listen]) != 0) {
		log_error("config: bad listen address '%s' (want PROTO:HOST:PORT, e.g. ws:127.0.0.1:8080)",
			  text);
		return -1;
	}
	cfg->n_listen++;
	return 0;
}

/* Settings present with the wrong type: counted so that config_load (and --check-config) fail
 * instead of silently keeping the default. */
static int type_errors;

static void wrong_type(config_t *lc, const char *path, const char *want)
{
	config_setting_t *s = config_lookup(lc, path);
	if (!s)
		return; /* absent: the default stays */
	log_error("config: %s:%d: %s must be %s", config_setting_source_file(s) ? config_setting_source_file(s) : "",
		  config_setting_source_line(s), path, want);
	type_errors++;
}

static void lookup_string(config_t *lc, const char *path, char **slot)
{
	const char *s;
	if (config_lookup_string(lc, path, &s) == CONFIG_TRUE)
		config_set_string(slot, s);
	else
		wrong_type(lc, path, "a string");
}

static void lookup_int(config_t *lc, const char *path, int *slot)
{
	int v;
	if (config_lookup_int(lc, path, &v) == CONFIG_TRUE)
		*slot = v;
	else
		wrong_type(lc, path, "an integer");
}

static void lookup_bool(config_t *lc, const char *path, bool *slot)
{
	int v;
	if (config_lookup_bool(lc, path, &v) == CONFIG_TRUE)
		*slot = v != 0;
	else
		wrong_type(lc, path, "true or false");
}

static int lookup_list(config_t *lc, const char *path, struct string_list *list)
{
	config_setting_t *s = config_lookup(lc, path);
	if (!s)
		return 0;
	if (!config_setting_is_aggregate(s)) {
		log_error("config: %s must be a list of strings", path);
		return -1;
	}
	string_list_clear(list);
	for (int i = 0; i < config_setting_length(s); i++) {
		const char *v = config_setting_get_string_elem(s, i);
		if (!v || string_list_add(list, v) != 0) {
			log_error("config: %s[%d] must be a string (at most %d entries)", path, i,
				  CONFIG_MAX_LIST);
			return -1;
		}
	}
	return 0;
}

int config_load(struct config *cfg, const char *path)
{
	config_t lc;
	config_init(&lc);
	if (config_read_file(&lc, path) != CONFIG_TRUE) {
		if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
			log_error("config: cannot read %s", path);
		else
			log_error("config: %s:%d: %s", config_error_file(&lc) ? config_error_file(&lc) : path,
				  config_error_line(&lc), config_error_text(&lc));
		config_destroy(&lc);
		return -1;
	}
	int rc = 0;
	type_errors = 0;
	config_set_string(&cfg->path, path);

	struct string_list listen = {0};
	rc |= lookup_list(&lc, "listen", &listen);
	if (listen.count) {
		cfg->n_listen = 0;
		for (int i = 0; i < listen.count; i++)
			rc |= config_add_listen(cfg, listen.item[i]);
	}
	string_list_clear(&listen);
	rc |= lookup_list(&lc, "domains", &cfg->domains);
	lookup_string(&lc, "log_level", &cfg->log_level);

	lookup_string(&lc, "tls.cert", &cfg->tls_cert);
	lookup_string(&lc, "tls.key", &cfg->tls_key);
	lookup_string(&lc, "tls.ca", &cfg->tls_ca);
	lookup_bool(&lc, "tls.verify_peer", &cfg->tls_verify_peer);
	lookup_bool(&lc, "tls.verify_client", &cfg->tls_verify_client);

	lookup_int(&lc, "tcp.idle_timeout", &cfg->tcp_idle_timeout);
	lookup_int(&lc, "tcp.max_message_size", &cfg->tcp_max_message);

	lookup_int(&lc, "websocket.max_message_size", &cfg->ws_max_message);
	lookup_int(&lc, "websocket.ping_interval", &cfg->ws_ping_interval);
	lookup_int(&lc, "websocket.pong_timeout", &cfg->ws_pong_timeout);
	lookup_int(&lc, "websocket.handshake_timeout", &cfg->ws_handshake_timeout);
	rc |= lookup_list(&lc, "websocket.origins", &cfg->ws_origins);

	lookup_int(&lc, "udp.flow_idle_timeout", &cfg->udp_flow_idle);
	lookup_int(&lc, "udp.max_flows", &cfg->udp_max_flows);

	rc |= lookup_list(&lc, "routing.upstreams", &cfg->upstreams);
	lookup_bool(&lc, "routing.foreign_domains", &cfg->route_foreign);
	lookup_bool(&lc, "routing.unregistered_users", &cfg->route_unregistered);
	lookup_int(&lc, "routing.upstream_timeout", &cfg->upstream_timeout);
	lookup_string(&lc, "routing.resolv_conf", &cfg->resolv_conf);

	lookup_int(&lc, "registrar.min_expires", &cfg->reg_min_expires);
	lookup_int(&lc, "registrar.max_expires", &cfg->reg_max_expires);
	lookup_int(&lc, "registrar.default_expires", &cfg->reg_default_expires);
	lookup_int(&lc, "registrar.max_bindings_per_aor", &cfg->reg_max_bindings);
	lookup_bool(&lc, "registrar.drop_bindings_on_flow_close", &cfg->reg_drop_on_flow_close);
	const char *mode;
	if (config_lookup_string(&lc, "registrar.mode", &mode) == CONFIG_TRUE) {
		if (strcmp(mode, "local") == 0 || strcmp(mode, "edge") == 0) {
			cfg->reg_edge = strcmp(mode, "edge") == 0;
		} else {
			log_error("config: registrar.mode must be \"local\" or \"edge\", not '%s'", mode);
			rc = -1;
		}
	} else {
		wrong_type(&lc, "registrar.mode", "\"local\" or \"edge\"");
	}
	lookup_string(&lc, "registrar.store", &cfg->reg_store);
	lookup_string(&lc, "registrar.store_path", &cfg->reg_store_path);
	if (strcmp(cfg->reg_store, "memory") != 0 && strcmp(cfg->reg_store, "sqlite") != 0) {
		log_error("config: registrar.store must be \"memory\" or \"sqlite\", not '%s'", cfg->reg_store);
		rc = -1;
	} else if (strcmp(cfg->reg_store, "sqlite") == 0 && !*cfg->reg_store_path) {
		log_error("config: registrar.store = \"sqlite\" needs registrar.store_path (the database file)");
		rc = -1;
	}

	lookup_bool(&lc, "auth.disabled", &cfg->no_auth);
	lookup_string(&lc, "auth.users_file", &cfg->users_file);
	lookup_string(&lc, "auth.realm", &cfg->realm);
	rc |= lookup_list(&lc, "auth.algorithms", &cfg->auth_algorithms);
	lookup_bool(&lc, "auth.repeat_first_challenge", &cfg->auth_repeat_first);
	lookup_string(&lc, "auth.nonce_secret", &cfg->nonce_secret);
	lookup_int(&lc, "auth.nonce_ttl", &cfg->nonce_ttl);
	lookup_int(&lc, "auth.nonce_table_size", &cfg->nonce_table_size);
	rc |= lookup_list(&lc, "auth.challenge_methods", &cfg->auth_challenge_methods);
	rc |= lookup_list(&lc, "auth.trusted_peers", &cfg->trusted_peers);

	lookup_int(&lc, "limits.max_connections_per_ip", &cfg->limit_conns_per_ip);
	lookup_int(&lc, "limits.requests_per_second", &cfg->limit_rps);
	lookup_int(&lc, "limits.burst", &cfg->limit_burst);
	lookup_int(&lc, "limits.ban_seconds", &cfg->limit_ban_seconds);
	lookup_string(&lc, "limits.ban_action", &cfg->limit_ban_action);
	lookup_int(&lc, "limits.max_header_size", &cfg->limit_header_bytes);

	lookup_int(&lc, "proxy.timer_c", &cfg->timer_c);
	lookup_string(&lc, "proxy.flow_token_secret", &cfg->flow_secret);

	lookup_string(&lc, "http.web_root", &cfg->web_root);

	/* media (media/rtpengine.h) */
	rc |= lookup_list(&lc, "media.rtpengine", &cfg->media_rtpengine);
	lookup_string(&lc, "media.relay", &cfg->media_relay);
	lookup_string(&lc, "media.on_failure", &cfg->media_on_failure);
	lookup_int(&lc, "media.ping_interval", &cfg->media_ping_interval);
	lookup_int(&lc, "media.ng_timeout", &cfg->media_ng_timeout);

	config_destroy(&lc);
	return rc || type_errors ? -1 : 0;
}

int config_validate(const struct config *cfg)
{
	int problems = 0;
	enum log_level lvl;
	if (!cfg->log_level || log_level_parse(cfg->log_level, &lvl) != 0) {
		log_error("config: unknown log_level '%s'", cfg->log_level ? cfg->log_level : "");
		problems++;
	}
	if (cfg->n_listen == 0) {
		log_error("config: no listeners (set listen = [\"ws:127.0.0.1:8080\"] or --listen)");
		problems++;
	}
	for (int i = 0; i < cfg->n_listen; i++) {
		if (proto_is_secure(cfg->listen[i].proto) && (!cfg->tls_cert[0] || !cfg->tls_key[0])) {
			log_error("config: listener %s:%s:%d needs tls.cert and tls.key",
				  proto_name(cfg->listen[i].proto), cfg->listen[i].host,
				  cfg->listen[i].port);
			problems++;
		}
	}
	if (cfg->domains.count == 0) {
		log_error("config: no domains (set domains = [\"example.com\"] or --domain)");
		problems++;
	}
	if (cfg->ws_max_message < 512 || cfg->ws_max_message > 16 * 1024 * 1024) {
		log_error("config: websocket.max_message_size must be 512..16777216");
		problems++;
	}
	if (cfg->ws_handshake_timeout < 1 || cfg->ws_handshake_timeout > 300) {
		log_error("config: websocket.handshake_timeout must be 1..300 seconds");
		problems++;
	}
	if (cfg->tcp_max_message < 512 || cfg->tcp_max_message > 16 * 1024 * 1024) {
		log_error("config: tcp.max_message_size must be 512..16777216");
		problems++;
	}
	if (cfg->tcp_idle_timeout < 0) {
		log_error("config: tcp.idle_timeout must be 0 (never) or a number of seconds");
		problems++;
	}
	if (cfg->tls_verify_client && !cfg->tls_ca[0]) {
		log_error("config: tls.verify_client needs tls.ca (the CA that signs client certificates)");
		problems++;
	}
	if (cfg->reg_min_expires < 1 || cfg->reg_max_expires < cfg->reg_min_expires ||
	    cfg->reg_default_expires < cfg->reg_min_expires ||
	    cfg->reg_default_expires > cfg->reg_max_expires) {
		log_error("config: need 1 <= registrar.min_expires <= default_expires <= max_expires");
		problems++;
	}
	if (cfg->reg_max_bindings < 1) {
		log_error("config: registrar.max_bindings_per_aor must be at least 1");
		problems++;
	}
	if (cfg->udp_flow_idle < 1 || cfg->udp_max_flows < 1) {
		log_error("config: udp.flow_idle_timeout and udp.max_flows must be positive");
		problems++;
	} else if (cfg->udp_flow_idle < cfg->timer_c + 32) {
		/* A flow that expires under a ringing call fails its branch. */
		log_warn("config: udp.flow_idle_timeout (%d s) is shorter than proxy.timer_c + 32 s",
			 cfg->udp_flow_idle);
	}
	for (int i = 0; i < cfg->upstreams.count; i++) {
		if (strncasecmp(cfg->upstreams.item[i], "sip:", 4) != 0 &&
		    strncasecmp(cfg->upstreams.item[i], "sips:", 5) != 0) {
			log_error("config: routing.upstreams[%d] '%s' is not a sip: or sips: URI", i,
				  cfg->upstreams.item[i]);
			problems++;
		}
	}
	if (cfg->reg_edge && cfg->upstreams.count == 0) {
		/* An edge forwards every REGISTER: without a registrar behind it nothing can register. */
		log_error("config: registrar.mode = \"edge\" needs routing.upstreams (the registrar)");
		problems++;
	}
	if (cfg->upstream_timeout < 100) {
		log_error("config: routing.upstream_timeout must be at least 100 ms");
		problems++;
	}
	if (cfg->timer_c < 1) {
		log_error("config: proxy.timer_c must be positive");
		problems++;
	}
	problems += auth_config_check(cfg);
	problems += limits_config_check(cfg);
	problems += media_config_check(cfg);
	return problems;
}

bool config_is_our_domain(const struct config *cfg, const char *host)
{
	if (!host)
		return false;
	for (int i = 0; i < cfg->domains.count; i++)
		if (strcasecmp(cfg->domains.item[i], host) == 0)
			return true;
	return false;
}

void config_free(struct config *cfg)
{
	string_list_clear(&cfg->domains);
	string_list_clear(&cfg->ws_origins);
	string_list_clear(&cfg->auth_algorithms);
	string_list_clear(&cfg->auth_challenge_methods);
	string_list_clear(&cfg->upstreams);
	string_list_clear(&cfg->trusted_peers);
	string_list_clear(&cfg->media_rtpengine);
	char **strings[] = {&cfg->log_level, &cfg->tls_cert,  &cfg->tls_key,	 &cfg->tls_ca,
			    &cfg->users_file, &cfg->realm,     &cfg->flow_secret, &cfg->web_root,
			    &cfg->nonce_secret, &cfg->path, &cfg->resolv_conf, &cfg->limit_ban_action,
			    &cfg->reg_store, &cfg->reg_store_path, &cfg->media_relay, &cfg->media_on_failure};
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		free(*strings[i]);
		*strings[i] = NULL;
	}
}
