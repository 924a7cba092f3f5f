/** @file rooms.c  See rooms.h. */
#include "tests/unit/rooms.h"
#include "app/app.h"
#include "base/log.h"
#include "tests/unit/unit.h"

#include <stdlib.h>

void rooms_start(uv_loop_t *loop, struct app_config *cfg)
{
	log_set_level(getenv("UNIT_DEBUG") ? LOGL_DEBUG : LOGL_ERROR);
	ck_assert_int_eq(settings_check(cfg), 0);
	uv_loop_init(loop);
	ck_assert_int_eq(app_start(loop, cfg, false), 0);
}

void rooms_stop(uv_loop_t *loop, struct app_config *cfg)
{
	app_stop();
	settings_free(cfg);
}
