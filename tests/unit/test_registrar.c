/** @file test_registrar.c  The registrar's rules, driven by REGISTER texts through a real flow. */
#include <arpa/inet.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "base/config.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/metrics.h"
#include "base/sipmsg.h"
#include "sip/txn.h"
#include "registrar/gruu.h"
#include "registrar/location.h"
#include "app/settings.h"
#include "registrar/registrar.h"
#include "sip/self.h"
#include "registrar/store.h"
#include "tests/unit/unit.h"
#include "transport/flow.h"

#define AOR "sip:alice@example.com"

/* ---- a flow whose transport keeps what is sent, so tests read the registrar's answers ---- */

struct capture {
	char *last;
	size_t len;
	int sent;
};

static int cap_send(struct flow *f, const char *data, size_t len)
{
	struct capture *c = f->impl;
	free(c->last);
	c->last = malloc(len + 1);
	memcpy(c->last, data, len);
	c->last[len] = '\0';
	c->len = len;
	c->sent++;
	return 0;
}

static void cap_close(struct flow *f) {}

static const struct flow_ops cap_ops = {.send = cap_send, .close = cap_close};

static struct app_config cfg;
static uv_loop_t loop;
static struct capture caps[4];
static struct flow *flows[4];
static unsigned branch_seq;
static const struct listen_spec ws_listener = {.proto = PROTO_WS, .host = "127.0.0.1", .port = 8080};

static struct flow *open_flow(int i, enum transport_proto proto)
{
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(40000 + i))};
	peer.sin_addr.s_addr = htonl(0x7f000001);
	flows[i] = flow_create(proto, (struct sockaddr *)&peer, &ws_listener, &cap_ops, &caps[i]);
	ck_assert_ptr_nonnull(flows[i]);
	return flows[i];
}

/* The registrar alone: no auth module, every REGISTER may go on. */
static int accept_all(struct txn *st, msg_t *req, sip_t *sip, struct flow *f, const char *aor) { return 0; }

static void setup(void)
{
	settings_defaults(&cfg);
	string_list_add(&cfg.domains, "example.com");
	/* UNIT_DEBUG=1 shows every message sent (sipmsg_send logs them at debug). */
	log_set_level(getenv("UNIT_DEBUG") ? LOGL_DEBUG : LOGL_WARN);
	uv_loop_init(&loop);
	loop_set(&loop);
	sipmsg_init();
	flow_init(NULL);
	txn_init();
	self_init(&cfg.domains, NULL, 0);
	memset(caps, 0, sizeof(caps));
	memset(flows, 0, sizeof(flows));
	ck_assert_int_eq(registrar_init(&cfg.registrar), 0);
	registrar_set_auth(accept_all);
	open_flow(0, PROTO_WS);
	open_flow(1, PROTO_WS);
}

static void teardown(void)
{
	registrar_shutdown();
	txn_shutdown();
	flow_shutdown();
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	sipmsg_shutdown();
	for (int i = 0; i < 4; i++)
		free(caps[i].last);
	settings_free(&cfg);
}

/* Send a REGISTER for user over flow i; headers are extra lines (Contact, Expires, ...), each
 * ending in CRLF. Returns the parsed answer (caller destroys) or fails the test. */
