/** @file admin_config.h  The console's settings (admin.listen, admin.token_file, admin.web_root).
 *
 * Apart from admin.h so that settings.h can hold them without the console's HTTP side.
 */
#ifndef SIPEDGE_ADMIN_CONFIG_H
#define SIPEDGE_ADMIN_CONFIG_H
#include "base/config.h"

struct admin_config {
	char *listen;	  /* "127.0.0.1:8088", "[::1]:8088"; "" = no console */
	char *token_file; /* the bearer token, one line */
	char *web_root;	  /* the status page's files ("" = the API only) */
};
extern const struct setting admin_settings[];
/** Logs each problem with the admin settings and returns how many there are. */
int admin_config_check(const struct admin_config *cfg);

#endif
