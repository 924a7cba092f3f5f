/** @file gruu.h  Globally Routable User agent URIs (RFC 5627): minting them, and finding the
 *  bindings one names.
 *
 * A pub-gruu is the AOR with the instance: `sip:alice@example.com;gr=urn:uuid:…`. It reveals
 * the AOR by design and lives as long as the AOR.
 *
 * A temp-gruu is `sip:TOKEN@example.com;gr`, TOKEN an opaque sealed box (AES-256-GCM, random
 * nonce, base64url) holding the AOR, the instance and the binding's registration epoch
 * (location.h, reg_epoch), under a key derived from registrar.gruu_secret. Nothing is kept per
 * temp-gruu: every one minted stays valid while a binding of that AOR and instance with the
 * same epoch lives (the same registration, same Call-ID), and none is valid once that
 * registration ends (unregister, expiry, flow closed) or its Call-ID changes. A forged or
 * altered token does not open. Nodes that share the secret open each other's; with the
 * secret empty the key is random per run, so temp-gruus minted before a restart get 404.
 */
#ifndef SIPEDGE_GRUU_H
#define SIPEDGE_GRUU_H
#include <stdint.h>

#include "base/sipmsg.h"
#include "registrar/location.h"

/** Derive the temp-gruu key from secret ("" = random for this run). 0 on success. */
int gruu_init(const char *secret);
/** Forget the key. */
void gruu_shutdown(void);

/** The pub-gruu of aor and instance (as registered, `<urn:uuid:…>`), in home; NULL on failure. */
char *gruu_public(su_home_t *home, const char *aor, const char *instance);
/** A new temp-gruu for the binding's aor, instance and reg_epoch, in home; NULL on failure. */
char *gruu_temporary(su_home_t *home, const struct binding *b);

/** Whether url carries a gr parameter (a GRUU, if it names one of our domains). */
bool gruu_is_one(const url_t *url);

enum gruu_verdict {
	GRUU_NOT_ONE, /* no gr parameter: an ordinary URI */
	GRUU_FOUND,   /* the live bindings it names are in out[] */
	GRUU_NOBODY,  /* names nobody: a temp-gruu that does not open or whose registration ended,
		       * a pub-gruu of an unknown AOR (404) */
	GRUU_OFFLINE, /* a pub-gruu of a known AOR whose instance has no live binding (480) */
};

/** What ruri, a URI of one of our domains, names: with GRUU_FOUND the instance's live bindings,
 *  highest q first, in out[max] (*n of them) and *temporary tells a temp-gruu. The pointers stay
 *  valid until control returns to the loop. */
enum gruu_verdict gruu_lookup(const url_t *ruri, const struct binding **out, int max, int *n, bool *temporary);

#endif