static msg_t *reg_on(int i, const char *user, const char *call_id, unsigned cseq, const char *fmt, ...)
{
	char headers[2048], text[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(headers, sizeof(headers), fmt, ap);
	va_end(ap);
	unsigned seq = ++branch_seq;
	snprintf(text, sizeof(text),
		 "REGISTER sip:example.com SIP/2.0\r\n"
		 "Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKunit%u\r\n"
		 "Max-Forwards: 70\r\n"
		 "From: <sip:%s@example.com>;tag=ft%u\r\n"
		 "To: <sip:%s@example.com>\r\n"
		 "Call-ID: %s\r\n"
		 "CSeq: %u REGISTER\r\n"
		 "%s"
		 "Content-Length: 0\r\n\r\n",
		 seq, user, seq, user, call_id, cseq, headers);
	const char *why = NULL;
	msg_t *req = sipmsg_parse(text, strlen(text), &why);
	ck_assert_msg(req != NULL, "request does not parse: %s", why);
	int before = caps[i].sent;
	struct txn *st = txn_server_create(req, flows[i]);
	ck_assert_ptr_nonnull(st);
	registrar_handle(st, req, sip_object(req), flows[i]);
	msg_destroy(req);
	ck_assert_int_eq(caps[i].sent, before + 1);
	msg_t *resp = sipmsg_parse(caps[i].last, caps[i].len, &why);
	ck_assert_msg(resp != NULL, "answer does not parse: %s", why);
	ck_assert_ptr_nonnull(sip_object(resp)->sip_status);
	return resp;
}

#define reg(...) reg_on(0, __VA_ARGS__)

static int status_of(msg_t *resp) { return sip_object(resp)->sip_status->st_status; }

/* A REGISTER (reg_on's arguments) whose answer must be status, and nothing more is read of it.
 * Macros, so that a failure names the test's line. */
#define reg_on_answers(status, ...)                                                                \
	do {                                                                                       \
		msg_t *answer_ = reg_on(__VA_ARGS__);                                              \
		ck_assert_int_eq(status_of(answer_), status);                                      \
		msg_destroy(answer_);                                                              \
	} while (0)
#define reg_answers(status, ...) reg_on_answers(status, 0, __VA_ARGS__)

static int count_contacts(msg_t *resp)
{
	int n = 0;
	for (sip_contact_t *m = sip_object(resp)->sip_contact; m; m = m->m_next)
		n++;
	return n;
}

/* The expires= of the answer's Contact whose URI host is host (-1 if none). */
static long contact_expires(msg_t *resp, const char *user)
{
	for (sip_contact_t *m = sip_object(resp)->sip_contact; m; m = m->m_next)
		if (m->m_url->url_user && strcmp(m->m_url->url_user, user) == 0)
			return m->m_expires ? atol(m->m_expires) : -1;
	return -1;
}

/* A REGISTER (reg's arguments) answered 200 that gives the Contact of user an expiry of lo to hi
 * seconds. A macro, as reg_answers. */
#define reg_expiry(user, lo, hi, ...)                                                              \
	do {                                                                                       \
		msg_t *answer_ = reg(__VA_ARGS__);                                                 \
		ck_assert_int_eq(status_of(answer_), 200);                                         \
		long expires_ = contact_expires(answer_, user);                                    \
		ck_assert(expires_ >= (lo) && expires_ <= (hi));                                   \
		msg_destroy(answer_);                                                              \
	} while (0)

static int lookup(const char *aor, const struct binding **out)
{
	return location_lookup(aor, out, 16);
}

#define CONTACT_WS(user) "Contact: <sip:" user "@df7jal23ls0d.invalid;transport=ws>"
#define OB_PARAMS ";+sip.instance=\"<urn:uuid:11111111-2222-3333-4444-555555555555>\";reg-id=1"

/* ---- RFC 3261 §10.3 ---- */

START_TEST(test_register_adds_binding)
{
	msg_t *r = reg("alice", "c1", 1, CONTACT_WS("a1") "\r\nExpires: 600\r\n");
	ck_assert_int_eq(status_of(r), 200);
	ck_assert_int_eq(count_contacts(r), 1);
	long e = contact_expires(r, "a1");
	ck_assert(e >= 599 && e <= 600);
	ck_assert_ptr_nonnull(sip_object(r)->sip_date);
	ck_assert_ptr_nonnull(sip_object(r)->sip_to->a_tag);
	msg_destroy(r);
	const struct binding *b[16];
	ck_assert_int_eq(lookup(AOR, b), 1);
	ck_assert_str_eq(b[0]->uri, "sip:a1@df7jal23ls0d.invalid;transport=ws");
	ck_assert_uint_eq(b[0]->flow_id, flows[0]->id);
	ck_assert(!b[0]->outbound);
	ck_assert_int_eq(location_aor_state(AOR), AOR_BOUND);
	ck_assert_int_eq(metrics_get(M_REG_BINDINGS), 1);
	ck_assert_int_eq(metrics_get(M_REG_AORS), 1);
}
END_TEST

START_TEST(test_register_refresh_keeps_one_binding)
{
	reg_answers(200, "alice", "c1", 1, CONTACT_WS("a1") "\r\nExpires: 600\r\n");
	msg_t *r = reg("alice", "c1", 2, CONTACT_WS("a1") "\r\nExpires: 1200\r\n");
	ck_assert_int_eq(status_of(r), 200);
	ck_assert_int_eq(count_contacts(r), 1);
	ck_assert(contact_expires(r, "a1") >= 1199);
	msg_destroy(r);
	const struct binding *b[16];
	ck_assert_int_eq(lookup(AOR, b), 1);
	ck_assert_uint_eq(b[0]->cseq, 2);
}
END_TEST

/* A refresh takes what changed (the Call-ID, the contact's parameters, the User-Agent) and
 * keeps what did not. */
START_TEST(test_refresh_takes_changed_strings)
{
	reg_answers(200, "alice", "c1", 1, CONTACT_WS("a1") "\r\nUser-Agent: one\r\nExpires: 600\r\n");
	const struct binding *b[16];
	ck_assert_int_eq(lookup(AOR, b), 1);
	const char *uri_before = b[0]->uri;
	reg_answers(200, "alice", "c2", 1, CONTACT_WS("a1") ";+sip.ice\r\nUser-Agent: two\r\nExpires: 600\r\n");
	ck_assert_int_eq(lookup(AOR, b), 1);
	ck_assert_str_eq(b[0]->call_id, "c2");
	ck_assert_str_eq(b[0]->contact, "<sip:a1@df7jal23ls0d.invalid;transport=ws>;+sip.ice");
	ck_assert_str_eq(b[0]->user_agent, "two");
	ck_assert_ptr_eq(b[0]->uri, uri_before); /* the same URI: the string is kept, not copied */
	ck_assert_str_eq(b[0]->uri, "sip:a1@df7jal23ls0d.invalid;transport=ws");
	reg_answers(200, "alice", "c2", 2, CONTACT_WS("a1") ";+sip.ice\r\nExpires: 600\r\n");
	ck_assert_int_eq(lookup(AOR, b), 1);
	ck_assert_ptr_null(b[0]->user_agent);
}
END_TEST

START_TEST(test_register_423_min_expires)
{
	msg_t *r = reg("alice", "c1", 1, CONTACT_WS("a1") "\r\nExpires: 10\r\n");
	ck_assert_int_eq(status_of(r), 423);
	ck_assert_ptr_nonnull(sip_object(r)->sip_min_expires);
	ck_assert_uint_eq(sip_object(r)->sip_min_expires->me_delta, 60);
	msg_destroy(r);
	const struct binding *b[16];
	ck_assert_int_eq(lookup(AOR, b), 0);
	ck_assert_int_eq(location_aor_state(AOR), AOR_UNKNOWN);
	ck_assert_int_eq(metrics_get(M_REG_REJECTED), 1);
	/* The retry with a longer interval succeeds. */
	reg_answers(200, "alice", "c1", 2, CONTACT_WS("a1") "\r\nExpires: 3600\r\n");
}
END_TEST

START_TEST(test_expires_param_wins_over_header)
{
	reg_expiry("a1", 299, 300, "alice", "c1", 1, CONTACT_WS("a1") ";expires=300\r\nExpires: 900\r\n");
	/* A short param is refused even when the header is fine. */
	reg_answers(423, "alice", "c1", 2, CONTACT_WS("a1") ";expires=5\r\nExpires: 900\r\n");
}
END_TEST

/* The binding keeps the contact without its expires parameter; each 200 gives one expires=,
 * the time left, after the other parameters (as a line of text: the 200's bytes are read). */
START_TEST(test_contact_stored_without_expires_and_answered_with_one)
{
	for (unsigned cseq = 1; cseq <= 2; cseq++) {
		msg_t *r = reg("alice", "c1", cseq, CONTACT_WS("a1") ";expires=300;+sip.ice\r\n");
		ck_assert_int_eq(status_of(r), 200);
		ck_assert_msg(strstr(caps[0].last, "\r\nContact: <sip:a1@df7jal23ls0d.invalid;transport=ws>;+sip.ice;expires=30") != NULL,
			      "the 200's Contact line: %.*s", (int)caps[0].len, caps[0].last);
		ck_assert_int_eq(count_contacts(r), 1);
		sip_contact_t *m = sip_object(r)->sip_contact;
		int n_expires = 0;
		for (int k = 0; m->m_params && m->m_params[k]; k++)
			n_expires += strncasecmp(m->m_params[k], "expires=", 8) == 0;
		ck_assert_int_eq(n_expires, 1);
		msg_destroy(r);
		const struct binding *b[16];
		ck_assert_int_eq(lookup(AOR, b), 1);
		ck_assert_str_eq(b[0]->contact, "<sip:a1@df7jal23ls0d.invalid;transport=ws>;+sip.ice");
	}
}
END_TEST

START_TEST(test_expiry_shortened_to_max)
{
	reg_expiry("a1", 3599, 3600, "alice", "c1", 1, CONTACT_WS("a1") "\r\nExpires: 86400\r\n");
}
END_TEST

START_TEST(test_default_expires_when_none_given)
{
	cfg.registrar.reg_default_expires = 1800;
	reg_expiry("a1", 1799, 1800, "alice", "c1", 1, CONTACT_WS("a1") "\r\n");
}
END_TEST

START_TEST(test_register_star_removes_all)
{
	msg_t *r = reg("alice", "c1", 1,
		       CONTACT_WS("a1") "\r\n" CONTACT_WS("a2") "\r\nExpires: 600\r\n");
	ck_assert_int_eq(status_of(r), 200);
	ck_assert_int_eq(count_contacts(r), 2);
	msg_destroy(r);
	r = reg("alice", "c2", 1, "Contact: *\r\nExpires: 0\r\n");
	ck_assert_int_eq(status_of(r), 200);
	ck_assert_int_eq(count_contacts(r), 0);
	msg_destroy(r);
	const struct binding *b[16];
	ck_assert_int_eq(lookup(AOR, b), 0);
	ck_assert_int_eq(location_aor_state(AOR), AOR_NO_BINDING);
	ck_assert_int_eq(metrics_get(M_REG_BINDINGS), 0);
	ck_assert_int_eq(metrics_get(M_REG_AORS), 0);
}
END_TEST

START_TEST(test_register_star_needs_expires_zero)
{
	msg_t *r = reg("alice", "c1", 1, CONTACT_WS("a1") "\r\nExpires: 600\r\n");
	msg_destroy(r);
	reg_answers(400, "alice", "c2", 1, "Contact: *\r\nExpires: 60\r\n");
	reg_answers(400, "alice", "c2", 2, "Contact: *\r\n");
	reg_answers(400, "alice", "c2", 3, "Contact: *\r\n" CONTACT_WS("a2") "\r\nExpires: 0\r\n");
	const struct binding *b[16];
	ck_assert_int_eq(lookup(AOR, b), 1);
}
END_TEST

START_TEST(test_register_cseq_order_500)
{
	reg_answers(200, "alice", "c1", 5, CONTACT_WS("a1") "\r\nExpires: 600\r\n");
	/* Same Call-ID, CSeq not higher: refused, binding unchanged (not removed). */
	reg_answers(500, "alice", "c1", 5, CONTACT_WS("a1") "\r\nExpires: 0\r\n");
	reg_answers(500, "alice", "c1", 4, CONTACT_WS("a1") "\r\nExpires: 1200\r\n");
	reg_answers(500, "alice", "c1", 3, "Contact: *\r\nExpires: 0\r\n");
	const struct binding *b[16];
	ck_assert_int_eq(lookup(AOR, b), 1);
	ck_assert_uint_eq(b[0]->cseq, 5);
	ck_assert(b[0]->expires_at - time(NULL) <= 600);
	/* A different Call-ID replaces whatever its CSeq. */
	reg_answers(200, "alice", "c9", 1, CONTACT_WS("a1") "\r\nExpires: 900\r\n");
	ck_assert_int_eq(lookup(AOR, b), 1);
	ck_assert_str_eq(b[0]->call_id, "c9");
	ck_assert_uint_eq(b[0]->cseq, 1);
}
END_TEST

START_TEST(test_unregister_leaves_aor_no_binding)
{
	msg_t *r = reg("alice", "c1", 1, CONTACT_WS("a1") "\r\n" CONTACT_WS("a2") "\r\nExpires: 600\r\n");
	msg_destroy(r);
	r = reg("alice", "c1", 2, CONTACT_WS("a1") "\r\nExpires: 0\r\n");
	ck_assert_int_eq(status_of(r), 200);
	ck_assert_int_eq(count_contacts(r), 1);
	ck_assert_int_ne(contact_expires(r, "a2"), -1);
	msg_destroy(r);
	r = reg("alice", "c1", 3, CONTACT_WS("a2") ";expires=0\r\n");
	ck_assert_int_eq(status_of(r), 200);
	ck_assert_int_eq(count_contacts(r), 0);
	msg_destroy(r);
	ck_assert_int_eq(location_aor_state(AOR), AOR_NO_BINDING);
	ck_assert_int_eq(location_aor_state("sip:nobody@example.com"), AOR_UNKNOWN);
}
END_TEST

START_TEST(test_query_lists_bindings)
{
	reg_answers(200, "alice", "c1", 1, CONTACT_WS("a1") ";expires=600\r\n" CONTACT_WS("a2") ";expires=1200\r\n");
	msg_t *r = reg_on(1, "alice", "q1", 1, "");
	ck_assert_int_eq(status_of(r), 200);
	ck_assert_int_eq(count_contacts(r), 2);
	long e1 = contact_expires(r, "a1"), e2 = contact_expires(r, "a2");
	ck_assert(e1 >= 599 && e1 <= 600);
	ck_assert(e2 >= 1199 && e2 <= 1200);
	ck_assert_ptr_nonnull(sip_object(r)->sip_date);
	msg_destroy(r);
	/* A query changes nothing. */
	const struct binding *b[16];
	ck_assert_int_eq(lookup(AOR, b), 2);
}
END_TEST

START_TEST(test_q_orders_lookup)
{
	reg_answers(200, "alice", "c1", 1,
		    CONTACT_WS("low") ";q=0.1\r\n" CONTACT_WS("high") ";q=0.9\r\n" CONTACT_WS("mid") ";q=0.5\r\n");
	const struct binding *b[16];
	ck_assert_int_eq(lookup(AOR, b), 3);
	ck_assert_int_eq(b[0]->q, 900);
	ck_assert_int_eq(b[1]->q, 500);
	ck_assert_int_eq(b[2]->q, 100);
	reg_answers(400, "alice", "c1", 2, CONTACT_WS("bad") ";q=1.5\r\n");
}
END_TEST

START_TEST(test_foreign_domain_404)
{
	char text[] = "REGISTER sip:example.com SIP/2.0\r\n"
		      "Via: SIP/2.0/WS x.invalid;branch=z9hG4bKforeign\r\n"
		      "Max-Forwards: 70\r\n"
		      "From: <sip:eve@elsewhere.org>;tag=1\r\n"
		      "To: <sip:eve@elsewhere.org>\r\n"
		      "Call-ID: f1\r\nCSeq: 1 REGISTER\r\n"
		      "Contact: <sip:e@x.invalid;transport=ws>\r\nContent-Length: 0\r\n\r\n";
	const char *why;
	msg_t *req = sipmsg_parse(text, strlen(text), &why);
	struct txn *st = txn_server_create(req, flows[0]);
	registrar_handle(st, req, sip_object(req), flows[0]);
	msg_destroy(req);
	msg_t *r = sipmsg_parse(caps[0].last, caps[0].len, &why);
	ck_assert_int_eq(status_of(r), 404);
	msg_destroy(r);
	ck_assert_int_eq(location_aor_state("sip:eve@elsewhere.org"), AOR_UNKNOWN);
}
END_TEST

START_TEST(test_require_unknown_420)
{
	msg_t *r = reg("alice", "c1", 1, "Require: outbound, foo, 100rel\r\n" CONTACT_WS("a1") "\r\n");
	ck_assert_int_eq(status_of(r), 420);
	sip_unsupported_t *u = sip_object(r)->sip_unsupported;
	ck_assert_ptr_nonnull(u);
	ck_assert(sip_has_feature(u, "foo"));
	ck_assert(sip_has_feature(u, "100rel"));
	ck_assert(!sip_has_feature(u, "outbound"));
	msg_destroy(r);
	ck_assert_int_eq(location_aor_state(AOR), AOR_UNKNOWN);
}
END_TEST

START_TEST(test_max_bindings_403)
{
	cfg.registrar.reg_max_bindings = 2;
	reg_answers(200, "alice", "c1", 1, CONTACT_WS("a1") "\r\n" CONTACT_WS("a2") "\r\n");
	msg_t *r = reg("alice", "c1", 2, CONTACT_WS("a3") "\r\n");
	ck_assert_int_eq(status_of(r), 403);
	ck_assert_str_eq(sip_object(r)->sip_status->st_phrase, "Too Many Bindings");
	msg_destroy(r);
	/* Refreshing what exists, or swapping one for another, is still fine. */
	reg_answers(200, "alice", "c1", 3, CONTACT_WS("a1") "\r\n");
	reg_answers(200, "alice", "c1", 4, CONTACT_WS("a2") ";expires=0\r\n" CONTACT_WS("a3") "\r\n");
	const struct binding *b[16];
	ck_assert_int_eq(lookup(AOR, b), 2);
}
END_TEST

START_TEST(test_bad_contact_400_changes_nothing)
{
	reg_answers(400, "alice", "c1", 1, CONTACT_WS("a1") "\r\nContact: <mailto:a@example.com>\r\n");
	reg_answers(400, "alice", "c1", 2, CONTACT_WS("a1") ";expires=soon\r\n");
	reg_answers(400, "alice", "c1", 3,
		    CONTACT_WS("a1") ";+sip.instance=\"<urn:uuid:1>\";reg-id=x\r\nSupported: outbound\r\n");
	const struct binding *b[16];
	ck_assert_int_eq(lookup(AOR, b), 0);
}
END_TEST

/* Inside <...> sofia-sip reads spaces into the URI; a binding with such a URI would make
 * requests with a broken request line (found by fuzz/fuzz_sip). */
START_TEST(test_contact_uri_not_a_request_uri_400)
{
	msg_t *r = reg("alice", "c1", 1, "Contact: <sip:a1@df7jal23ls0d.invalid;transport=wsontact: <sip:x@y>\r\n");
	ck_assert_int_eq(status_of(r), 400);
	ck_assert_str_eq(sip_object(r)->sip_status->st_phrase, "Malformed Contact URI");
	msg_destroy(r);
	const struct binding *b[16];
	ck_assert_int_eq(lookup(AOR, b), 0);
	/* The same without the space is fine: the check does not refuse ordinary URIs. */
	reg_answers(200, "alice", "c1", 2, "Contact: <sip:a1@df7jal23ls0d.invalid;transport=wsontact:>\r\n");
	ck_assert_int_eq(lookup(AOR, b), 1);
}
END_TEST

/* ---- RFC 5626 outbound and WebSocket flows ---- */

START_TEST(test_outbound_new_flow_replaces)
{
	msg_t *r = reg_on(0, "alice", "c1", 1, "Supported: path, gruu, outbound\r\n"
			  CONTACT_WS("a1") OB_PARAMS ";expires=600\r\n");
	ck_assert_int_eq(status_of(r), 200);
	ck_assert(sip_has_feature(sip_object(r)->sip_require, "outbound"));
	ck_assert_ptr_nonnull(sip_object(r)->sip_supported);
	msg_destroy(r);
	const struct binding *b[16];
	ck_assert_int_eq(lookup(AOR, b), 1);
	ck_assert(b[0]->outbound);
	ck_assert_int_eq(b[0]->reg_id, 1);
	ck_assert_str_eq(b[0]->instance, "<urn:uuid:11111111-2222-3333-4444-555555555555>");
	ck_assert_uint_eq(b[0]->flow_id, flows[0]->id);
	/* The same instance and reg-id over a new connection (new contact, new Call-ID). */
	r = reg_on(1, "alice", "c2", 1, "Supported: path, gruu, outbound\r\n"
		   CONTACT_WS("b7") OB_PARAMS ";expires=600\r\n");
	ck_assert_int_eq(status_of(r), 200);
	ck_assert_int_eq(count_contacts(r), 1);
	msg_destroy(r);
	ck_assert_int_eq(lookup(AOR, b), 1);
	ck_assert_uint_eq(b[0]->flow_id, flows[1]->id);
	ck_assert_str_eq(b[0]->uri, "sip:b7@df7jal23ls0d.invalid;transport=ws");
	/* The old flow closing no longer touches the binding. */
	flow_destroy(flows[0]);
	flows[0] = NULL;
	ck_assert_int_eq(lookup(AOR, b), 1);
}
END_TEST

START_TEST(test_outbound_needs_supported)
{
	/* Without Supported: outbound the reg-id is ignored: keyed by instance, not outbound. */
	msg_t *r = reg("alice", "c1", 1, CONTACT_WS("a1") OB_PARAMS "\r\n");
	ck_assert_int_eq(status_of(r), 200);
	ck_assert_ptr_null(sip_object(r)->sip_require);
	msg_destroy(r);
	const struct binding *b[16];
	ck_assert_int_eq(lookup(AOR, b), 1);
	ck_assert(!b[0]->outbound);
	ck_assert_int_eq(b[0]->reg_id, 0);
}
END_TEST

START_TEST(test_instance_without_reg_id_keyed_by_instance)
{
	const char *inst = ";+sip.instance=\"<urn:uuid:aaaa>\"";
	reg_on_answers(200, 0, "alice", "c1", 1, CONTACT_WS("a1") "%s\r\n", inst);
	msg_t *r = reg_on(1, "alice", "c2", 1, CONTACT_WS("a2") "%s\r\n", inst);
	ck_assert_int_eq(status_of(r), 200);
	ck_assert_int_eq(count_contacts(r), 1);
	msg_destroy(r);
	const struct binding *b[16];
	ck_assert_int_eq(lookup(AOR, b), 1);
	ck_assert_str_eq(b[0]->uri, "sip:a2@df7jal23ls0d.invalid;transport=ws");
}
END_TEST

START_TEST(test_outbound_two_reg_ids_400)
{
	reg_answers(400, "alice", "c1", 1, "Supported: outbound\r\n" CONTACT_WS("a1") OB_PARAMS "\r\n"
		    CONTACT_WS("a2") ";+sip.instance=\"<urn:uuid:x>\";reg-id=2\r\n");
}
END_TEST

START_TEST(test_outbound_439_first_hop)
{
	reg_answers(439, "alice", "c1", 1, "Supported: outbound, path\r\n"
		    "Path: <sip:edge.example.net;lr>\r\n" CONTACT_WS("a1") OB_PARAMS "\r\n");
	reg_answers(200, "alice", "c1", 2, "Supported: outbound, path\r\n"
		    "Path: <sip:edge.example.net;lr;ob>\r\n" CONTACT_WS("a1") OB_PARAMS "\r\n");
}
END_TEST

START_TEST(test_ws_same_contact_two_flows_two_bindings)
{
	/* Two sipML5 tabs: identical Contacts, no instance, separate connections. */
	reg_on_answers(200, 0, "alice", "tab1", 1, CONTACT_WS("same") "\r\n");
	msg_t *r = reg_on(1, "alice", "tab2", 1, CONTACT_WS("same") "\r\n");
	ck_assert_int_eq(status_of(r), 200);
	ck_assert_int_eq(count_contacts(r), 2);
	msg_destroy(r);
	const struct binding *b[16];
	ck_assert_int_eq(lookup(AOR, b), 2);
	ck_assert_uint_ne(b[0]->flow_id, b[1]->flow_id);
	/* The same tab refreshing stays one binding. */
	r = reg_on(1, "alice", "tab2", 2, CONTACT_WS("same") "\r\n");
	ck_assert_int_eq(count_contacts(r), 2);
	msg_destroy(r);
}
END_TEST

START_TEST(test_non_ws_same_contact_one_binding)
{
	open_flow(2, PROTO_TCP);
	open_flow(3, PROTO_TCP);
	reg_on_answers(200, 2, "alice", "t1", 1, "Contact: <sip:alice@192.0.2.1:5060;transport=tcp>\r\n");
	msg_t *r = reg_on(3, "alice", "t2", 1, "Contact: <sip:alice@192.0.2.1:5060;transport=tcp>\r\n");
	ck_assert_int_eq(status_of(r), 200);
	ck_assert_int_eq(count_contacts(r), 1);
	msg_destroy(r);
	const struct binding *b[16];
	ck_assert_int_eq(lookup(AOR, b), 1);
	ck_assert_uint_eq(b[0]->flow_id, flows[3]->id);
}
END_TEST

START_TEST(test_flow_close_drops_bindings)
{
	msg_t *r = reg_on(0, "alice", "c1", 1, CONTACT_WS("a1") "\r\n" CONTACT_WS("a2") "\r\n");
	msg_destroy(r);
	r = reg_on(1, "alice", "c2", 1, CONTACT_WS("a3") "\r\n");
	msg_destroy(r);
	r = reg_on(1, "bob", "c3", 1, CONTACT_WS("b1") "\r\n");
	msg_destroy(r);
	ck_assert_int_eq(metrics_get(M_REG_BINDINGS), 4);
	flow_destroy(flows[0]);
	flows[0] = NULL;
	const struct binding *b[16];
	ck_assert_int_eq(lookup(AOR, b), 1);
	ck_assert_str_eq(b[0]->uri, "sip:a3@df7jal23ls0d.invalid;transport=ws");
	ck_assert_int_eq(metrics_get(M_REG_FLOW_DROPPED), 2);
	flow_destroy(flows[1]);
	flows[1] = NULL;
	ck_assert_int_eq(lookup(AOR, b), 0);
	ck_assert_int_eq(location_aor_state(AOR), AOR_NO_BINDING);
	ck_assert_int_eq(location_aor_state("sip:bob@example.com"), AOR_NO_BINDING);
	ck_assert_int_eq(metrics_get(M_REG_FLOW_DROPPED), 4);
	ck_assert_int_eq(metrics_get(M_REG_BINDINGS), 0);
	ck_assert_int_eq(metrics_get(M_REG_AORS), 0);
}
END_TEST

START_TEST(test_flow_close_keeps_bindings_when_configured)
{
	cfg.registrar.reg_drop_on_flow_close = false;
	msg_t *r = reg_on(0, "alice", "c1", 1, CONTACT_WS("a1") "\r\n");
	msg_destroy(r);
	flow_destroy(flows[0]);
	flows[0] = NULL;
	const struct binding *b[16];
	ck_assert_int_eq(lookup(AOR, b), 1);
}
END_TEST

static void stop_loop(uv_timer_t *t) { uv_stop(t->loop); }

START_TEST(test_binding_expires_by_timer)
{
	cfg.registrar.reg_min_expires = 1;
	reg_answers(200, "alice", "c1", 1, CONTACT_WS("short") ";expires=1\r\n" CONTACT_WS("long") ";expires=60\r\n");
	uv_timer_t guard;
	uv_timer_init(&loop, &guard);
	uv_timer_start(&guard, stop_loop, 2100, 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&guard, NULL);
	uv_run(&loop, UV_RUN_NOWAIT); /* guard lives on this stack: finish closing it here */
	const struct binding *b[16];
	ck_assert_int_eq(lookup(AOR, b), 1);
	ck_assert_str_eq(b[0]->uri, "sip:long@df7jal23ls0d.invalid;transport=ws");
	ck_assert_int_eq(metrics_get(M_REG_EXPIRED), 1);
	ck_assert_int_eq(metrics_get(M_REG_BINDINGS), 1);
}
END_TEST

/* ---- RFC 3327 Path ---- */

START_TEST(test_path_stored_and_echoed)
{
	msg_t *r = reg("alice", "c1", 1, "Supported: path\r\n"
		       "Path: <sip:p1.example.net;lr>\r\nPath: <sip:p2.example.net;lr>\r\n" CONTACT_WS("a1") "\r\n");
	ck_assert_int_eq(status_of(r), 200);
	sip_path_t *p = sip_object(r)->sip_path;
	ck_assert_ptr_nonnull(p);
	ck_assert_str_eq(p->r_url->url_host, "p1.example.net");
	ck_assert_ptr_nonnull(p->r_next);
	ck_assert_str_eq(p->r_next->r_url->url_host, "p2.example.net");
	msg_destroy(r);
	const struct binding *b[16];
	ck_assert_int_eq(lookup(AOR, b), 1);
	ck_assert_ptr_nonnull(b[0]->path);
	ck_assert_str_eq(b[0]->path, "<sip:p1.example.net;lr>, <sip:p2.example.net;lr>");
}
END_TEST

START_TEST(test_path_without_supported_420)
{
	msg_t *r = reg("alice", "c1", 1, "Path: <sip:p1.example.net;lr>\r\n" CONTACT_WS("a1") "\r\n");
	ck_assert_int_eq(status_of(r), 420);
	ck_assert(sip_has_feature(sip_object(r)->sip_unsupported, "path"));
	msg_destroy(r);
	ck_assert_int_eq(location_aor_state(AOR), AOR_UNKNOWN);
}
END_TEST

/* ---- the authentication seam ---- */

static int auth_calls;
static int refuse_all(struct txn *st, msg_t *req, sip_t *sip, struct flow *f, const char *aor)
{
	auth_calls++;
	ck_assert_str_eq(aor, AOR);
	txn_respond_status(st, 403, "Forbidden");
	return -1;
}

START_TEST(test_auth_check_runs_before_bindings_change)
{
	registrar_set_auth(refuse_all);
	msg_t *r = reg("alice", "c1", 1, CONTACT_WS("a1") "\r\n");
	registrar_set_auth(accept_all);
	ck_assert_int_eq(status_of(r), 403);
	ck_assert_int_eq(auth_calls, 1);
	msg_destroy(r);
	ck_assert_int_eq(location_aor_state(AOR), AOR_UNKNOWN);
}
END_TEST

START_TEST(test_no_auth_configured_403)
{
	registrar_set_auth(NULL);
	reg_answers(403, "alice", "c1", 1, CONTACT_WS("a1") "\r\n");
	ck_assert_int_eq(location_aor_state(AOR), AOR_UNKNOWN);
}
END_TEST

/* ---- RFC 5627 GRUU ---- */

#define GR_SUPPORTED "Supported: outbound, gruu\r\n"
#define INST_A "urn:uuid:11111111-2222-3333-4444-555555555555"
#define INST_B "urn:uuid:aaaaaaaa-2222-3333-4444-555555555555"
#define GR_PARAMS(inst) ";+sip.instance=\"<" inst ">\";reg-id=1"

/* A Contact parameter (unquoted) of the answer's Contact whose user is user, or NULL (free it). */
static char *contact_param(msg_t *resp, const char *user, const char *name)
{
	for (sip_contact_t *m = sip_object(resp)->sip_contact; m; m = m->m_next) {
		if (!m->m_url->url_user || strcmp(m->m_url->url_user, user) != 0)
			continue;
		size_t len = strlen(name);
		for (msg_param_t const *p = m->m_params; p && *p; p++)
			if (strncasecmp(*p, name, len) == 0 && (*p)[len] == '=') {
				const char *v = *p + len + 1;
				size_t vl = strlen(v);
				if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"')
					return strndup(v + 1, vl - 2);
				return strdup(v);
			}
	}
	return NULL;
}

/* gruu_lookup on a URI text; *n bindings found (their uris into first, if given). */
static enum gruu_verdict gr_lookup(const char *uri, int *n, bool *temporary, char *first, size_t size)
{
	su_home_t home[1] = {SU_HOME_INIT(home)};
	url_t *url = url_make(home, uri);
	ck_assert_ptr_nonnull(url);
	const struct binding *b[16];
	bool t = false;
	int got = 0;
	enum gruu_verdict v = gruu_lookup(url, b, 16, &got, &t);
	if (n)
		*n = got;
	if (temporary)
		*temporary = t;
	if (first && got)
		snprintf(first, size, "%s", b[0]->uri);
	su_home_deinit(home);
	return v;
}

/* gr_lookup for the verdict alone. */
static enum gruu_verdict gr_verdict(const char *uri) { return gr_lookup(uri, NULL, NULL, NULL, 0); }

/* gruu names one binding, whose URI is uri. */
static void gruu_names_one(const char *gruu, const char *uri)
{
	int n;
	char got[256];
	ck_assert_int_eq(gr_lookup(gruu, &n, NULL, got, sizeof(got)), GRUU_FOUND);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(got, uri);
}

/* alice registers over flow i a Contact of user with the instance inst (Supported: gruu): 200,
 * and the temp-gruu the 200 gives that Contact (and its pub-gruu into pub, if given), NULL where
 * none. The caller frees them. */
static char *reg_gruu(int i, const char *call_id, unsigned cseq, const char *user, const char *inst, char **pub)
{
	msg_t *r = reg_on(i, "alice", call_id, cseq, GR_SUPPORTED CONTACT_WS("%s") GR_PARAMS("%s") "\r\n", user, inst);
	ck_assert_int_eq(status_of(r), 200);
	char *temp = contact_param(r, user, "temp-gruu");
	if (pub)
		*pub = contact_param(r, user, "pub-gruu");
	msg_destroy(r);
	return temp;
}

START_TEST(test_gruu_pub_and_temp_in_200)
{
	char *pub, *temp = reg_gruu(0, "g1", 1, "a1", INST_A, &pub);
	ck_assert_ptr_nonnull(pub);
	ck_assert_ptr_nonnull(temp);
	ck_assert_str_eq(pub, "sip:alice@example.com;gr=" INST_A);
	/* The temp-gruu is ours, of the AOR's domain, and tells neither the AOR nor the instance. */
	ck_assert(strncmp(temp, "sip:", 4) == 0);
	size_t tl = strlen(temp);
	ck_assert(tl > 15 && strcmp(temp + tl - 15, "@example.com;gr") == 0);
	ck_assert_ptr_null(strstr(temp, "alice"));
	ck_assert_ptr_null(strstr(temp, "11111111"));
	int n;
	bool t;
	char uri[256];
	ck_assert_int_eq(gr_lookup(pub, &n, &t, uri, sizeof(uri)), GRUU_FOUND);
	ck_assert_int_eq(n, 1);
	ck_assert(!t);
	ck_assert_str_eq(uri, "sip:a1@df7jal23ls0d.invalid;transport=ws");
	ck_assert_int_eq(gr_lookup(temp, &n, &t, NULL, 0), GRUU_FOUND);
	ck_assert_int_eq(n, 1);
	ck_assert(t);
	ck_assert_int_eq(metrics_get(M_REG_TEMP_GRUUS), 1);
	free(pub);
	free(temp);
}
END_TEST

START_TEST(test_gruu_temp_lives_with_its_registration)
{
	char *t1 = reg_gruu(0, "g1", 1, "a1", INST_A, NULL);
	/* A refresh gives a new one; the first stays valid (same Call-ID). */
	char *pub, *t2 = reg_gruu(0, "g1", 2, "a1", INST_A, &pub);
	ck_assert_ptr_nonnull(t1);
	ck_assert_ptr_nonnull(t2);
	ck_assert_str_ne(t1, t2);
	ck_assert_int_eq(gr_verdict(t1), GRUU_FOUND);
	ck_assert_int_eq(gr_verdict(t2), GRUU_FOUND);
	/* Unregistered: every temp-gruu of that registration names nobody; the pub-gruu is offline. */
	reg_answers(200, "alice", "g1", 3, GR_SUPPORTED CONTACT_WS("a1") GR_PARAMS(INST_A) ";expires=0\r\n");
	ck_assert_int_eq(gr_verdict(t1), GRUU_NOBODY);
	ck_assert_int_eq(gr_verdict(t2), GRUU_NOBODY);
	ck_assert_int_eq(gr_verdict(pub), GRUU_OFFLINE);
	/* Registered again with the same Call-ID (JsSIP keeps it): a new registration, the old
	 * temp-gruus stay dead. */
	char *t3 = reg_gruu(0, "g1", 4, "a1", INST_A, NULL);
	ck_assert_int_eq(gr_verdict(t1), GRUU_NOBODY);
	ck_assert_int_eq(gr_verdict(t3), GRUU_FOUND);
	ck_assert_int_eq(gr_verdict(pub), GRUU_FOUND);
	/* A refresh with a new Call-ID ends them too (RFC 5627 §6). */
	char *t4 = reg_gruu(0, "g2", 1, "a1", INST_A, NULL);
	ck_assert_int_eq(gr_verdict(t3), GRUU_NOBODY);
	ck_assert_int_eq(gr_verdict(t4), GRUU_FOUND);
	free(t1);
	free(t2);
	free(t3);
	free(t4);
	free(pub);
}
END_TEST

START_TEST(test_gruu_only_for_instances_that_support_it)
{
	/* No Supported: gruu: no GRUU params. */
	msg_t *r = reg("alice", "g1", 1, "Supported: outbound\r\n" CONTACT_WS("a1") GR_PARAMS(INST_A) "\r\n");
	ck_assert_int_eq(status_of(r), 200);
	ck_assert_ptr_null(contact_param(r, "a1", "pub-gruu"));
	ck_assert_ptr_null(contact_param(r, "a1", "temp-gruu"));
	msg_destroy(r);
	/* Supported: gruu, but a Contact without an instance gets none; the instance's does. */
	r = reg_on(1, "alice", "g2", 1, GR_SUPPORTED CONTACT_WS("plain") "\r\n");
	ck_assert_int_eq(status_of(r), 200);
	ck_assert_int_eq(count_contacts(r), 2);
	ck_assert_ptr_null(contact_param(r, "plain", "pub-gruu"));
	char *pub = contact_param(r, "a1", "pub-gruu");
	ck_assert_ptr_nonnull(pub);
	free(pub);
	msg_destroy(r);
}
END_TEST

START_TEST(test_gruu_names_one_instance)
{
	char *ta = reg_gruu(0, "ga", 1, "a1", INST_A, NULL);
	msg_t *r = reg_on(1, "alice", "gb", 1, GR_SUPPORTED CONTACT_WS("b1") GR_PARAMS(INST_B) "\r\n");
	char *tb = contact_param(r, "b1", "temp-gruu");
	/* The 200 lists both instances, each with its own GRUUs. */
	char *pa = contact_param(r, "a1", "pub-gruu");
	ck_assert_ptr_nonnull(pa);
	ck_assert_str_eq(pa, "sip:alice@example.com;gr=" INST_A);
	msg_destroy(r);
	gruu_names_one(ta, "sip:a1@df7jal23ls0d.invalid;transport=ws");
	gruu_names_one(tb, "sip:b1@df7jal23ls0d.invalid;transport=ws");
	int n;
	char uri[256];
	ck_assert_int_eq(gr_lookup("sip:alice@example.com;gr=" INST_B, &n, NULL, uri, sizeof(uri)), GRUU_FOUND);
	ck_assert_str_eq(uri, "sip:b1@df7jal23ls0d.invalid;transport=ws");
	/* gr= compares without regard to case, and its value may be escaped. */
	ck_assert_int_eq(gr_lookup("sip:alice@example.com;gr=urn%3Auuid%3AAAAAAAAA-2222-3333-4444-555555555555", &n,
				   NULL, uri, sizeof(uri)), GRUU_FOUND);
	ck_assert_str_eq(uri, "sip:b1@df7jal23ls0d.invalid;transport=ws");
	free(ta);
	free(tb);
	free(pa);
}
END_TEST

START_TEST(test_gruu_forged_or_unknown)
{
	char *t = reg_gruu(0, "g1", 1, "a1", INST_A, NULL);
	ck_assert_ptr_nonnull(t);
	/* One character of the token changed. */
	char *forged = strdup(t);
	forged[10] = forged[10] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(gr_verdict(forged), GRUU_NOBODY);
	/* The same token at another of our domains, or cut short. */
	char other[512];
	snprintf(other, sizeof(other), "%.*s@example.org;gr", (int)(strchr(t, '@') - t), t);
	ck_assert_int_eq(gr_verdict(other), GRUU_NOBODY);
	snprintf(other, sizeof(other), "%.*s@example.com;gr", (int)(strchr(t, '@') - t) - 4, t);
	ck_assert_int_eq(gr_verdict(other), GRUU_NOBODY);
	ck_assert_int_eq(gr_verdict("sip:alice@example.com;gr"), GRUU_NOBODY);
	ck_assert_int_eq(gr_verdict("sip:notatoken%00@example.com;gr"), GRUU_NOBODY);
	ck_assert_int_eq(gr_verdict("sip:example.com;gr"), GRUU_NOBODY);
	/* pub-gruus: an unknown AOR names nobody; a known one with another instance is offline. */
	ck_assert_int_eq(gr_verdict("sip:carol@example.com;gr=" INST_A), GRUU_NOBODY);
	ck_assert_int_eq(gr_verdict("sip:alice@example.com;gr=" INST_B), GRUU_OFFLINE);
	/* No gr: not a GRUU at all. */
	ck_assert_int_eq(gr_verdict("sip:alice@example.com;grx=1"), GRUU_NOT_ONE);
	/* A gr= longer than any instance: a pub-gruu of nobody; gr among other parameters counts. */
	char longgr[1200];
	snprintf(longgr, sizeof(longgr), "sip:alice@example.com;gr=%s%0900d", INST_A, 0);
	ck_assert_int_eq(gr_verdict(longgr), GRUU_NOBODY);
	ck_assert_int_eq(gr_verdict("sip:alice@example.com;x=1;GR=" INST_B ";y"), GRUU_OFFLINE);
	ck_assert_int_eq(gr_verdict("sip:alice@example.com"), GRUU_NOT_ONE);
	free(forged);
	free(t);
}
END_TEST

START_TEST(test_gruu_secret_opens_across_restarts)
{
	/* With the secret set, another run (or another node) opens the temp-gruus; not with
	 * another secret or a random key. */
	gruu_shutdown();
	ck_assert_int_eq(gruu_init("a shared secret of nodes"), 0);
	char *t = reg_gruu(0, "g1", 1, "a1", INST_A, NULL);
	gruu_shutdown();
	ck_assert_int_eq(gruu_init("a shared secret of nodes"), 0);
	ck_assert_int_eq(gr_verdict(t), GRUU_FOUND);
	gruu_shutdown();
	ck_assert_int_eq(gruu_init("another secret altogether"), 0);
	ck_assert_int_eq(gr_verdict(t), GRUU_NOBODY);
	gruu_shutdown();
	ck_assert_int_eq(gruu_init(""), 0);
	ck_assert_int_eq(gr_verdict(t), GRUU_NOBODY);
	free(t);
}
END_TEST

/* A temp-gruu holds the AOR's user@host and the instance, sealed, up to 768 bytes (the flag and
 * the registration's epoch with them): every token minted opens, the longest too. */
START_TEST(test_gruu_temp_longest_opens)
{
	/* 1 + 8 + strlen("alice@example.com") + 1 + strlen("<urn:x:...>"): 768 with 733 x's. */
	for (int k = 731; k <= 734; k++) {
		char inst[800], user[16];
		snprintf(inst, sizeof(inst), "<urn:x:%0*d>", k, 0);
		snprintf(user, sizeof(user), "a%d", k); /* each its own binding, told apart in the 200 */
		msg_t *r = reg("alice", "g1", (unsigned)k,
			       GR_SUPPORTED "Contact: <sip:%s@df7jal23ls0d.invalid;transport=ws>;+sip.instance=\"%s\"\r\n",
			       user, inst);
		ck_assert_int_eq(status_of(r), 200);
		char *t = contact_param(r, user, "temp-gruu");
		msg_destroy(r);
		if (k > 733) {
			ck_assert_msg(t == NULL, "no temp-gruu for %d bytes", 27 + k + 8);
			continue;
		}
		ck_assert_msg(t != NULL, "a temp-gruu for %d bytes", 27 + k + 8);
		int n = 0;
		ck_assert_msg(gr_lookup(t, &n, NULL, NULL, 0) == GRUU_FOUND, "the temp-gruu of %d bytes opens",
			      27 + k + 8);
		ck_assert_int_eq(n, 1);
		free(t);
	}
}
END_TEST

START_TEST(test_gruu_as_contact_403)
{
	reg_answers(403, "alice", "g1", 1, GR_SUPPORTED "Contact: <sip:alice@example.com;gr=" INST_A ">\r\n");
	ck_assert_int_eq(location_aor_state(AOR), AOR_UNKNOWN);
	/* Someone else's GRUU is an ordinary contact. */
	reg_answers(200, "alice", "g1", 2, GR_SUPPORTED "Contact: <sip:bob@example.net;gr=" INST_A ">\r\n");
}
END_TEST

Suite *registrar_suite(void)
{
	Suite *s = suite_create("registrar");
	TCase *tc = tcase_create("rfc3261");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_register_adds_binding);
	tcase_add_test(tc, test_register_refresh_keeps_one_binding);
	tcase_add_test(tc, test_register_423_min_expires);
	tcase_add_test(tc, test_expires_param_wins_over_header);
	tcase_add_test(tc, test_contact_stored_without_expires_and_answered_with_one);
	tcase_add_test(tc, test_refresh_takes_changed_strings);
	tcase_add_test(tc, test_expiry_shortened_to_max);
	tcase_add_test(tc, test_default_expires_when_none_given);
	tcase_add_test(tc, test_register_star_removes_all);
	tcase_add_test(tc, test_register_star_needs_expires_zero);
	tcase_add_test(tc, test_register_cseq_order_500);
	tcase_add_test(tc, test_unregister_leaves_aor_no_binding);
	tcase_add_test(tc, test_query_lists_bindings);
	tcase_add_test(tc, test_q_orders_lookup);
	tcase_add_test(tc, test_foreign_domain_404);
	tcase_add_test(tc, test_require_unknown_420);
	tcase_add_test(tc, test_max_bindings_403);
	tcase_add_test(tc, test_bad_contact_400_changes_nothing);
	tcase_add_test(tc, test_contact_uri_not_a_request_uri_400);
	tcase_add_test(tc, test_auth_check_runs_before_bindings_change);
	tcase_add_test(tc, test_no_auth_configured_403);
	suite_add_tcase(s, tc);

	tc = tcase_create("outbound_and_flows");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_outbound_new_flow_replaces);
	tcase_add_test(tc, test_outbound_needs_supported);
	tcase_add_test(tc, test_instance_without_reg_id_keyed_by_instance);
	tcase_add_test(tc, test_outbound_two_reg_ids_400);
	tcase_add_test(tc, test_outbound_439_first_hop);
	tcase_add_test(tc, test_ws_same_contact_two_flows_two_bindings);
	tcase_add_test(tc, test_non_ws_same_contact_one_binding);
	tcase_add_test(tc, test_flow_close_drops_bindings);
	tcase_add_test(tc, test_flow_close_keeps_bindings_when_configured);
	suite_add_tcase(s, tc);

	tc = tcase_create("expiry_and_path");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 10);
	tcase_add_test(tc, test_binding_expires_by_timer);
	tcase_add_test(tc, test_path_stored_and_echoed);
	tcase_add_test(tc, test_path_without_supported_420);
	suite_add_tcase(s, tc);

	tc = tcase_create("gruu");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_gruu_pub_and_temp_in_200);
	tcase_add_test(tc, test_gruu_temp_lives_with_its_registration);
	tcase_add_test(tc, test_gruu_only_for_instances_that_support_it);
	tcase_add_test(tc, test_gruu_names_one_instance);
	tcase_add_test(tc, test_gruu_forged_or_unknown);
	tcase_add_test(tc, test_gruu_secret_opens_across_restarts);
	tcase_add_test(tc, test_gruu_temp_longest_opens);
	tcase_add_test(tc, test_gruu_as_contact_403);
	suite_add_tcase(s, tc);
	return s;
}

