/** @file tls.c  The TLS settings (tls.h). */
#include "transport/tls.h"
#include "base/log.h"

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
