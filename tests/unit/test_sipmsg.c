/** @file test_sipmsg.c  Unit tests for the SIP message functions and flow tokens. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/config.h"
#include "base/sipmsg.h"
#include "tests/unit/unit.h"
#include "transport/flow.h"

#define REQ_HEAD                                                                                   \
	"Via: SIP/2.0/WS abc.invalid;branch=z9hG4bK776asdhds\r\n"                                   \
	"Max-Forwards: 70\r\n"                                                                     \
	"To: <sip:bob@example.com>\r\n"                                                            \
	"From: <sip:alice@example.com>;tag=1928301774\r\n"                                         \
	"Call-ID: a84b4c76e66710\r\n"

static int check(const char *text, bool cl_optional, const char **reason)
{
	const char *why = NULL;
	msg_t *msg = sipmsg_parse(text, strlen(text), &why);
	ck_assert_msg(msg != NULL, "parse failed: %s", why ? why : "");
	int status = sipmsg_check_request(msg, sip_object(msg), cl_optional, reason);
	msg_destroy(msg);
	return status;
}

START_TEST(test_check_accepts_ws_message_without_content_length)
{
	const char *reason = NULL;
	ck_assert_int_eq(check("MESSAGE sip:bob@example.com SIP/2.0\r\n" REQ_HEAD
			       "CSeq: 1 MESSAGE\r\n\r\nhello",
			       true, &reason),
			 0);
}
END_TEST

START_TEST(test_check_requires_content_length_on_streams)
{
	const char *reason = NULL;
	ck_assert_int_eq(check("MESSAGE sip:bob@example.com SIP/2.0\r\n" REQ_HEAD "CSeq: 1 MESSAGE\r\n\r\n",
			       false, &reason),
			 400);
	ck_assert_str_eq(reason, "Missing Content-Length header");
}
END_TEST

START_TEST(test_check_missing_call_id_400)
{
	const char *reason = NULL;
	const char *text = "OPTIONS sip:example.com SIP/2.0\r\n"
			   "Via: SIP/2.0/WS abc.invalid;branch=z9hG4bK1\r\n"
			   "To: <sip:example.com>\r\nFrom: <sip:a@example.com>;tag=1\r\n"
			   "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
	ck_assert_int_eq(check(text, true, &reason), 400);
	ck_assert_str_eq(reason, "Missing Call-ID header");
}
END_TEST

START_TEST(test_check_cseq_method_mismatch_400)
{
	const char *reason = NULL;
	ck_assert_int_eq(check("INVITE sip:bob@example.com SIP/2.0\r\n" REQ_HEAD
			       "CSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n",
			       true, &reason),
			 400);
	ck_assert_str_eq(reason, "CSeq method does not match the request");
}
END_TEST

START_TEST(test_check_malformed_cseq_400)
{
	const char *reason = NULL;
	ck_assert_int_eq(check("INVITE sip:bob@example.com SIP/2.0\r\n" REQ_HEAD
			       "CSeq: abc INVITE\r\nContent-Length: 0\r\n\r\n",
			       true, &reason),
			 400);
	ck_assert_str_eq(reason, "Malformed CSeq header");
}
END_TEST

START_TEST(test_check_body_shorter_than_content_length_400)
{
	const char *reason = NULL;
	ck_assert_int_eq(check("MESSAGE sip:bob@example.com SIP/2.0\r\n" REQ_HEAD
			       "CSeq: 1 MESSAGE\r\nContent-Length: 50\r\n\r\nshort",
			       true, &reason),
			 400);
	ck_assert_str_eq(reason, "Body shorter than Content-Length");
}
END_TEST

/* sofia-sip puts a repeated single-valued header into sip_error with its own type: reading
 * er_name from it crashed (found by fuzz/fuzz_sip). A repeat is answered 400 Duplicate …. */
