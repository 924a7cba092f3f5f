/** @file limits.c  Per-source limits: connections per IP, token buckets, temporary bans.
 *
 * One table of source addresses, hashed; an entry holds the address's token bucket, its ban
 * and its open connections. A sweep timer (twice a second) ends bans and forgets sources that
 * have nothing left to remember (no connection, no ban, a full bucket), so the table stays as
 * small as the set of recently busy sources. It is bounded: when it is full a new source is
 * not tracked (and so not limited) rather than evicting one that may be in a ban.
 */
#include "transport/limits.h"
#include "base/bytes.h"
#include "base/net.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#define HASH_SIZE 4096
#define MAX_SOURCES 65536
#define SWEEP_MS 500

struct source {
	struct source *next;
	int family;
	unsigned char addr[16];
	double tokens;
	uint64_t refill_ms;    /* when tokens was last brought up to date */
	uint64_t banned_until; /* ms of uv_now; 0 = not banned */
	unsigned conns;
};

static struct {
	bool on;
	const struct limits_config *cfg;
	const struct string_list *trusted_list;
	struct source *hash[HASH_SIZE];
	unsigned n_sources, n_banned;
	struct cidr trusted[CONFIG_MAX_LIST];
	int n_trusted;
	uv_timer_t sweep;
	bool table_full_logged;
} L;

/* ---- addresses ---------------------------------------------------------------------------- */

/** The address of sa as family + bytes; IPv4-mapped IPv6 counts as the IPv4 address. */
static bool addr_key(const struct sockaddr *sa, int *family, unsigned char out[16])
{
	memset(out, 0, 16);
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		*family = AF_INET;
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			*family = AF_INET;
			memcpy(out, &a6->s6_addr[12], 4);
		} else {
			*family = AF_INET6;
			memcpy(out, a6, 16);
		}
		return true;
	}
	return false;
}

static unsigned addr_hash(int family, const unsigned char a[16])
{
	/* FNV-1a: sources are chosen by whoever sends, but bucket chains only cost time, and the
	 * table is bounded. */
	return fnv1a(FNV1A_INIT ^ (uint32_t)family, a, 16) % HASH_SIZE;
}

static void addr_text(const struct source *s, char *out, size_t n)
{
	if (!inet_ntop(s->family, s->addr, out, (socklen_t)n))
		snprintf(out, n, "?");
}

static bool trusted(const struct sockaddr *sa)
{
	for (int i = 0; i < L.n_trusted; i++)
		if (net_cidr_match(&L.trusted[i], sa))
			return true;
	return false;
}

static uint64_t now_ms(void) { return uv_now(loop_get()); }

/* ---- the table ---------------------------------------------------------------------------- */

static double burst(void) { return (double)L.cfg->limit_burst; }

static struct source *source_find(const struct sockaddr *sa, bool create)
{
	int family;
	unsigned char a[16];
	if (!addr_key(sa, &family, a))
		return NULL;
	unsigned h = addr_hash(family, a);
	for (struct source *s = L.hash[h]; s; s = s->next)
		if (s->family == family && !memcmp(s->addr, a, 16))
			return s;
	if (!create)
		return NULL;
	if (L.n_sources >= MAX_SOURCES) {
		if (!L.table_full_logged)
			log_warn("limits: %u sources tracked, the most there may be: new sources go unlimited",
				 L.n_sources);
		L.table_full_logged = true;
		return NULL;
	}
	struct source *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->family = family;
	memcpy(s->addr, a, 16);
	s->tokens = burst();
	s->refill_ms = now_ms();
	s->next = L.hash[h];
	L.hash[h] = s;
	L.n_sources++;
	return s;
}

static void refill(struct source *s, uint64_t now)
{
	if (now > s->refill_ms) {
		s->tokens += (double)(now - s->refill_ms) * L.cfg->limit_rps / 1000.0;
		if (s->tokens > burst())
			s->tokens = burst();
	}
	s->refill_ms = now;
}

static void ban_start(struct source *s, uint64_t now)
{
	s->banned_until = now + (uint64_t)L.cfg->limit_ban_seconds * 1000;
	L.n_banned++;
	metrics_inc(M_LIMITS_BANS);
	metrics_set(M_LIMITS_BANNED, L.n_banned);
	char text[INET6_ADDRSTRLEN];
	addr_text(s, text, sizeof(text));
	log_notice("limits: %s sent more than %d requests/s (burst %d): banned for %d s",
		   text, L.cfg->limit_rps, L.cfg->limit_burst, L.cfg->limit_ban_seconds);
}