/* ---- the store interface, on the memory store ---- */

struct seen {
	int n;
	char keys[8][64];
};

static void collect(const struct binding *b, void *arg)
{
	struct seen *s = arg;
	if (s->n < 8)
		snprintf(s->keys[s->n++], 64, "%s|%s|%s", b->aor, b->key, b->uri);
}

/* Open a store on a spec alone, with the defaults for everything else. */
static int store_open_spec(struct store *s, const struct store_ops *ops, const char *spec)
{
	struct store_params p = {.spec = spec, .password = "", .node = "test-node", .batch_ms = 5};
	return store_open(s, ops, &p);
}

static void count_records(const struct binding *b, void *arg)
{
	(void)b;
	++*(int *)arg;
}

/* How many records a load of the store gives. */
static int records_in(struct store *s)
{
	int n = 0;
	store_load(s, count_records, &n);
	return n;
}

/* The binding the store cases put (sip:a@x, for a minute); what a case needs otherwise, it sets. */
static struct binding binding_a(void)
{
	return (struct binding){.aor = "sip:a@x", .key = "u:sip:1@h", .uri = "sip:1@h", .contact = "<sip:1@h>",
				.expires_at = time(NULL) + 60};
}

/* What every store must do (store.h): put replaces the same identity, del of an absent one is
 * fine, load gives back what is there. */
