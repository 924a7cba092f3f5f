/** @file settings.c  The daemon's whole configuration (settings.h). */
#include "app/settings.h"
#include "base/log.h"

#include <string.h>

static const struct setting app_settings[] = {
	SETTING_LIST("listen", struct app_config, listen_text),
	SETTING_LIST("domains", struct app_config, domains),
	SETTING_STRING("log_level", struct app_config, log_level, "info"),
	SETTING_END,
};

void settings_parts(struct app_config *cfg, struct config_part parts[])
{
	int n = 0;
	parts[n++] = (struct config_part){app_settings, cfg};
	parts[n++] = (struct config_part){tls_settings, &cfg->tls};
	parts[n++] = (struct config_part){tcp_settings, &cfg->tcp};
	parts[n++] = (struct config_part){ws_settings, &cfg->ws};
	parts[n++] = (struct config_part){http_settings, &cfg->http};
	parts[n++] = (struct config_part){udp_settings, &cfg->udp};
	parts[n++] = (struct config_part){limits_settings, &cfg->limits};
	parts[n++] = (struct config_part){flow_settings, &cfg->flow};
	parts[n++] = (struct config_part){registrar_settings, &cfg->registrar};
	parts[n++] = (struct config_part){cluster_settings, &cfg->cluster};
	parts[n++] = (struct config_part){proxy_settings, &cfg->proxy};
	parts[n++] = (struct config_part){auth_settings, &cfg->auth};
	parts[n++] = (struct config_part){admin_settings, &cfg->admin};
	parts[n++] = (struct config_part){media_settings, &cfg->media};
	parts[n] = (struct config_part){NULL, NULL};
}

void settings_defaults(struct app_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	struct config_part parts[SETTINGS_MAX_PARTS];
	settings_parts(cfg, parts);
	config_defaults(parts);
}

int settings_load(struct app_config *cfg, const char *path)
{
	struct config_part parts[SETTINGS_MAX_PARTS];
	settings_parts(cfg, parts);
	config_set_string(&cfg->path, path);
	return config_load(parts, path);
}

int settings_set(struct app_config *cfg, const char *path, const char *text)
{
	struct config_part parts[SETTINGS_MAX_PARTS];
	settings_parts(cfg, parts);
	return config_set(parts, path, text);
}

void settings_clear_list(struct app_config *cfg, const char *path)
{
	struct config_part parts[SETTINGS_MAX_PARTS];
	settings_parts(cfg, parts);
	config_clear_list(parts, path);
}

static int check_listeners(struct app_config *cfg)
{
	int problems = 0;
	cfg->n_listen = 0;
	for (int i = 0; i < cfg->listen_text.count; i++) {
		const char *text = cfg->listen_text.item[i];
		if (cfg->n_listen >= CONFIG_MAX_LISTEN) {
			log_error("config: too many listeners (max %d)", CONFIG_MAX_LISTEN);
			return problems + 1;
		}
		if (config_parse_listen(text, &cfg->listen[cfg->n_listen]) != 0) {
			log_error("config: bad listen address '%s' (want PROTO:HOST:PORT, e.g. ws:127.0.0.1:8080)",
				  text);
			problems++;
			continue;
		}
		const struct listen_spec *l = &cfg->listen[cfg->n_listen++];
		if (proto_is_secure(l->proto) && (!cfg->tls.tls_cert[0] || !cfg->tls.tls_key[0])) {
			log_error("config: listener %s:%s:%d needs tls.cert and tls.key", proto_name(l->proto),
				  l->host, l->port);
			problems++;
		}
	}
	if (cfg->listen_text.count == 0) {
		log_error("config: no listeners (set listen = [\"ws:127.0.0.1:8080\"] or --listen)");
		problems++;
	}
	return problems;
}

/** A node of a cluster shares the registrar's Redis, and the secrets that let any node accept
 *  what another issued: flow tokens (in-dialog requests, and the Routes nodes forward along)
 *  and nonces (a client's credentials after it moved). */
static int check_cluster(const struct app_config *cfg)
{
	int problems = 0;
	if (!*cfg->cluster.advertise)
		return 0;
	if (strcmp(cfg->registrar.reg_store, "redis") != 0) {
		log_error("config: cluster.advertise needs registrar.store = \"redis\" (the nodes share it)");
		problems++;
	}
	if (!*cfg->flow.flow_secret) {
		log_error("config: cluster.advertise needs proxy.flow_token_secret, the same on every node");
		problems++;
	}
	if (!cfg->auth.no_auth && !*cfg->auth.nonce_secret) {
		log_error("config: cluster.advertise needs auth.nonce_secret, the same on every node");
		problems++;
	}
	return problems;
}

/** What one module cannot see alone. */
static int check_across(const struct app_config *cfg)
{
	int problems = 0;
	enum log_level lvl;
	if (!cfg->log_level || log_level_parse(cfg->log_level, &lvl) != 0) {
		log_error("config: unknown log_level '%s'", cfg->log_level ? cfg->log_level : "");
		problems++;
	}
	if (cfg->domains.count == 0) {
		log_error("config: no domains (set domains = [\"example.com\"] or --domain)");
		problems++;
	}
	if (cfg->udp.udp_flow_idle >= 1 && cfg->udp.udp_flow_idle < cfg->proxy.timer_c + 32)
		/* A flow that expires under a ringing call fails its branch. */
		log_warn("config: udp.flow_idle_timeout (%d s) is shorter than proxy.timer_c + 32 s",
			 cfg->udp.udp_flow_idle);
	if (registrar_config_is_edge(&cfg->registrar) && cfg->proxy.upstreams.count == 0) {
		/* An edge forwards every REGISTER: without a registrar behind it nothing can register. */
		log_error("config: registrar.mode = \"edge\" needs routing.upstreams (the registrar)");
		problems++;
	}
	return problems + check_cluster(cfg);
}

int settings_check(struct app_config *cfg)
{
	int problems = check_listeners(cfg);
	problems += tls_config_check(&cfg->tls);
	problems += tcp_config_check(&cfg->tcp);
	problems += ws_config_check(&cfg->ws);
	problems += udp_config_check(&cfg->udp);
	problems += limits_config_check(&cfg->limits);
	problems += registrar_config_check(&cfg->registrar);
	problems += cluster_config_check(&cfg->cluster);
	problems += proxy_config_check(&cfg->proxy);
	problems += auth_config_check(&cfg->auth);
	problems += admin_config_check(&cfg->admin);
	problems += media_config_check(&cfg->media);
	problems += check_across(cfg);
	return problems;
}

void settings_free(struct app_config *cfg)
{
	struct config_part parts[SETTINGS_MAX_PARTS];
	settings_parts(cfg, parts);
	config_free(parts);
	config_set_string(&cfg->path, NULL);
}
