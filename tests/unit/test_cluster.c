/** @file test_cluster.c  The signatures a node has seen (cluster/seen.c): one request per
 *  signature, kept at least one window, memory given back when quiet. */
#include "cluster/seen.h"
#include "tests/unit/unit.h"

START_TEST(test_seen_once)
{
	seen_init(30);
	time_t t = 1000000;
	ck_assert(!seen_check_and_add(0x1234, t));
	ck_assert(seen_check_and_add(0x1234, t));     /* a copy */
	ck_assert(!seen_check_and_add(0x1235, t));    /* another signature */
	ck_assert(!seen_check_and_add(0, t));	      /* 0 is a key like any */
	ck_assert(seen_check_and_add(0, t + 1));
	seen_shutdown();
}
END_TEST

START_TEST(test_seen_kept_a_window_whenever_it_came)
{
	seen_init(30);
	time_t t = 2000000;
	ck_assert(!seen_check_and_add(1, t));
	ck_assert(!seen_check_and_add(2, t + 29)); /* late in the first generation */
	/* The generation turns at t + 30: both are still known for a whole window after they came. */
	ck_assert(seen_check_and_add(1, t + 30));
	ck_assert(seen_check_and_add(2, t + 58));
	/* After two turns the first has gone (it came 60 s ago: older than any accepted timestamp). */
	ck_assert(!seen_check_and_add(3, t + 60));
	ck_assert(!seen_check_and_add(1, t + 61));
	/* Quiet for two windows: all forgotten. */
	ck_assert(!seen_check_and_add(3, t + 200));
	seen_shutdown();
}
END_TEST

START_TEST(test_seen_many)
{
	/* Enough keys to grow the sets several times; every one is found again. */
	seen_init(30);
	time_t t = 3000000;
	for (uint64_t k = 1; k <= 50000; k++)
		ck_assert(!seen_check_and_add(k * 0x9e3779b97f4a7c15ull, t));
	for (uint64_t k = 1; k <= 50000; k++)
		ck_assert(seen_check_and_add(k * 0x9e3779b97f4a7c15ull, t + 1));
	seen_shutdown();
}
END_TEST

Suite *cluster_suite(void)
{
	Suite *s = suite_create("cluster");
	TCase *tc = tcase_create("seen");
	tcase_add_test(tc, test_seen_once);
	tcase_add_test(tc, test_seen_kept_a_window_whenever_it_came);
	tcase_add_test(tc, test_seen_many);
	suite_add_tcase(s, tc);
	return s;
}
