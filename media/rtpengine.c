/** @file rtpengine.c  The set of rtpengines: order, health, failover, metrics (rtpengine.h). */
#include "media/rtpengine.h"
#include "base/log.h"
#include "base/metrics.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct engine {
	char name[96];
	struct sockaddr_storage addr;
	struct ng_client *ng;
	struct ng_req *ping;
	bool up, pinged; /* pinged: its first ping has been answered or timed out */
	uint64_t requests, errors, timeouts, latency_us, replies;
};

struct rtpengine_req {
	int pin, index;
	bool tried[RTPENGINE_MAX];
	char command[16];
	char *dict;
	size_t len;
	struct ng_req *ng;
	rtpengine_cb cb;
	void *arg;
	struct rtpengine_req *prev, *next; /* every request in flight, for shutdown */
};

static struct rtpengine_req *reqs;
static struct engine engines[RTPENGINE_MAX];
static int n_engines;
static enum media_relay relay = MEDIA_RELAY_NEVER;
static uv_timer_t ping_timer;
static bool running;

static int parse_relay(const char *text, enum media_relay *out)
{
	static const char *const names[] = {"never", "cross", "always"};
	for (int i = 0; i < 3; i++)
		if (text && strcmp(text, names[i]) == 0) {
			*out = (enum media_relay)i;
			return 0;
		}
	return -1;
}

static int parse_engine(const char *text, struct sockaddr_storage *out)
{
	struct listen_spec spec;
	if (config_parse_listen(text, &spec) != 0 || spec.proto != PROTO_UDP || spec.port == 0)
		return -1;
	memset(out, 0, sizeof(*out));
	if (uv_ip4_addr(spec.host, spec.port, (struct sockaddr_in *)out) == 0)
		return 0;
	return uv_ip6_addr(spec.host, spec.port, (struct sockaddr_in6 *)out) == 0 ? 0 : -1;
}

const struct setting media_settings[] = {
	SETTING_LIST("media.rtpengine", struct media_config, rtpengine),
	SETTING_STRING("media.relay", struct media_config, relay, "cross"),
	SETTING_STRING("media.on_failure", struct media_config, on_failure, "refuse"),
	SETTING_INT("media.ping_interval", struct media_config, ping_interval, 10),
	SETTING_INT("media.ng_timeout", struct media_config, ng_timeout, 1000),
	SETTING_END,
};

int media_config_check(const struct media_config *cfg)
{
	int problems = 0;
	enum media_relay r;
	if (parse_relay(cfg->relay, &r) != 0) {
		log_error("config: media.relay must be \"cross\", \"always\" or \"never\", not '%s'",
			  cfg->relay ? cfg->relay : "");
		problems++;
	}
	if (!cfg->on_failure || (strcmp(cfg->on_failure, "refuse") != 0 &&
				       strcmp(cfg->on_failure, "unanchored") != 0)) {
		log_error("config: media.on_failure must be \"refuse\" or \"unanchored\", not '%s'",
			  cfg->on_failure ? cfg->on_failure : "");
		problems++;
	}
	if (cfg->rtpengine.count > RTPENGINE_MAX) {
		log_error("config: media.rtpengine holds at most %d entries", RTPENGINE_MAX);
		problems++;
	}
	for (int i = 0; i < cfg->rtpengine.count; i++) {
		struct sockaddr_storage a;
		if (parse_engine(cfg->rtpengine.item[i], &a) != 0) {
			log_error("config: media.rtpengine[%d] '%s' is not udp:HOST:PORT (a numeric address)",
				  i, cfg->rtpengine.item[i]);
			problems++;
		}
	}
	if (cfg->ping_interval < 1 || cfg->ping_interval > 3600) {
		log_error("config: media.ping_interval must be 1..3600 seconds");
		problems++;
	}
	if (cfg->ng_timeout < 30 || cfg->ng_timeout > 30000) {
		log_error("config: media.ng_timeout must be 30..30000 ms");
		problems++;
	}
	return problems;
}

static void count_up(void)
{
	int up = 0;
	for (int i = 0; i < n_engines; i++)
		up += engines[i].up;
	metrics_set(M_MEDIA_RTPENGINES_UP, up);
}

static void set_up(struct engine *e, bool up, const char *why)
{
	if (e->up != up || !e->pinged) {
		if (up)
			log_notice("rtpengine %s is up", e->name);
		else
			log_warn("rtpengine %s is down (%s)", e->name, why);
	}
	e->up = up;
	e->pinged = true;
	count_up();
}