static void store_contract(const struct store_ops *ops, const char *spec)
{
	struct store s;
	ck_assert_int_eq(store_open_spec(&s, ops, spec), 0);
	struct binding b = binding_a();
	ck_assert_int_eq(store_put(&s, &b), 0);
	b.uri = "sip:1@h;changed";
	ck_assert_int_eq(store_put(&s, &b), 0); /* same identity: replaced */
	struct binding c = b;
	c.key = "u:sip:2@h";
	c.uri = "sip:2@h";
	ck_assert_int_eq(store_put(&s, &c), 0);
	struct seen seen = {0};
	ck_assert_int_eq(store_load(&s, collect, &seen), 0);
	ck_assert_int_eq(seen.n, 2);
	bool found = false;
	for (int i = 0; i < seen.n; i++)
		found |= strcmp(seen.keys[i], "sip:a@x|u:sip:1@h|sip:1@h;changed") == 0;
	ck_assert(found);
	ck_assert_int_eq(store_del(&s, "sip:a@x", "u:sip:1@h"), 0);
	ck_assert_int_eq(store_del(&s, "sip:a@x", "u:sip:nothing"), 0);
	memset(&seen, 0, sizeof(seen));
	store_load(&s, collect, &seen);
	ck_assert_int_eq(seen.n, 1);
	ck_assert_str_eq(seen.keys[0], "sip:a@x|u:sip:2@h|sip:2@h");
	store_close(&s);
}

