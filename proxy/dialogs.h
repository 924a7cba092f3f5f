/** @file dialogs.h  Calls in progress, as the proxy sees them: for the operator, not for routing.
 *
 * The proxy routes in-dialog requests by its Record-Route flow tokens and keeps no dialog
 * state for that. This table only answers "which calls are up": a dialog is noted when a 2xx to
 * an INVITE passes, ends with a BYE, and is forgotten after proxy.dialog_timeout seconds
 * without any in-dialog request (a BYE we never saw). Keyed by Call-ID and both tags.
 */
#ifndef SIPEDGE_DIALOGS_H
#define SIPEDGE_DIALOGS_H
#include <stdint.h>
#include <time.h>

#include "base/sipmsg.h"

struct dialog {
	char *call_id;
	char *caller, *callee; /* From and To URIs of the INVITE */
	char *caller_tag, *callee_tag;
	uint64_t caller_flow, callee_flow; /* the two legs: where the INVITE came from and went */
	time_t started_at, active_at;	   /* wall clock: the 2xx, the last in-dialog request */
	struct dialog *next;
};

/** Start with the idle timeout in seconds (kept by pointer: a reload may change it). */
void dialogs_init(const int *timeout);
void dialogs_shutdown(void);
/** A 2xx to an INVITE went from callee_flow back towards caller_flow. */
void dialogs_answered(const sip_t *resp, uint64_t caller_flow, uint64_t callee_flow);
/** An in-dialog request passed: a BYE ends its dialog, anything else keeps it alive. */
void dialogs_request(const sip_t *req);
unsigned dialogs_count(void);
typedef void (*dialogs_each_fn)(const struct dialog *d, void *arg);
void dialogs_each(dialogs_each_fn fn, void *arg);

#endif
