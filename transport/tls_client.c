/** @file tls_client.c  TLS on the connections we open: OpenSSL over memory BIOs (tls_client.h).
 *
 * A session's SSL reads the network's bytes from one memory BIO and writes its records into
 * another; stream.c feeds the first from the socket and moves the second into its send queue.
 * The SSL owns both BIOs, and holds a reference to the context it was made from, so a reload
 * never pulls a context from under an open connection.
 */
#include "transport/tls_client.h"
#include "base/log.h"
#include "base/metrics.h"
#include "transport/flow.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>

struct tls_session {
	SSL *ssl;	 /* owns the BIOs */
	BIO *rbio, *wbio; /* rbio: from the network, wbio: to the network */
};

static struct {
	const struct tls_config *cfg;
	SSL_CTX *ctx;
} T;

/* ---- the client context --------------------------------------------------------------------- */

static SSL_CTX *client_ctx(const struct tls_config *cfg)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_cipher_list(ctx, TLS_CIPHERS);
	const char *what = NULL;
	if (cfg->tls_verify_peer) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		/* Without tls.ca the system's CAs verify the network's certificates. */
		if (cfg->tls_ca[0] ? SSL_CTX_load_verify_locations(ctx, cfg->tls_ca, NULL) != 1
				   : SSL_CTX_set_default_verify_paths(ctx) != 1)
			what = "tls.ca";
	}
	/* Our certificate, for peers that ask for one (mutual TLS on trunks). */
	if (!what && cfg->tls_cert[0] && cfg->tls_key[0] &&
	    (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1 ||
	     SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1))
		what = "tls.cert/tls.key";
	if (what) {
		log_error("tls: cannot load %s: %s", what, ERR_reason_error_string(ERR_peek_last_error()));
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

int tls_client_start(const struct tls_config *cfg)
{
	T.cfg = cfg;
	T.ctx = client_ctx(cfg);
	return T.ctx ? 0 : -1;
}

bool tls_client_ready(void) { return T.ctx != NULL; }

int tls_client_reload(void)
{
	if (!T.ctx)
		return 0; /* not started */
	SSL_CTX *ctx = client_ctx(T.cfg);
	if (!ctx) {
		log_error("tls: connections we open keep the certificate and CAs in force");
		return -1;
	}
	/* Each open connection's SSL holds a reference to the old context. */
	SSL_CTX_free(T.ctx);
	T.ctx = ctx;
	if (T.cfg->tls_cert[0])
		log_notice("tls: connections we open: certificate reloaded from %s", T.cfg->tls_cert);
	else
		log_info("tls: connections we open: CAs reloaded");
	return 0;
}

void tls_client_stop(void)
{
	if (T.ctx)
		SSL_CTX_free(T.ctx);
	T.ctx = NULL;
}

void tls_client_clear_errors(void) { ERR_clear_error(); }

/* ---- sessions ------------------------------------------------------------------------------- */

struct tls_session *tls_session_new(void)
{
	struct tls_session *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->ssl = SSL_new(T.ctx);
	BIO *r = BIO_new(BIO_s_mem()), *w = BIO_new(BIO_s_mem());
	if (!s->ssl || !r || !w) {
		BIO_free(r);
		BIO_free(w);
		tls_session_free(s);
		return NULL;
	}
	SSL_set_bio(s->ssl, r, w); /* the SSL owns them now */
	s->rbio = r;
	s->wbio = w;
	SSL_set_connect_state(s->ssl);
	return s;
}

void tls_session_free(struct tls_session *s)
{
	if (!s)
		return;
	if (s->ssl)
		SSL_free(s->ssl); /* and its BIOs */
	free(s);
}

bool tls_session_up(const struct tls_session *s) { return SSL_is_init_finished(s->ssl); }

int tls_session_flush(struct tls_session *s, struct sendq *out)
{
	char buf[16384];
	int n;
	while ((n = BIO_read(s->wbio, buf, sizeof(buf))) > 0)
		if (sendq_add(out, buf, (size_t)n) != 0)
			return -1;
	return 0;
}

int tls_session_handshake(struct tls_session *s, struct sendq *out, const struct flow *f)
{
	int r = SSL_do_handshake(s->ssl);
	tls_session_flush(s, out);
	if (r == 1)
		return 1;
	int e = SSL_get_error(s->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	long v = SSL_get_verify_result(s->ssl);
	metrics_inc(M_TCP_CONNECT_FAILED);
	log_notice("tls: connection to %s failed: %s", f->peer_text,
		   v != X509_V_OK ? X509_verify_cert_error_string(v)
		   : ERR_peek_last_error() ? ERR_reason_error_string(ERR_peek_last_error())
					   : "handshake failed");
	ERR_clear_error();
	return -1;
}

int tls_session_feed(struct tls_session *s, const char *in, size_t len)
{
	return BIO_write(s->rbio, in, (int)len) == (int)len ? 0 : -1;
}

enum tls_read tls_session_read(struct tls_session *s, const struct flow *f,
			       bool (*deliver)(void *ctx, const char *data, size_t len), void *ctx)
{
	char buf[16384];
	int n = 0;
	bool more = true;
	while (more && (n = SSL_read(s->ssl, buf, sizeof(buf))) > 0)
		more = deliver(ctx, buf, (size_t)n);
	if (!more)
		return TLS_READ_MORE; /* the connection is closing: what is left unread does not matter */
	int e = SSL_get_error(s->ssl, n);
	if (e == SSL_ERROR_ZERO_RETURN)
		return TLS_READ_CLOSED;
	if (e != SSL_ERROR_WANT_READ) {
		log_notice("tls: flow %llu %s: %s: closing", (unsigned long long)f->id, f->peer_text,
			   ERR_reason_error_string(ERR_peek_last_error()));
		return TLS_READ_BROKEN;
	}
	return TLS_READ_MORE;
}

int tls_session_write(struct tls_session *s, const char *data, size_t len)
{
	/* A memory BIO takes everything: SSL_write completes at once. */
	if (SSL_write(s->ssl, data, (int)len) != (int)len) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

void tls_session_shutdown(struct tls_session *s) { SSL_shutdown(s->ssl); }