START_TEST(test_check_repeated_single_headers_400)
{
	static const struct {
		const char *extra, *reason;
	} cases[] = {
		{"CSeq: 1 REGIS om\r\n", "Duplicate CSeq header"},
		{"CSeq: 2 OPTIONS\r\n", "Duplicate CSeq header"},
		{"Call-ID: other\r\n", "Duplicate Call-ID header"},
		{"From: <sip:eve@example.com>;tag=2\r\n", "Duplicate From header"},
		{"To: <sip:eve@example.com>\r\n", "Duplicate To header"},
		{"Max-Forwards: 69\r\n", "Duplicate Max-Forwards header"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[1024];
		snprintf(text, sizeof(text),
			 "OPTIONS sip:example.com SIP/2.0\r\n" REQ_HEAD "CSeq: 1 OPTIONS\r\n%s"
			 "Content-Length: 0\r\n\r\n",
			 cases[i].extra);
		const char *reason = NULL;
		ck_assert_int_eq(check(text, true, &reason), 400);
		ck_assert_str_eq(reason, cases[i].reason);
	}
	/* The name of each entry of the error list: a header that did not parse, and a repeat. */
	const char *text = "OPTIONS sip:example.com SIP/2.0\r\n" REQ_HEAD "CSeq: 1 OPTIONS\r\n"
			   "Expires: soon\r\nCall-ID: again\r\nContent-Length: 0\r\n\r\n";
	const char *why = NULL;
	msg_t *msg = sipmsg_parse(text, strlen(text), &why);
	ck_assert_ptr_nonnull(msg);
	sip_error_t *e = sip_object(msg)->sip_error;
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(sipmsg_error_name(e), "Expires");
	ck_assert_ptr_nonnull(e->er_next);
	ck_assert_str_eq(sipmsg_error_name(e->er_next), "Call-ID");
	ck_assert_ptr_null(e->er_next->er_next);
	msg_destroy(msg);
}
END_TEST

START_TEST(test_check_tel_uri_416)
{
	const char *reason = NULL;
	ck_assert_int_eq(check("MESSAGE tel:+15551234 SIP/2.0\r\n" REQ_HEAD
			       "CSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n",
			       true, &reason),
			 416);
}
END_TEST

START_TEST(test_parse_rejects_garbage_and_nul)
{
	const char *why = NULL;
	ck_assert_ptr_null(sipmsg_parse("hello world\r\n\r\n", 15, &why));
	ck_assert_ptr_nonnull(why);
	const char nul[] = "OPTIONS sip:a SIP/2.0\r\nVia: x\0y\r\n\r\n";
	ck_assert_ptr_null(sipmsg_parse(nul, sizeof(nul) - 1, &why));
	ck_assert_str_eq(why, "NUL byte in header");
}
END_TEST

/* RFC 3261 §25.1 quoted-pair allows an escaped NUL inside a quoted string (RFC 4475 §3.1.1.2),
 * and a body is octets framed by Content-Length (§7.4): neither is refused. */
START_TEST(test_parse_nul_where_the_grammar_allows_it)
{
	const char *why = NULL;
	const char quoted[] = "OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
			      "To: \"NUL:\\\0 end\" <sip:a@example.com>\r\nFrom: <sip:b@example.com>;tag=1\r\n"
			      "Call-ID: c\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
	msg_t *msg = sipmsg_parse(quoted, sizeof(quoted) - 1, &why);
	ck_assert_msg(msg != NULL, "%s", why);
	ck_assert_ptr_nonnull(sip_object(msg)->sip_to);
	msg_destroy(msg);
	const char body[] = "MESSAGE sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
			    "To: <sip:a@example.com>\r\nFrom: <sip:b@example.com>;tag=1\r\nCall-ID: c\r\n"
			    "CSeq: 1 MESSAGE\r\nContent-Type: application/octet-stream\r\nContent-Length: 5\r\n\r\n"
			    "a\0b\0c";
	msg = sipmsg_parse(body, sizeof(body) - 1, &why);
	ck_assert_msg(msg != NULL, "%s", why);
	sip_t *sip = sip_object(msg);
	ck_assert_ptr_nonnull(sip->sip_payload);
	ck_assert_uint_eq(sip->sip_payload->pl_len, 5);
	ck_assert_int_eq(memcmp(sip->sip_payload->pl_data, "a\0b\0c", 5), 0);
	msg_destroy(msg);
	/* A NUL outside quotes, or a quoted one not escaped, is still refused. */
	const char bare[] = "OPTIONS sip:a SIP/2.0\r\nTo: \"a\0\" <sip:a@b>\r\n\r\n";
	ck_assert_ptr_null(sipmsg_parse(bare, sizeof(bare) - 1, &why));
	ck_assert_str_eq(why, "NUL byte in header");
}
END_TEST

/* A request sofia-sip cannot read as a whole still gets its 400 when its top Via is readable. */
START_TEST(test_salvage_answers_what_can_be_answered)
{
	const char *fault = NULL;
	const char lws[] = "INVITE sip:user@example.com; lr SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
			   "To: <sip:user@example.com>\r\nFrom: <sip:b@example.com>;tag=1\r\nCall-ID: c\r\n"
			   "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
	const char *why = NULL;
	ck_assert_ptr_null(sipmsg_parse(lws, sizeof(lws) - 1, &why));
	msg_t *msg = sipmsg_parse_salvage(lws, sizeof(lws) - 1, &fault);
	ck_assert_ptr_nonnull(msg);
	ck_assert_str_eq(fault, "Malformed Request-URI");
	ck_assert_str_eq(sip_object(msg)->sip_via->v_branch, "z9hG4bK1");
	ck_assert_uint_eq(sip_object(msg)->sip_cseq->cs_seq, 1);
	msg_destroy(msg);
	/* RFC 4475 §3.1.2.1: the top Via's sent-by is readable, its parameters are not. */
	const char *reason = NULL;
	ck_assert_int_eq(check("OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.15;;,;,,\r\n"
			       "To: <sip:example.com>\r\nFrom: <sip:b@example.com>;tag=1\r\nCall-ID: c\r\n"
			       "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
			       true, &reason),
			 400);
	ck_assert_str_eq(reason, "Malformed Via header");
	/* No request line and no Via: nothing to answer. */
	ck_assert_ptr_null(sipmsg_parse_salvage("GET / HTTP/1.0\r\n\r\n", 18, &fault));
}
END_TEST

START_TEST(test_response_copies_headers_and_adds_to_tag)
{
	const char *text = "INVITE sip:bob@example.com SIP/2.0\r\n"
			   "Via: SIP/2.0/WS a.invalid;branch=z9hG4bK1\r\n"
			   "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK2\r\n"
			   "Max-Forwards: 70\r\nTo: <sip:bob@example.com>\r\n"
			   "From: <sip:alice@example.com>;tag=ft\r\nCall-ID: cid\r\n"
			   "CSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n";
	const char *why;
	msg_t *req = sipmsg_parse(text, strlen(text), &why);
	ck_assert_ptr_nonnull(req);
	msg_t *resp = sipmsg_response(req, 486, NULL);
	size_t len;
	char *out = sipmsg_encode(resp, &len);
	ck_assert_ptr_nonnull(out);
	ck_assert_msg(strncmp(out, "SIP/2.0 486 Busy Here\r\n", 23) == 0, "%s", out);
	ck_assert_ptr_nonnull(strstr(out, "Via: SIP/2.0/WS a.invalid;branch=z9hG4bK1\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK2\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "CSeq: 7 INVITE\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "Call-ID: cid\r\n"));
	ck_assert_ptr_nonnull(strstr(out, "To: <sip:bob@example.com>;tag="));
	ck_assert_ptr_nonnull(strstr(out, "Content-Length: 0\r\n\r\n"));
	free(out);
	msg_destroy(resp);

	/* 100 Trying gets no To tag. */
	resp = sipmsg_response(req, 100, NULL);
	out = sipmsg_encode(resp, &len);
	ck_assert_ptr_nonnull(strstr(out, "To: <sip:bob@example.com>\r\n"));
	free(out);
	msg_destroy(resp);
	msg_destroy(req);
}
END_TEST

/* A header given as its line goes out as those bytes, in the order it was inserted, and the
 * message still reads back with it. */
START_TEST(test_header_as_is_is_sent_as_given)
{
	const char *text = "REGISTER sip:example.com SIP/2.0\r\n"
			   "Via: SIP/2.0/WS a.invalid;branch=z9hG4bK1\r\n"
			   "Max-Forwards: 70\r\nTo: <sip:bob@example.com>\r\n"
			   "From: <sip:bob@example.com>;tag=ft\r\nCall-ID: cid\r\n"
			   "CSeq: 7 REGISTER\r\nContent-Length: 0\r\n\r\n";
	const char *why;
	msg_t *req = sipmsg_parse(text, strlen(text), &why);
	ck_assert_ptr_nonnull(req);
	msg_t *resp = sipmsg_response(req, 200, NULL);
	su_home_t *home = msg_home(resp);
	const char *c1 = "<sip:b1@h.invalid;transport=ws>;+sip.ice;expires=600";
	const char *c2 = "\"B\" <sip:b2@h.invalid>;expires=30";
	ck_assert_int_eq(msg_header_insert(resp, NULL, sipmsg_header_as_is(home, sip_contact_class, c1, strlen(c1))), 0);
	ck_assert_int_eq(msg_header_insert(resp, NULL, sipmsg_header_as_is(home, sip_contact_class, c2, strlen(c2))), 0);
	ck_assert_int_eq(msg_header_insert(resp, NULL, sipmsg_header_as_is(home, sip_supported_class, "path, gruu", 10)), 0);
	size_t len;
	char *out = sipmsg_encode(resp, &len);
	ck_assert_ptr_nonnull(out);
	ck_assert_msg(strstr(out, "\r\nContact: <sip:b1@h.invalid;transport=ws>;+sip.ice;expires=600\r\n"
				  "Contact: \"B\" <sip:b2@h.invalid>;expires=30\r\n") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "\r\nSupported: path, gruu\r\n") != NULL, "%s", out);
	msg_t *back = sipmsg_parse(out, len, &why);
	ck_assert_msg(back != NULL, "%s", why);
	sip_contact_t *m = sip_object(back)->sip_contact;
	ck_assert_str_eq(m->m_url->url_user, "b1");
	ck_assert_str_eq(m->m_next->m_expires, "30");
	ck_assert_ptr_null(m->m_next->m_next);
	msg_destroy(back);
	free(out);
	msg_destroy(resp);
	msg_destroy(req);
}
END_TEST