START_TEST(test_store_memory_put_replace_del_load) { store_contract(&store_memory_ops, ""); }
END_TEST

/* The SQLite store commits from a loop timer: each test runs one loop and a scratch file. */
static uv_loop_t store_loop;
static char db_path[64];

static void sqlite_begin(void)
{
	uv_loop_init(&store_loop);
	loop_set(&store_loop);
	snprintf(db_path, sizeof(db_path), "/tmp/sipedge-store-test-%d.sqlite", (int)getpid());
	unlink(db_path);
}

static void sqlite_end(void)
{
	uv_run(&store_loop, UV_RUN_DEFAULT); /* the commit timers close */
	ck_assert_int_eq(uv_loop_close(&store_loop), 0);
	char wal[80], shm[80];
	snprintf(wal, sizeof(wal), "%s-wal", db_path);
	snprintf(shm, sizeof(shm), "%s-shm", db_path);
	unlink(db_path);
	unlink(wal);
	unlink(shm);
}

/* The SQLite store on the scratch file. */
static void sqlite_open(struct store *s) { ck_assert_int_eq(store_open_spec(s, &store_sqlite_ops, db_path), 0); }

/* How many records the scratch file holds, for a connection opened to read them. */
static int records_in_file(void)
{
	struct store s;
	sqlite_open(&s);
	int n = records_in(&s);
	store_close(&s);
	return n;
}

