/** @file resolve.c  RFC 3263 §4 server location: NAPTR, SRV, A/AAAA with sresolv on libuv.
 *
 * sofia-sip's resolver does the DNS (packets, cache, retransmissions); this file gives it the
 * loop: each resolver socket gets a uv_poll, its retransmission timer a uv_timer. A lookup is a
 * small state machine that asks one question at a time:
 *   port in the URI           → A, AAAA of the host
 *   transport= in the URI     → SRV _sip._udp (…) of the host → A, AAAA of each target
 *   neither                   → NAPTR → SRV names of the transports we speak → as above
 * and falls back to the host's A/AAAA at the default port when there is no SRV (§4.2).
 */
#define SRES_CONTEXT_T struct resolve_job
#define SRES_ASYNC_T struct resolve_loop
#include "sip/resolve.h"
#include "sip/self.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sofia-resolv/sres.h>
#include <sofia-resolv/sres_async.h>
#include <sofia-resolv/sres_record.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef INVALID_SOCKET
#define INVALID_SOCKET ((sres_socket_t)-1) /* as sresolv says "no socket" on POSIX */
#endif
#define MAX_SOCKETS 8
#define NAME_LEN 256

enum job_state { JOB_NAPTR, JOB_SRV, JOB_ADDR };

struct name_port {
	char name[NAME_LEN];
	uint16_t port;
	enum transport_proto proto;
};

struct resolve_job {
	enum job_state state;
	char host[NAME_LEN];
	bool sips;
	sres_query_t *query; /* the question under way */
	struct name_port srv[RESOLVE_MAX_TARGETS]; /* SRV names to ask, in NAPTR order */
	int n_srv, i_srv;
	struct name_port hosts[RESOLVE_MAX_TARGETS]; /* hosts to ask A/AAAA of, in SRV order */
	int n_hosts, i_host;
	bool aaaa; /* asking AAAA (after A) of hosts[i_host] */
	struct resolve_target found[RESOLVE_MAX_TARGETS];
	int n_found;
	uint32_t ttl;
	resolve_done_fn done;
	void *arg;
	struct resolve_job *next, *prev;
};

struct resolve_loop {
	sres_resolver_t *res;
	struct sock {
		uv_poll_t poll;
		sres_socket_t fd;
		bool open;
	} * socks[MAX_SOCKETS];
	uv_timer_t timer;
	bool timer_open;
	struct resolve_job *jobs;
};

static struct resolve_loop R;

/* ---- the resolver on the loop ---- */

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct sock *s = h->data;
	if (!R.res)
		return;
	if (status < 0) {
		/* An ICMP error queued on the socket (IP_RECVERR): sresolv reads it and tries another
		 * server. libuv stopped watching on the error; the socket stays in use. */
		sres_resolver_error(R.res, s->fd);
		uv_poll_start(&s->poll, UV_READABLE, on_poll);
	} else if (events & UV_READABLE)
		sres_resolver_receive(R.res, s->fd);
}

static void on_poll_closed(uv_handle_t *h) { free(h->data); }

static void sock_close(int i)
{
	struct sock *s = R.socks[i];
	R.socks[i] = NULL;
	uv_poll_stop(&s->poll);
	uv_close((uv_handle_t *)&s->poll, on_poll_closed);
}

/** sresolv opened or closed a socket: watch it on the loop. */
static int on_socket_update(struct resolve_loop *rl, sres_socket_t new_fd, sres_socket_t old_fd)
{
	if (old_fd != INVALID_SOCKET)
		for (int i = 0; i < MAX_SOCKETS; i++)
			if (rl->socks[i] && rl->socks[i]->fd == old_fd)
				sock_close(i);
	if (new_fd == INVALID_SOCKET)
		return 0;
	for (int i = 0; i < MAX_SOCKETS; i++) {
		if (rl->socks[i])
			continue;
		struct sock *s = calloc(1, sizeof(*s));
		if (!s || uv_poll_init_socket(loop_get(), &s->poll, new_fd) != 0) {
			free(s);
			return -1;
		}
		s->fd = new_fd;
		s->poll.data = s;
		rl->socks[i] = s;
		uv_poll_start(&s->poll, UV_READABLE, on_poll);
		return 0;
	}
	return -1;
}

static void on_timer(uv_timer_t *h)
{
	if (R.res)
		sres_resolver_timer(R.res, -1);
}

/** sresolv wants sres_resolver_timer called after interval ms (retransmissions, timeouts). */
static int on_schedule(struct resolve_loop *rl, unsigned long interval)
{
	if (!rl->timer_open)
		return -1;
	if (interval == 0)
		uv_timer_stop(&rl->timer);
	else
		uv_timer_start(&rl->timer, on_timer, interval, 0);
	return 0;
}

