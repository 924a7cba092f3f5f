/** @file test_bencode.c  Unit tests for the NG protocol's bencode (media/bencode.c). */
#include <stdlib.h>
#include <string.h>

#include "media/bencode.h"
#include "tests/unit/unit.h"

static int decode(struct bencode_doc *doc, const char *text)
{
	return bencode_decode(doc, text, strlen(text));
}

START_TEST(decodes_an_ng_answer)
{
	struct bencode_doc doc;
	const char *text = "d3:sdp12:v=0\r\no=- 1\r\n6:result2:ok8:warningsl1:a2:bce3:numi-42ee";
	ck_assert_int_eq(decode(&doc, text), 0);
	ck_assert_int_eq(doc.root->type, BENCODE_DICT);
	ck_assert_uint_eq(doc.root->len, 4);
	ck_assert(bencode_is_str(bencode_get(doc.root, "result"), "ok"));
	const struct bencode *sdp = bencode_get(doc.root, "sdp");
	ck_assert_uint_eq(sdp->len, 12);
	ck_assert(memcmp(sdp->s, "v=0\r\no=- 1\r\n", 12) == 0);
	const struct bencode *w = bencode_get(doc.root, "warnings");
	ck_assert_int_eq(w->type, BENCODE_LIST);
	ck_assert_uint_eq(w->len, 2);
	ck_assert(bencode_is_str(w->child, "a"));
	ck_assert(bencode_is_str(w->child->next, "bc"));
	ck_assert_ptr_null(w->child->next->next);
	ck_assert_int_eq(bencode_get(doc.root, "num")->i, -42);
	ck_assert_ptr_null(bencode_get(doc.root, "missing"));
	ck_assert_ptr_null(bencode_get(w, "a")); /* not a dict */
	char out[4];
	ck_assert_str_eq(bencode_get_str(doc.root, "result", out, sizeof(out)), "ok");
	ck_assert_str_eq(bencode_get_str(doc.root, "sdp", out, sizeof(out)), "v=0"); /* truncated */
	ck_assert_ptr_null(bencode_get_str(doc.root, "num", out, sizeof(out)));
	bencode_doc_free(&doc);
}
END_TEST

START_TEST(decodes_empty_and_binary)
{
	struct bencode_doc doc;
	ck_assert_int_eq(decode(&doc, "de"), 0);
	ck_assert_uint_eq(doc.root->len, 0);
	bencode_doc_free(&doc);
	ck_assert_int_eq(decode(&doc, "0:"), 0);
	ck_assert_int_eq(doc.root->type, BENCODE_STR);
	bencode_doc_free(&doc);
	ck_assert_int_eq(bencode_decode(&doc, "3:a\0b", 5), 0); /* strings are bytes */
	ck_assert_uint_eq(doc.root->len, 3);
	bencode_doc_free(&doc);
	ck_assert_int_eq(decode(&doc, "i0e"), 0);
	ck_assert_int_eq(doc.root->i, 0);
	bencode_doc_free(&doc);
	ck_assert_int_eq(decode(&doc, "i999999999999999999e"), 0);
	ck_assert(doc.root->i == 999999999999999999LL);
	bencode_doc_free(&doc);
}
END_TEST

START_TEST(refuses_malformed)
{
	static const char *const bad[] = {
		"",	   "d",	      "l",	   "e",	      "i",	  "ie",	    "i-e",   "i-0e",
		"i01e",	   "i1",      "i1x",	   "01:a",    "2:a",	  "-1:a",   "d1:ae", "di1e1:ae",
		"d1:a1:b", "dle",     "1:ab",	   "dede",    "x",	  "i1e1:a", "l1:a",  "d1:ai1ei2ee",
		"i1234567890123456789e", "99999999999999999999:a",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct bencode_doc doc;
		ck_assert_msg(decode(&doc, bad[i]) == -1, "accepted '%s'", bad[i]);
		ck_assert_ptr_null(doc.items);
	}
}
END_TEST