START_TEST(test_store_sqlite_put_replace_del_load)
{
	sqlite_begin();
	store_contract(&store_sqlite_ops, db_path);
	sqlite_end();
}
END_TEST

static void keep_binding(const struct binding *b, void *arg)
{
	struct binding *out = arg;
	if (strcmp(b->key, "o:urn:uuid:1;1") == 0)
		ck_assert_int_eq(location_binding_copy(out, b), 0);
}

/* What was written is in the file for the next process: every field, deletions included. */
START_TEST(test_store_sqlite_survives_reopen)
{
	sqlite_begin();
	struct store s;
	sqlite_open(&s);
	time_t now = time(NULL);
	struct binding full = {.aor = "sip:a@x", .key = "o:urn:uuid:1;1", .uri = "sip:1@h.invalid;transport=ws",
			       .contact = "<sip:1@h.invalid;transport=ws>;reg-id=1", .instance = "<urn:uuid:1>",
			       .reg_id = 1, .q = 500, .flow_id = 77, .path = "<sip:p@edge;lr>", .call_id = "c1",
			       .cseq = 42, .expires_at = now + 600, .outbound = true, .connection = true,
			       .updated_at = now, .reg_epoch = 0x7123456789abcdefULL};
	struct binding other = {.aor = "sip:b@x", .key = "u:sip:2@h", .uri = "sip:2@h", .contact = "<sip:2@h>",
				.q = 1000, .expires_at = now + 60};
	struct binding gone = other;
	gone.key = "u:sip:3@h";
	ck_assert_int_eq(store_put(&s, &full), 0);
	ck_assert_int_eq(store_put(&s, &other), 0);
	ck_assert_int_eq(store_put(&s, &gone), 0);
	ck_assert_int_eq(store_del(&s, gone.aor, gone.key), 0);
	store_close(&s);

	sqlite_open(&s);
	ck_assert_int_eq(records_in(&s), 2);
	struct binding back = {0};
	store_load(&s, keep_binding, &back);
	ck_assert_str_eq(back.aor, "sip:a@x");
	ck_assert_str_eq(back.uri, full.uri);
	ck_assert_str_eq(back.contact, full.contact);
	ck_assert_str_eq(back.instance, full.instance);
	ck_assert_str_eq(back.path, full.path);
	ck_assert_str_eq(back.call_id, "c1");
	ck_assert_int_eq(back.reg_id, 1);
	ck_assert_int_eq(back.q, 500);
	ck_assert_uint_eq(back.flow_id, 77);
	ck_assert_uint_eq(back.cseq, 42);
	ck_assert_int_eq((long)back.expires_at, (long)full.expires_at);
	ck_assert(back.outbound);
	ck_assert(back.connection);
	ck_assert(back.reg_epoch == 0x7123456789abcdefULL); /* temp-gruus survive the restart */
	location_binding_clear(&back);
	store_close(&s);
	sqlite_end();
}
END_TEST