START_TEST(test_keepalive_detection)
{
	ck_assert(sipmsg_is_keepalive("\r\n\r\n", 4));
	ck_assert(sipmsg_is_keepalive("\r\n", 2));
	ck_assert(!sipmsg_is_keepalive("\r\nX", 3));
	ck_assert(!sipmsg_is_keepalive("", 0));
}
END_TEST

START_TEST(test_flow_token_roundtrip_and_tamper)
{
	flow_init(&(struct flow_config){.flow_secret = "unit-test-secret"});
	char token[FLOW_TOKEN_LEN + 1];
	flow_token_make(0x1234567890abcdefULL, token);
	uint64_t id = 0;
	ck_assert_int_eq(flow_token_parse(token, strlen(token), &id), 0);
	ck_assert(id == 0x1234567890abcdefULL);
	token[5] = token[5] == 'a' ? 'b' : 'a'; /* another id, same MAC: must fail */
	ck_assert_int_eq(flow_token_parse(token, strlen(token), &id), -1);
	ck_assert_int_eq(flow_token_parse("zz", 2, &id), -1);
	/* Another secret does not accept our tokens. */
	flow_token_make(42, token);
	flow_init(&(struct flow_config){.flow_secret = "another-secret"});
	ck_assert_int_eq(flow_token_parse(token, strlen(token), &id), -1);
}
END_TEST

