/** @file test_proxy.c  The proxy and transaction layer, driven through sip_core_receive on flows
 *  whose transport keeps every message sent. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/config.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/metrics.h"
#include "base/sipmsg.h"
#include "proxy/proxy.h"
#include "sip/txn.h"
#include "registrar/registrar.h"
#include "tests/unit/outbox.h"
#include "app/dispatch.h"
#include "tests/unit/rooms.h"
#include "tests/unit/unit.h"
#include "transport/flow.h"


static struct app_config cfg;
static uv_loop_t loop;
static struct outbox boxes[3];
static struct flow *flows[3];
static const struct listen_spec listener = {.proto = PROTO_WS, .host = "127.0.0.1", .port = 8080};

static void open_flow(int i)
{
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(41000 + i))};
	peer.sin_addr.s_addr = htonl(0x7f000001);
	flows[i] = flow_create(PROTO_WS, (struct sockaddr *)&peer, &listener, &outbox_ops, &boxes[i]);
	ck_assert_ptr_nonnull(flows[i]);
}

static void clear_box(int i) { outbox_clear(&boxes[i]); }

/** The first message in box i starting with prefix (and containing needle, if given). */
static const char *find_sent(int i, const char *prefix, const char *needle)
{
	return outbox_find(&boxes[i], prefix, needle);
}

static int count_lines(const char *msg, const char *prefix)
{
	int n = 0;
	for (const char *p = msg; (p = strstr(p, prefix)); p++)
		if (p == msg || p[-1] == '\n')
			n++;
	return n;
}

/** Run the loop until box i has sent a message starting with prefix, or a few seconds pass. */
static const char *run_until_sent(int i, const char *prefix)
{
	uint64_t start = uv_now(&loop);
	const char *m;
	while (!(m = find_sent(i, prefix, NULL)) && uv_now(&loop) - start < 5000)
		uv_run(&loop, UV_RUN_ONCE);
	return m;
}

static void deliver(int i, const char *text) { dispatch_receive(flows[i], text, strlen(text)); }

static void setup(void)
{
	settings_defaults(&cfg);
	string_list_add(&cfg.domains, "example.com");
	string_list_add(&cfg.listen_text, "ws:127.0.0.1:8080");
	cfg.auth.no_auth = true;
	cfg.proxy.timer_c = 1;
	rooms_start(&loop, &cfg);
	memset(boxes, 0, sizeof(boxes));
	for (int i = 0; i < 3; i++)
		open_flow(i);
}

static void teardown(void)
{
	proxy_shutdown();
	for (int i = 0; i < 3; i++)
		if (flows[i])
			flow_destroy(flows[i]);
	rooms_stop(&loop, &cfg);
	for (int i = 0; i < 3; i++)
		clear_box(i);
}

static void register_bob(void)
{
	deliver(1, "REGISTER sip:example.com SIP/2.0\r\n"
		   "Via: SIP/2.0/WS bob.invalid;branch=z9hG4bKreg1\r\n"
		   "Max-Forwards: 70\r\nTo: <sip:bob@example.com>\r\n"
		   "From: <sip:bob@example.com>;tag=r1\r\nCall-ID: regbob\r\nCSeq: 1 REGISTER\r\n"
		   "Contact: <sip:b1@bob.invalid;transport=ws>;+sip.instance=\"<urn:uuid:1>\";reg-id=1\r\n"
		   "Supported: outbound, path\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n");
	ck_assert_ptr_nonnull(find_sent(1, "SIP/2.0 200", "CSeq: 1 REGISTER"));
	clear_box(1);
}

static const char *invite_text = "INVITE sip:bob@example.com SIP/2.0\r\n"
				 "Via: SIP/2.0/WS alice.invalid;branch=z9hG4bKinv1\r\n"
				 "Max-Forwards: 70\r\nTo: <sip:bob@example.com>\r\n"
				 "From: <sip:alice@example.com>;tag=at\r\nCall-ID: call1\r\nCSeq: 1 INVITE\r\n"
				 "Contact: <sip:a1@alice.invalid;transport=ws>\r\n"
				 "Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n";

