/** @file self.h  Who we are: the domains we serve and the addresses we listen on.
 *
 * The app fills it at start; every room that must tell "for us" from "for someone else" (the
 * dispatcher, the registrar, the proxy, DNS) asks here instead of reading the configuration.
 */
#ifndef SIPEDGE_SELF_H
#define SIPEDGE_SELF_H
#include <stdbool.h>

#include "base/config.h"
#include "base/sipmsg.h"

/** Both are kept by pointer: they live as long as the daemon. */
void self_init(const struct string_list *domains, const struct listen_spec *listen, int n_listen);
/** host is one of our domains (case-insensitive). */
bool self_is_our_domain(const char *host);
/** url names this server: one of our domains, or a listener address (the port, when given,
 *  must be that listener's). */
bool self_is_us(const url_t *url);
/** The domain of ours that url stands for: its host when that is one of our domains; our first
 *  domain when the host is one of our listener addresses (how SIPp scenarios and PBXs address
 *  us: sip:alice@127.0.0.1:5060 is alice of our first domain); else NULL. */
const char *self_domain_of(const url_t *url);
/** Our first domain (for our own URIs on a wildcard listener). */
const char *self_domain(void);
/** The listeners, and how many there are. */
const struct listen_spec *self_listeners(int *n);
/** A listener of this kind exists. */
bool self_has_listener(enum transport_proto proto);

#endif