int resolve_init(const char *resolv_conf)
{
	if (R.res)
		return 0;
	R.res = sres_resolver_new(resolv_conf && *resolv_conf ? resolv_conf : NULL);
	if (!R.res) {
		log_error("resolve: cannot create the DNS resolver from %s",
			  resolv_conf && *resolv_conf ? resolv_conf : "/etc/resolv.conf");
		return -1;
	}
	uv_timer_init(loop_get(), &R.timer);
	R.timer_open = true;
	sres_resolver_set_async(R.res, on_socket_update, &R, 0);
	sres_resolver_set_timer_cb(R.res, on_schedule, &R);
	return 0;
}

/* ---- lookups ---- */

static void job_free(struct resolve_job *job)
{
	if (job->prev)
		job->prev->next = job->next;
	else
		R.jobs = job->next;
	if (job->next)
		job->next->prev = job->prev;
	free(job);
}

void resolve_shutdown(void)
{
	while (R.jobs) {
		if (R.jobs->query)
			sres_query_bind(R.jobs->query, NULL, NULL);
		job_free(R.jobs);
	}
	if (!R.res)
		return;
	sres_resolver_set_async(R.res, NULL, NULL, 0);
	sres_resolver_set_timer_cb(R.res, NULL, NULL);
	for (int i = 0; i < MAX_SOCKETS; i++)
		if (R.socks[i])
			sock_close(i);
	sres_resolver_unref(R.res);
	R.res = NULL;
	if (R.timer_open) {
		R.timer_open = false;
		uv_timer_stop(&R.timer);
		uv_close((uv_handle_t *)&R.timer, NULL);
	}
}

static uint16_t default_port(const struct resolve_job *job, enum transport_proto proto)
{
	return job->sips || proto == PROTO_TLS ? 5061 : 5060;
}

/** A transport we can send on: UDP always; TCP/TLS when a listener of that kind exists. */
static bool proto_usable(enum transport_proto proto)
{
	return proto == PROTO_UDP || self_has_listener(proto);
}

static void note_ttl(struct resolve_job *job, const sres_record_t *r)
{
	if (!job->ttl || r->sr_record->r_ttl < job->ttl)
		job->ttl = r->sr_record->r_ttl;
}

static void ask(struct resolve_job *job, uint16_t type, const char *name);
static void on_answer(struct resolve_job *job, sres_query_t *q, sres_record_t **answers);

static void finish(struct resolve_job *job)
{
	metrics_inc(job->n_found ? M_DNS_RESOLVED : M_DNS_FAILED);
	job->done(job->arg, job->found, job->n_found, job->ttl);
	job_free(job);
}

/** The next address question, or the end. */
static void next_addr(struct resolve_job *job)
{
	job->state = JOB_ADDR;
	if (job->i_host >= job->n_hosts) {
		finish(job);
		return;
	}
	ask(job, job->aaaa ? sres_type_aaaa : sres_type_a, job->hosts[job->i_host].name);
}

static void add_host(struct resolve_job *job, const char *name, uint16_t port, enum transport_proto proto)
{
	size_t len = strlen(name);
	if (job->n_hosts >= RESOLVE_MAX_TARGETS || len >= NAME_LEN)
		return;
	struct name_port *h = &job->hosts[job->n_hosts++];
	memcpy(h->name, name, len + 1);
	h->port = port;
	h->proto = proto;
}

/** The next SRV question, or on to addresses (§4.2: no SRV at all → the host itself). */
static void next_srv(struct resolve_job *job)
{
	job->state = JOB_SRV;
	if (job->i_srv < job->n_srv) {
		ask(job, sres_type_srv, job->srv[job->i_srv].name);
		return;
	}
	if (job->n_hosts == 0) {
		enum transport_proto proto = job->n_srv ? job->srv[0].proto : PROTO_UDP;
		add_host(job, job->host, default_port(job, proto), proto);
	}
	next_addr(job);
}

static void add_srv(struct resolve_job *job, const char *name, enum transport_proto proto)
{
	size_t len = strlen(name);
	if (job->n_srv >= RESOLVE_MAX_TARGETS || len >= NAME_LEN)
		return;
	struct name_port *s = &job->srv[job->n_srv++];
	memcpy(s->name, name, len + 1);
	s->proto = proto;
}

/** The SRV name RFC 3263 §4.1 derives for a transport when there is no NAPTR. */
static void add_default_srv(struct resolve_job *job, enum transport_proto proto)
{
	char name[NAME_LEN + 16];
	const char *prefix = proto == PROTO_TLS ? "_sips._tcp" : proto == PROTO_TCP ? "_sip._tcp" : "_sip._udp";
	snprintf(name, sizeof(name), "%s.%s", prefix, job->host);
	add_srv(job, name, proto);
}

static bool naptr_proto(const char *service, bool sips, enum transport_proto *proto)
{
	if (!service)
		return false;
	if (!sips && strcasecmp(service, "SIP+D2U") == 0)
		*proto = PROTO_UDP;
	else if (!sips && strcasecmp(service, "SIP+D2T") == 0)
		*proto = PROTO_TCP;
	else if (strcasecmp(service, "SIPS+D2T") == 0)
		*proto = PROTO_TLS;
	else
		return false;
	return true;
}