/** Bob answers the INVITE he received with status (To tag bt). */
static void bob_answers(int status)
{
	const char *inv = find_sent(1, "INVITE ", NULL);
	ck_assert_ptr_nonnull(inv);
	const char *why;
	msg_t *req = sipmsg_parse(inv, strlen(inv), &why);
	ck_assert_ptr_nonnull(req);
	msg_t *resp = sipmsg_response(req, status, NULL);
	sip_t *rs = sip_object(resp);
	if (rs->sip_to->a_tag)
		msg_header_remove_param(rs->sip_to->a_common, "tag");
	sip_to_tag(msg_home(resp), rs->sip_to, "bt");
	if (status >= 200 && status < 300)
		sip_add_dup(resp, rs, (sip_header_t *)sip_object(req)->sip_record_route);
	size_t len;
	char *text = sipmsg_encode(resp, &len);
	dispatch_receive(flows[1], text, len);
	free(text);
	msg_destroy(resp);
	msg_destroy(req);
}

START_TEST(test_proxy_invite_retargets_and_record_routes)
{
	register_bob();
	deliver(0, invite_text);
	ck_assert_ptr_nonnull(find_sent(0, "SIP/2.0 100 Trying", NULL));
	const char *inv = find_sent(1, "INVITE sip:b1@bob.invalid;transport=ws SIP/2.0", NULL);
	ck_assert_msg(inv != NULL, "bob got no retargeted INVITE (%d sent)", boxes[1].n);
	ck_assert_int_eq(count_lines(inv, "Via:"), 2);
	ck_assert_int_eq(count_lines(inv, "Record-Route:"), 2);
	ck_assert_ptr_nonnull(strstr(inv, "Max-Forwards: 69"));
	ck_assert_ptr_nonnull(strstr(inv, "\r\n\r\nv=0\n"));

	bob_answers(180);
	ck_assert_ptr_nonnull(find_sent(0, "SIP/2.0 180", NULL));
	bob_answers(200);
	const char *ok = find_sent(0, "SIP/2.0 200", "CSeq: 1 INVITE");
	ck_assert_ptr_nonnull(ok);
	ck_assert_int_eq(count_lines(ok, "Via:"), 1);
	ck_assert_int_eq(count_lines(ok, "Record-Route:"), 2);
}
END_TEST

/* §16.3 step 4: the INVITE we forwarded, come back to us unchanged, is a loop (482);
 * sent again to the AOR (another Request-URI), it is a spiral and goes on. */
START_TEST(test_proxy_loop_482_spiral_forwarded)
{
	register_bob();
	deliver(0, invite_text);
	const char *inv = find_sent(1, "INVITE sip:b1@bob.invalid;transport=ws SIP/2.0", NULL);
	ck_assert_ptr_nonnull(inv);
	char *back = strdup(inv);
	clear_box(0);
	clear_box(1);
	deliver(0, back);
	ck_assert_msg(find_sent(0, "SIP/2.0 482 Loop Detected", NULL) != NULL, "the loop was not detected");
	ck_assert_ptr_null(find_sent(1, "INVITE ", NULL));
	/* Sent to bob's AOR again by another proxy (its Via on top): another Request-URI, so
	 * another hash, a spiral, forwarded again. */
	const char *eol = strstr(back, "\r\n");
	char spiral[4096];
	snprintf(spiral, sizeof(spiral),
		 "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/WS other.invalid;branch=z9hG4bKspiral1%s", eol);
	clear_box(0);
	deliver(0, spiral);
	ck_assert_ptr_null(find_sent(0, "SIP/2.0 482", NULL));
	ck_assert_ptr_nonnull(find_sent(1, "INVITE ", NULL));
	free(back);
}
END_TEST

START_TEST(test_proxy_retransmitted_invite_absorbed)
{
	register_bob();
	deliver(0, invite_text);
	deliver(0, invite_text);
	int invites = 0;
	for (int k = 0; k < boxes[1].n; k++)
		invites += strncmp(boxes[1].msg[k], "INVITE ", 7) == 0;
	ck_assert_int_eq(invites, 1);
	int tryings = 0;
	for (int k = 0; k < boxes[0].n; k++)
		tryings += strncmp(boxes[0].msg[k], "SIP/2.0 100", 11) == 0;
	ck_assert_int_eq(tryings, 2); /* the retransmission gets the last response again */
}
END_TEST

