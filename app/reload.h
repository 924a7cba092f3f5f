/** @file reload.h  What a reload did: the reply to POST /api/v1/reload and the log's summary. */
#ifndef SIPEDGE_RELOAD_H
#define SIPEDGE_RELOAD_H
#include <stdbool.h>

#include "app/settings.h"
#include "base/config.h"

struct reload_report {
	bool ok;		   /* the file read and checked; what could change has changed */
	struct string_list errors; /* why not (the errors logged while reading and checking) */
	struct string_list applied; /* settings whose new values are in force */
	struct string_list restart; /* settings that changed but need a restart: the running
				     * values stay */
	bool users_ok, tls_ok;	   /* the users file and the TLS pair read again (or not in use) */
};

void reload_report_clear(struct reload_report *r);

/** Fill cfg (zeroed) with the whole configuration as at start: defaults, the file, the command
 *  line; checked. 0 on success; otherwise the problems are logged and cfg is to be freed. */
typedef int (*app_loader_fn)(struct app_config *cfg);
/** Read the configuration with loader and put in force, in running (which the modules keep by
 *  pointer), what can change without a restart (the listeners' certificates only with network);
 *  r says what happened (its lists are the caller's to clear). */
void reload_run(struct app_config *running, bool network, app_loader_fn loader, struct reload_report *r);

#endif
