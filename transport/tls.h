/** @file tls.h  What every TLS user shares: the settings (for wss and tls listeners and the
 *  connections we open), the protocol versions and ciphers, and loading and checking the
 *  certificate pair. */
#ifndef SIPEDGE_TLS_H
#define SIPEDGE_TLS_H
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/config.h"

/* Forward secrecy and AEAD ciphers only; the same list on every side of every TLS we speak. */
#define TLS_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:!aNULL:!MD5:!DSS"
/* TLS 1.2 or later only (listeners: lws takes these as options to set). */
#define TLS_OPTIONS (SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1)

struct tls_config {
	char *tls_cert, *tls_key, *tls_ca;
	bool tls_verify_peer;	/* outbound: the server's certificate must verify (tls.ca or system CAs) */
	bool tls_verify_client; /* tls listeners: clients must present a certificate signed by tls.ca */
};

extern const struct setting tls_settings[];
/** Logs each problem with the tls settings and returns how many there are. */
int tls_config_check(const struct tls_config *cfg);

/** Load a certificate chain and its key into ctx; false with OpenSSL's reason in err. */
bool tls_load_pair(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t n);
/** SIGHUP, first step: load tls.cert and tls.key into a scratch context and check that they
 *  match. 0 if they do, and only then do ws_tls_reload and stream_tls_reload put the pair in;
 *  -1 if they do not (logged: the pair in force stays); 1 if listen has no wss or tls listener. */
int tls_check_pair(const struct tls_config *cfg, const struct listen_spec *listen, int n_listen);

#endif