/* Thousands of calls ringing at once: the transaction table grows under them, every
 * retransmission still finds its transaction, and a closed flow fails every branch on it. */
START_TEST(test_proxy_many_transactions_found_after_growth)
{
	enum { CALLS = 3000 };
	register_bob();
	int64_t servers = metrics_get(M_TXN_SERVER), clients = metrics_get(M_TXN_CLIENT);
	int64_t absorbed = metrics_get(M_TXN_RETRANS_ABSORBED);
	static char texts[CALLS][512];
	for (int i = 0; i < CALLS; i++) {
		snprintf(texts[i], sizeof(texts[i]),
			 "INVITE sip:bob@example.com SIP/2.0\r\n"
			 "Via: SIP/2.0/WS alice.invalid;branch=z9hG4bKmany%d\r\n"
			 "Max-Forwards: 70\r\nTo: <sip:bob@example.com>\r\n"
			 "From: <sip:alice@example.com>;tag=m%d\r\nCall-ID: many%d\r\nCSeq: 1 INVITE\r\n"
			 "Contact: <sip:a1@alice.invalid;transport=ws>\r\nContent-Length: 0\r\n\r\n",
			 i, i, i);
		deliver(0, texts[i]);
		clear_box(0);
		clear_box(1);
	}
	ck_assert_int_eq(metrics_get(M_TXN_SERVER), servers + CALLS);
	ck_assert_int_eq(metrics_get(M_TXN_CLIENT), clients + CALLS);
	for (int i = 0; i < CALLS; i++) {
		deliver(0, texts[i]);
		clear_box(0);
	}
	ck_assert_int_eq(metrics_get(M_TXN_RETRANS_ABSORBED), absorbed + CALLS);
	ck_assert_int_eq(boxes[1].n, 0); /* none went to bob twice */
	flow_destroy(flows[1]);
	flows[1] = NULL;
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_int_eq(metrics_get(M_TXN_CLIENT), clients);
}
END_TEST

START_TEST(test_proxy_busy_forwarded_and_acked)
{
	register_bob();
	deliver(0, invite_text);
	bob_answers(486);
	ck_assert_ptr_nonnull(find_sent(0, "SIP/2.0 486", NULL));
	ck_assert_ptr_nonnull(find_sent(1, "ACK sip:b1@bob.invalid", NULL));
}
END_TEST

START_TEST(test_proxy_unknown_user_404)
{
	deliver(0, invite_text);
	ck_assert_ptr_nonnull(find_sent(0, "SIP/2.0 404", NULL));
}
END_TEST

START_TEST(test_proxy_flow_closed_while_ringing_gives_430)
{
	register_bob();
	deliver(0, invite_text);
	bob_answers(180);
	flow_destroy(flows[1]);
	flows[1] = NULL;
	uv_run(&loop, UV_RUN_NOWAIT);
	/* The binding went with its flow, the branch failed at once: 430 (outbound binding). */
	ck_assert_ptr_nonnull(find_sent(0, "SIP/2.0 430", NULL));
}
END_TEST

START_TEST(test_proxy_timer_c_gives_408_after_cancel)
{
	register_bob();
	deliver(0, invite_text);
	bob_answers(180);
	/* Timer C (1 s here) CANCELs the ringing branch. */
	ck_assert_ptr_nonnull(run_until_sent(1, "CANCEL sip:b1@bob.invalid"));
	bob_answers(487);
	ck_assert_ptr_nonnull(find_sent(0, "SIP/2.0 408", NULL));
	ck_assert_ptr_null(find_sent(0, "SIP/2.0 487", NULL));
}
END_TEST

