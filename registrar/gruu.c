/** @file gruu.c  RFC 5627 GRUUs: pub-gruus from the AOR and instance, temp-gruus as sealed
 *  tokens, and the lookup the proxy does for a Request-URI that carries `gr`.
 *
 * A temp-gruu's token is base64url(nonce[12] || AES-256-GCM(plaintext) || tag[16]) with
 *   plaintext = flags[1] || reg_epoch[8, big-endian] || AOR without "sip:" || 0 || instance
 * where flags bit 0 says the instance is `<urn:uuid:…>` in lower-case hex, carried as its 16
 * bytes (a JsSIP or SIP.js token is then 95 characters). The additional data names the format,
 * so a token of another purpose or version does not open as one of these. The nonce is random:
 * every REGISTER gets a new temp-gruu, and two of them tell nothing about each other.
 */
#include "registrar/gruu.h"
#include "base/log.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NONCE_LEN 12
#define TAG_LEN 16
#define PLAIN_MAX 768 /* AOR and instance together; longer ones get no temp-gruu */
#define TOKEN_MAX (((NONCE_LEN + PLAIN_MAX + TAG_LEN) + 2) / 3 * 4 + 1)
#define LOOKUP_MAX 1024 /* bindings of one AOR looked through (more than any max_bindings) */
#define FLAG_UUID 1

static const unsigned char aad[] = "sipedge temp-gruu v1";

static struct {
	bool ready;
	unsigned char key[32];
} G;

int gruu_init(const char *secret)
{
	if (secret && *secret) {
		/* A fixed-size key of its own: the same secret in another place yields another key. */
		static const char label[] = "sipedge temp-gruu key v1";
		unsigned int n = sizeof(G.key);
		if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)label, sizeof(label) - 1,
			  G.key, &n))
			return -1;
	} else if (RAND_bytes(G.key, sizeof(G.key)) != 1) {
		log_error("registrar: no random bytes for the temp-gruu key");
		return -1;
	}
	G.ready = true;
	return 0;
}

void gruu_shutdown(void)
{
	OPENSSL_cleanse(G.key, sizeof(G.key));
	G.ready = false;
}

/* ---- base64url without padding (RFC 4648 §5): safe in a SIP URI's user part ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64url_encode(const unsigned char *in, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
			     (i + 2 < n ? in[i + 2] : 0);
		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = b64[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = b64[v & 63];
	}
	out[o] = '\0';
	return o;
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64, c) : NULL;
	return p ? (int)(p - b64) : -1;
}

/* -1 on a character outside the alphabet, an impossible length, or more than max bytes. */
static long b64url_decode(const char *in, size_t n, unsigned char *out, size_t max)
{
	/* Exactly what n characters decode to (no padding: 2 more make 1 byte, 3 more make 2), so
	 * that every token b64url_encode makes of max bytes decodes. */
	if (n % 4 == 1 || n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0) > max)
		return -1;
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value(in[i]);
		if (v < 0)
			return -1;
		acc = acc << 6 | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	return (long)o;
}

/* ---- the instance ---- */

/* The instance without its angle brackets (RFC 5627 §6 uses it so in gr=), in buf. */
static const char *instance_bare(const char *instance, char *buf, size_t size)
{
	size_t len = strlen(instance);
	if (len >= 2 && instance[0] == '<' && instance[len - 1] == '>') {
		snprintf(buf, size, "%.*s", (int)(len - 2), instance + 1);
		return buf;
	}
	return instance;
}