START_TEST(bounds_depth)
{
	char deep[2 * (BENCODE_MAX_DEPTH + 1) + 1];
	struct bencode_doc doc;
	for (int n = BENCODE_MAX_DEPTH; n <= BENCODE_MAX_DEPTH + 1; n++) {
		memset(deep, 'l', (size_t)n);
		memset(deep + n, 'e', (size_t)n);
		deep[2 * n] = '\0';
		int rc = decode(&doc, deep);
		ck_assert_int_eq(rc, n <= BENCODE_MAX_DEPTH ? 0 : -1);
		if (rc == 0)
			bencode_doc_free(&doc);
	}
}
END_TEST

START_TEST(bounds_items)
{
	/* a list of BENCODE_MAX_ITEMS strings plus the list itself is one too many */
	size_t n = BENCODE_MAX_ITEMS;
	char *big = malloc(2 * n + 3);
	big[0] = 'l';
	for (size_t i = 0; i < n; i++)
		memcpy(big + 1 + 2 * i, "0:", 2);
	big[1 + 2 * n] = 'e';
	struct bencode_doc doc;
	ck_assert_int_eq(bencode_decode(&doc, big, 2 * n + 2), -1);
	big[1 + 2 * (n - 1)] = 'e'; /* one string fewer: fits */
	ck_assert_int_eq(bencode_decode(&doc, big, 2 * n), 0);
	ck_assert_uint_eq(doc.root->len, n - 1);
	bencode_doc_free(&doc);
	free(big);
}
END_TEST

START_TEST(encodes_an_ng_offer)
{
	struct bencode_writer w;
	bencode_w_init(&w);
	bencode_w_raw(&w, "c1 ", 3);
	bencode_w_dict(&w);
	bencode_w_kv(&w, "command", "offer");
	bencode_w_cstr(&w, "flags");
	bencode_w_list(&w);
	bencode_w_cstr(&w, "trust-address");
	bencode_w_end(&w);
	bencode_w_cstr(&w, "n");
	bencode_w_int(&w, -7);
	bencode_w_cstr(&w, "sdp");
	bencode_w_str(&w, "a\0b", 3);
	bencode_w_end(&w);
	ck_assert_int_eq(bencode_w_finish(&w), 0);
	const char want[] = "c1 d7:command5:offer5:flagsl13:trust-addresse1:ni-7e3:sdp3:a\0be";
	ck_assert_uint_eq(w.len, sizeof(want) - 1);
	ck_assert(memcmp(w.buf, want, w.len) == 0);
	/* and it decodes back */
	struct bencode_doc doc;
	ck_assert_int_eq(bencode_decode(&doc, w.buf + 3, w.len - 3), 0);
	ck_assert(bencode_is_str(bencode_get(doc.root, "command"), "offer"));
	ck_assert_int_eq(bencode_get(doc.root, "n")->i, -7);
	bencode_doc_free(&doc);
	bencode_w_free(&w);
}
END_TEST

START_TEST(encoder_refuses_unbalanced)
{
	struct bencode_writer w;
	bencode_w_init(&w);
	bencode_w_dict(&w);
	ck_assert_int_eq(bencode_w_finish(&w), -1); /* open */
	bencode_w_end(&w);
	bencode_w_end(&w);
	ck_assert_int_eq(bencode_w_finish(&w), -1); /* closed twice: sticky */
	bencode_w_free(&w);
	bencode_w_init(&w);
	for (int i = 0; i <= BENCODE_MAX_DEPTH; i++)
		bencode_w_list(&w);
	for (int i = 0; i <= BENCODE_MAX_DEPTH; i++)
		bencode_w_end(&w);
	ck_assert_int_eq(bencode_w_finish(&w), -1); /* too deep for our own decoder */
	bencode_w_free(&w);
	bencode_w_init(&w);
	ck_assert_int_eq(bencode_w_finish(&w), -1); /* nothing written */
}
END_TEST

Suite *bencode_suite(void)
{
	Suite *s = suite_create("bencode");
	TCase *tc = tcase_create("bencode");
	tcase_add_test(tc, decodes_an_ng_answer);
	tcase_add_test(tc, decodes_empty_and_binary);
	tcase_add_test(tc, refuses_malformed);
	tcase_add_test(tc, bounds_depth);
	tcase_add_test(tc, bounds_items);
	tcase_add_test(tc, encodes_an_ng_offer);
	tcase_add_test(tc, encoder_refuses_unbalanced);
	suite_add_tcase(s, tc);
	return s;
}