START_TEST(test_proxy_cancel_from_caller)
{
	register_bob();
	deliver(0, invite_text);
	bob_answers(180);
	deliver(0, "CANCEL sip:bob@example.com SIP/2.0\r\n"
		   "Via: SIP/2.0/WS alice.invalid;branch=z9hG4bKinv1\r\n"
		   "Max-Forwards: 70\r\nTo: <sip:bob@example.com>\r\n"
		   "From: <sip:alice@example.com>;tag=at\r\nCall-ID: call1\r\nCSeq: 1 CANCEL\r\n"
		   "Content-Length: 0\r\n\r\n");
	ck_assert_ptr_nonnull(find_sent(0, "SIP/2.0 200", "CSeq: 1 CANCEL"));
	ck_assert_ptr_nonnull(find_sent(1, "CANCEL sip:b1@bob.invalid", NULL));
	bob_answers(487);
	ck_assert_ptr_nonnull(find_sent(0, "SIP/2.0 487", NULL));
}
END_TEST

START_TEST(test_proxy_cancel_unknown_481)
{
	deliver(0, "CANCEL sip:bob@example.com SIP/2.0\r\n"
		   "Via: SIP/2.0/WS alice.invalid;branch=z9hG4bKnone\r\n"
		   "Max-Forwards: 70\r\nTo: <sip:bob@example.com>\r\n"
		   "From: <sip:alice@example.com>;tag=at\r\nCall-ID: x\r\nCSeq: 1 CANCEL\r\n"
		   "Content-Length: 0\r\n\r\n");
	ck_assert_ptr_nonnull(find_sent(0, "SIP/2.0 481", NULL));
}
END_TEST

START_TEST(test_options_to_us_200_with_allow)
{
	deliver(0, "OPTIONS sip:example.com SIP/2.0\r\n"
		   "Via: SIP/2.0/WS alice.invalid;branch=z9hG4bKo1\r\n"
		   "Max-Forwards: 70\r\nTo: <sip:example.com>\r\n"
		   "From: <sip:alice@example.com>;tag=at\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\n\r\n");
	const char *ok = find_sent(0, "SIP/2.0 200", "CSeq: 1 OPTIONS");
	ck_assert_ptr_nonnull(ok);
	ck_assert_ptr_nonnull(strstr(ok, "Allow: INVITE"));
	ck_assert_ptr_nonnull(strstr(ok, "Supported: "));
}
END_TEST

START_TEST(test_keepalive_answered_with_crlf)
{
	deliver(0, "\r\n\r\n");
	ck_assert_int_eq(boxes[0].n, 1);
	ck_assert_str_eq(boxes[0].msg[0], "\r\n");
}
END_TEST

/* ---- RFC 5627: requests to a GRUU reach its instance only ---- */

/* Register bob's instance n (1 or 2) on flow n with Supported: gruu; its temp-gruu into temp. */
static void register_bob_instance(int n, unsigned cseq, unsigned expires, char *temp, size_t size)
{
	char text[1024];
	snprintf(text, sizeof(text),
		 "REGISTER sip:example.com SIP/2.0\r\n"
		 "Via: SIP/2.0/WS bob%d.invalid;branch=z9hG4bKgreg%d-%u\r\n"
		 "Max-Forwards: 70\r\nTo: <sip:bob@example.com>\r\n"
		 "From: <sip:bob@example.com>;tag=r%d\r\nCall-ID: regbob%d\r\nCSeq: %u REGISTER\r\n"
		 "Contact: <sip:b%d@bob.invalid;transport=ws>;+sip.instance=\"<urn:uuid:%d>\";reg-id=1\r\n"
		 "Supported: outbound, path, gruu\r\nExpires: %u\r\nContent-Length: 0\r\n\r\n",
		 n, n, cseq, n, n, cseq, n, n, expires);
	clear_box(n);
	deliver(n, text);
	char cs[32];
	snprintf(cs, sizeof(cs), "CSeq: %u REGISTER", cseq);
	const char *ok = find_sent(n, "SIP/2.0 200", cs);
	ck_assert_ptr_nonnull(ok);
	if (temp) {
		/* The Contact of this instance is the one whose temp-gruu we want. */
		char mine[64];
		snprintf(mine, sizeof(mine), "<sip:b%d@bob.invalid", n);
		const char *c = strstr(ok, mine);
		ck_assert_ptr_nonnull(c);
		const char *t = strstr(c, "temp-gruu=\"");
		const char *eol = strstr(c, "\r\n");
		ck_assert(t && t < eol);
		t += strlen("temp-gruu=\"");
		snprintf(temp, size, "%.*s", (int)(strchr(t, '"') - t), t);
	}
	clear_box(n);
}

