/** @file location.h  The location service: bindings of AORs to contacts and flows.
 *
 * The registrar writes it; the proxy reads it. Bindings live in memory (the table below) and
 * are written through to a store (store.h) so that a restart or another node can load them.
 */
#ifndef SIPEDGE_LOCATION_H
#define SIPEDGE_LOCATION_H
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct binding {
	char *aor;	/* "sip:alice@example.com" */
	char *contact;	/* the Contact header value as registered, e.g. "<sip:x@y.invalid;transport=ws>;..." */
	char *uri;	/* the contact URI alone: the Request-URI of requests to this binding */
	char *instance; /* +sip.instance or NULL */
	int reg_id;	/* RFC 5626 reg-id, 0 if none */
	int q;		/* q-value x1000 (1000 = q=1.0) */
	uint64_t flow_id; /* the flow it registered over (0 = none: route by the URI) */
	char *path;	/* Path header values ("<sip:..>, <sip:..>") or NULL */
	char *call_id;
	uint32_t cseq;
	time_t expires_at; /* wall clock */
	bool outbound;	/* RFC 5626 binding: a dead flow gives 430, not 480 */
};

enum aor_state { AOR_UNKNOWN, AOR_NO_BINDING, AOR_BOUND };

/** Live bindings of aor, highest q first, into out[max]; returns how many. The pointers stay
 *  valid until control returns to the loop. */
int location_lookup(const char *aor, const struct binding **out, int max);
/** AOR_UNKNOWN → 404; AOR_NO_BINDING (a known user, or one whose bindings went with their
 *  flow or expired recently) → 480. */
enum aor_state location_aor_state(const char *aor);

#endif
