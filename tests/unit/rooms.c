/** @file rooms.c  See rooms.h. */
#include "tests/unit/rooms.h"
#include "auth/auth.h"
#include "base/log.h"
#include "base/loop.h"
#include "app/dispatch.h"
#include "base/sipmsg.h"
#include "proxy/proxy.h"
#include "sip/txn.h"
#include "registrar/registrar.h"
#include "tests/unit/unit.h"
#include "transport/flow.h"

#include <stdlib.h>

void rooms_start(uv_loop_t *loop, struct config *cfg, bool auth)
{
	g_config = cfg;
	log_set_level(getenv("UNIT_DEBUG") ? LOGL_DEBUG : LOGL_ERROR);
	uv_loop_init(loop);
	loop_set(loop);
	sipmsg_init();
	flow_init("unit-test-secret");
	txn_init();
	sip_core_init();
	ck_assert_int_eq(registrar_init(), 0);
	ck_assert_int_eq(proxy_init(), 0);
	if (auth)
		ck_assert_int_eq(auth_init(cfg), 0);
}

void rooms_stop(uv_loop_t *loop, struct config *cfg, bool auth)
{
	if (auth)
		auth_shutdown();
	registrar_shutdown();
	txn_shutdown();
	flow_shutdown();
	uv_run(loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(loop), 0);
	sipmsg_shutdown();
	config_free(cfg);
	g_config = NULL;
}
