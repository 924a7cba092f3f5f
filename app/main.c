/** @file main.c  sipedge: command line, start-up, the loop, clean shutdown.
 *
 * Everything runs on one libuv loop in one thread: transports, timers, the transaction layer,
 * the registrar and the proxy. Nothing here blocks.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "auth/auth.h"
#include "auth/users.h"
#include "base/config.h"
#include "transport/limits.h"
#include "base/log.h"
#include "base/loop.h"
#include "app/dispatch.h"
#include "base/sipmsg.h"
#include "proxy/proxy.h"
#include "media/media.h"
#include "media/rtpengine.h"
#include "sip/txn.h"
#include "registrar/registrar.h"
#include "transport/flow.h"
#include "transport/stream.h"
#include "transport/udp.h"
#include "transport/ws.h"

#ifndef SIPEDGE_DEFAULT_CONFIG
#define SIPEDGE_DEFAULT_CONFIG "etc/sipedge.conf"
#endif

static uv_signal_t sig_term, sig_int, sig_hup;
static struct config config;

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sipedge [options]\n"
		"  -c, --config FILE       configuration file (default " SIPEDGE_DEFAULT_CONFIG ")\n"
		"      --listen P:HOST:PORT listen on ws, wss, udp, tcp or tls (e.g. ws:127.0.0.1:8080,\n"
		"                          ws:[::1]:8080, udp:127.0.0.1:5060, tls:0.0.0.0:5061);\n"
		"                          repeatable, replaces the file's listeners\n"
		"      --domain NAME       a domain we are registrar for; repeatable, replaces the file's\n"
		"      --no-auth           accept requests without credentials (insecure)\n"
		"      --users FILE        credentials file (user:password lines; see doc/security.md);\n"
		"                          read again on SIGHUP\n"
		"      --tls-cert FILE     certificate (PEM) for wss and tls\n"
		"      --tls-key FILE      private key (PEM) for wss and tls\n"
		"      --log-level LEVEL   error, warn, notice, info or debug\n"
		"      --check-config      check the configuration and exit\n"
		"      --version           print the version and exit\n"
		"  -h, --help              this text\n");
}

static void on_signal(uv_signal_t *handle, int signum)
{
	log_notice("signal %d: shutting down", signum);
	uv_signal_stop(&sig_term);
	uv_signal_stop(&sig_int);
	uv_signal_stop(&sig_hup);
	uv_stop(handle->loop);
}

static void on_sighup(uv_signal_t *handle, int signum)
{
	log_notice("SIGHUP: reloading");
	auth_reload();
	/* The pair is checked once, then put into the listeners of both kinds and into the
	 * connections we open; a broken pair changes nothing. */
	int pair = stream_tls_check(&config);
	if (pair == 0) {
		ws_tls_reload();
		stream_tls_reload();
	}
	if (pair != -1)
		stream_tls_client_reload();
}

enum { OPT_LISTEN = 256, OPT_DOMAIN, OPT_NO_AUTH, OPT_USERS, OPT_TLS_CERT, OPT_TLS_KEY,
       OPT_LOG_LEVEL, OPT_CHECK, OPT_VERSION };

