/** @file hmac.c  HMAC-SHA256 under a key set once (OpenSSL EVP_MAC). */
#include "base/hmac.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdlib.h>

struct hmac_key {
	EVP_MAC_CTX *ctx;
};

struct hmac_key *hmac_key_new(const unsigned char *key, size_t len)
{
	struct hmac_key *k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	k->ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	EVP_MAC_free(mac);
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
			       OSSL_PARAM_construct_end()};
	if (!k->ctx || EVP_MAC_init(k->ctx, key, len, params) != 1) {
		hmac_key_free(k);
		return NULL;
	}
	return k;
}

void hmac_key_free(struct hmac_key *k)
{
	if (!k)
		return;
	EVP_MAC_CTX_free(k->ctx);
	free(k);
}

int hmac_sha256(struct hmac_key *k, const void *const piece[], const size_t len[], int n,
		unsigned char out[HMAC_SHA256_LEN])
{
	/* A NULL key re-initialises with the key already set (EVP_MAC_init). */
	if (!k || EVP_MAC_init(k->ctx, NULL, 0, NULL) != 1)
		return -1;
	for (int i = 0; i < n; i++)
		if (len[i] && EVP_MAC_update(k->ctx, piece[i], len[i]) != 1)
			return -1;
	size_t got = 0;
	return EVP_MAC_final(k->ctx, out, &got, HMAC_SHA256_LEN) == 1 && got == HMAC_SHA256_LEN ? 0 : -1;
}