static void ban_end(struct source *s, uint64_t now)
{
	s->banned_until = 0;
	s->tokens = burst();
	s->refill_ms = now;
	L.n_banned--;
	metrics_set(M_LIMITS_BANNED, L.n_banned);
	char text[INET6_ADDRSTRLEN];
	addr_text(s, text, sizeof(text));
	log_notice("limits: ban on %s ended", text);
}

static void on_sweep(uv_timer_t *t)
{
	uint64_t now = now_ms();
	for (unsigned h = 0; h < HASH_SIZE; h++) {
		struct source **pp = &L.hash[h];
		while (*pp) {
			struct source *s = *pp;
			if (s->banned_until && now >= s->banned_until)
				ban_end(s, now);
			if (!s->banned_until)
				refill(s, now);
			if (!s->banned_until && !s->conns && s->tokens >= burst()) {
				*pp = s->next;
				free(s);
				L.n_sources--;
				continue;
			}
			pp = &s->next;
		}
	}
	if (L.n_sources < MAX_SOURCES)
		L.table_full_logged = false;
}

static void parse_trusted(void)
{
	L.n_trusted = 0;
	for (int i = 0; i < L.trusted_list->count && L.n_trusted < CONFIG_MAX_LIST; i++)
		if (net_cidr_parse(L.trusted_list->item[i], &L.trusted[L.n_trusted]) == 0)
			L.n_trusted++;
}

/* ---- public ------------------------------------------------------------------------------- */

const struct setting limits_settings[] = {
	SETTING_INT("limits.max_connections_per_ip", struct limits_config, limit_conns_per_ip, 20),
	SETTING_INT("limits.requests_per_second", struct limits_config, limit_rps, 20),
	SETTING_INT("limits.burst", struct limits_config, limit_burst, 100),
	SETTING_INT("limits.ban_seconds", struct limits_config, limit_ban_seconds, 60),
	SETTING_STRING("limits.ban_action", struct limits_config, limit_ban_action, "reply"),
	SETTING_INT("limits.max_header_size", struct limits_config, limit_header_bytes, 32768),
	SETTING_END,
};

int limits_config_check(const struct limits_config *cfg)
{
	int problems = 0;
	if (cfg->limit_rps < 0 || cfg->limit_conns_per_ip < 0) {
		log_error("config: limits.requests_per_second and limits.max_connections_per_ip must be "
			  "0 (off) or positive");
		problems++;
	}
	if (cfg->limit_rps > 0 && cfg->limit_burst < 1) {
		log_error("config: limits.burst must be at least 1");
		problems++;
	}
	if (cfg->limit_ban_seconds < 1 || cfg->limit_ban_seconds > 86400) {
		log_error("config: limits.ban_seconds must be 1..86400");
		problems++;
	}
	if (cfg->limit_header_bytes < 1024) {
		log_error("config: limits.max_header_size must be at least 1024 bytes");
		problems++;
	}
	if (!cfg->limit_ban_action || (strcasecmp(cfg->limit_ban_action, "reply") != 0 &&
				       strcasecmp(cfg->limit_ban_action, "drop") != 0)) {
		log_error("config: limits.ban_action must be \"reply\" or \"drop\"");
		problems++;
	}
	return problems;
}

int limits_init(const struct limits_config *cfg, const struct string_list *trusted)
{
	memset(&L, 0, sizeof(L));
	L.cfg = cfg;
	L.trusted_list = trusted;
	parse_trusted();
	uv_timer_init(loop_get(), &L.sweep);
	uv_timer_start(&L.sweep, on_sweep, SWEEP_MS, SWEEP_MS);
	/* Bookkeeping only: it must not keep the loop alive at shutdown. */
	uv_unref((uv_handle_t *)&L.sweep);
	L.on = true;
	metrics_set(M_LIMITS_BANNED, 0);
	if (cfg->limit_rps > 0)
		log_info("limits: %d requests/s per source (burst %d), then banned %d s (%s)%s",
			 cfg->limit_rps, cfg->limit_burst, cfg->limit_ban_seconds, cfg->limit_ban_action,
			 L.n_trusted ? "; trusted peers exempt" : "");
	else
		log_info("limits: no request rate limit (limits.requests_per_second = 0)");
	if (cfg->limit_conns_per_ip > 0)
		log_info("limits: at most %d connections per source address", cfg->limit_conns_per_ip);
	return 0;
}

