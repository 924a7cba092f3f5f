/** @file admin_history.c  The last hour of the status page's charts, sampled in the daemon.
 *
 * A page opened now shows the hour before it, not only what it has seen since: every
 * HISTORY_STEP seconds the connection, binding and call counts go into a ring of one hour
 * (360 samples of three numbers: under 10 KiB, whatever the load).
 */
#include "app/admin.h"
#include "base/loop.h"
#include "proxy/dialogs.h"
#include "registrar/location.h"
#include "transport/flow.h"

#include <string.h>
#include <uv.h>

#define HISTORY_STEP 10			  /* seconds */
#define HISTORY_LEN (3600 / HISTORY_STEP) /* one hour */

struct sample {
	time_t t;
	unsigned connections, bindings, calls;
};

static struct {
	struct sample ring[HISTORY_LEN];
	unsigned next, count;
	uv_timer_t timer;
	bool on;
} H;

static void take_sample(uv_timer_t *t)
{
	struct sample *s = &H.ring[H.next];
	s->t = time(NULL);
	s->connections = flow_count();
	s->bindings = location_binding_count();
	s->calls = dialogs_count();
	H.next = (H.next + 1) % HISTORY_LEN;
	if (H.count < HISTORY_LEN)
		H.count++;
}

void admin_history_start(void)
{
	memset(&H, 0, sizeof(H));
	uv_timer_init(loop_get(), &H.timer);
	uv_timer_start(&H.timer, take_sample, HISTORY_STEP * 1000, HISTORY_STEP * 1000);
	uv_unref((uv_handle_t *)&H.timer); /* bookkeeping: it must not keep the loop alive */
	H.on = true;
	take_sample(&H.timer);
}

void admin_history_stop(void)
{
	if (!H.on)
		return;
	H.on = false;
	uv_timer_stop(&H.timer);
	uv_close((uv_handle_t *)&H.timer, NULL);
}

json_t *admin_history_json(void)
{
	json_t *list = json_array();
	unsigned first = (H.next + HISTORY_LEN - H.count) % HISTORY_LEN;
	for (unsigned i = 0; i < H.count; i++) {
		const struct sample *s = &H.ring[(first + i) % HISTORY_LEN];
		json_array_append_new(list, json_pack("{s:I,s:I,s:I,s:I}", "t", (json_int_t)s->t, "connections",
						      (json_int_t)s->connections, "bindings", (json_int_t)s->bindings,
						      "calls", (json_int_t)s->calls));
	}
	return json_pack("{s:i,s:o}", "interval_seconds", HISTORY_STEP, "samples", list);
}
