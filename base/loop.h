/** @file loop.h  The one libuv loop everything runs on (single thread). */
#ifndef SIPEDGE_LOOP_H
#define SIPEDGE_LOOP_H
#include <uv.h>

void loop_set(uv_loop_t *loop);
uv_loop_t *loop_get(void);

#endif
