/** @file reload.c  Reload without restart: read the file again, put in force what can change.
 *
 * The whole configuration is read and checked into a fresh struct first; a file that does not
 * read or check changes nothing. Then every setting whose value differs is either swapped into
 * the running configuration (the modules keep it by pointer, so they see the new value at
 * once) and its module is told, or, when it cannot change under a running daemon (listeners,
 * stores, secrets that sign what clients hold), reported and left as it runs.
 */
#include "app/reload.h"
#include "app/admin.h"
#include "app/app.h"
#include "auth/auth.h"
#include "base/log.h"
#include "base/metrics.h"
#include "proxy/proxy.h"
#include "transport/limits.h"
#include "transport/stream.h"
#include "transport/tls.h"
#include "transport/tls_client.h"
#include "transport/ws.h"

#include <stdlib.h>
#include <string.h>

/* What a reload puts in force; a name ending in '.' stands for its whole section. Every other
 * setting needs a restart. routing.resolv_conf is not here: the resolver is made once. */
static const char *const live_settings[] = {
	"log_level",	     "domains",		     "routing.upstreams",   "routing.foreign_domains",
	"routing.unregistered_users", "routing.upstream_timeout", "limits.",	    "auth.trusted_peers",
	"auth.users_file",   "websocket.origins",    "tls.cert",	    "tls.key",
	"proxy.timer_c",     "proxy.dialog_timeout", "admin.token_file",    NULL,
};

static bool is_live(const char *path)
{
	for (int i = 0; live_settings[i]; i++) {
		size_t n = strlen(live_settings[i]);
		if (live_settings[i][n - 1] == '.' ? strncmp(path, live_settings[i], n) == 0
						   : strcmp(path, live_settings[i]) == 0)
			return true;
	}
	return false;
}

void reload_report_clear(struct reload_report *r)
{
	string_list_clear(&r->errors);
	string_list_clear(&r->applied);
	string_list_clear(&r->restart);
}

static void on_changed(const struct config_part *running, const struct config_part *fresh, const struct setting *s,
		       void *arg)
{
	struct reload_report *r = arg;
	if (is_live(s->path)) {
		config_swap(running, fresh, s);
		string_list_add(&r->applied, s->path);
	} else {
		string_list_add(&r->restart, s->path);
	}
}

static bool changed(const struct reload_report *r, const char *prefix)
{
	for (int i = 0; i < r->applied.count; i++)
		if (strncmp(r->applied.item[i], prefix, strlen(prefix)) == 0)
			return true;
	return false;
}

static void keep_error(const struct log_recent *line, void *arg)
{
	if (line->level == LOGL_ERROR)
		string_list_add(arg, line->text);
}

/** Tell each module whose settings changed; the users file and the TLS pair are read again
 *  whatever changed, as SIGHUP always did. */
static void apply(const struct app_config *cfg, bool network, struct reload_report *r)
{
	enum log_level level;
	if (changed(r, "log_level") && log_level_parse(cfg->log_level, &level) == 0)
		log_set_level(level);
	if (changed(r, "limits.") || changed(r, "auth.trusted_peers"))
		limits_reload();
	if (changed(r, "routing.upstreams"))
		proxy_reload();
	r->users_ok = auth_reload() == 0;
	admin_reload_token();
	/* The pair is checked once, then put into the listeners of both kinds and into the
	 * connections we open; a broken pair changes nothing. */
	int pair = network ? tls_check_pair(&cfg->tls, cfg->listen, cfg->n_listen) : 1;
	r->tls_ok = pair != -1;
	if (pair == 0) {
		r->tls_ok &= ws_tls_reload() == 0;
		r->tls_ok &= stream_tls_reload() == 0;
	}
	if (pair != -1)
		r->tls_ok &= tls_client_reload() == 0;
}

static void log_summary(const struct reload_report *r)
{
	char applied[512] = "", restart[512] = "";
	for (int i = 0; i < r->applied.count; i++)
		snprintf(applied + strlen(applied), sizeof(applied) - strlen(applied), "%s%s", i ? ", " : "",
			 r->applied.item[i]);
	for (int i = 0; i < r->restart.count; i++)
		snprintf(restart + strlen(restart), sizeof(restart) - strlen(restart), "%s%s", i ? ", " : "",
			 r->restart.item[i]);
	log_notice("reload: %s%s", r->applied.count ? "in force now: " : "no setting changed",
		   r->applied.count ? applied : "");
	if (r->restart.count)
		log_warn("reload: changed but kept as running until a restart: %s", restart);
}

void reload_run(struct app_config *running, bool network, app_loader_fn loader, struct reload_report *r)
{
	unsigned long mark = log_recent_last();
	struct app_config *fresh = calloc(1, sizeof(*fresh));
	if (!fresh || !loader || loader(fresh) != 0) {
		log_error("reload: %s: nothing changed", running->path ? running->path : "the configuration");
		log_recent_each(mark, keep_error, &r->errors);
		metrics_inc(M_RELOADS_FAILED);
		if (fresh)
			settings_free(fresh);
		free(fresh);
		r->ok = false;
		return;
	}
	struct config_part now[SETTINGS_MAX_PARTS], next[SETTINGS_MAX_PARTS];
	settings_parts(running, now);
	settings_parts(fresh, next);
	config_diff(now, next, on_changed, r);
	apply(running, network, r);
	log_summary(r);
	log_recent_each(mark, keep_error, &r->errors);
	settings_free(fresh); /* with the values the swap took out of service */
	free(fresh);
	metrics_inc(M_RELOADS);
	r->ok = true;
}
