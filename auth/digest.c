/** @file digest.c  HTTP digest math for SIP on OpenSSL EVP; credentials read with sofia-sip. */
#include "auth/digest.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sofia-sip/auth_digest.h>
#include <string.h>
#include <strings.h>

static const char *const alg_names[DIGEST__COUNT] = {"MD5", "SHA-256", "SHA-512-256"};

const char *digest_alg_name(enum digest_alg alg) { return alg < DIGEST__COUNT ? alg_names[alg] : "?"; }

int digest_alg_parse(const char *name, enum digest_alg *out)
{
	if (!name)
		return -1;
	for (int i = 0; i < DIGEST__COUNT; i++)
		if (strcasecmp(name, alg_names[i]) == 0) {
			*out = (enum digest_alg)i;
			return 0;
		}
	return -1;
}

size_t digest_hex_len(enum digest_alg alg) { return alg == DIGEST_MD5 ? 32 : 64; }

static const EVP_MD *alg_md(enum digest_alg alg)
{
	switch (alg) {
	case DIGEST_MD5: return EVP_md5();
	case DIGEST_SHA256: return EVP_sha256();
	case DIGEST_SHA512_256: return EVP_sha512_256();
	default: return NULL;
	}
}

int digest_hash(enum digest_alg alg, const char *const parts[], int n, char out[DIGEST_HEX_MAX])
{
	const EVP_MD *md = alg_md(alg);
	EVP_MD_CTX *ctx = md ? EVP_MD_CTX_new() : NULL;
	if (!ctx)
		return -1;
	unsigned char raw[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	int ok = EVP_DigestInit_ex(ctx, md, NULL);
	for (int i = 0; ok && i < n; i++) {
		if (i)
			ok = EVP_DigestUpdate(ctx, ":", 1);
		if (ok && parts[i])
			ok = EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]));
	}
	ok = ok && EVP_DigestFinal_ex(ctx, raw, &len);
	EVP_MD_CTX_free(ctx);
	if (!ok || len * 2 >= DIGEST_HEX_MAX)
		return -1;
	static const char hex[] = "0123456789abcdef";
	for (unsigned i = 0; i < len; i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[2 * len] = '\0';
	return 0;
}

int digest_ha1(enum digest_alg alg, const char *username, const char *realm, const char *password,
	       char out[DIGEST_HEX_MAX])
{
	const char *parts[] = {username, realm, password};
	return digest_hash(alg, parts, 3, out);
}

int digest_response(enum digest_alg alg, const char *ha1, const char *nonce, const char *nc,
		    const char *cnonce, const char *method, const char *uri, char out[DIGEST_HEX_MAX])
{
	char ha2[DIGEST_HEX_MAX];
	const char *a2[] = {method, uri};
	if (digest_hash(alg, a2, 2, ha2) != 0)
		return -1;
	const char *kd[] = {ha1, nonce, nc, cnonce, "auth", ha2};
	return digest_hash(alg, kd, 6, out);
}

bool digest_hex_equal(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la != lb || la >= DIGEST_HEX_MAX)
		return false;
	char x[DIGEST_HEX_MAX], y[DIGEST_HEX_MAX];
	for (size_t i = 0; i < la; i++) {
		x[i] = (char)tolower((unsigned char)a[i]);
		y[i] = (char)tolower((unsigned char)b[i]);
	}
	return CRYPTO_memcmp(x, y, la) == 0;
}

int digest_credentials_get(su_home_t *home, msg_param_t const *params, struct digest_credentials *out)
{
	memset(out, 0, sizeof(*out));
	if (!params)
		return -1;
	auth_response_t ar = {.ar_size = sizeof(ar)};
	if (auth_digest_response_get(home, &ar, params) < 0)
		return -1;
	out->username = ar.ar_username;
	out->realm = ar.ar_realm;
	out->nonce = ar.ar_nonce;
	out->uri = ar.ar_uri;
	out->response = ar.ar_response;
	out->algorithm = ar.ar_algorithm;
	out->cnonce = ar.ar_cnonce;
	out->qop = ar.ar_qop;
	out->nc = ar.ar_nc;
	out->opaque = ar.ar_opaque;
	return 0;
}

int digest_nc_parse(const char *nc, uint32_t *out)
{
	if (!nc || strlen(nc) != 8)
		return -1;
	uint32_t v = 0;
	for (int i = 0; i < 8; i++) {
		int c = (unsigned char)nc[i];
		if (!isxdigit(c))
			return -1;
		v = v << 4 | (uint32_t)(isdigit(c) ? c - '0' : tolower(c) - 'a' + 10);
	}
	*out = v;
	return 0;
}