/* Group commit: a commit's done runs only once the batch's transaction has committed (on the
 * loop's timer), with every waiter of the batch; what it acknowledges is then in the file for
 * another connection to read. */
static void note_done(enum store_status status, void *arg)
{
	int *out = arg;
	*out = status == STORE_OK ? 1 : 2;
}

START_TEST(test_store_sqlite_answers_after_commit)
{
	sqlite_begin();
	struct store s;
	sqlite_open(&s);
	struct binding b = binding_a();
	int first = 0, second = 0, empty = 0;
	store_begin(&s);
	ck_assert_int_eq(store_put(&s, &b), 0);
	store_commit(&s, note_done, &first);
	b.key = "u:sip:2@h";
	store_begin(&s);
	ck_assert_int_eq(store_put(&s, &b), 0);
	store_commit(&s, note_done, &second);
	ck_assert_int_eq(first, 0); /* not yet: the batch is open */
	ck_assert_int_eq(second, 0);
	struct store other;
	sqlite_open(&other);
	ck_assert_int_eq(records_in(&other), 0); /* and nothing is in the file for anyone else */
	while (!first)
		uv_run(&store_loop, UV_RUN_ONCE);
	ck_assert_int_eq(first, 1);
	ck_assert_int_eq(second, 1); /* one commit answers the whole batch */
	ck_assert_int_eq(records_in(&other), 2);
	/* A group without writes has nothing to wait for. */
	store_begin(&s);
	store_commit(&s, note_done, &empty);
	ck_assert_int_eq(empty, 1);
	store_close(&other);
	store_close(&s);
	sqlite_end();
}
END_TEST