void limits_shutdown(void)
{
	if (!L.on)
		return;
	uv_timer_stop(&L.sweep);
	uv_close((uv_handle_t *)&L.sweep, NULL);
	for (unsigned h = 0; h < HASH_SIZE; h++) {
		while (L.hash[h]) {
			struct source *s = L.hash[h];
			L.hash[h] = s->next;
			free(s);
		}
	}
	L.n_sources = L.n_banned = 0;
	L.on = false;
}

enum limits_verdict limits_message(const struct sockaddr *peer)
{
	if (!L.on || L.cfg->limit_rps <= 0 || trusted(peer))
		return LIMITS_PASS;
	struct source *s = source_find(peer, true);
	if (!s)
		return LIMITS_PASS;
	uint64_t now = now_ms();
	if (s->banned_until && now >= s->banned_until)
		ban_end(s, now);
	if (!s->banned_until) {
		refill(s, now);
		if (s->tokens >= 1.0) {
			s->tokens -= 1.0;
			return LIMITS_PASS;
		}
		ban_start(s, now);
	}
	metrics_inc(M_LIMITS_REJECTED);
	return strcasecmp(L.cfg->limit_ban_action, "drop") == 0 ? LIMITS_DROP : LIMITS_REPLY;
}

int limits_ban_remaining(const struct sockaddr *peer)
{
	if (!L.on)
		return 0;
	struct source *s = source_find(peer, false);
	uint64_t now = now_ms();
	if (!s || !s->banned_until || now >= s->banned_until)
		return 0;
	return (int)((s->banned_until - now + 999) / 1000);
}

bool limits_conn_allowed(const struct sockaddr *peer, const char **why)
{
	*why = NULL;
	if (!L.on || trusted(peer))
		return true;
	if (limits_ban_remaining(peer) > 0) {
		*why = "source banned for too many requests";
		metrics_inc(M_LIMITS_REJECTED);
		return false;
	}
	if (L.cfg->limit_conns_per_ip <= 0)
		return true;
	struct source *s = source_find(peer, false);
	if (s && s->conns >= (unsigned)L.cfg->limit_conns_per_ip) {
		*why = "too many connections from this address";
		metrics_inc(M_LIMITS_CONN_REFUSED);
		return false;
	}
	return true;
}

void limits_conn_opened(const struct sockaddr *peer)
{
	if (!L.on)
		return;
	struct source *s = source_find(peer, true);
	if (s)
		s->conns++;
}

void limits_conn_closed(const struct sockaddr *peer)
{
	if (!L.on)
		return;
	struct source *s = source_find(peer, false);
	if (s && s->conns)
		s->conns--;
}

unsigned limits_banned_count(void) { return L.n_banned; }

void limits_each_ban(limits_ban_fn fn, void *arg)
{
	if (!L.on)
		return;
	uint64_t now = now_ms();
	for (unsigned h = 0; h < HASH_SIZE; h++)
		for (struct source *s = L.hash[h]; s; s = s->next) {
			if (!s->banned_until || now >= s->banned_until)
				continue;
			char text[INET6_ADDRSTRLEN];
			addr_text(s, text, sizeof(text));
			fn(text, (int)((s->banned_until - now + 999) / 1000), arg);
		}
}

int limits_unban(const char *addr)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1)
		ss.ss_family = AF_INET;
	else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1)
		ss.ss_family = AF_INET6;
	else
		return -2;
	struct source *s = L.on ? source_find((struct sockaddr *)&ss, false) : NULL;
	if (!s || !s->banned_until)
		return -1;
	log_notice("limits: ban on %s lifted by the operator", addr);
	ban_end(s, now_ms());
	return 0;
}

void limits_reload(void)
{
	if (!L.on)
		return;
	parse_trusted();
	log_info("limits: %d requests/s per source (burst %d), ban %d s (%s), %d connections per source, "
		 "%d trusted block%s", L.cfg->limit_rps, L.cfg->limit_burst, L.cfg->limit_ban_seconds,
		 L.cfg->limit_ban_action, L.cfg->limit_conns_per_ip, L.n_trusted, L.n_trusted == 1 ? "" : "s");
}
