/** @file nonce.h  Our digest nonces and the nonce-count table that rejects replays.
 *
 * A nonce is 64 hex digits: the issue time (16), the nc table's epoch (8, random per run),
 * the issue number (8) and the first 16 bytes of HMAC-SHA256(key, those 32 digits ":" realm)
 * (32). Checking one needs no state: the MAC says
 * we made it for this realm, the time says whether it is still fresh. Only nonces that have been
 * used are remembered, with the highest nc seen, so a flood of challenges costs no memory.
 */
#ifndef SIPEDGE_AUTH_NONCE_H
#define SIPEDGE_AUTH_NONCE_H
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define NONCE_LEN 64

enum nonce_verdict {
	NONCE_VALID,
	NONCE_STALE,   /* ours, but older than the lifetime: challenge again with stale=true */
	NONCE_INVALID, /* not ours (bad MAC, other realm, malformed, or from the future) */
};

/** Set the key: derived from secret, or random when secret is NULL or empty. -1 when no key
 *  can be had (no random bytes): nonces must not be made then. */
int nonce_init(const char *secret);
/** Frees what nonce_init made. */
void nonce_shutdown(void);
/** A fresh nonce for realm, issued at now. */
void nonce_make(const char *realm, time_t now, char out[NONCE_LEN + 1]);
/** Check a nonce received for realm; *issued gets its time when it is ours. */
enum nonce_verdict nonce_check(const char *nonce, const char *realm, time_t now, int ttl, time_t *issued);

enum nc_verdict {
	NC_OK,	   /* higher than any nc seen with this nonce: recorded */
	NC_REPLAY, /* not higher: a replayed or reordered request */
	NC_FORGOTTEN, /* the table was full and may have forgotten this nonce: ask for a new one */
};

/** Nonces are tracked for the last `max` challenges issued (rounded up to a power of two, one
 *  byte each): any of them answered within ttl seconds is judged exactly, whatever the load.
 *  Older ones, and foreign ones the bounded hash cannot vouch for, are NC_FORGOTTEN, so a
 *  nonce can never be replayed just because the table forgot it. */
int nc_table_init(size_t max, int ttl);
void nc_table_shutdown(void);
/** Use nc with a nonce that nonce_check found valid (issued at issued). */
enum nc_verdict nc_table_use(const char *nonce, time_t issued, uint32_t nc, time_t now);
/** Nonces in the table now. */
size_t nc_table_count(void);

#endif
