/** @file rooms.h  The daemon's rooms for unit tests, started and stopped by app_start/app_stop
 *  as main.c does, without the network: the test makes flows of its own and hands their
 *  messages to dispatch_receive. */
#ifndef SIPEDGE_TEST_ROOMS_H
#define SIPEDGE_TEST_ROOMS_H
#include <stdbool.h>
#include <uv.h>

#include "app/settings.h"

/** cfg must pass settings_check; UNIT_DEBUG=1 in the environment logs at debug, else errors only. */
void rooms_start(uv_loop_t *loop, struct app_config *cfg);
/** After whatever the test opened itself (flows, listeners) is gone: the rooms stop, the loop
 *  runs until every handle has closed and is closed, cfg is freed. */
void rooms_stop(uv_loop_t *loop, struct app_config *cfg);

#endif
