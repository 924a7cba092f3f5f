/** @file rooms.h  The daemon's rooms for unit tests, started and stopped the way main.c does,
 *  on a loop of the test's own: SIP messages, flows, transactions, the SIP core, the registrar,
 *  the proxy, and digest authentication when asked for. */
#ifndef SIPEDGE_TEST_ROOMS_H
#define SIPEDGE_TEST_ROOMS_H
#include <stdbool.h>
#include <uv.h>

#include "base/config.h"

/** cfg becomes g_config; UNIT_DEBUG=1 in the environment logs at debug, else errors only. */
void rooms_start(uv_loop_t *loop, struct config *cfg, bool auth);
/** After proxy_shutdown() and whatever the test opened itself (flows, listeners): the rest
 *  stops, the loop runs until every handle has closed and is closed, cfg is freed. */
void rooms_stop(uv_loop_t *loop, struct config *cfg, bool auth);

#endif
