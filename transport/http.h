/** @file http.h  Plain HTTP on the ws/wss ports: /healthz, /metrics and the static pages.
 *
 * Every ws/wss vhost's first lws protocol is this one: lws hands it each HTTP request, and
 * also the events it gives only to a vhost's first protocol (the upgrade check, the wss server
 * context), which it passes on to the WebSocket side through the hooks it is given.
 */
#ifndef SIPEDGE_HTTP_H
#define SIPEDGE_HTTP_H
#include <libwebsockets.h>
#include <limits.h>
#include <stdbool.h>

#include "base/config.h"

/** HTTP on the ws/wss ports. */
struct http_config {
	char *web_root; /* directory served at / and /phone/ ("" = none) */
};
extern const struct setting http_settings[];

/** What lws tells a vhost's first protocol that is the WebSocket side's business. */
struct http_hooks {
	/** An upgrade to a WebSocket: 0 lets it through; nonzero refuses it (as the
	 *  LWS_CALLBACK_HTTP_CONFIRM_UPGRADE callback returns). */
	int (*confirm_upgrade)(struct lws *wsi);
	/** The server TLS context of a wss vhost, as lws creates it: kept for certificate reloads. */
	void (*server_tls)(struct lws_vhost *vhost, void *ssl_ctx);
};

/** One listener's mounts: /healthz and /metrics (answered here), / from http.web_root. */
struct http_mounts {
	struct lws_http_mount mount[3];
	char web_origin[PATH_MAX]; /* web_root made absolute; lws keeps the pointer */
};

/** Serve with cfg (kept by pointer) and hand the WebSocket side's events to hooks. */
void http_init(const struct http_config *cfg, const struct http_hooks *hooks);
/** The protocol to put first in a ws/wss vhost's list. */
struct lws_protocols http_protocol(void);
/** Fill m for one listener; returns whether it serves pages from web_root. With warn, a
 *  web_root that does not exist is logged (once for all listeners, by the caller's choice). */
bool http_mounts_build(struct http_mounts *m, bool warn);

#endif
