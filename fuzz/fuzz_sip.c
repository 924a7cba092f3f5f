/** @file fuzz_sip.c  libFuzzer target: SIP messages into dispatch_receive, as a transport hands
 *  them over, with the registrar, auth and the proxy running as in the daemon.
 *
 * An input is a one-byte header and then SIP messages separated by lines "%%":
 *
 *   HEADER MESSAGE [ "\n%%\n" MESSAGE ... ]
 *
 * HEADER bit 0 set: authentication off (--no-auth); else on, with users alice, bob and carol.
 * HEADER bits 1-3: how the far ends answer a request the proxy sends them (see answers[]).
 * Message i arrives on fake flow i % 3: 0 is WS from 127.0.0.1, 1 is WSS from [::1], 2 is TCP
 * from 127.0.0.2, a trusted peer. So a seed can register bob on flow 0 and call him from flow 1.
 * A flow's transport keeps nothing: it answers requests (after the message is handled, never
 * from inside the send) and checks that everything sipedge sends is SIP it can parse again.
 *
 * Between inputs every flow is destroyed (their bindings and branches go), every transaction
 * and proxy context is ended and the registrar's store is emptied, so an input's outcome does
 * not depend on the ones before it and memory stays bounded over millions of runs.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "app/app.h"
#include "app/dispatch.h"
#include "base/log.h"
#include "proxy/proxy.h"
#include "registrar/registrar.h"
#include "sip/txn.h"
#include "transport/flow.h"

#define N_FLOWS 3
#define MAX_MESSAGES 16	 /* messages per input */
#define MAX_PENDING 16	 /* answers waiting to be delivered */
#define MAX_DELIVERED 32 /* answers per input: an answer may cause another request */

static const char *const users_text =
	"alice:alice-password\n"
	"bob:bob-password\n"
	"carol:ha1:MD5=406e62d955786fccc41e32bd3d06ad4a:SHA-256="
	"c6f0b8cb3700abd822298b67c83634a89708ee25b9dbb0fc5cd0c5dd7beb030a\n";

/* How a far end answers each request sent to it: up to two responses (0 = none). */
static const int answers[8][2] = {
	{0, 0},	    /* silent: timers and CANCEL paths */
	{200, 0},   /* answers at once */
	{180, 200}, /* rings, then answers */
	{486, 0},   /* busy */
	{180, 603}, /* rings, then declines */
	{100, 0},   /* only a provisional */
	{503, 0},   /* unavailable: the next branch or upstream */
	{407, 0},   /* challenges the proxy */
};

struct pending {
	int flow;
	char *text;
	size_t len;
};

static struct app_config cfg;
static uv_loop_t loop;
static struct flow *flows[N_FLOWS];
static int flow_index[N_FLOWS] = {0, 1, 2};
static int answer_mode;
static struct pending pending[MAX_PENDING];
static int n_pending;
static const struct listen_spec listeners[N_FLOWS] = {
	{.proto = PROTO_WS, .host = "127.0.0.1", .port = 8080},
	{.proto = PROTO_WSS, .host = "::1", .port = 8443},
	{.proto = PROTO_TCP, .host = "127.0.0.1", .port = 5060},
};

static void queue_answer(int flow, msg_t *req, int status)
{
	if (n_pending >= MAX_PENDING)
		return;
	msg_t *resp = sipmsg_response(req, status, NULL);
	if (!resp)
		return;
	sip_t *rs = sip_object(resp);
	if (rs->sip_to && !rs->sip_to->a_tag)
		sip_to_tag(msg_home(resp), rs->sip_to, "far");
	size_t len;
	char *text = sipmsg_encode(resp, &len);
	msg_destroy(resp);
	if (!text)
		return;
	pending[n_pending++] = (struct pending){.flow = flow, .text = text, .len = len};
}

static int fake_send(struct flow *f, const char *data, size_t len)
{
	if (sipmsg_is_keepalive(data, len))
		return 0;
	/* What sipedge sends must be SIP that sipedge (and so any peer on sofia-sip) can read. */
	const char *why;
	msg_t *msg = sipmsg_parse(data, len, &why);
	if (!msg) {
		fprintf(stderr, "fuzz_sip: sipedge sent a message it cannot parse (%s):\n%.*s\n", why,
			(int)len, data);
		abort();
	}
	sip_t *sip = sip_object(msg);
	if (sip->sip_request && sip->sip_request->rq_method != sip_method_ack) {
		int idx = *(int *)f->impl;
		for (int i = 0; i < 2 && answers[answer_mode][i]; i++)
			queue_answer(idx, msg, answers[answer_mode][i]);
	}
	msg_destroy(msg);
	return 0;
}

/* The transport is asked to close: it would call flow_destroy once the socket is gone. */
static void fake_close(struct flow *f) {}

static const struct flow_ops fake_ops = {.send = fake_send, .close = fake_close};

