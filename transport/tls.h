/** @file tls.h  The TLS settings shared by wss and tls listeners and the connections we open. */
#ifndef SIPEDGE_TLS_H
#define SIPEDGE_TLS_H
#include <stdbool.h>

#include "base/config.h"

struct tls_config {
	char *tls_cert, *tls_key, *tls_ca;
	bool tls_verify_peer;	/* outbound: the server's certificate must verify (tls.ca or system CAs) */
	bool tls_verify_client; /* tls listeners: clients must present a certificate signed by tls.ca */
};

extern const struct setting tls_settings[];
/** Logs each problem with the tls settings and returns how many there are. */
int tls_config_check(const struct tls_config *cfg);

#endif
