/** @file dialogs.c  Calls in progress (dialogs.h).
 *
 * A fixed array of hash chains keyed by Call-ID; a dialog matches when both tags match, in
 * either order (the callee's BYE has them the other way round). A sweep timer forgets dialogs
 * idle for longer than the timeout. The table is bounded: when it is full, a new call is not
 * noted (and the log says so once) rather than growing without limit.
 */
#include "proxy/dialogs.h"
#include "base/bytes.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/metrics.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define BUCKETS 4096 /* power of two */
#define MAX_DIALOGS 100000
#define SWEEP_MS 30000

static struct {
	bool on;
	const int *timeout;
	struct dialog *hash[BUCKETS];
	unsigned count;
	uv_timer_t sweep;
	bool full_logged;
} D;

static unsigned bucket(const char *call_id)
{
	return fnv1a_str(FNV1A_INIT, call_id) & (BUCKETS - 1);
}

static bool same(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

static struct dialog **find(const char *call_id, const char *tag1, const char *tag2)
{
	for (struct dialog **pp = &D.hash[bucket(call_id)]; *pp; pp = &(*pp)->next) {
		struct dialog *d = *pp;
		if (strcmp(d->call_id, call_id) != 0)
			continue;
		if ((same(d->caller_tag, tag1) && same(d->callee_tag, tag2)) ||
		    (same(d->caller_tag, tag2) && same(d->callee_tag, tag1)))
			return pp;
	}
	return NULL;
}

static void dialog_free(struct dialog *d)
{
	free(d->call_id);
	free(d->caller);
	free(d->callee);
	free(d->caller_tag);
	free(d->callee_tag);
	free(d);
}

static void unlink_free(struct dialog **pp, const char *why)
{
	struct dialog *d = *pp;
	*pp = d->next;
	D.count--;
	metrics_set(M_CALLS, D.count);
	log_info("proxy: call %s ended (%s), %u in progress", d->call_id, why, D.count);
	dialog_free(d);
}

static void on_sweep(uv_timer_t *t)
{
	time_t stale = time(NULL) - *D.timeout;
	for (unsigned b = 0; b < BUCKETS; b++) {
		struct dialog **pp = &D.hash[b];
		while (*pp) {
			if ((*pp)->active_at < stale) {
				metrics_inc(M_CALLS_EXPIRED);
				unlink_free(pp, "idle past proxy.dialog_timeout");
			} else {
				pp = &(*pp)->next;
			}
		}
	}
}

void dialogs_init(const int *timeout)
{
	memset(&D, 0, sizeof(D));
	D.timeout = timeout;
	uv_timer_init(loop_get(), &D.sweep);
	uv_timer_start(&D.sweep, on_sweep, SWEEP_MS, SWEEP_MS);
	uv_unref((uv_handle_t *)&D.sweep); /* bookkeeping: it must not keep the loop alive */
	D.on = true;
	metrics_set(M_CALLS, 0);
}

void dialogs_shutdown(void)
{
	if (!D.on)
		return;
	uv_timer_stop(&D.sweep);
	uv_close((uv_handle_t *)&D.sweep, NULL);
	for (unsigned b = 0; b < BUCKETS; b++)
		while (D.hash[b]) {
			struct dialog *d = D.hash[b];
			D.hash[b] = d->next;
			dialog_free(d);
		}
	D.count = 0;
	D.on = false;
}

static char *url_text(const sip_addr_t *a)
{
	char buf[512];
	if (!a || url_e(buf, sizeof(buf), a->a_url) < 0)
		return strdup("");
	buf[sizeof(buf) - 1] = '\0';
	return strdup(buf);
}

void dialogs_answered(const sip_t *resp, uint64_t caller_flow, uint64_t callee_flow)
{
	if (!D.on || !resp->sip_call_id || !resp->sip_from || !resp->sip_to || !resp->sip_to->a_tag)
		return;
	const char *call_id = resp->sip_call_id->i_id;
	struct dialog **pp = find(call_id, resp->sip_from->a_tag, resp->sip_to->a_tag);
	if (pp) {
		(*pp)->active_at = time(NULL); /* a re-INVITE, or a 2xx retransmission */
		return;
	}
	if (D.count >= MAX_DIALOGS) {
		if (!D.full_logged)
			log_warn("proxy: %u calls in progress noted, the most there may be: new calls are "
				 "not listed", D.count);
		D.full_logged = true;
		return;
	}
	struct dialog *d = calloc(1, sizeof(*d));
	if (!d)
		return;
	d->call_id = strdup(call_id);
	d->caller = url_text(resp->sip_from);
	d->callee = url_text(resp->sip_to);
	d->caller_tag = resp->sip_from->a_tag ? strdup(resp->sip_from->a_tag) : NULL;
	d->callee_tag = strdup(resp->sip_to->a_tag);
	if (!d->call_id || !d->caller || !d->callee || !d->callee_tag) {
		dialog_free(d);
		return;
	}
	d->caller_flow = caller_flow;
	d->callee_flow = callee_flow;
	d->started_at = d->active_at = time(NULL);
	unsigned b = bucket(call_id);
	d->next = D.hash[b];
	D.hash[b] = d;
	D.count++;
	D.full_logged = false;
	metrics_set(M_CALLS, D.count);
	log_info("proxy: call %s up: %s to %s, %u in progress", d->call_id, d->caller, d->callee, D.count);
}

void dialogs_request(const sip_t *req)
{
	if (!D.on || !req->sip_call_id || !req->sip_from || !req->sip_to || !req->sip_to->a_tag)
		return;
	struct dialog **pp = find(req->sip_call_id->i_id, req->sip_from->a_tag, req->sip_to->a_tag);
	if (!pp)
		return;
	if (req->sip_request->rq_method == sip_method_bye)
		unlink_free(pp, "BYE");
	else
		(*pp)->active_at = time(NULL);
}

unsigned dialogs_count(void) { return D.count; }

void dialogs_each(dialogs_each_fn fn, void *arg)
{
	for (unsigned b = 0; b < BUCKETS; b++)
		for (const struct dialog *d = D.hash[b]; d; d = d->next)
			fn(d, arg);
}