/* One answered or unanswered request, for the per-rtpengine metrics. */
static void account(struct engine *e, enum ng_status status, const struct bencode *reply, uint64_t latency)
{
	if (status == NG_REPLY) {
		e->replies++;
		e->latency_us += latency;
		if (bencode_is_str(bencode_get(reply, "result"), "error")) {
			e->errors++;
			metrics_inc(M_MEDIA_NG_ERRORS);
		}
	} else {
		e->timeouts++;
		metrics_inc(M_MEDIA_NG_TIMEOUTS);
	}
}

static void on_pong(void *arg, enum ng_status status, const struct bencode *reply, uint64_t latency)
{
	struct engine *e = arg;
	e->ping = NULL;
	account(e, status, reply, latency);
	if (status == NG_REPLY && bencode_is_str(bencode_get(reply, "result"), "pong"))
		set_up(e, true, NULL);
	else
		set_up(e, false, status == NG_REPLY ? "ping not answered pong" : "no answer to ping");
}

static void ping_all(uv_timer_t *t)
{
	static const char ping[] = "d7:command4:pinge";
	for (int i = 0; i < n_engines; i++) {
		struct engine *e = &engines[i];
		if (e->ping)
			continue; /* the last one is still out */
		e->requests++;
		metrics_inc(M_MEDIA_NG_REQUESTS);
		e->ping = ng_send(e->ng, ping, sizeof(ping) - 1, on_pong, e);
	}
}

/* sipedge_rtpengine_*{rtpengine="udp:..."}: one line per configured rtpengine. */
/* snprintf at buf + off, as much as fits of size; the length the text needs. */
static size_t put(char *buf, size_t size, size_t off, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static size_t put(char *buf, size_t size, size_t off, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = off < size ? vsnprintf(buf + off, size - off, fmt, ap) : vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	return n > 0 ? (size_t)n : 0;
}

/* The per-rtpengine metrics (metrics_renderer): the length they need, written as far as fits. */
static size_t render(char *buf, size_t size)
{
	static const struct {
		const char *name, *type, *help;
	} fam[] = {
		{"sipedge_rtpengine_up", "gauge", "1 when this rtpengine answers its NG ping"},
		{"sipedge_rtpengine_requests_total", "counter", "NG requests sent to this rtpengine"},
		{"sipedge_rtpengine_errors_total", "counter", "NG requests this rtpengine answered with result error"},
		{"sipedge_rtpengine_timeouts_total", "counter", "NG requests this rtpengine did not answer"},
		{"sipedge_rtpengine_latency_seconds_sum", "counter", "Total time this rtpengine took to answer"},
		{"sipedge_rtpengine_latency_seconds_count", "counter", "NG replies from this rtpengine"},
	};
	size_t off = 0;
	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]) && n_engines; f++) {
		off += put(buf, size, off, "# HELP %s %s\n# TYPE %s %s\n", fam[f].name, fam[f].help, fam[f].name,
			   fam[f].type);
		for (int i = 0; i < n_engines; i++) {
			const struct engine *e = &engines[i];
			if (f == 4)
				off += put(buf, size, off, "%s{rtpengine=\"%s\"} %.6f\n", fam[f].name, e->name,
					   (double)e->latency_us / 1e6);
			else
				off += put(buf, size, off, "%s{rtpengine=\"%s\"} %" PRIu64 "\n", fam[f].name, e->name,
					   f == 0	? (uint64_t)e->up
					   : f == 1 ? e->requests
					   : f == 2 ? e->errors
					   : f == 3 ? e->timeouts
						    : e->replies);
		}
	}
	return off;
}

int rtpengine_init(uv_loop_t *loop, const struct media_config *cfg)
{
	n_engines = 0;
	relay = MEDIA_RELAY_NEVER;
	if (cfg->rtpengine.count == 0)
		return 0;
	if (parse_relay(cfg->relay, &relay) != 0)
		return -1;
	for (int i = 0; i < cfg->rtpengine.count && i < RTPENGINE_MAX; i++) {
		struct engine *e = &engines[n_engines];
		memset(e, 0, sizeof(*e));
		snprintf(e->name, sizeof(e->name), "%s", cfg->rtpengine.item[i]);
		if (parse_engine(e->name, &e->addr) != 0)
			return -1;
		e->ng = ng_client_new(loop, (struct sockaddr *)&e->addr, cfg->ng_timeout);
		if (!e->ng)
			return -1;
		e->up = true; /* until its first ping says otherwise: a call at start-up is tried */
		n_engines++;
	}
	metrics_add_renderer(render);
	count_up();
	uv_timer_init(loop, &ping_timer);
	uv_timer_start(&ping_timer, ping_all, 0, (uint64_t)cfg->ping_interval * 1000);
	running = true;
	log_notice("media: %d rtpengine%s, relay %s", n_engines, n_engines > 1 ? "s" : "",
		   cfg->relay);
	return 0;
}

