/** @file test_limits.c  Unit tests for the per-source limits (transport/limits.c).
 *
 * The loop does not run here, so uv_now stands still: every message arrives "at once", which
 * makes the token bucket's arithmetic exact. The ban's end is covered by the integration test.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <uv.h>

#include "base/config.h"
#include "app/settings.h"
#include "transport/limits.h"
#include "base/loop.h"
#include "base/metrics.h"
#include "tests/unit/unit.h"

static struct app_config all;
static struct limits_config *cfg = &all.limits;

static void setup(void)
{
	settings_defaults(&all);
	cfg->limit_rps = 1;
	cfg->limit_burst = 3;
	cfg->limit_ban_seconds = 30;
	cfg->limit_conns_per_ip = 2;
	string_list_add(&all.auth.trusted_peers, "10.0.0.0/8");
	ck_assert_int_eq(limits_config_check(cfg), 0);
	ck_assert_int_eq(limits_init(cfg, &all.auth.trusted_peers), 0);
}

static void teardown(void)
{
	limits_shutdown();
	uv_run(loop_get(), UV_RUN_NOWAIT); /* let the sweep timer close */
	settings_free(&all);
}

static struct sockaddr_storage v4(const char *text)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *a = (struct sockaddr_in *)&ss;
	a->sin_family = AF_INET;
	inet_pton(AF_INET, text, &a->sin_addr);
	return ss;
}

static struct sockaddr_storage v6(const char *text)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
	a->sin6_family = AF_INET6;
	inet_pton(AF_INET6, text, &a->sin6_addr);
	return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

START_TEST(test_limits_burst_then_ban_with_reply)
{
	struct sockaddr_storage a = v4("192.0.2.7");
	int64_t bans = metrics_get(M_LIMITS_BANS);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(limits_message(SA(a)), LIMITS_PASS);
	ck_assert_int_eq(limits_ban_remaining(SA(a)), 0);
	ck_assert_int_eq(limits_message(SA(a)), LIMITS_REPLY);
	ck_assert_int_eq(limits_ban_remaining(SA(a)), 30);
	ck_assert_int_eq(metrics_get(M_LIMITS_BANS), bans + 1);
	ck_assert_uint_eq(limits_banned_count(), 1);
	/* Still banned: more messages do not start another ban. */
	ck_assert_int_eq(limits_message(SA(a)), LIMITS_REPLY);
	ck_assert_int_eq(metrics_get(M_LIMITS_BANS), bans + 1);
	/* A banned source opens no connection. */
	const char *why;
	ck_assert(!limits_conn_allowed(SA(a), &why));
	ck_assert_str_eq(why, "source banned for too many requests");
	/* Another source is not affected. */
	struct sockaddr_storage b = v4("192.0.2.8");
	ck_assert_int_eq(limits_message(SA(b)), LIMITS_PASS);
}
END_TEST

START_TEST(test_limits_drop_action)
{
	config_set_string(&cfg->limit_ban_action, "drop");
	struct sockaddr_storage a = v6("2001:db8::1");
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(limits_message(SA(a)), LIMITS_PASS);
	ck_assert_int_eq(limits_message(SA(a)), LIMITS_DROP);
}
END_TEST

START_TEST(test_limits_mapped_v4_is_the_v4_source)
{
	struct sockaddr_storage a = v4("192.0.2.9");
	struct sockaddr_storage m = v6("::ffff:192.0.2.9");
	ck_assert_int_eq(limits_message(SA(a)), LIMITS_PASS);
	ck_assert_int_eq(limits_message(SA(m)), LIMITS_PASS);
	ck_assert_int_eq(limits_message(SA(a)), LIMITS_PASS);
	ck_assert_int_eq(limits_message(SA(m)), LIMITS_REPLY);
}
END_TEST

START_TEST(test_limits_trusted_peer_exempt)
{
	struct sockaddr_storage t = v4("10.1.2.3");
	for (int i = 0; i < 50; i++)
		ck_assert_int_eq(limits_message(SA(t)), LIMITS_PASS);
	const char *why;
	for (int i = 0; i < 5; i++) {
		ck_assert(limits_conn_allowed(SA(t), &why));
		limits_conn_opened(SA(t));
	}
}
END_TEST

START_TEST(test_limits_connections_per_ip)
{
	struct sockaddr_storage a = v4("198.51.100.1");
	const char *why;
	int64_t refused = metrics_get(M_LIMITS_CONN_REFUSED);
	ck_assert(limits_conn_allowed(SA(a), &why));
	limits_conn_opened(SA(a));
	ck_assert(limits_conn_allowed(SA(a), &why));
	limits_conn_opened(SA(a));
	ck_assert(!limits_conn_allowed(SA(a), &why));
	ck_assert_str_eq(why, "too many connections from this address");
	ck_assert_int_eq(metrics_get(M_LIMITS_CONN_REFUSED), refused + 1);
	limits_conn_closed(SA(a));
	ck_assert(limits_conn_allowed(SA(a), &why));
}
END_TEST

START_TEST(test_limits_off_passes_everything)
{
	limits_shutdown();
	uv_run(loop_get(), UV_RUN_NOWAIT); /* the sweep timer must be closed before it is reused */
	cfg->limit_rps = 0;
	cfg->limit_conns_per_ip = 0;
	limits_init(cfg, &all.auth.trusted_peers);
	struct sockaddr_storage a = v4("192.0.2.10");
	const char *why;
	for (int i = 0; i < 100; i++) {
		ck_assert_int_eq(limits_message(SA(a)), LIMITS_PASS);
		ck_assert(limits_conn_allowed(SA(a), &why));
		limits_conn_opened(SA(a));
	}
}
END_TEST

START_TEST(test_limits_config_check)
{
	struct app_config bad_all;
	struct limits_config *bad = &bad_all.limits;
	settings_defaults(&bad_all);
	config_set_string(&bad->limit_ban_action, "tarpit");
	bad->limit_ban_seconds = 0;
	bad->limit_header_bytes = 10;
	ck_assert_int_eq(limits_config_check(bad), 3);
	settings_free(&bad_all);
}
END_TEST

Suite *limits_suite(void)
{
	Suite *s = suite_create("limits");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_limits_burst_then_ban_with_reply);
	tcase_add_test(tc, test_limits_drop_action);
	tcase_add_test(tc, test_limits_mapped_v4_is_the_v4_source);
	tcase_add_test(tc, test_limits_trusted_peer_exempt);
	tcase_add_test(tc, test_limits_connections_per_ip);
	tcase_add_test(tc, test_limits_off_passes_everything);
	tcase_add_test(tc, test_limits_config_check);
	suite_add_tcase(s, tc);
	return s;
}