static int hex_value(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* `<urn:uuid:xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx>` in lower case into 16 bytes. */
static bool uuid_pack(const char *instance, unsigned char out[16])
{
	static const char prefix[] = "<urn:uuid:";
	if (strlen(instance) != 47 || strncmp(instance, prefix, 10) != 0 || instance[46] != '>')
		return false;
	const char *p = instance + 10;
	for (int i = 0, k = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (p[i] != '-')
				return false;
			continue;
		}
		int hi = hex_value(p[i]), lo = hex_value(p[i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[k++] = (unsigned char)(hi << 4 | lo);
		i++;
	}
	return true;
}

static void uuid_unpack(const unsigned char in[16], char out[48])
{
	char *o = out + sprintf(out, "<urn:uuid:");
	for (int k = 0; k < 16; k++) {
		if (k == 4 || k == 6 || k == 8 || k == 10)
			*o++ = '-';
		o += sprintf(o, "%02x", in[k]);
	}
	sprintf(o, ">");
}

/* ---- minting ---- */

/* The host part of an AOR "sip:user@host" (or "sip:host"). */
static const char *aor_host(const char *aor)
{
	const char *at = strrchr(aor, '@');
	return at ? at + 1 : strncmp(aor, "sip:", 4) == 0 ? aor + 4 : aor;
}

/* RFC 3261 paramchar: unreserved, param-unreserved and escapes; everything else as %XX. */
static char *escape_param(su_home_t *home, const char *v)
{
	size_t n = strlen(v);
	char *out = su_alloc(home, (isize_t)(3 * n + 1));
	if (!out)
		return NULL;
	char *o = out;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (isalnum(*p) || strchr("-_.!~*'()[]/:&+$", *p))
			*o++ = (char)*p;
		else
			o += sprintf(o, "%%%02X", *p);
	}
	*o = '\0';
	return out;
}

char *gruu_public(su_home_t *home, const char *aor, const char *instance)
{
	if (!aor || !instance || !*instance)
		return NULL;
	char buf[PLAIN_MAX];
	char *gr = escape_param(home, instance_bare(instance, buf, sizeof(buf)));
	return gr ? su_sprintf(home, "%s;gr=%s", aor, gr) : NULL;
}

char *gruu_temporary(su_home_t *home, const struct binding *b)
{
	if (!G.ready || !b->aor || !b->instance || strncmp(b->aor, "sip:", 4) != 0)
		return NULL;
	unsigned char plain[PLAIN_MAX], sealed[NONCE_LEN + PLAIN_MAX + TAG_LEN];
	const char *user_host = b->aor + 4;
	size_t alen = strlen(user_host), ilen = strlen(b->instance);
	unsigned char uuid[16];
	bool packed = uuid_pack(b->instance, uuid);
	size_t n = 1 + 8 + alen + 1 + (packed ? 16 : ilen);
	if (n > sizeof(plain))
		return NULL;
	plain[0] = packed ? FLAG_UUID : 0;
	for (int i = 0; i < 8; i++)
		plain[1 + i] = (unsigned char)(b->reg_epoch >> (56 - 8 * i));
	memcpy(plain + 9, user_host, alen);
	plain[9 + alen] = 0;
	memcpy(plain + 10 + alen, packed ? uuid : (const unsigned char *)b->instance, packed ? 16 : ilen);

	if (RAND_bytes(sealed, NONCE_LEN) != 1)
		return NULL;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int len = 0, fin = 0;
	bool ok = ctx && EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, G.key, sealed) == 1 &&
		  EVP_EncryptUpdate(ctx, NULL, &len, aad, sizeof(aad) - 1) == 1 &&
		  EVP_EncryptUpdate(ctx, sealed + NONCE_LEN, &len, plain, (int)n) == 1 &&
		  EVP_EncryptFinal_ex(ctx, sealed + NONCE_LEN + len, &fin) == 1 &&
		  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, sealed + NONCE_LEN + n) == 1;
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(plain, sizeof(plain));
	if (!ok)
		return NULL;
	char token[TOKEN_MAX];
	b64url_encode(sealed, NONCE_LEN + n + TAG_LEN, token);
	return su_sprintf(home, "sip:%s@%s;gr", token, aor_host(b->aor));
}

/* ---- opening ---- */

struct opened {
	char aor[PLAIN_MAX];
	char instance[PLAIN_MAX];
	uint64_t epoch;
};