START_TEST(test_listen_spec_parsing)
{
	struct listen_spec l;
	ck_assert_int_eq(config_parse_listen("ws:127.0.0.1:8080", &l), 0);
	ck_assert_int_eq(l.proto, PROTO_WS);
	ck_assert_str_eq(l.host, "127.0.0.1");
	ck_assert_int_eq(l.port, 8080);
	ck_assert_int_eq(config_parse_listen("wss:[::1]:8443", &l), 0);
	ck_assert_int_eq(l.proto, PROTO_WSS);
	ck_assert_str_eq(l.host, "::1");
	ck_assert_int_eq(config_parse_listen("udp:0.0.0.0:5060", &l), 0);
	ck_assert_int_eq(config_parse_listen("ws:localhost:80", &l), -1);
	ck_assert_int_eq(config_parse_listen("ws:127.0.0.1:99999", &l), -1);
	ck_assert_int_eq(config_parse_listen("foo:127.0.0.1:80", &l), -1);
	ck_assert_int_eq(config_parse_listen("ws:[::1]8080", &l), -1);
}
END_TEST

START_TEST(test_aor_canonical)
{
	url_t url;
	char text[] = "sip:Alice@EXAMPLE.com;transport=ws";
	ck_assert_int_eq(url_d(&url, text), 0);
	char *aor = sipmsg_aor(&url);
	ck_assert_str_eq(aor, "sip:Alice@example.com");
	free(aor);
}
END_TEST

START_TEST(test_check_duplicate_cseq_400)
{
	/* A second CSeq is listed among the errors as a CSeq header, not as an error header:
	 * reading it as one used to crash. */
	const char *reason = NULL;
	ck_assert_int_eq(check("OPTIONS sip:example.com SIP/2.0\r\n" REQ_HEAD
			       "CSeq: 1 OPTIONS\r\nCSeq: 7 OPTIONS\r\n\r\n",
			       true, &reason),
			 400);
	ck_assert_str_eq(reason, "Duplicate CSeq header");
}
END_TEST

