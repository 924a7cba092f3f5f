/** @file hmac.h  HMAC-SHA256 under a key set once.
 *
 * OpenSSL's one-shot HMAC() fetches the algorithm and sets the key on every call: about 20k
 * instructions for a MAC of a few bytes, which the flow tokens (two or more per proxied
 * request) and the digest nonces (two per challenged REGISTER) paid each time. A context keyed
 * once and re-initialised per MAC costs a tenth of that. One thread uses each context. */
#ifndef SIPEDGE_HMAC_H
#define SIPEDGE_HMAC_H

#include <stddef.h>

#define HMAC_SHA256_LEN 32

struct hmac_key;

/** A key for HMAC-SHA256, or NULL if OpenSSL cannot make one. */
struct hmac_key *hmac_key_new(const unsigned char *key, size_t len);
void hmac_key_free(struct hmac_key *k);
/** out = HMAC-SHA256 under k of the n pieces one after another. 0, or -1 on failure. */
int hmac_sha256(struct hmac_key *k, const void *const piece[], const size_t len[], int n,
		unsigned char out[HMAC_SHA256_LEN]);

#endif