static int parse_args(int argc, char **argv, struct config *cfg, bool *check_only)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"listen", required_argument, NULL, OPT_LISTEN},
		{"domain", required_argument, NULL, OPT_DOMAIN},
		{"no-auth", no_argument, NULL, OPT_NO_AUTH},
		{"users", required_argument, NULL, OPT_USERS},
		{"tls-cert", required_argument, NULL, OPT_TLS_CERT},
		{"tls-key", required_argument, NULL, OPT_TLS_KEY},
		{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
		{"check-config", no_argument, NULL, OPT_CHECK},
		{"version", no_argument, NULL, OPT_VERSION},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *file = NULL;
	/* First pass: the config file and the exits; the file is read before the overrides. */
	int c;
	opterr = 1;
	while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': file = optarg; break;
		case 'h': usage(stdout); exit(0);
		case OPT_VERSION: printf("sipedge %s\n", PACKAGE_VERSION); exit(0);
		case '?': usage(stderr); return -1;
		default: break;
		}
	}
	if (config_load(cfg, file ? file : SIPEDGE_DEFAULT_CONFIG) != 0)
		return -1;

	bool listen_set = false, domain_set = false;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN:
			if (!listen_set)
				cfg->n_listen = 0;
			listen_set = true;
			if (config_add_listen(cfg, optarg) != 0)
				return -1;
			break;
		case OPT_DOMAIN:
			if (!domain_set)
				string_list_clear(&cfg->domains);
			domain_set = true;
			string_list_add(&cfg->domains, optarg);
			break;
		case OPT_NO_AUTH: cfg->no_auth = true; break;
		case OPT_USERS: config_set_string(&cfg->users_file, optarg); break;
		case OPT_TLS_CERT: config_set_string(&cfg->tls_cert, optarg); break;
		case OPT_TLS_KEY: config_set_string(&cfg->tls_key, optarg); break;
		case OPT_LOG_LEVEL: config_set_string(&cfg->log_level, optarg); break;
		case OPT_CHECK: *check_only = true; break;
		default: break;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s'", argv[optind]);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	bool check_only = false;
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	config_defaults(&config);
	g_config = &config;
	if (parse_args(argc, argv, &config, &check_only) != 0) {
		config_free(&config);
		return 2;
	}
	enum log_level level = LOGL_INFO;
	if (config_validate(&config) != 0 || log_level_parse(config.log_level, &level) != 0) {
		config_free(&config);
		return 2;
	}
	log_set_level(level);
	if (check_only) {
		/* The users file is part of the configuration: check that it parses too. */
		if (!config.no_auth && config.users_file[0]) {
			struct users *u = users_load(config.users_file);
			if (!u) {
				config_free(&config);
				return 2;
			}
			users_free(u);
		}
		printf("configuration ok\n");
		config_free(&config);
		return 0;
	}
	if (config.no_auth) {
		log_warn("************************************************************************");
		log_warn("authentication is OFF (--no-auth / auth.disabled): anyone can register as");
		log_warn("anyone and call anyone; do not run this on a public network");
		log_warn("************************************************************************");
	}

	uv_loop_t loop;
	uv_loop_init(&loop);
	loop_set(&loop);

	sipmsg_init();
	flow_init(config.flow_secret);
	txn_init();
	sip_core_init();
	media_init();
	int rc = 0;
	if (registrar_init() != 0 || auth_init(&config) != 0 || limits_init(&config) != 0 ||
	    proxy_init() != 0 || rtpengine_init(&loop, &config) != 0 || ws_start(&loop, &config) != 0 ||
	    stream_start(&loop, &config, ws_context()) != 0 || udp_start(&loop, &config) != 0) {
		rc = 1;
	} else {
		uv_signal_init(&loop, &sig_term);
		uv_signal_init(&loop, &sig_int);
		uv_signal_init(&loop, &sig_hup);
		uv_signal_start(&sig_term, on_signal, SIGTERM);
		uv_signal_start(&sig_int, on_signal, SIGINT);
		uv_signal_start(&sig_hup, on_sighup, SIGHUP);
		log_notice("sipedge %s ready: domains %s%s", PACKAGE_VERSION,
			   config.domains.item[0], config.domains.count > 1 ? " ..." : "");
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_close((uv_handle_t *)&sig_term, NULL);
		uv_close((uv_handle_t *)&sig_int, NULL);
		uv_close((uv_handle_t *)&sig_hup, NULL);
		proxy_shutdown();
		media_shutdown(); /* deletes go out for calls still up */
	}
	/* Close connections politely first (WebSocket close frames go out and are answered),
	 * then stop every module's timers and let the loop close the remaining handles. UDP has
	 * nothing to say goodbye with: its peers are forgotten at once, and nothing more is read
	 * while WebSocket drains. */
	udp_stop();
	stream_stop();
	if (ws_stop())
		uv_run(&loop, UV_RUN_DEFAULT); /* until ws has drained and calls uv_stop */
	flow_close_all();
	rtpengine_shutdown();
	auth_shutdown();
	limits_shutdown();
	registrar_shutdown();
	sip_core_shutdown();
	txn_shutdown();
	uv_run(&loop, UV_RUN_DEFAULT);
	ws_destroy();
	stream_destroy();
	flow_shutdown();
	uv_run(&loop, UV_RUN_NOWAIT);
	if (uv_loop_close(&loop) != 0)
		log_warn("shutdown: libuv handles still open");
	sipmsg_shutdown();
	config_free(&config);
	log_notice("sipedge stopped");
	return rc;
}
