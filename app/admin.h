/** @file admin.h  The operator's console: a JSON API and a status page on a listener of its own.
 *
 * admin.listen names one loopback (or other numeric) address and port; nothing of the console
 * is served on the ws/wss ports. It is a libwebsockets vhost on the context the WebSocket
 * transport runs, so it lives on the same loop. Every /api/ request needs
 * `Authorization: Bearer TOKEN`, the token read from admin.token_file; the status page's files
 * (admin.web_root) are public, the numbers they show come from the API. This file is the HTTP
 * side (requests, the token, replies); admin_api.c answers the requests.
 */
#ifndef SIPEDGE_ADMIN_H
#define SIPEDGE_ADMIN_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "app/admin_config.h"
#include "app/reload.h"
#include "base/config.h"

struct lws_context;

/** POST /api/v1/reload runs this (the app's reload, as SIGHUP does). */
typedef void (*admin_reload_fn)(struct reload_report *out);

/** Open the console's listener on ctx, if admin.listen is set (cfg kept by pointer); prints
 *  "listening admin HOST:PORT". 0 on success or when off, -1 (logged). */
int admin_start(const struct admin_config *cfg, struct lws_context *ctx, admin_reload_fn reload);
/** Read admin.token_file again; on failure the token in force stays. 0 on success. */
int admin_reload_token(void);
void admin_stop(void);

/* ---- between admin.c and admin_api.c ---- */

#define ADMIN_MAX_ARGS 8
struct admin_request {
	const char *method; /* "GET", "POST", "DELETE", ... */
	const char *path;   /* decoded, without the query */
	int n_args;
	char *arg_name[ADMIN_MAX_ARGS], *arg_value[ADMIN_MAX_ARGS]; /* the query, decoded */
	const char *peer;
};
/** The value of the query argument name, or NULL. */
const char *admin_arg(const struct admin_request *req, const char *name);
/** Answer one authorized API request: the HTTP status, *body a new JSON value. */
int admin_api_handle(const struct admin_request *req, admin_reload_fn reload, json_t **body);
/** The charts' last hour (admin_history.c): sampling starts and stops with the console. */
void admin_history_start(void);
void admin_history_stop(void);
/** {"interval_seconds": N, "samples": [{"t", "connections", "bindings", "calls"}, ...]}. */
json_t *admin_history_json(void);
/** When the daemon started (for uptime in /status). */
void admin_api_started(time_t when);
/** A JSON string of s that is always valid UTF-8, whatever bytes came from the network: each
 *  byte that does not start a well-formed UTF-8 sequence becomes U+FFFD. NULL gives JSON null.
 *  Every text the API returns that a peer or a client chose goes through this (json_string()
 *  returns NULL for invalid UTF-8, and a NULL member makes json_pack drop the whole object). */
json_t *admin_text(const char *s);
/** {"error": message} (a new reference), for every refusal. */
json_t *admin_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
