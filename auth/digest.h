/** @file digest.h  HTTP digest math for SIP (RFC 3261 §22.4, RFC 7616, RFC 8760) on OpenSSL EVP.
 *
 * Only qop=auth is supported: the response covers the method and the digest URI, never the
 * body (auth-int), and no -sess variants (no SIP client needs them).
 */
#ifndef SIPEDGE_AUTH_DIGEST_H
#define SIPEDGE_AUTH_DIGEST_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sofia-sip/msg_types.h>
#include <sofia-sip/su_alloc.h>

enum digest_alg { DIGEST_MD5, DIGEST_SHA256, DIGEST_SHA512_256, DIGEST__COUNT };

/** Room for the longest hex digest (SHA-256, SHA-512-256) and its NUL. */
#define DIGEST_HEX_MAX 65

/** "MD5", "SHA-256", "SHA-512-256": the token used in challenges and the users file. */
const char *digest_alg_name(enum digest_alg alg);
/** Parse an algorithm token (case-insensitive). 0 on success, -1 if unknown. */
int digest_alg_parse(const char *name, enum digest_alg *out);
/** Hex length of the algorithm's digest (32 or 64). */
size_t digest_hex_len(enum digest_alg alg);

/** H(p[0] ":" p[1] ":" ... p[n-1]) as lowercase hex. 0 on success. */
int digest_hash(enum digest_alg alg, const char *const parts[], int n, char out[DIGEST_HEX_MAX]);
/** HA1 = H(username ":" realm ":" password). */
int digest_ha1(enum digest_alg alg, const char *username, const char *realm, const char *password,
	       char out[DIGEST_HEX_MAX]);
/** The qop=auth response: H(HA1 ":" nonce ":" nc ":" cnonce ":auth:" H(method ":" uri)). */
int digest_response(enum digest_alg alg, const char *ha1, const char *nonce, const char *nc,
		    const char *cnonce, const char *method, const char *uri, char out[DIGEST_HEX_MAX]);
/** Compare two hex digests, case-insensitively and in time independent of where they differ. */
bool digest_hex_equal(const char *a, const char *b);

/** The parameters of one Digest credentials header, unquoted (strings in the given home). */
struct digest_credentials {
	const char *username, *realm, *nonce, *uri, *response;
	const char *algorithm; /* as sent; NULL = MD5 */
	const char *cnonce, *qop, *nc, *opaque;
};
/** Read the parameters of an Authorization or Proxy-Authorization value (sofia's au_params).
 *  0 on success, -1 if they do not parse. */
int digest_credentials_get(su_home_t *home, msg_param_t const *params, struct digest_credentials *out);
/** nc: exactly 8 hex digits (RFC 7616 §3.4). 0 and *out on success. */
int digest_nc_parse(const char *nc, uint32_t *out);

#endif
