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

#include "app/app.h"
#include "app/settings.h"
#include "auth/users.h"
#include "base/log.h"

#ifndef SIPEDGE_DEFAULT_CONFIG
#define SIPEDGE_DEFAULT_CONFIG "etc/sipedge.conf"
#endif

static uv_signal_t sig_term, sig_int, sig_hup;
static struct app_config config;
/* The command line, kept for reloads: they read the same file with the same overrides. */
static int saved_argc;
static char **saved_argv;

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
		"                          read again on SIGHUP and reload\n"
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
	app_reload(NULL);
}

enum { OPT_LISTEN = 256, OPT_DOMAIN, OPT_NO_AUTH, OPT_USERS, OPT_TLS_CERT, OPT_TLS_KEY,
       OPT_LOG_LEVEL, OPT_CHECK, OPT_VERSION };

static int parse_args(int argc, char **argv, struct app_config *cfg, bool *check_only)
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
	optind = 0; /* glibc: a full restart of getopt, for a reload's second reading */
	while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': file = optarg; break;
		case 'h': usage(stdout); exit(0);
		case OPT_VERSION: printf("sipedge %s\n", PACKAGE_VERSION); exit(0);
		case '?': usage(stderr); return -1;
		default: break;
		}
	}
	if (settings_load(cfg, file ? file : SIPEDGE_DEFAULT_CONFIG) != 0)
		return -1;

	bool listen_set = false, domain_set = false;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_LISTEN:
			if (!listen_set)
				settings_clear_list(cfg, "listen");
			listen_set = true;
			if (settings_set(cfg, "listen", optarg) != 0)
				return -1;
			break;
		case OPT_DOMAIN:
			if (!domain_set)
				settings_clear_list(cfg, "domains");
			domain_set = true;
			if (settings_set(cfg, "domains", optarg) != 0)
				return -1;
			break;
		case OPT_NO_AUTH: settings_set(cfg, "auth.disabled", "true"); break;
		case OPT_USERS: settings_set(cfg, "auth.users_file", optarg); break;
		case OPT_TLS_CERT: settings_set(cfg, "tls.cert", optarg); break;
		case OPT_TLS_KEY: settings_set(cfg, "tls.key", optarg); break;
		case OPT_LOG_LEVEL: settings_set(cfg, "log_level", optarg); break;
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

/** The configuration as at start: defaults, the file, the command line; checked. */
static int load_config(struct app_config *cfg)
{
	bool check_only = false;
	settings_defaults(cfg);
	enum log_level level;
	if (parse_args(saved_argc, saved_argv, cfg, &check_only) != 0 || settings_check(cfg) != 0 ||
	    log_level_parse(cfg->log_level, &level) != 0)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	bool check_only = false;
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	saved_argc = argc;
	saved_argv = argv;
	settings_defaults(&config);
	if (parse_args(argc, argv, &config, &check_only) != 0) {
		settings_free(&config);
		return 2;
	}
	enum log_level level = LOGL_INFO;
	if (settings_check(&config) != 0 || log_level_parse(config.log_level, &level) != 0) {
		settings_free(&config);
		return 2;
	}
	app_set_loader(load_config);
	log_set_level(level);
	const struct auth_config *auth = &config.auth;
	if (check_only) {
		/* The users file is part of the configuration: check that it parses too. */
		if (!auth->no_auth && auth->users_file[0]) {
			struct users *u = users_load(auth->users_file);
			if (!u) {
				settings_free(&config);
				return 2;
			}
			users_free(u);
		}
		printf("configuration ok\n");
		settings_free(&config);
		return 0;
	}
	if (auth->no_auth) {
		log_warn("************************************************************************");
		log_warn("authentication is OFF (--no-auth / auth.disabled): anyone can register as");
		log_warn("anyone and call anyone; do not run this on a public network");
		log_warn("************************************************************************");
	}

	uv_loop_t loop;
	uv_loop_init(&loop);
	int rc = 0;
	if (app_start(&loop, &config, true) != 0) {
		rc = 1;
	} else {
		uv_signal_init(&loop, &sig_term);
		uv_signal_init(&loop, &sig_int);
		uv_signal_init(&loop, &sig_hup);
		uv_signal_start(&sig_term, on_signal, SIGTERM);
		uv_signal_start(&sig_int, on_signal, SIGINT);
		uv_signal_start(&sig_hup, on_sighup, SIGHUP);
		log_notice("sipedge %s ready: domains %s%s", PACKAGE_VERSION, config.domains.item[0],
			   config.domains.count > 1 ? " ..." : "");
		uv_run(&loop, UV_RUN_DEFAULT);
		uv_close((uv_handle_t *)&sig_term, NULL);
		uv_close((uv_handle_t *)&sig_int, NULL);
		uv_close((uv_handle_t *)&sig_hup, NULL);
	}
	app_stop();
	settings_free(&config);
	log_notice("sipedge stopped");
	return rc;
}