static void message_to(const char *ruri, unsigned seq)
{
	char text[1024];
	snprintf(text, sizeof(text),
		 "MESSAGE %s SIP/2.0\r\n"
		 "Via: SIP/2.0/WS alice.invalid;branch=z9hG4bKgmsg%u\r\n"
		 "Max-Forwards: 70\r\nTo: <%s>\r\n"
		 "From: <sip:alice@example.com>;tag=am%u\r\nCall-ID: gmsg%u\r\nCSeq: 1 MESSAGE\r\n"
		 "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi",
		 ruri, seq, ruri, seq, seq);
	clear_box(0);
	clear_box(1);
	clear_box(2);
	deliver(0, text);
}

START_TEST(test_proxy_gruu_reaches_one_instance)
{
	char t1[256], t2[256];
	register_bob_instance(1, 1, 600, t1, sizeof(t1));
	register_bob_instance(2, 1, 600, t2, sizeof(t2));
	/* The AOR forks to both instances... */
	message_to("sip:bob@example.com", 1);
	ck_assert_ptr_nonnull(find_sent(1, "MESSAGE sip:b1@bob.invalid;transport=ws SIP/2.0", NULL));
	ck_assert_ptr_nonnull(find_sent(2, "MESSAGE sip:b2@bob.invalid;transport=ws SIP/2.0", NULL));
	/* ...its pub-gruu reaches the one instance, retargeted to its Contact... */
	message_to("sip:bob@example.com;gr=urn:uuid:2", 2);
	ck_assert_ptr_nonnull(find_sent(2, "MESSAGE sip:b2@bob.invalid;transport=ws SIP/2.0", NULL));
	ck_assert_int_eq(boxes[1].n, 0);
	/* ...and so does each temp-gruu. */
	message_to(t1, 3);
	ck_assert_ptr_nonnull(find_sent(1, "MESSAGE sip:b1@bob.invalid;transport=ws SIP/2.0", NULL));
	ck_assert_int_eq(boxes[2].n, 0);
	message_to(t2, 4);
	ck_assert_ptr_nonnull(find_sent(2, "MESSAGE sip:b2@bob.invalid;transport=ws SIP/2.0", NULL));
	ck_assert_int_eq(boxes[1].n, 0);
	ck_assert_int_eq(metrics_get(M_PROXY_GRUU_ROUTED), 3);
}
END_TEST

START_TEST(test_proxy_gruu_nobody_404_offline_480)
{
	char t1[256], forged[256];
	register_bob_instance(1, 1, 600, t1, sizeof(t1));
	register_bob_instance(2, 1, 600, NULL, 0);
	snprintf(forged, sizeof(forged), "%s", t1);
	forged[8] = forged[8] == 'x' ? 'y' : 'x';
	message_to(forged, 1);
	ck_assert_ptr_nonnull(find_sent(0, "SIP/2.0 404", NULL));
	ck_assert_int_eq(boxes[1].n + boxes[2].n, 0);
	message_to("sip:carol@example.com;gr=urn:uuid:1", 2);
	ck_assert_ptr_nonnull(find_sent(0, "SIP/2.0 404", NULL));
	message_to("sip:bob@example.com;gr=urn:uuid:3", 3);
	ck_assert_ptr_nonnull(find_sent(0, "SIP/2.0 480", NULL));
	ck_assert_int_eq(boxes[1].n + boxes[2].n, 0);
	/* Instance 1 unregisters: its temp-gruu is gone (404), its pub-gruu offline (480); the
	 * other instance is not reached in its place. */
	register_bob_instance(1, 2, 0, NULL, 0);
	message_to(t1, 4);
	ck_assert_ptr_nonnull(find_sent(0, "SIP/2.0 404", NULL));
	message_to("sip:bob@example.com;gr=urn:uuid:1", 5);
	ck_assert_ptr_nonnull(find_sent(0, "SIP/2.0 480", NULL));
	ck_assert_int_eq(boxes[1].n + boxes[2].n, 0);
	ck_assert_int_eq(metrics_get(M_PROXY_GRUU_REFUSED), 5);
}
END_TEST