START_TEST(test_check_empty_body_under_content_length_400)
{
	const char *reason = NULL;
	ck_assert_int_eq(check("MESSAGE sip:bob@example.com SIP/2.0\r\n" REQ_HEAD
			       "CSeq: 1 MESSAGE\r\nContent-Length: 50\r\n\r\n",
			       true, &reason),
			 400);
	ck_assert_str_eq(reason, "Body shorter than Content-Length");
}
END_TEST

START_TEST(test_check_sip_version_505)
{
	const char *reason = NULL;
	ck_assert_int_eq(check("OPTIONS sip:example.com SIP/3.0\r\n" REQ_HEAD "CSeq: 1 OPTIONS\r\n\r\n",
			       true, &reason),
			 505);
}
END_TEST

START_TEST(test_check_too_many_vias_483)
{
	char *text = strdup("OPTIONS sip:example.com SIP/2.0\r\n");
	for (int i = 0; i < SIPMSG_MAX_VIAS; i++) {
		char *more = NULL;
		ck_assert_int_gt(asprintf(&more, "%sVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK%d\r\n", text, i), 0);
		free(text);
		text = more;
	}
	char *full = NULL;
	ck_assert_int_gt(asprintf(&full, "%s" REQ_HEAD "CSeq: 1 OPTIONS\r\n\r\n", text), 0);
	const char *reason = NULL;
	ck_assert_int_eq(check(full, true, &reason), 483); /* 70 + the one in REQ_HEAD */
	ck_assert_str_eq(reason, "Too many Via headers");
	free(full);
	free(text);
}
END_TEST

/* ---- stream framing (TCP, TLS) ---- */

struct framed {
	int messages, pings;
	char bodies[4][64];
	char call_ids[4][32];
};

static void on_framed(void *arg, msg_t *msg)
{
	struct framed *fr = arg;
	if (!msg) {
		fr->pings++;
		return;
	}
	sip_t *sip = sip_object(msg);
	int i = fr->messages++;
	if (i < 4) {
		snprintf(fr->call_ids[i], sizeof(fr->call_ids[i]), "%s", sip->sip_call_id->i_id);
		if (sip->sip_payload)
			snprintf(fr->bodies[i], sizeof(fr->bodies[i]), "%.*s",
				 (int)sip->sip_payload->pl_len, sip->sip_payload->pl_data);
	}
}

#define STREAM_MSG(callid, body)                                                                   \
	"MESSAGE sip:bob@example.com SIP/2.0\r\n"                                                  \
	"Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK-" callid "\r\n"                                 \
	"Max-Forwards: 70\r\nTo: <sip:bob@example.com>\r\n"                                        \
	"From: <sip:alice@example.com>;tag=1\r\nCall-ID: " callid "\r\nCSeq: 1 MESSAGE\r\n"        \
	"Content-Type: text/plain\r\n"                                                             \
	"Content-Length: " #body "\r\n\r\n"

START_TEST(test_stream_frames_by_content_length_byte_by_byte)
{
	/* Two messages with bodies, a ping between them, fed one byte at a time. */
	const char *text = STREAM_MSG("one", 5) "hello" "\r\n\r\n" STREAM_MSG("two", 11) "hello world";
	struct sipmsg_stream *st = sipmsg_stream_create(65536);
	struct framed fr = {0};
	msg_t *bad = NULL;
	for (size_t i = 0; text[i]; i++)
		ck_assert_int_eq(sipmsg_stream_feed(st, text + i, 1, on_framed, &fr, &bad), 0);
	ck_assert_int_eq(fr.messages, 2);
	ck_assert_int_eq(fr.pings, 1);
	ck_assert_str_eq(fr.call_ids[0], "one");
	ck_assert_str_eq(fr.bodies[0], "hello");
	ck_assert_str_eq(fr.bodies[1], "hello world");
	ck_assert_uint_eq(sipmsg_stream_pending(st), 0);
	sipmsg_stream_destroy(st);
}
END_TEST

START_TEST(test_stream_pipelined_messages_in_one_read)
{
	const char *text = STREAM_MSG("a", 1) "x" STREAM_MSG("b", 2) "yy" STREAM_MSG("c", 3) "zz";
	struct sipmsg_stream *st = sipmsg_stream_create(65536);
	struct framed fr = {0};
	msg_t *bad = NULL;
	ck_assert_int_eq(sipmsg_stream_feed(st, text, strlen(text), on_framed, &fr, &bad), 0);
	/* The third body lacks a byte: held until it comes. */
	ck_assert_int_eq(fr.messages, 2);
	ck_assert_uint_gt(sipmsg_stream_pending(st), 0);
	ck_assert_int_eq(sipmsg_stream_feed(st, "z", 1, on_framed, &fr, &bad), 0);
	ck_assert_int_eq(fr.messages, 3);
	ck_assert_str_eq(fr.call_ids[2], "c");
	ck_assert_str_eq(fr.bodies[2], "zzz");
	sipmsg_stream_destroy(st);
}
END_TEST

