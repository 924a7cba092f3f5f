/** @file app.c  Start, stop and reload every room (app.h), and the wiring between them.
 *
 * The rooms know nothing of each other's existence above them: the transports deliver to the
 * receiver they are given (the dispatcher), and auth reaches the registrar and the proxy only
 * through the hooks attached here.
 */
#include "app/app.h"
#include "app/admin.h"
#include "app/dispatch.h"
#include "auth/auth.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/sipmsg.h"
#include "cluster/cluster.h"
#include "media/media.h"
#include "media/rtpengine.h"
#include "proxy/proxy.h"
#include "registrar/registrar.h"
#include "sip/self.h"
#include "sip/txn.h"
#include "transport/flow.h"
#include "transport/limits.h"
#include "transport/stream.h"
#include "transport/tls.h"
#include "transport/tls_client.h"
#include "transport/udp.h"
#include "transport/ws.h"

#include <string.h>

static struct {
	uv_loop_t *loop;
	struct app_config *cfg;
	bool network;
	bool started;
	app_loader_fn loader;
} App;

static void reload_for_admin(struct reload_report *out) { app_reload(out); }

static int start_network(struct app_config *cfg)
{
	struct transport_setup setup = {
		.loop = App.loop,
		.listen = cfg->listen,
		.n_listen = cfg->n_listen,
		.tls = &cfg->tls,
		.receiver = dispatch_receiver(),
	};
	if (limits_init(&cfg->limits, &cfg->auth.trusted_peers) != 0 || ws_start(&cfg->ws, &cfg->http, &setup) != 0 ||
	    stream_start(&cfg->tcp, &setup, ws_context()) != 0 || udp_start(&cfg->udp, &setup) != 0)
		return -1;
	/* Last: its "listening admin" line comes after every SIP listener's. */
	return admin_start(&cfg->admin, ws_context(), reload_for_admin);
}

int app_start(uv_loop_t *loop, struct app_config *cfg, bool network)
{
	App.loop = loop;
	App.cfg = cfg;
	App.network = network;
	App.started = true;
	loop_set(loop);
	sipmsg_init();
	self_init(&cfg->domains, cfg->listen, cfg->n_listen);
	flow_init(&cfg->flow);
	txn_init();
	bool edge = registrar_config_is_edge(&cfg->registrar);
	dispatch_init(&cfg->limits, edge);
	struct cluster_params cluster = {
		.node = registrar_node_id(&cfg->registrar),
		.redis_url = cfg->registrar.reg_store_path,
		.redis_password = cfg->registrar.reg_store_password,
		.redis_timeout_ms = cfg->registrar.reg_store_timeout,
	};
	media_init(&cfg->media);
	if (registrar_init(&cfg->registrar) != 0 || cluster_init(&cfg->cluster, &cluster) != 0 ||
	    auth_init(&cfg->auth) != 0 || proxy_init(&cfg->proxy, edge) != 0 || rtpengine_init(loop, &cfg->media) != 0)
		return -1;
	registrar_set_auth(auth_register_check);
	proxy_set_policy(auth_request_policy);
	proxy_set_forward_filter(auth_strip_credentials);
	return network ? start_network(cfg) : 0;
}

void app_stop(void)
{
	if (!App.started)
		return;
	App.started = false;
	uv_loop_t *loop = App.loop;
	/* The proxy cuts its ties to every transaction first: nothing calls back into a context
	 * that is going. */
	proxy_shutdown();
	media_shutdown(); /* deletes go out for calls still up */
	registrar_set_auth(NULL);
	proxy_set_policy(NULL);
	proxy_set_forward_filter(NULL);
	if (App.network) {
		/* Close connections politely first (WebSocket close frames go out and are answered).
		 * UDP has nothing to say goodbye with: its peers are forgotten at once, and nothing more
		 * is read while WebSocket drains. */
		udp_stop();
		stream_stop();
		admin_stop();
		if (ws_stop())
			uv_run(loop, UV_RUN_DEFAULT); /* until ws has drained and calls uv_stop */
		flow_close_all();
	}
	/* Then every room's timers, and the loop closes the remaining handles. */
	rtpengine_shutdown();
	auth_shutdown();
	if (App.network)
		limits_shutdown();
	cluster_shutdown();
	registrar_shutdown();
	txn_shutdown();
	uv_run(loop, UV_RUN_DEFAULT);
	if (App.network) {
		ws_destroy();
		stream_destroy();
	}
	flow_shutdown();
	uv_run(loop, UV_RUN_NOWAIT);
	if (uv_loop_close(loop) != 0)
		log_warn("shutdown: libuv handles still open");
	sipmsg_shutdown();
}

void app_set_loader(app_loader_fn loader) { App.loader = loader; }

void app_reload(struct reload_report *out)
{
	struct reload_report mine;
	struct reload_report *r = out ? out : &mine;
	memset(r, 0, sizeof(*r));
	reload_run(App.cfg, App.network, App.loader, r);
	if (!out)
		reload_report_clear(r);
}
