/** @file self.c  Who we are (self.h). */
#include "sip/self.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static struct {
	const struct string_list *domains;
	const struct listen_spec *listen;
	int n_listen;
} Me;

void self_init(const struct string_list *domains, const struct listen_spec *listen, int n_listen)
{
	Me.domains = domains;
	Me.listen = listen;
	Me.n_listen = n_listen;
}

bool self_is_our_domain(const char *host)
{
	return host && Me.domains && string_list_contains(Me.domains, host);
}

const char *self_domain(void)
{
	return Me.domains && Me.domains->count ? Me.domains->item[0] : "localhost";
}

bool self_is_us(const url_t *url)
{
	if (!url || !url->url_host)
		return false;
	if (self_is_our_domain(url->url_host))
		return true;
	/* Our listener addresses (with or without brackets for IPv6). */
	const char *host = url->url_host;
	size_t hlen = strlen(host);
	if (hlen > 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host++;
		hlen -= 2;
	}
	for (int i = 0; i < Me.n_listen; i++) {
		const struct listen_spec *l = &Me.listen[i];
		if (strlen(l->host) == hlen && strncasecmp(l->host, host, hlen) == 0) {
			int port = url->url_port ? atoi(url->url_port) : 0;
			if (!port || port == l->port)
				return true;
		}
	}
	return false;
}

const char *self_domain_of(const url_t *url)
{
	if (!url || !url->url_host || (url->url_type != url_sip && url->url_type != url_sips))
		return NULL;
	if (self_is_our_domain(url->url_host))
		return url->url_host;
	return self_is_us(url) ? self_domain() : NULL;
}

const struct listen_spec *self_listeners(int *n)
{
	*n = Me.n_listen;
	return Me.listen;
}

bool self_has_listener(enum transport_proto proto)
{
	for (int i = 0; i < Me.n_listen; i++)
		if (Me.listen[i].proto == proto)
			return true;
	return false;
}
