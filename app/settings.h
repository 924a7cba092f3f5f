/** @file settings.h  The daemon's whole configuration: every module's settings in one place.
 *
 * Each module declares its own struct, table and check; this room only puts them side by side,
 * binds each table to its struct (settings_parts) and checks what spans modules. The top-level
 * settings (listen, domains, log_level) are the app's own.
 */
#ifndef SIPEDGE_SETTINGS_H
#define SIPEDGE_SETTINGS_H
#include "app/admin_config.h"
#include "auth/auth.h"
#include "base/config.h"
#include "cluster/cluster.h"
#include "media/rtpengine.h"
#include "proxy/proxy.h"
#include "registrar/registrar.h"
#include "transport/flow.h"
#include "transport/http.h"
#include "transport/limits.h"
#include "transport/stream.h"
#include "transport/tls.h"
#include "transport/udp.h"
#include "transport/ws.h"

struct app_config {
	struct string_list listen_text; /* "ws:127.0.0.1:8080", as written */
	struct string_list domains;	/* we are registrar for these */
	char *log_level;

	struct listen_spec listen[CONFIG_MAX_LISTEN]; /* listen_text parsed by settings_check */
	int n_listen;

	struct tls_config tls;
	struct tcp_config tcp;
	struct ws_config ws;
	struct http_config http;
	struct udp_config udp;
	struct limits_config limits;
	struct flow_config flow;
	struct registrar_config registrar;
	struct cluster_config cluster;
	struct proxy_config proxy;
	struct auth_config auth;
	struct admin_config admin;
	struct media_config media;

	char *path; /* the file it was read from */
};

/** Every table bound to cfg's structs, ending with an empty part. */
void settings_parts(struct app_config *cfg, struct config_part parts[]);
#define SETTINGS_MAX_PARTS 16

/** The embedded defaults. */
void settings_defaults(struct app_config *cfg);
/** Read a file over cfg. 0 on success, -1 (logged). */
int settings_load(struct app_config *cfg, const char *path);
/** Set one setting from the command line (see config_set). */
int settings_set(struct app_config *cfg, const char *path, const char *text);
void settings_clear_list(struct app_config *cfg, const char *path);
/** Parse the listeners, then every module's check and the checks that span modules; logs each
 *  problem and returns how many there are. */
int settings_check(struct app_config *cfg);
void settings_free(struct app_config *cfg);

#endif