static void open_flows(void)
{
	struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(41000)};
	v4.sin_addr.s_addr = htonl(0x7f000001);
	struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_port = htons(41001)};
	v6.sin6_addr.s6_addr[15] = 1;
	struct sockaddr_in trusted = {.sin_family = AF_INET, .sin_port = htons(5060)};
	trusted.sin_addr.s_addr = htonl(0x7f000002);
	const struct sockaddr *peers[N_FLOWS] = {(struct sockaddr *)&v4, (struct sockaddr *)&v6,
						 (struct sockaddr *)&trusted};
	for (int i = 0; i < N_FLOWS; i++) {
		flows[i] = flow_create(listeners[i].proto, peers[i], &listeners[i], &fake_ops, &flow_index[i]);
		if (!flows[i])
			abort();
	}
}

static void run_loop(void)
{
	/* Handle what is due (closes, zero timers) without waiting for the next timer. */
	uv_run(&loop, UV_RUN_NOWAIT);
}

static void deliver_pending(int *budget)
{
	while (n_pending > 0 && *budget > 0) {
		struct pending p = pending[0];
		memmove(pending, pending + 1, (size_t)(n_pending - 1) * sizeof(pending[0]));
		n_pending--;
		(*budget)--;
		if (flows[p.flow])
			dispatch_receive(flows[p.flow], p.text, p.len);
		free(p.text);
		run_loop();
	}
	while (n_pending > 0)
		free(pending[--n_pending].text);
}

/** Forget everything the input left: flows, transactions, proxy contexts, bindings. */
static void reset(void)
{
	proxy_shutdown();
	txn_shutdown();
	for (int i = 0; i < N_FLOWS; i++) {
		flow_destroy(flows[i]);
		flows[i] = NULL;
	}
	registrar_shutdown();
	/* The registrar's timer handles must finish closing before they are initialised again. */
	run_loop();
	if (registrar_init(&cfg.registrar) != 0)
		abort();
	run_loop();
}

static char *resolv_conf_path;
static void remove_resolv_conf(void) { unlink(resolv_conf_path); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	settings_defaults(&cfg);
	string_list_add(&cfg.domains, "example.com");
	/* The listeners are only addresses here (no socket is opened): set them as settings_check
	 * would have parsed them. */
	for (int i = 0; i < N_FLOWS; i++)
		cfg.listen[cfg.n_listen++] = listeners[i];
	string_list_add(&cfg.auth.trusted_peers, "127.0.0.2/32");
	config_set_string(&cfg.auth.nonce_secret, "fuzz-nonce-secret");
	config_set_string(&cfg.flow.flow_secret, "fuzz-flow-secret");
	cfg.auth.nonce_table_size = 1024;
	log_set_level(getenv("FUZZ_DEBUG") ? LOGL_DEBUG : LOGL_ERROR);

	char users_path[] = "/tmp/sipedge-fuzz-users.XXXXXX";
	int fd = mkstemp(users_path);
	if (fd < 0 || write(fd, users_text, strlen(users_text)) != (ssize_t)strlen(users_text))
		abort();
	close(fd);
	config_set_string(&cfg.auth.users_file, users_path);

	/* Next hops with names are looked up (RFC 3263): at a DNS server on loopback that is not
	 * there, so fuzzing never reaches the network and every question fails at once. */
	static char resolv_path[] = "/tmp/sipedge-fuzz-resolv.XXXXXX";
	const char *resolv_text = "nameserver 127.0.0.1\nport 9\n";
	fd = mkstemp(resolv_path);
	if (fd < 0 || write(fd, resolv_text, strlen(resolv_text)) != (ssize_t)strlen(resolv_text))
		abort();
	close(fd);
	config_set_string(&cfg.proxy.resolv_conf, resolv_path);
	resolv_conf_path = resolv_path;
	atexit(remove_resolv_conf);

	uv_loop_init(&loop);
	if (app_start(&loop, &cfg, false) != 0)
		abort();
	unlink(users_path);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	cfg.auth.no_auth = data[0] & 1;
	answer_mode = (data[0] >> 1) & 7;
	const char *p = (const char *)data + 1, *end = (const char *)data + size;
	open_flows();
	int budget = MAX_DELIVERED;
	for (int i = 0; i < MAX_MESSAGES && p < end; i++) {
		const char *sep = memmem(p, (size_t)(end - p), "\n%%\n", 4);
		const char *stop = sep ? sep + 1 : end;
		/* The transport hands over a copy it owns, exactly len bytes (no NUL after it). */
		size_t len = (size_t)(stop - p);
		char *copy = malloc(len ? len : 1);
		memcpy(copy, p, len);
		dispatch_receive(flows[i % N_FLOWS], copy, len);
		free(copy);
		run_loop();
		deliver_pending(&budget);
		p = sep ? sep + 4 : end;
	}
	reset();
	return 0;
}