START_TEST(test_proxy_gruu_in_dialog_becomes_contact)
{
	/* alice calls bob's temp-gruu; bob's answer sets up the dialog. alice's BYE names the
	 * temp-gruu again with our Record-Route: it must reach bob as his own Contact (JsSIP
	 * answers 404 to a Request-URI it does not know). */
	char t1[256], text[2048];
	register_bob_instance(1, 1, 600, t1, sizeof(t1));
	snprintf(text, sizeof(text),
		 "INVITE %s SIP/2.0\r\n"
		 "Via: SIP/2.0/WS alice.invalid;branch=z9hG4bKginv1\r\n"
		 "Max-Forwards: 70\r\nTo: <%s>\r\n"
		 "From: <sip:alice@example.com>;tag=at\r\nCall-ID: gcall1\r\nCSeq: 1 INVITE\r\n"
		 "Contact: <sip:a1@alice.invalid;transport=ws>\r\n"
		 "Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n",
		 t1, t1);
	deliver(0, text);
	ck_assert_ptr_nonnull(find_sent(1, "INVITE sip:b1@bob.invalid;transport=ws SIP/2.0", NULL));
	bob_answers(200);
	const char *ok = find_sent(0, "SIP/2.0 200", "CSeq: 1 INVITE");
	ck_assert_ptr_nonnull(ok);
	/* The caller's route set: the Record-Route entries in reverse. */
	char rr[2][256];
	int nrr = 0;
	for (const char *p = ok; (p = strstr(p, "\r\nRecord-Route: ")) && nrr < 2; p++) {
		p += strlen("\r\nRecord-Route: ");
		snprintf(rr[nrr++], sizeof(rr[0]), "%.*s", (int)(strstr(p, "\r\n") - p), p);
	}
	ck_assert_int_eq(nrr, 2);
	clear_box(1);
	snprintf(text, sizeof(text),
		 "BYE %s SIP/2.0\r\n"
		 "Via: SIP/2.0/WS alice.invalid;branch=z9hG4bKgbye1\r\n"
		 "Max-Forwards: 70\r\nRoute: %s\r\nRoute: %s\r\nTo: <%s>;tag=bt\r\n"
		 "From: <sip:alice@example.com>;tag=at\r\nCall-ID: gcall1\r\nCSeq: 2 BYE\r\n"
		 "Content-Length: 0\r\n\r\n",
		 t1, rr[1], rr[0], t1);
	deliver(0, text);
	ck_assert_ptr_nonnull(find_sent(1, "BYE sip:b1@bob.invalid;transport=ws SIP/2.0", NULL));
}
END_TEST

Suite *proxy_suite(void)
{
	Suite *s = suite_create("proxy");
	TCase *tc = tcase_create("calls");
	tcase_set_timeout(tc, 10);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_proxy_invite_retargets_and_record_routes);
	tcase_add_test(tc, test_proxy_loop_482_spiral_forwarded);
	tcase_add_test(tc, test_proxy_retransmitted_invite_absorbed);
	tcase_add_test(tc, test_proxy_many_transactions_found_after_growth);
	tcase_add_test(tc, test_proxy_busy_forwarded_and_acked);
	tcase_add_test(tc, test_proxy_unknown_user_404);
	tcase_add_test(tc, test_proxy_flow_closed_while_ringing_gives_430);
	tcase_add_test(tc, test_proxy_timer_c_gives_408_after_cancel);
	tcase_add_test(tc, test_proxy_cancel_from_caller);
	tcase_add_test(tc, test_proxy_cancel_unknown_481);
	tcase_add_test(tc, test_options_to_us_200_with_allow);
	tcase_add_test(tc, test_keepalive_answered_with_crlf);
	tcase_add_test(tc, test_proxy_gruu_reaches_one_instance);
	tcase_add_test(tc, test_proxy_gruu_nobody_404_offline_480);
	tcase_add_test(tc, test_proxy_gruu_in_dialog_becomes_contact);
	suite_add_tcase(s, tc);
	return s;
}