void rtpengine_shutdown(void)
{
	if (running) {
		uv_timer_stop(&ping_timer);
		uv_close((uv_handle_t *)&ping_timer, NULL);
		running = false;
	}
	metrics_remove_renderer(render);
	while (reqs)
		rtpengine_cancel(reqs);
	for (int i = 0; i < n_engines; i++) {
		ng_client_free(engines[i].ng); /* cancels the ping and every request */
		engines[i].ng = NULL;
		engines[i].ping = NULL;
	}
	n_engines = 0;
	relay = MEDIA_RELAY_NEVER;
}

int rtpengine_count(void) { return n_engines; }
const char *rtpengine_name(int index) { return index >= 0 && index < n_engines ? engines[index].name : "none"; }
bool rtpengine_is_up(int index) { return index >= 0 && index < n_engines && engines[index].up; }
enum media_relay rtpengine_relay(void) { return n_engines ? relay : MEDIA_RELAY_NEVER; }

bool media_relay_wanted(enum media_relay policy, bool caller_webrtc, bool callee_webrtc)
{
	switch (policy) {
	case MEDIA_RELAY_ALWAYS: return true;
	case MEDIA_RELAY_CROSS: return caller_webrtc != callee_webrtc;
	default: return false;
	}
}

/* The next rtpengine to try: the first one up not tried yet, else the first not tried at all
 * (a ping may be stale: trying a "down" one costs one timeout, refusing the call costs more). */
static int pick(struct rtpengine_req *r)
{
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < n_engines; i++)
			if (!r->tried[i] && (pass == 1 || engines[i].up))
				return i;
	return -1;
}

static void req_free(struct rtpengine_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	free(r->dict);
	free(r);
}

static int send_to(struct rtpengine_req *r, int index);

static void on_reply(void *arg, enum ng_status status, const struct bencode *reply, uint64_t latency)
{
	struct rtpengine_req *r = arg;
	struct engine *e = &engines[r->index];
	r->ng = NULL;
	account(e, status, reply, latency);
	if (status == NG_REPLY) {
		set_up(e, true, NULL);
		log_debug("rtpengine %s: %s answered in %" PRIu64 " us", e->name, r->command, latency);
	} else {
		set_up(e, false, "no answer to a request");
		log_warn("rtpengine %s did not answer %s within its timeout", e->name, r->command);
		int next = r->pin >= 0 ? -1 : pick(r);
		if (next >= 0) {
			metrics_inc(M_MEDIA_FAILOVER);
			log_notice("rtpengine: %s moves on to %s", r->command, engines[next].name);
			if (send_to(r, next) == 0)
				return;
		}
	}
	rtpengine_cb cb = r->cb;
	void *cb_arg = r->arg;
	int index = r->index;
	req_free(r);
	cb(cb_arg, index, status, reply);
}

static int send_to(struct rtpengine_req *r, int index)
{
	r->index = index;
	r->tried[index] = true;
	engines[index].requests++;
	metrics_inc(M_MEDIA_NG_REQUESTS);
	r->ng = ng_send(engines[index].ng, r->dict, r->len, on_reply, r);
	return r->ng ? 0 : -1;
}

struct rtpengine_req *rtpengine_request(int pin, const char *command, const char *dict, size_t len,
					rtpengine_cb cb, void *arg)
{
	if (n_engines == 0 || pin >= n_engines)
		return NULL;
	struct rtpengine_req *r = calloc(1, sizeof(*r));
	if (!r || !(r->dict = malloc(len))) {
		free(r);
		return NULL;
	}
	memcpy(r->dict, dict, len);
	r->len = len;
	r->pin = pin;
	r->cb = cb;
	r->arg = arg;
	snprintf(r->command, sizeof(r->command), "%s", command);
	r->next = reqs;
	if (reqs)
		reqs->prev = r;
	reqs = r;
	int first = pin >= 0 ? pin : pick(r);
	if (first < 0 || send_to(r, first) != 0) {
		req_free(r);
		return NULL;
	}
	return r;
}

void rtpengine_cancel(struct rtpengine_req *r)
{
	if (!r)
		return;
	ng_cancel(r->ng);
	req_free(r);
}