static void on_answer(struct resolve_job *job, sres_query_t *q, sres_record_t **answers)
{
	job->query = NULL;
	if (answers)
		sres_sort_answers(R.res, answers);
	for (int i = 0; answers && answers[i]; i++) {
		sres_record_t *r = answers[i];
		if (r->sr_record->r_status != 0)
			continue;
		uint16_t type = r->sr_record->r_type;
		if (job->state == JOB_NAPTR && type == sres_type_naptr) {
			/* §4.1: "s" records for a transport we speak; their replacement is the SRV name. */
			enum transport_proto proto;
			const sres_naptr_record_t *n = r->sr_naptr;
			if (n->na_flags && strcasecmp(n->na_flags, "s") == 0 && n->na_replace &&
			    naptr_proto(n->na_services, job->sips, &proto) && proto_usable(proto)) {
				add_srv(job, n->na_replace, proto);
				note_ttl(job, r);
			}
		} else if (job->state == JOB_SRV && type == sres_type_srv) {
			add_host(job, r->sr_srv->srv_target, r->sr_srv->srv_port, job->srv[job->i_srv].proto);
			note_ttl(job, r);
		} else if (job->state == JOB_ADDR && (type == sres_type_a || type == sres_type_aaaa) &&
			   job->n_found < RESOLVE_MAX_TARGETS) {
			struct resolve_target *t = &job->found[job->n_found++];
			const struct name_port *h = &job->hosts[job->i_host];
			memset(t, 0, sizeof(*t));
			t->proto = h->proto;
			if (type == sres_type_a) {
				struct sockaddr_in *a = (struct sockaddr_in *)&t->addr;
				a->sin_family = AF_INET;
				a->sin_port = htons(h->port);
				a->sin_addr = r->sr_a->a_addr;
			} else {
				struct sockaddr_in6 *a = (struct sockaddr_in6 *)&t->addr;
				a->sin6_family = AF_INET6;
				a->sin6_port = htons(h->port);
				memcpy(&a->sin6_addr, r->sr_aaaa->aaaa_addr.u6_addr, 16);
			}
			note_ttl(job, r);
		}
	}
	if (answers)
		sres_free_answers(R.res, answers);

	switch (job->state) {
	case JOB_NAPTR:
		if (job->n_srv == 0) /* §4.1: no usable NAPTR: the SRV of each transport we speak */
			add_default_srv(job, job->sips ? PROTO_TLS : PROTO_UDP);
		next_srv(job);
		break;
	case JOB_SRV:
		job->i_srv++;
		next_srv(job);
		break;
	case JOB_ADDR:
		if (!job->aaaa) {
			job->aaaa = true;
		} else {
			job->aaaa = false;
			job->i_host++;
		}
		next_addr(job);
		break;
	}
}

static void ask(struct resolve_job *job, uint16_t type, const char *name)
{
	log_debug("resolve: %s %s", type == sres_type_naptr ? "NAPTR" : type == sres_type_srv ? "SRV" :
				     type == sres_type_a ? "A" : "AAAA", name);
	metrics_inc(M_DNS_QUERIES);
	job->query = sres_query(R.res, on_answer, job, type, name);
	if (!job->query) /* could not even send: take it as no answer */
		on_answer(job, NULL, NULL);
}

int resolve_start(const url_t *url, resolve_done_fn done, void *arg)
{
	if (!R.res || !url || !url->url_host || strlen(url->url_host) >= NAME_LEN)
		return -1;
	struct resolve_job *job = calloc(1, sizeof(*job));
	if (!job)
		return -1;
	snprintf(job->host, sizeof(job->host), "%s", url->url_host);
	job->sips = url->url_type == url_sips;
	job->done = done;
	job->arg = arg;
	job->next = R.jobs;
	if (R.jobs)
		R.jobs->prev = job;
	R.jobs = job;

	char transport[16] = "";
	if (url->url_params)
		url_param(url->url_params, "transport", transport, sizeof(transport));
	enum transport_proto proto = job->sips ? PROTO_TLS : PROTO_UDP;
	if (strcasecmp(transport, "tcp") == 0)
		proto = job->sips ? PROTO_TLS : PROTO_TCP;
	else if (strcasecmp(transport, "tls") == 0)
		proto = PROTO_TLS;
	if (url->url_port && *url->url_port) {
		/* §4.2: an explicit port means plain address records. */
		add_host(job, job->host, (uint16_t)atoi(url->url_port), proto);
		next_addr(job);
	} else if (transport[0]) {
		add_default_srv(job, proto);
		next_srv(job);
	} else {
		job->state = JOB_NAPTR;
		ask(job, sres_type_naptr, job->host);
	}
	return 0;
}
