/** @file test_base.c  The byte helpers every room shares (base/bytes.h) and the keyed
 * HMAC-SHA256 of nonces, flow tokens and cluster signatures (base/hmac.c), against published
 * values: FNV-1a's reference vectors and RFC 4231's HMAC-SHA-256 test cases. */
#include <string.h>

#include "base/bytes.h"
#include "base/hmac.h"
#include "tests/unit/unit.h"

START_TEST(test_fnv1a_reference_values)
{
	ck_assert_uint_eq(fnv1a_str(FNV1A_INIT, ""), 0x811c9dc5u);
	ck_assert_uint_eq(fnv1a_str(FNV1A_INIT, "a"), 0xe40c292cu);
	ck_assert_uint_eq(fnv1a_str(FNV1A_INIT, "foobar"), 0xbf9cf968u);
	/* in pieces, by length or to the NUL, the same as in one go */
	ck_assert_uint_eq(fnv1a_str(fnv1a(FNV1A_INIT, "foo", 3), "bar"), 0xbf9cf968u);
}
END_TEST

START_TEST(test_hex_lower)
{
	const unsigned char raw[] = {0x00, 0x0f, 0xa5, 0xff};
	char out[9];
	memset(out, 'x', sizeof(out));
	hex_lower(raw, sizeof(raw), out);
	ck_assert_str_eq(out, "000fa5ff");
	hex_lower(raw, 0, out);
	ck_assert_str_eq(out, "");
}
END_TEST

static void mac_hex(struct hmac_key *k, const void *const piece[], const size_t len[], int n, char out[65])
{
	unsigned char mac[HMAC_SHA256_LEN];
	ck_assert_int_eq(hmac_sha256(k, piece, len, n, mac), 0);
	hex_lower(mac, sizeof(mac), out);
}

/* RFC 4231 §4.2 and §4.3; the key is set once and each MAC starts afresh from it. */
START_TEST(test_hmac_sha256_rfc4231)
{
	unsigned char key1[20];
	memset(key1, 0x0b, sizeof(key1));
	struct hmac_key *k1 = hmac_key_new(key1, sizeof(key1));
	struct hmac_key *k2 = hmac_key_new((const unsigned char *)"Jefe", 4);
	ck_assert_ptr_nonnull(k1);
	ck_assert_ptr_nonnull(k2);
	char hex[65];
	const void *hi[] = {"Hi There"};
	const size_t hi_len[] = {8};
	mac_hex(k1, hi, hi_len, 1, hex);
	ck_assert_str_eq(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	const char *jefe = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
	const void *whole[] = {"what do ya want for nothing?"};
	const size_t whole_len[] = {28};
	mac_hex(k2, whole, whole_len, 1, hex);
	ck_assert_str_eq(hex, jefe);
	/* the same input in pieces, one of them empty: the same MAC */
	const void *pieces[] = {"what do ya", "", " want for nothing?"};
	const size_t pieces_len[] = {10, 0, 18};
	mac_hex(k2, pieces, pieces_len, 3, hex);
	ck_assert_str_eq(hex, jefe);
	/* and the first key again after the second was used: nothing carried over */
	mac_hex(k1, hi, hi_len, 1, hex);
	ck_assert_str_eq(hex, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	unsigned char mac[HMAC_SHA256_LEN];
	ck_assert_int_eq(hmac_sha256(NULL, hi, hi_len, 1, mac), -1);
	hmac_key_free(k1);
	hmac_key_free(k2);
}
END_TEST

Suite *base_suite(void)
{
	Suite *s = suite_create("base");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_fnv1a_reference_values);
	tcase_add_test(tc, test_hex_lower);
	tcase_add_test(tc, test_hmac_sha256_rfc4231);
	suite_add_tcase(s, tc);
	return s;
}