/* A clean stop commits the open batch and answers its waiters. */
START_TEST(test_store_sqlite_close_answers_waiters)
{
	sqlite_begin();
	struct store s;
	sqlite_open(&s);
	struct binding b = binding_a();
	int done = 0;
	store_begin(&s);
	ck_assert_int_eq(store_put(&s, &b), 0);
	store_commit(&s, note_done, &done);
	store_close(&s);
	ck_assert_int_eq(done, 1);
	ck_assert_int_eq(records_in_file(), 1);
	sqlite_end();
}
END_TEST

/* A file that cannot be opened is refused, not crashed on. */
START_TEST(test_store_sqlite_unopenable)
{
	sqlite_begin();
	struct store s;
	ck_assert_int_ne(store_open_spec(&s, &store_sqlite_ops, "/nonexistent-dir/bindings.sqlite"), 0);
	ck_assert_int_ne(store_open_spec(&s, &store_sqlite_ops, ""), 0);
	sqlite_end();
}
END_TEST

/* Many more records than the table starts with: it grows, and every record is still found. */
START_TEST(test_store_memory_grows)
{
	enum { N = 10000 };
	struct store s;
	ck_assert_int_eq(store_open_spec(&s, &store_memory_ops, ""), 0);
	char aor[32], key[32];
	struct binding b = binding_a();
	b.aor = aor;
	b.key = key;
	for (int i = 0; i < N; i++) {
		snprintf(aor, sizeof(aor), "sip:u%d@x", i);
		snprintf(key, sizeof(key), "u:sip:%d@h", i);
		ck_assert_int_eq(store_put(&s, &b), 0);
	}
	/* Putting them again replaces each one. */
	for (int i = 0; i < N; i++) {
		snprintf(aor, sizeof(aor), "sip:u%d@x", i);
		snprintf(key, sizeof(key), "u:sip:%d@h", i);
		ck_assert_int_eq(store_put(&s, &b), 0);
	}
	ck_assert_int_eq(records_in(&s), N);
	/* Every even one deleted: each was found where it was put. */
	for (int i = 0; i < N; i += 2) {
		snprintf(aor, sizeof(aor), "sip:u%d@x", i);
		snprintf(key, sizeof(key), "u:sip:%d@h", i);
		ck_assert_int_eq(store_del(&s, aor, key), 0);
	}
	ck_assert_int_eq(records_in(&s), N / 2);
	store_close(&s);
}
END_TEST

START_TEST(test_store_written_through_and_loaded)
{
	/* Bindings a store holds come back at start; expired and dead-flow ones are dropped. */
	struct app_config c2;
	settings_defaults(&c2);
	uv_loop_t l;
	uv_loop_init(&l);
	loop_set(&l);
	struct store s;
	ck_assert_int_eq(store_open_spec(&s, &store_memory_ops, ""), 0);
	time_t now = time(NULL);
	struct binding live = binding_a();
	live.q = 1000;
	struct binding old = live, onflow = live;
	old.key = "u:sip:2@h";
	old.expires_at = now - 1;
	onflow.key = "f:77:sip:3@h";
	onflow.flow_id = 77;
	onflow.connection = true;
	/* Registered from a UDP peer: still at its address after a restart. */
	struct binding udp = live;
	udp.aor = "sip:u@x";
	udp.key = "u:sip:4@h";
	udp.uri = "sip:4@h";
	udp.flow_id = 78;
	store_put(&s, &live);
	store_put(&s, &old);
	store_put(&s, &onflow);
	store_put(&s, &udp);
	ck_assert_int_eq(location_init(&s, &c2.registrar), 0);
	const struct binding *out[4];
	ck_assert_int_eq(location_lookup("sip:u@x", out, 4), 1);
	ck_assert_int_eq(location_lookup("sip:a@x", out, 4), 1);
	ck_assert_str_eq(out[0]->uri, "sip:1@h");
	struct seen seen = {0};
	store_load(&s, collect, &seen);
	ck_assert_int_eq(seen.n, 2); /* the stale ones were deleted from the store too */
	/* Removing writes through. */
	location_remove((struct binding *)out[0], LOC_UNREGISTERED);
	memset(&seen, 0, sizeof(seen));
	store_load(&s, collect, &seen);
	ck_assert_int_eq(seen.n, 1);
	location_shutdown();
	store_close(&s);
	uv_run(&l, UV_RUN_NOWAIT);
	ck_assert_int_eq(uv_loop_close(&l), 0);
	settings_free(&c2);
}
END_TEST

START_TEST(test_store_sqlite_older_file_gains_reg_epoch)
{
	/* A database written before reg_epoch existed opens, loads and takes new bindings. */
	sqlite_begin();
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db,
		"CREATE TABLE bindings (aor TEXT NOT NULL, key TEXT NOT NULL, contact TEXT NOT NULL,"
		" uri TEXT NOT NULL, instance TEXT, reg_id INTEGER NOT NULL, q INTEGER NOT NULL,"
		" flow_id INTEGER NOT NULL, path TEXT, call_id TEXT, cseq INTEGER NOT NULL,"
		" expires_at INTEGER NOT NULL, outbound INTEGER NOT NULL, connection INTEGER NOT NULL,"
		" updated_at INTEGER NOT NULL, PRIMARY KEY (aor, key)) WITHOUT ROWID;"
		"INSERT INTO bindings VALUES ('sip:a@x', 'o:urn:uuid:1;1', '<sip:1@h>', 'sip:1@h', NULL, 0, 1000,"
		" 0, NULL, 'c1', 1, 4000000000, 0, 0, 1);", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	struct store s;
	sqlite_open(&s);
	struct binding back = {0};
	store_load(&s, keep_binding, &back);
	ck_assert_str_eq(back.aor, "sip:a@x");
	ck_assert(back.reg_epoch == 0); /* location_add draws one */
	location_binding_clear(&back);
	struct binding b = {.aor = "sip:b@x", .key = "u:sip:2@h", .uri = "sip:2@h", .contact = "<sip:2@h>",
			    .q = 1000, .expires_at = time(NULL) + 60, .reg_epoch = 42};
	ck_assert_int_eq(store_put(&s, &b), 0);
	store_close(&s);
	/* Opened again: the column is there already. */
	ck_assert_int_eq(records_in_file(), 2);
	sqlite_end();
}
END_TEST

START_TEST(test_store_redis_url)
{
	struct redis_addr a;
	ck_assert_int_eq(redis_addr_parse("redis://:p@ss@10.0.0.1:6380/2", &a), 0);
	ck_assert_str_eq(a.password, "p@ss"); /* to the last '@' */
	ck_assert_str_eq(a.host, "10.0.0.1");
	ck_assert_int_eq(a.port, 6380);
	ck_assert_int_eq(a.db, 2);
	redis_addr_clear(&a);
	ck_assert_int_eq(redis_addr_parse("redis://user:a%2Fb%40c%25d%zz@[::1]/1", &a), 0);
	ck_assert_str_eq(a.password, "a/b@c%d%zz"); /* decoded; a '%' that escapes nothing stays */
	ck_assert_str_eq(a.host, "::1");
	ck_assert_int_eq(a.port, 6379);
	redis_addr_clear(&a);
	ck_assert_int_eq(redis_addr_parse("redis://127.0.0.1", &a), 0);
	ck_assert_ptr_null(a.password);
	redis_addr_clear(&a);
	ck_assert_int_eq(redis_addr_parse("redis://:a%00b@127.0.0.1", &a), -1); /* AUTH cannot carry NUL */
	ck_assert_int_eq(redis_addr_parse("redis://:pw@", &a), -1);

	char out[64];
	ck_assert_str_eq(redis_url_masked("redis://:p@ss@h:1/0", out, sizeof(out)), "redis://:***@h:1/0");
	ck_assert_str_eq(redis_url_masked("redis://user:pw@h/0", out, sizeof(out)), "redis://user:***@h/0");
	ck_assert_str_eq(redis_url_masked("redis://h:1/0", out, sizeof(out)), "redis://h:1/0");
	ck_assert_str_eq(redis_url_masked("/var/lib/sipedge/b.db", out, sizeof(out)), "/var/lib/sipedge/b.db");
	ck_assert_str_eq(redis_url_masked("redis://:secret@h", out, 12), "redis://:**");
}
END_TEST

Suite *store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("memory");
	tcase_add_test(tc, test_store_memory_put_replace_del_load);
	tcase_add_test(tc, test_store_memory_grows);
	tcase_add_test(tc, test_store_sqlite_put_replace_del_load);
	tcase_add_test(tc, test_store_sqlite_survives_reopen);
	tcase_add_test(tc, test_store_sqlite_older_file_gains_reg_epoch);
	tcase_add_test(tc, test_store_sqlite_unopenable);
	tcase_add_test(tc, test_store_sqlite_answers_after_commit);
	tcase_add_test(tc, test_store_sqlite_close_answers_waiters);
	tcase_add_test(tc, test_store_written_through_and_loaded);
	tcase_add_test(tc, test_store_redis_url);
	suite_add_tcase(s, tc);
	return s;
}
