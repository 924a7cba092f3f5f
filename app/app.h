/** @file app.h  Start, stop and reload every room of the daemon, in the one order that works.
 *
 * main.c, the unit tests and the fuzzer all start the daemon here, so the order in which rooms
 * are started, wired together and stopped is written once.
 */
#ifndef SIPEDGE_APP_H
#define SIPEDGE_APP_H
#include <stdbool.h>
#include <uv.h>

#include "app/reload.h"
#include "app/settings.h"

/** Start every room on loop with cfg (checked; kept by pointer): SIP messages, flows,
 *  transactions, who we are, the registrar, the proxy, auth (attached to both), the dispatcher.
 *  With network, also the per-source limits and every listener (each prints "listening PROTO
 *  HOST:PORT"); without, the caller makes flows of its own and hands their messages to
 *  dispatch_receive. 0 on success; on failure what started is still to be stopped by app_stop. */
int app_start(uv_loop_t *loop, struct app_config *cfg, bool network);
/** After the loop has stopped: connections close politely (WebSocket close frames are answered),
 *  then every room stops and the loop runs until no handle is left. The loop is closed; cfg is
 *  the caller's to free. */
void app_stop(void);
/** How a reload reads the configuration again (main.c: the same file and command line as at
 *  start). Without one, a reload fails and changes nothing. */
void app_set_loader(app_loader_fn loader);
/** SIGHUP and POST /api/v1/reload: the configuration again (reload.c: what changes live, what
 *  needs a restart), the users file, the TLS certificate and key. out, if not NULL, says what
 *  happened (the caller clears it with reload_report_clear). */
void app_reload(struct reload_report *out);

#endif