START_TEST(test_stream_too_large_and_unframable)
{
	struct framed fr = {0};
	msg_t *bad = NULL;
	struct sipmsg_stream *st = sipmsg_stream_create(1024);
	char big[4096];
	memset(big, 'a', sizeof(big));
	const char *head = "OPTIONS sip:example.com SIP/2.0\r\nX-Pad: ";
	ck_assert_int_eq(sipmsg_stream_feed(st, head, strlen(head), on_framed, &fr, &bad), 0);
	ck_assert_int_eq(sipmsg_stream_feed(st, big, sizeof(big), on_framed, &fr, &bad), SIPMSG_STREAM_TOO_LARGE);
	ck_assert_ptr_null(bad);
	sipmsg_stream_destroy(st);

	/* A body announced larger than the limit is refused before it arrives. */
	st = sipmsg_stream_create(1024);
	const char *huge = "MESSAGE sip:bob@example.com SIP/2.0\r\nCall-ID: h\r\nContent-Length: 100000\r\n\r\nab";
	ck_assert_int_eq(sipmsg_stream_feed(st, huge, strlen(huge), on_framed, &fr, &bad), SIPMSG_STREAM_TOO_LARGE);
	sipmsg_stream_destroy(st);

	/* No Content-Length: the next bytes cannot be placed; the request is handed back. */
	st = sipmsg_stream_create(65536);
	const char *nocl = "OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK-n\r\n"
			   "Call-ID: n\r\nCSeq: 1 OPTIONS\r\n\r\nOPTIONS sip:example.com SIP/2.0\r\n";
	ck_assert_int_eq(sipmsg_stream_feed(st, nocl, strlen(nocl), on_framed, &fr, &bad), SIPMSG_STREAM_BAD);
	ck_assert_ptr_nonnull(bad);
	ck_assert_ptr_nonnull(sip_object(bad)->sip_request);
	ck_assert_ptr_null(sip_object(bad)->sip_content_length);
	msg_destroy(bad);
	sipmsg_stream_destroy(st);
	ck_assert_int_eq(fr.messages, 0);
}
END_TEST

Suite *sipmsg_suite(void)
{
	Suite *s = suite_create("sipmsg");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, sipmsg_init, sipmsg_shutdown);
	tcase_add_test(tc, test_check_accepts_ws_message_without_content_length);
	tcase_add_test(tc, test_header_as_is_is_sent_as_given);
	tcase_add_test(tc, test_check_requires_content_length_on_streams);
	tcase_add_test(tc, test_check_missing_call_id_400);
	tcase_add_test(tc, test_check_cseq_method_mismatch_400);
	tcase_add_test(tc, test_check_malformed_cseq_400);
	tcase_add_test(tc, test_check_body_shorter_than_content_length_400);
	tcase_add_test(tc, test_check_repeated_single_headers_400);
	tcase_add_test(tc, test_check_tel_uri_416);
	tcase_add_test(tc, test_check_duplicate_cseq_400);
	tcase_add_test(tc, test_check_empty_body_under_content_length_400);
	tcase_add_test(tc, test_check_sip_version_505);
	tcase_add_test(tc, test_check_too_many_vias_483);
	tcase_add_test(tc, test_parse_rejects_garbage_and_nul);
	tcase_add_test(tc, test_parse_nul_where_the_grammar_allows_it);
	tcase_add_test(tc, test_salvage_answers_what_can_be_answered);
	tcase_add_test(tc, test_response_copies_headers_and_adds_to_tag);
	tcase_add_test(tc, test_keepalive_detection);
	tcase_add_test(tc, test_flow_token_roundtrip_and_tamper);
	tcase_add_test(tc, test_listen_spec_parsing);
	tcase_add_test(tc, test_aor_canonical);
	tcase_add_test(tc, test_stream_frames_by_content_length_byte_by_byte);
	tcase_add_test(tc, test_stream_pipelined_messages_in_one_read);
	tcase_add_test(tc, test_stream_too_large_and_unframable);
	suite_add_tcase(s, tc);
	return s;
}
