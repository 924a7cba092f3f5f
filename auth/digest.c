/** @file digest.c  HTTP digest math for SIP on OpenSSL EVP; credentials read with sofia-sip. */
#include "auth/digest.h"
#include "base/bytes.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sofia-sip/msg_header.h>
#include <stdbool.h>
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

/* The algorithms, fetched once: EVP_md5() and the like are fetched again from the provider
 * by every EVP_DigestInit_ex (a lookup under a lock each time, as much as the hash itself for
 * the short strings of a digest). They stay for the life of the process. */
static const EVP_MD *alg_md(enum digest_alg alg)
{
	static const char *const fetch_names[DIGEST__COUNT] = {"MD5", "SHA2-256", "SHA2-512/256"};
	static EVP_MD *fetched[DIGEST__COUNT];
	if (alg >= DIGEST__COUNT)
		return NULL;
	if (!fetched[alg])
		fetched[alg] = EVP_MD_fetch(NULL, fetch_names[alg], NULL);
	return fetched[alg];
}

int digest_hash(enum digest_alg alg, const char *const parts[], int n, char out[DIGEST_HEX_MAX])
{
	/* One context for every hash: the daemon has one thread. */
	static EVP_MD_CTX *ctx;
	const EVP_MD *md = alg_md(alg);
	if (!md || (!ctx && !(ctx = EVP_MD_CTX_new())))
		return -1;
	unsigned char raw[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	int ok = EVP_DigestInit_ex2(ctx, md, NULL);
	for (int i = 0; ok && i < n; i++) {
		if (i)
			ok = EVP_DigestUpdate(ctx, ":", 1);
		if (ok && parts[i])
			ok = EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]));
	}
	ok = ok && EVP_DigestFinal_ex(ctx, raw, &len);
	if (!ok || len * 2 >= DIGEST_HEX_MAX)
		return -1;
	hex_lower(raw, len, out);
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

/* The value of one parameter, unquoted, or NULL when it is absent. */
static const char *param_value(su_home_t *home, msg_param_t const *params, const char *name, bool *fail)
{
	const char *v = msg_params_find(params, name);
	if (!v || *v != '"')
		return v;
	const char *u = msg_unquote_dup(home, v);
	if (!u)
		*fail = true;
	return u;
}

int digest_credentials_get(su_home_t *home, msg_param_t const *params, struct digest_credentials *out)
{
	memset(out, 0, sizeof(*out));
	if (!params)
		return -1;
	/* The ten parameters read, each looked up by sofia-sip: auth_digest_response_get looks up
	 * all seventeen it knows, a tenth of a challenged REGISTER's instructions. */
	bool fail = false;
	out->username = param_value(home, params, "username=", &fail);
	out->realm = param_value(home, params, "realm=", &fail);
	out->nonce = param_value(home, params, "nonce=", &fail);
	out->uri = param_value(home, params, "uri=", &fail);
	out->response = param_value(home, params, "response=", &fail);
	out->algorithm = param_value(home, params, "algorithm=", &fail);
	out->cnonce = param_value(home, params, "cnonce=", &fail);
	out->qop = param_value(home, params, "qop=", &fail);
	out->nc = param_value(home, params, "nc=", &fail);
	out->opaque = param_value(home, params, "opaque=", &fail);
	return fail ? -1 : 0;
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
