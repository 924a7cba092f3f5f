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

#include "registrar/registrar.h"

struct binding {
	char *aor;	/* "sip:alice@example.com" */
	char *key;	/* identity within the AOR: "o:<instance>;<reg-id>", "i:<instance>",
			 * "f:<flow id>:<uri>" (WS contact without instance) or "u:<uri>" */
	char *contact;	/* the Contact header value as registered, without its expires parameter
			 * (expires_at is the time left), e.g. "<sip:x@y.invalid;transport=ws>;..." */
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
	bool connection; /* its flow is a connection (WS, TCP, TLS), not a UDP peer: with
			  * registrar.drop_bindings_on_flow_close it goes when that closes */
	time_t updated_at; /* wall clock of the last REGISTER that added or refreshed it */
	uint64_t reg_epoch; /* names this registration of the binding (RFC 5627 temp-gruus carry it):
			     * drawn at random (63 bits, never 0) when the binding is added or its
			     * Call-ID changes, kept across refreshes with the same Call-ID, stored
			     * with the binding; so a temp-gruu dies with the registration it came
			     * from even if the same Call-ID registers again later */
	time_t registered_at; /* wall clock of the REGISTER that added it (kept by refreshes) */
	char *user_agent; /* the User-Agent of the last REGISTER, or NULL (not stored) */
};

enum aor_state { AOR_UNKNOWN, AOR_NO_BINDING, AOR_BOUND };

/** Live bindings of aor, highest q first, into out[max]; returns how many. The pointers stay
 *  valid until control returns to the loop. */
int location_lookup(const char *aor, const struct binding **out, int max);
/** AOR_UNKNOWN → 404; AOR_NO_BINDING (a known user, or one whose bindings went with their
 *  flow or expired recently) → 480. */
enum aor_state location_aor_state(const char *aor);

/* ---- the registrar's side: registrar.c changes the table only through these ---- */
struct store;

/** Why a binding left the table (logs and counters). */
enum location_why { LOC_UNREGISTERED, LOC_EXPIRED, LOC_FLOW_CLOSED, LOC_REPLACED, LOC_OPERATOR };

/** Start the table: arm its expiry timer on the loop and load what store holds (which stays
 *  attached: every change is written through to it). 0 on success. */
int location_init(struct store *store, const struct registrar_config *cfg);
/** Free every binding and close the timer (the loop must run once more to finish closing). */
void location_shutdown(void);
/** Every live binding of aor in lookup order, mutable, for the registrar; returns how many. */
int location_bindings(const char *aor, struct binding **out, int max);
/** Insert a copy of b (aor, key and every field set by the caller; a reg_epoch of 0 is drawn
 *  at random). NULL on failure. */
struct binding *location_add(const struct binding *b);
/** Overwrite the binding's contact, uri, path, flow, q, call_id, cseq, expires_at, outbound and
 *  instance with those of from (same aor and key). reg_epoch stays while the Call-ID does, and is
 *  drawn anew when it changes. 0 on success; on failure cur is unchanged. */
int location_update(struct binding *cur, const struct binding *from);
/** Remove one binding (the pointer is invalid afterwards). */
void location_remove(struct binding *b, enum location_why why);
/** Remove every binding that was registered over flow_id; returns how many. */
int location_drop_flow(uint64_t flow_id);
/** Every live binding (of aor only, unless it is NULL), in no particular order between AORs;
 *  fn must not change the table. */
typedef void (*location_each_fn)(const struct binding *b, void *arg);
void location_each(const char *aor, location_each_fn fn, void *arg);
/** The operator removes the bindings of aor (only the one whose key is key, unless it is
 *  NULL); returns how many went. */
int location_remove_by_key(const char *aor, const char *key);
/** How many writes to the store have failed at once so far: the registrar compares the count
 *  around its changes to know that a REGISTER cannot be acknowledged. */
unsigned location_store_errors(void);
/** Number of live bindings and of AORs holding at least one. */
unsigned location_binding_count(void);
unsigned location_aor_count(void);

/** Deep copy of src's strings into dst (dst's old strings are not freed). 0 on success. */
int location_binding_copy(struct binding *dst, const struct binding *src);
/** Free the strings a binding owns (the struct itself is the caller's). */
void location_binding_clear(struct binding *b);

#endif
