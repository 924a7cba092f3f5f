/** @file tls.c  The TLS settings, and loading and checking the certificate pair (tls.h). */
#include "transport/tls.h"
#include "base/log.h"

#include <openssl/err.h>

const struct setting tls_settings[] = {
	SETTING_STRING("tls.cert", struct tls_config, tls_cert, ""),
	SETTING_STRING("tls.key", struct tls_config, tls_key, ""),
	SETTING_STRING("tls.ca", struct tls_config, tls_ca, ""),
	SETTING_BOOL("tls.verify_peer", struct tls_config, tls_verify_peer, true),
	SETTING_BOOL("tls.verify_client", struct tls_config, tls_verify_client, false),
	SETTING_END,
};

int tls_config_check(const struct tls_config *cfg)
{
	if (cfg->tls_verify_client && !cfg->tls_ca[0]) {
		log_error("config: tls.verify_client needs tls.ca (the CA that signs client certificates)");
		return 1;
	}
	return 0;
}

bool tls_load_pair(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t n)
{
	ERR_clear_error();
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) == 1 &&
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 && SSL_CTX_check_private_key(ctx) == 1)
		return true;
	ERR_error_string_n(ERR_peek_last_error(), err, n);
	ERR_clear_error();
	return false;
}

int tls_check_pair(const struct tls_config *cfg, const struct listen_spec *listen, int n_listen)
{
	bool any = false;
	for (int i = 0; i < n_listen; i++)
		if (listen[i].proto == PROTO_WSS || listen[i].proto == PROTO_TLS)
			any = true;
	if (!any)
		return 1; /* nothing to reload */
	/* Try the pair in a scratch context first: a half-loaded pair (new certificate, old key)
	 * must never reach the listeners. */
	char err[256] = "";
	SSL_CTX *probe = SSL_CTX_new(TLS_server_method());
	bool ok = probe && tls_load_pair(probe, cfg->tls_cert, cfg->tls_key, err, sizeof(err));
	if (probe)
		SSL_CTX_free(probe);
	if (!ok) {
		log_error("tls: cannot reload %s / %s (%s): keeping the certificate in force", cfg->tls_cert,
			  cfg->tls_key, err[0] ? err : "out of memory");
		return -1;
	}
	return 0;
}
