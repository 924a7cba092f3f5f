/** @file loop.c  The one libuv loop everything runs on (single thread). */
#include "base/loop.h"

static uv_loop_t *the_loop;

void loop_set(uv_loop_t *loop) { the_loop = loop; }
uv_loop_t *loop_get(void) { return the_loop ? the_loop : uv_default_loop(); }