/* The token of a temp-gruu back into what it holds; false for anything we did not mint. */
static bool temp_open(const char *token, struct opened *o)
{
	unsigned char sealed[NONCE_LEN + PLAIN_MAX + TAG_LEN], plain[PLAIN_MAX];
	size_t tlen = strlen(token);
	long n = G.ready && tlen < TOKEN_MAX ? b64url_decode(token, tlen, sealed, sizeof(sealed)) : -1;
	if (n < NONCE_LEN + TAG_LEN + 1 + 8 + 2)
		return false;
	int clen = (int)n - NONCE_LEN - TAG_LEN, len = 0, fin = 0;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	bool ok = ctx && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, G.key, sealed) == 1 &&
		  EVP_DecryptUpdate(ctx, NULL, &len, aad, sizeof(aad) - 1) == 1 &&
		  EVP_DecryptUpdate(ctx, plain, &len, sealed + NONCE_LEN, clen) == 1 &&
		  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, sealed + NONCE_LEN + clen) == 1 &&
		  EVP_DecryptFinal_ex(ctx, plain + len, &fin) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok)
		return false;
	o->epoch = 0;
	for (int i = 0; i < 8; i++)
		o->epoch = o->epoch << 8 | plain[1 + i];
	const unsigned char *user_host = plain + 9, *end = plain + clen;
	const unsigned char *nul = memchr(user_host, 0, (size_t)(end - user_host));
	if (!nul)
		return false;
	snprintf(o->aor, sizeof(o->aor), "sip:%s", (const char *)user_host);
	size_t ilen = (size_t)(end - nul - 1);
	if (plain[0] & FLAG_UUID) {
		if (ilen != 16)
			return false;
		uuid_unpack(nul + 1, o->instance);
	} else {
		if (ilen == 0 || ilen >= sizeof(o->instance) || memchr(nul + 1, 0, ilen))
			return false;
		memcpy(o->instance, nul + 1, ilen);
		o->instance[ilen] = '\0';
	}
	return true;
}

/* The gr parameter of a URI: false without one; its value, unescaped, into buf ("" = none;
 * also "" with *has_value for a value too long for buf, which can name no instance of ours). */
static bool gr_param(const url_t *url, char *buf, size_t size, bool *has_value)
{
	if (!url_has_param(url, "gr"))
		return false;
	/* 0: not there; 1: "gr" or "gr="; else the value's length + 1 (copied only if it fits). */
	isize_t n = url_param(url->url_params, "gr", buf, (isize_t)size);
	*has_value = n > 1;
	if (n == 0 || (size_t)n > size)
		buf[0] = '\0';
	else
		url_unescape(buf, buf);
	return true;
}

static bool same_instance(const char *registered, const char *bare)
{
	char buf[PLAIN_MAX];
	return registered && strcasecmp(instance_bare(registered, buf, sizeof(buf)), bare) == 0;
}

enum gruu_verdict gruu_lookup(const url_t *ruri, const struct binding **out, int max, int *n, bool *temporary)
{
	char gr[PLAIN_MAX];
	bool has_value = false;
	*n = 0;
	*temporary = false;
	if (!ruri || !ruri->url_host || !gr_param(ruri, gr, sizeof(gr), &has_value))
		return GRUU_NOT_ONE;
	struct opened o;
	const char *bare;
	char buf[PLAIN_MAX];
	if (has_value) {
		/* pub-gruu: the AOR is the URI's, the instance the parameter's. */
		char *aor = gr[0] ? sipmsg_aor(ruri) : NULL;
		if (!aor)
			return GRUU_NOBODY;
		snprintf(o.aor, sizeof(o.aor), "%s", aor);
		free(aor);
		bare = gr;
	} else {
		/* temp-gruu: the user part is a token of ours, for an AOR of this very domain. */
		*temporary = true;
		if (!ruri->url_user || !temp_open(ruri->url_user, &o) || strcasecmp(aor_host(o.aor), ruri->url_host) != 0)
			return GRUU_NOBODY;
		bare = instance_bare(o.instance, buf, sizeof(buf));
	}
	static const struct binding *all[LOOKUP_MAX];
	int nall = location_lookup(o.aor, all, LOOKUP_MAX);
	bool epoch_live = false;
	for (int i = 0; i < nall; i++) {
		if (!same_instance(all[i]->instance, bare))
			continue;
		epoch_live |= all[i]->reg_epoch == o.epoch;
		if (*n < max)
			out[(*n)++] = all[i];
	}
	if (*temporary && !epoch_live) {
		*n = 0; /* its registration has ended: the temp-gruu with it (RFC 5627 §6) */
		return GRUU_NOBODY;
	}
	if (*n)
		return GRUU_FOUND;
	return location_aor_state(o.aor) == AOR_UNKNOWN ? GRUU_NOBODY : GRUU_OFFLINE;
}

bool gruu_is_one(const url_t *url)
{
	char gr[8];
	bool has_value;
	return url && gr_param(url, gr, sizeof(gr), &has_value);
}
