/** @file test_auth.c  Digest math (RFC 7616 and RFC 2617 vectors), nonces, nc replay, the users
 *  file, trusted-peer blocks, and the whole policy driven through sip_core_receive. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "auth/auth.h"
#include "auth/digest.h"
#include "auth/nonce.h"
#include "auth/users.h"
#include "base/config.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/metrics.h"
#include "base/sipmsg.h"
#include "proxy/proxy.h"
#include "sip/txn.h"
#include "registrar/location.h"
#include "registrar/registrar.h"
#include "tests/unit/outbox.h"
#include "app/dispatch.h"
#include "tests/unit/rooms.h"
#include "tests/unit/unit.h"
#include "transport/flow.h"

/* ---- digest math: published vectors ---- */

static void check_response(enum digest_alg alg, const char *user, const char *realm, const char *pw,
			   const char *method, const char *uri, const char *nonce, const char *nc,
			   const char *cnonce, const char *expected)
{
	char ha1[DIGEST_HEX_MAX], resp[DIGEST_HEX_MAX];
	ck_assert_int_eq(digest_ha1(alg, user, realm, pw, ha1), 0);
	ck_assert_uint_eq(strlen(ha1), digest_hex_len(alg));
	ck_assert_int_eq(digest_response(alg, ha1, nonce, nc, cnonce, method, uri, resp), 0);
	ck_assert_str_eq(resp, expected);
}

START_TEST(test_digest_rfc7616_md5)
{
	/* RFC 7616 §3.9.1 */
	check_response(DIGEST_MD5, "Mufasa", "http-auth@example.org", "Circle of Life", "GET",
		       "/dir/index.html", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "00000001",
		       "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "8ca523f5e9506fed4657c9700eebdbec");
}
END_TEST

START_TEST(test_digest_rfc7616_sha256)
{
	/* RFC 7616 §3.9.1 */
	check_response(DIGEST_SHA256, "Mufasa", "http-auth@example.org", "Circle of Life", "GET",
		       "/dir/index.html", "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "00000001",
		       "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
		       "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
}
END_TEST

START_TEST(test_digest_sha512_256)
{
	/* FIPS 180-4 example (SHA-512/256 of "abc"); RFC 7616's own §3.9.2 example has an open
	 * erratum (4897) and does not reproduce. */
	char out[DIGEST_HEX_MAX];
	const char *abc[] = {"abc"};
	ck_assert_int_eq(digest_hash(DIGEST_SHA512_256, abc, 1, out), 0);
	ck_assert_str_eq(out, "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23");
	/* And parts are joined with ':' (so H(a ":" b) == H("a:b")). */
	const char *ab[] = {"a", "b"}, *joined[] = {"a:b"};
	char x[DIGEST_HEX_MAX], y[DIGEST_HEX_MAX];
	ck_assert_int_eq(digest_hash(DIGEST_SHA512_256, ab, 2, x), 0);
	ck_assert_int_eq(digest_hash(DIGEST_SHA512_256, joined, 1, y), 0);
	ck_assert_str_eq(x, y);
}
END_TEST

START_TEST(test_digest_rfc2617_md5)
{
	/* RFC 2617 §3.5 */
	check_response(DIGEST_MD5, "Mufasa", "testrealm@host.com", "Circle Of Life", "GET", "/dir/index.html",
		       "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001", "0a4f113b",
		       "6629fae49393a05397450978507c4ef1");
}
END_TEST

START_TEST(test_digest_helpers)
{
	enum digest_alg a;
	ck_assert_int_eq(digest_alg_parse("md5", &a), 0);
	ck_assert_int_eq(a, DIGEST_MD5);
	ck_assert_int_eq(digest_alg_parse("sha-256", &a), 0);
	ck_assert_int_eq(a, DIGEST_SHA256);
	ck_assert_int_eq(digest_alg_parse("SHA-512-256", &a), 0);
	ck_assert_int_eq(a, DIGEST_SHA512_256);
	ck_assert_int_eq(digest_alg_parse("MD5-sess", &a), -1);
	ck_assert_int_eq(digest_alg_parse(NULL, &a), -1);
	ck_assert(digest_hex_equal("ABCdef01", "abcDEF01"));
	ck_assert(!digest_hex_equal("abcdef01", "abcdef02"));
	ck_assert(!digest_hex_equal("abcdef0", "abcdef01"));
	uint32_t nc;
	ck_assert_int_eq(digest_nc_parse("0000000a", &nc), 0);
	ck_assert_uint_eq(nc, 10);
	ck_assert_int_eq(digest_nc_parse("FFFFFFFF", &nc), 0);
	ck_assert_uint_eq(nc, 0xffffffffu);
	ck_assert_int_eq(digest_nc_parse("1", &nc), -1);
	ck_assert_int_eq(digest_nc_parse("0000000g", &nc), -1);
	ck_assert_int_eq(digest_nc_parse("000000001", &nc), -1);
	ck_assert_int_eq(digest_nc_parse(NULL, &nc), -1);
}
END_TEST

START_TEST(test_digest_credentials_from_sofia)
{
	sipmsg_init();
	const char *text = "REGISTER sip:example.com SIP/2.0\r\n"
			   "Via: SIP/2.0/WS h.invalid;branch=z9hG4bKx\r\n"
			   "Max-Forwards: 70\r\nTo: <sip:alice@example.com>\r\nFrom: <sip:alice@example.com>;tag=1\r\n"
			   "Call-ID: c\r\nCSeq: 1 REGISTER\r\n"
			   "Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"n1\", "
			   "uri=\"sip:example.com\", response=\"abc\", algorithm=SHA-256, cnonce=\"cn\", "
			   "qop=auth, nc=00000002\r\nContent-Length: 0\r\n\r\n";
	const char *why;
	msg_t *m = sipmsg_parse(text, strlen(text), &why);
	ck_assert_ptr_nonnull(m);
	sip_t *sip = sip_object(m);
	ck_assert_ptr_nonnull(sip->sip_authorization);
	struct digest_credentials c;
	ck_assert_int_eq(digest_credentials_get(msg_home(m), sip->sip_authorization->au_params, &c), 0);
	ck_assert_str_eq(c.username, "alice");
	ck_assert_str_eq(c.realm, "example.com");
	ck_assert_str_eq(c.nonce, "n1");
	ck_assert_str_eq(c.uri, "sip:example.com");
	ck_assert_str_eq(c.response, "abc");
	ck_assert_str_eq(c.algorithm, "SHA-256");
	ck_assert_str_eq(c.cnonce, "cn");
	ck_assert_str_eq(c.qop, "auth");
	ck_assert_str_eq(c.nc, "00000002");
	msg_destroy(m);
	sipmsg_shutdown();
}
END_TEST

/* ---- nonces ---- */

START_TEST(test_nonce_sign_verify)
{
	nonce_init("a secret");
	char n[NONCE_LEN + 1];
	time_t now = 1700000000, issued = 0;
	nonce_make("example.com", now, n);
	ck_assert_uint_eq(strlen(n), NONCE_LEN);
	ck_assert_int_eq(nonce_check(n, "example.com", now, 300, &issued), NONCE_VALID);
	ck_assert_int_eq(issued, now);
	/* Each nonce is new even within a second. */
	char n2[NONCE_LEN + 1];
	nonce_make("example.com", now, n2);
	ck_assert_str_ne(n, n2);
	/* Another realm, a changed digit, a truncated or foreign value: not ours. */
	ck_assert_int_eq(nonce_check(n, "other.com", now, 300, NULL), NONCE_INVALID);
	char t[NONCE_LEN + 1];
	memcpy(t, n, sizeof(t));
	t[40] = t[40] == '0' ? '1' : '0';
	ck_assert_int_eq(nonce_check(t, "example.com", now, 300, NULL), NONCE_INVALID);
	memcpy(t, n, sizeof(t));
	t[15] = t[15] == '0' ? '1' : '0'; /* the time stamp is signed too */
	ck_assert_int_eq(nonce_check(t, "example.com", now, 300, NULL), NONCE_INVALID);
	ck_assert_int_eq(nonce_check("abc", "example.com", now, 300, NULL), NONCE_INVALID);
	ck_assert_int_eq(nonce_check(NULL, "example.com", now, 300, NULL), NONCE_INVALID);
	ck_assert_int_eq(nonce_check("7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "example.com", now, 300, NULL),
			 NONCE_INVALID);
	/* Same secret (another node, a restart): accepted; another secret: not. */
	nonce_init("a secret");
	ck_assert_int_eq(nonce_check(n, "example.com", now, 300, NULL), NONCE_VALID);
	nonce_init("another secret");
	ck_assert_int_eq(nonce_check(n, "example.com", now, 300, NULL), NONCE_INVALID);
	nonce_init(NULL);
	ck_assert_int_eq(nonce_check(n, "example.com", now, 300, NULL), NONCE_INVALID);
}
END_TEST

START_TEST(test_nonce_expiry)
{
	nonce_init("k");
	char n[NONCE_LEN + 1];
	time_t now = 1700000000, issued = 0;
	nonce_make("r", now, n);
	ck_assert_int_eq(nonce_check(n, "r", now + 300, 300, &issued), NONCE_VALID);
	ck_assert_int_eq(nonce_check(n, "r", now + 301, 300, &issued), NONCE_STALE);
	ck_assert_int_eq(issued, now);
	ck_assert_int_eq(nonce_check(n, "r", now + 100000, 300, NULL), NONCE_STALE);
	/* From the future beyond a little clock skew: not one we gave out. */
	ck_assert_int_eq(nonce_check(n, "r", now - 5, 300, NULL), NONCE_VALID);
	ck_assert_int_eq(nonce_check(n, "r", now - 60, 300, NULL), NONCE_INVALID);
}
END_TEST

/* ---- nonce counts ----
 * Nonces that are not of the table's epoch (these short strings, another node's, an earlier
 * run's) are kept in a bounded hash with a floor; our own are kept in the ring. */

START_TEST(test_nc_replay_rejected)
{
	ck_assert_int_eq(nc_table_init(16, 300), 0);
	time_t now = 1700000000;
	const char *a = "aaaa", *b = "bbbb";
	ck_assert_int_eq(nc_table_use(a, now, 1, now), NC_OK);
	ck_assert_int_eq(nc_table_use(a, now, 1, now), NC_REPLAY);
	ck_assert_int_eq(nc_table_use(a, now, 2, now), NC_OK);
	ck_assert_int_eq(nc_table_use(a, now, 5, now), NC_OK);
	ck_assert_int_eq(nc_table_use(a, now, 4, now), NC_REPLAY);
	ck_assert_int_eq(nc_table_use(a, now, 5, now), NC_REPLAY);
	/* Counts are per nonce. */
	ck_assert_int_eq(nc_table_use(b, now, 1, now), NC_OK);
	ck_assert_int_eq(nc_table_use(a, now, 6, now), NC_OK);
	ck_assert_uint_eq(nc_table_count(), 2);
	nc_table_shutdown();
	ck_assert_uint_eq(nc_table_count(), 0);
}
END_TEST

START_TEST(test_nc_table_full_never_allows_replay)
{
	ck_assert_int_eq(nc_table_init(2, 300), 0);
	time_t now = 1700000000;
	ck_assert_int_eq(nc_table_use("n1", now - 30, 1, now), NC_OK);
	ck_assert_int_eq(nc_table_use("n2", now - 20, 1, now), NC_OK);
	/* A third pushes out the oldest ... */
	ck_assert_int_eq(nc_table_use("n3", now - 10, 1, now), NC_OK);
	ck_assert_uint_eq(nc_table_count(), 2);
	/* ... which can then not be replayed (nor used again: the client gets a new nonce) ... */
	ck_assert_int_eq(nc_table_use("n1", now - 30, 1, now), NC_FORGOTTEN);
	ck_assert_int_eq(nc_table_use("n1", now - 30, 2, now), NC_FORGOTTEN);
	/* ... nor can an unknown nonce as old as it; newer ones still work. */
	ck_assert_int_eq(nc_table_use("n0", now - 40, 1, now), NC_FORGOTTEN);
	ck_assert_int_eq(nc_table_use("n2", now - 20, 2, now), NC_OK);
	ck_assert_int_eq(nc_table_use("n4", now - 5, 1, now), NC_OK);
	nc_table_shutdown();
}
END_TEST

START_TEST(test_nc_expired_forgotten)
{
	ck_assert_int_eq(nc_table_init(8, 10), 0);
	time_t now = 1700000000;
	ck_assert_int_eq(nc_table_use("old", now, 1, now), NC_OK);
	ck_assert_int_eq(nc_table_use("new", now + 5, 1, now + 5), NC_OK);
	ck_assert_uint_eq(nc_table_count(), 2);
	/* Past its lifetime, an entry goes (its nonce is refused as stale by its time stamp). */
	ck_assert_int_eq(nc_table_use("new", now + 5, 2, now + 12), NC_OK);
	ck_assert_uint_eq(nc_table_count(), 1);
	nc_table_shutdown();
}
END_TEST

/* Our own nonces, past the table's size: with 64 slots and 20000 challenges (all in one
 * second, as under load), every answer given within 64 challenges of its nonce is taken, and
 * every replay refused. The old table refused such answers once it had evicted a nonce of the
 * same second. */
START_TEST(test_nc_own_nonces_past_table_size)
{
	ck_assert_int_eq(nc_table_init(64, 300), 0);
	nonce_init("k");
	time_t now = 1700000000;
	enum { LAG = 40, ROUNDS = 20000 };
	static char n[ROUNDS][NONCE_LEN + 1];
	int64_t evicted = metrics_get(M_AUTH_NONCES_EVICTED);
	for (int i = 0; i < ROUNDS; i++) {
		nonce_make("r", now, n[i]);
		if (i < LAG)
			continue;
		/* Answered LAG challenges later, while the table has seen many more than its size. */
		ck_assert_int_eq(nonce_check(n[i - LAG], "r", now, 300, NULL), NONCE_VALID);
		ck_assert_int_eq(nc_table_use(n[i - LAG], now, 1, now), NC_OK);
		ck_assert_int_eq(nc_table_use(n[i - LAG], now, 1, now), NC_REPLAY);
		if (i % 7 == 0) /* some clients reuse their nonce: nc 2 is fine, nc 2 again is not */
			ck_assert_int_eq(nc_table_use(n[i - LAG], now, 2, now), NC_OK);
		if (i % 7 == 0)
			ck_assert_int_eq(nc_table_use(n[i - LAG], now, 2, now), NC_REPLAY);
	}
	/* A nonce answered after its slot went to a newer one is refused, never taken as new;
	 * a used one of those, still fresh, counts as evicted early. */
	ck_assert_int_eq(nc_table_use(n[ROUNDS - 65], now, 2, now), NC_FORGOTTEN);
	ck_assert_int_eq(nc_table_use(n[ROUNDS - 65], now, 1, now), NC_FORGOTTEN);
	ck_assert_int_eq(nc_table_use(n[ROUNDS - 64], now, 1, now), NC_REPLAY);
	ck_assert_int_eq(nc_table_use(n[ROUNDS - 1], now, 1, now), NC_OK);
	ck_assert_int_gt(metrics_get(M_AUTH_NONCES_EVICTED), evicted + ROUNDS - 2 * 64);
	ck_assert_uint_le(nc_table_count(), 64);
	nc_table_shutdown();
}
END_TEST

/* Slots stop at nc 254; a nonce used more often is kept exactly in the hash. */
START_TEST(test_nc_own_nonce_used_many_times)
{
	ck_assert_int_eq(nc_table_init(64, 300), 0);
	time_t now = 1700000000;
	char n[NONCE_LEN + 1];
	nonce_make("r", now, n);
	for (uint32_t nc = 1; nc <= 600; nc++)
		ck_assert_int_eq(nc_table_use(n, now, nc, now), NC_OK);
	ck_assert_int_eq(nc_table_use(n, now, 600, now), NC_REPLAY);
	ck_assert_int_eq(nc_table_use(n, now, 254, now), NC_REPLAY);
	ck_assert_int_eq(nc_table_use(n, now, 1000, now), NC_OK);
	ck_assert_uint_eq(nc_table_count(), 1);
	nc_table_shutdown();
}
END_TEST

/* A nonce of an earlier table (a restart with the same secret, another node) is foreign: still
 * checked for replays, in the hash. */
START_TEST(test_nc_nonce_of_another_epoch)
{
	ck_assert_int_eq(nc_table_init(64, 300), 0);
	time_t now = 1700000000;
	char n[NONCE_LEN + 1];
	nonce_make("r", now, n);
	ck_assert_int_eq(nc_table_init(64, 300), 0);
	ck_assert_int_eq(nc_table_use(n, now, 1, now), NC_OK);
	ck_assert_int_eq(nc_table_use(n, now, 1, now), NC_REPLAY);
	ck_assert_int_eq(nc_table_use(n, now, 2, now), NC_OK);
	nc_table_shutdown();
}
END_TEST

/* ---- the users file ---- */

START_TEST(test_users_parse)
{
	char md5[DIGEST_HEX_MAX], sha[DIGEST_HEX_MAX], text[1024];
	digest_ha1(DIGEST_MD5, "carol", "example.com", "carol-pw", md5);
	digest_ha1(DIGEST_SHA256, "carol", "example.com", "carol-pw", sha);
	for (char *p = sha; *p; p++) /* upper case hex is fine too */
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	snprintf(text, sizeof(text),
		 "# comment\n"
		 "\n"
		 "   \t\n"
		 "  # indented comment\r\n"
		 "alice:wonder:land # not a comment\r\n"
		 "bob@Example.COM:bob-pw\n"
		 "bob:bob-anywhere\n"
		 "carol:ha1:MD5=%s:sha-256=%s\n"
		 "dave:x", /* no newline at the end */
		 md5, sha);
	struct users *u = users_parse(text, strlen(text), "test");
	ck_assert_ptr_nonnull(u);
	ck_assert_uint_eq(users_count(u), 5);

	const struct user_entry *e = users_find(u, "alice", "example.com");
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->password, "wonder:land # not a comment");
	ck_assert_ptr_null(e->domain);

	/* user@domain wins over the bare name in its domain; the bare name serves the others. */
	e = users_find(u, "bob", "EXAMPLE.com");
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->password, "bob-pw");
	ck_assert_str_eq(e->domain, "example.com");
	e = users_find(u, "bob", "other.org");
	ck_assert_str_eq(e->password, "bob-anywhere");
	ck_assert_ptr_null(users_find(u, "bob@example.com", "other.org"));
	ck_assert_ptr_null(users_find(u, "Alice", "example.com")); /* user parts are case-sensitive */
	ck_assert_ptr_null(users_find(u, "eve", "example.com"));
	ck_assert_ptr_null(users_find(u, "", "example.com"));

	/* HA1 from a password, and stored ones. */
	char ha1[DIGEST_HEX_MAX], want[DIGEST_HEX_MAX];
	e = users_find(u, "alice", "example.com");
	ck_assert_int_eq(users_ha1(e, DIGEST_SHA256, "example.com", ha1), 0);
	digest_ha1(DIGEST_SHA256, "alice", "example.com", "wonder:land # not a comment", want);
	ck_assert_str_eq(ha1, want);
	e = users_find(u, "carol", "example.com");
	ck_assert_ptr_null(e->password);
	ck_assert_int_eq(users_ha1(e, DIGEST_MD5, "example.com", ha1), 0);
	ck_assert_str_eq(ha1, md5);
	ck_assert_int_eq(users_ha1(e, DIGEST_SHA256, "example.com", ha1), 0);
	digest_ha1(DIGEST_SHA256, "carol", "example.com", "carol-pw", want);
	ck_assert_str_eq(ha1, want);
	ck_assert_int_eq(users_ha1(e, DIGEST_SHA512_256, "example.com", ha1), -1);
	users_free(u);
}
END_TEST

START_TEST(test_users_errors_reject_the_whole_file)
{
	static const char *const bad[] = {
		"alice\n",				     /* no ':' */
		":pw\n",				     /* no name */
		"alice:\n",				     /* empty password */
		"al ice:pw\n",				     /* blank in the name */
		"@example.com:pw\n",			     /* empty user */
		"alice@:pw\n",				     /* empty domain */
		"alice:ha1:\n",				     /* no HA1 */
		"alice:ha1:MD5=abc\n",			     /* short */
		"alice:ha1:MD4=0123456789abcdef0123456789abcdef\n", /* unknown algorithm */
		"alice:ha1:MD5=0123456789abcdef0123456789abcdeg\n", /* not hex */
		"alice:ha1:MD5=0123456789abcdef0123456789abcdef:MD5=0123456789abcdef0123456789abcdef\n",
		"alice:ha1:MD5=0123456789abcdef0123456789abcdef:\n",
		"alice:ha1:0123456789abcdef0123456789abcdef\n",
		"alice:ha1:SHA-256=0123456789abcdef0123456789abcdef\n", /* MD5 length for SHA-256 */
		"alice:one\nbob:two\nalice:three\n",	     /* twice */
		"ok:fine\nbroken\n",			     /* one bad line spoils the file */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct users *u = users_parse(bad[i], strlen(bad[i]), "bad");
		ck_assert_msg(u == NULL, "accepted: %s", bad[i]);
	}
	/* Empty and comment-only files are valid: they hold no users. */
	struct users *u = users_parse("# nobody\n", 9, "empty");
	ck_assert_ptr_nonnull(u);
	ck_assert_uint_eq(users_count(u), 0);
	users_free(u);
	/* A NUL inside a line is an error, not a cut. */
	static const char nul[] = "alice:pw\0x\n";
	ck_assert_ptr_null(users_parse(nul, sizeof(nul) - 1, "nul"));
}
END_TEST

START_TEST(test_users_load_file)
{
	char path[] = "/tmp/sipedge-users-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	const char *text = "alice:pw\n";
	ck_assert_int_eq(write(fd, text, strlen(text)), (int)strlen(text));
	close(fd);
	struct users *u = users_load(path);
	ck_assert_ptr_nonnull(u);
	ck_assert_uint_eq(users_count(u), 1);
	users_free(u);
	unlink(path);
	ck_assert_ptr_null(users_load(path));
	ck_assert_ptr_null(users_load("/"));
}
END_TEST

/* ---- trusted peers ---- */

static struct sockaddr_storage addr_of(const char *text)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, text, &in->sin_addr) == 1)
		in->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1)
		in6->sin6_family = AF_INET6;
	return ss;
}

static bool cidr_has(const char *block, const char *addr)
{
	struct cidr c;
	ck_assert_int_eq(net_cidr_parse(block, &c), 0);
	struct sockaddr_storage ss = addr_of(addr);
	return net_cidr_match(&c, (struct sockaddr *)&ss);
}

START_TEST(test_cidr)
{
	ck_assert(cidr_has("10.0.0.0/8", "10.200.1.2"));
	ck_assert(!cidr_has("10.0.0.0/8", "11.0.0.1"));
	ck_assert(cidr_has("192.168.1.128/25", "192.168.1.200"));
	ck_assert(!cidr_has("192.168.1.128/25", "192.168.1.100"));
	ck_assert(cidr_has("203.0.113.7", "203.0.113.7"));
	ck_assert(!cidr_has("203.0.113.7", "203.0.113.8"));
	ck_assert(cidr_has("0.0.0.0/0", "198.51.100.1"));
	ck_assert(cidr_has("2001:db8::/32", "2001:db8:1::5"));
	ck_assert(!cidr_has("2001:db8::/32", "2001:db9::5"));
	ck_assert(cidr_has("::1", "::1"));
	ck_assert(!cidr_has("::1", "127.0.0.1"));
	ck_assert(cidr_has("127.0.0.0/8", "::ffff:127.0.0.5")); /* v4-mapped */
	ck_assert(!cidr_has("127.0.0.0/8", "::1"));
	struct cidr c;
	ck_assert_int_eq(net_cidr_parse("10.0.0.0/33", &c), -1);
	ck_assert_int_eq(net_cidr_parse("10.0.0.0/", &c), -1);
	ck_assert_int_eq(net_cidr_parse("10.0.0/8", &c), -1);
	ck_assert_int_eq(net_cidr_parse("::/129", &c), -1);
	ck_assert_int_eq(net_cidr_parse("example.com/8", &c), -1);
	ck_assert_int_eq(net_cidr_parse("", &c), -1);
	ck_assert_int_eq(net_cidr_parse("10.0.0.0/8x", &c), -1);
}
END_TEST

START_TEST(test_config_check)
{
	struct app_config all;
	settings_defaults(&all);
	struct auth_config *c = &all.auth;
	ck_assert_int_eq(auth_config_check(c), 0);
	ck_assert_int_eq(c->auth_algorithms.count, 2);
	ck_assert_str_eq(c->auth_algorithms.item[0], "MD5");
	ck_assert_int_eq(c->nonce_ttl, 300);
	string_list_add(&c->auth_algorithms, "MD5-sess");
	string_list_add(&c->auth_algorithms, "md5");
	string_list_add(&c->trusted_peers, "10.0.0.0/99");
	c->nonce_ttl = 0;
	config_set_string(&c->realm, "bad\"realm");
	ck_assert_int_eq(auth_config_check(c), 5);
	settings_free(&all);
}
END_TEST

/* ---- the policy, through sip_core_receive ---- */

#define DOMAIN "example.com"

static struct app_config cfg;
static uv_loop_t loop;
#define NET 3 /* flow 3: a TCP peer on the network side, where SHA-256 is offered too */
static struct outbox boxes[4];
static struct flow *flows[4];
static const struct listen_spec listener = {.proto = PROTO_WS, .host = "127.0.0.1", .port = 8080};
static const struct listen_spec tcp_listener = {.proto = PROTO_TCP, .host = "127.0.0.1", .port = 5060};
static char users_path[64];
static unsigned seq;

static void clear_box(int i) { outbox_clear(&boxes[i]); }

static void write_users(const char *text)
{
	FILE *fp = fopen(users_path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	fclose(fp);
	chmod(users_path, 0600);
}

/* Start the daemon's rooms on capturing flows; peer 0 is 127.0.0.1, 1 is 10.1.1.1, 2 is
 * 192.0.2.9, all over WebSocket; 3 (NET) is 127.0.0.1 over TCP. adjust changes the
 * configuration before auth starts. */
static void start(void (*adjust)(struct app_config *))
{
	settings_defaults(&cfg);
	string_list_add(&cfg.domains, DOMAIN);
	string_list_add(&cfg.listen_text, "ws:127.0.0.1:8080");
	string_list_add(&cfg.listen_text, "tcp:127.0.0.1:5060");
	snprintf(users_path, sizeof(users_path), "/tmp/sipedge-auth-test-%d", (int)getpid());
	write_users("alice:alice-pw\nbob:bob-pw\n");
	config_set_string(&cfg.auth.users_file, users_path);
	if (adjust)
		adjust(&cfg);
	rooms_start(&loop, &cfg);
	memset(boxes, 0, sizeof(boxes));
	static const char *const peers[] = {"127.0.0.1", "10.1.1.1", "192.0.2.9"};
	for (int i = 0; i < 3; i++) {
		struct sockaddr_storage ss = addr_of(peers[i]);
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)(42000 + i));
		flows[i] = flow_create(PROTO_WS, (struct sockaddr *)&ss, &listener, &outbox_ops, &boxes[i]);
		ck_assert_ptr_nonnull(flows[i]);
	}
	struct sockaddr_storage ss = addr_of("127.0.0.1");
	((struct sockaddr_in *)&ss)->sin_port = htons(42003);
	flows[NET] = flow_create(PROTO_TCP, (struct sockaddr *)&ss, &tcp_listener, &outbox_ops, &boxes[NET]);
	ck_assert_ptr_nonnull(flows[NET]);
}

static void teardown(void)
{
	proxy_shutdown();
	for (int i = 0; i < 4; i++)
		if (flows[i])
			flow_destroy(flows[i]);
	rooms_stop(&loop, &cfg);
	for (int i = 0; i < 4; i++)
		clear_box(i);
	unlink(users_path);
}

/* Deliver text on flow i and return the final answer it caused there (parsed; caller destroys):
 * the one message sent, or for an INVITE the one after 100 Trying. */
static msg_t *exchange(int i, const char *text)
{
	int before = boxes[i].n;
	dispatch_receive(flows[i], text, strlen(text));
	int want = strncmp(text, "INVITE ", 7) == 0 ? 2 : 1;
	ck_assert_msg(boxes[i].n == before + want, "expected %d messages on flow %d, got %d", want, i,
		      boxes[i].n - before);
	if (want == 2)
		ck_assert(strncmp(boxes[i].msg[before], "SIP/2.0 100 ", 12) == 0);
	const char *last = boxes[i].msg[boxes[i].n - 1], *why;
	msg_t *m = sipmsg_parse(last, strlen(last), &why);
	ck_assert_ptr_nonnull(m);
	return m;
}

static int status_of(msg_t *m) { return sip_object(m)->sip_status ? sip_object(m)->sip_status->st_status : 0; }

/* A REGISTER from user for aor_user; auth is an extra header line (with CRLF) or "". */
static char *register_text(const char *aor_user, const char *auth)
{
	static char text[4096];
	seq++;
	snprintf(text, sizeof(text),
		 "REGISTER sip:" DOMAIN " SIP/2.0\r\n"
		 "Via: SIP/2.0/WS h.invalid;branch=z9hG4bKauth%u\r\n"
		 "Max-Forwards: 70\r\n"
		 "To: <sip:%s@" DOMAIN ">\r\n"
		 "From: <sip:%s@" DOMAIN ">;tag=f%u\r\n"
		 "Call-ID: reg-%s\r\n"
		 "CSeq: %u REGISTER\r\n"
		 "Contact: <sip:%s@h.invalid;transport=ws>\r\n"
		 "Expires: 600\r\n"
		 "%s"
		 "Content-Length: 0\r\n\r\n",
		 seq, aor_user, aor_user, seq, aor_user, seq, aor_user, auth);
	return text;
}

/* The n-th challenge header's parameter (unquoted, in the message's home). */
static const char *challenge_param(msg_t *m, int n, const char *name)
{
	sip_t *sip = sip_object(m);
	msg_auth_t *h = sip->sip_www_authenticate ? sip->sip_www_authenticate : sip->sip_proxy_authenticate;
	for (int i = 0; h && i < n; i++)
		h = h->au_next;
	if (!h)
		return NULL;
	const char *v = msg_params_find(h->au_params, name);
	return v ? msg_unquote_dup(msg_home(m), v) : NULL;
}

static int count_challenges(msg_t *m)
{
	sip_t *sip = sip_object(m);
	int n = 0;
	for (msg_auth_t *h = sip->sip_www_authenticate; h; h = h->au_next)
		n++;
	for (msg_auth_t *h = sip->sip_proxy_authenticate; h; h = h->au_next)
		n++;
	return n;
}

/* Credentials as a header line: hname "Authorization" or "Proxy-Authorization". */
static char *credentials(const char *hname, const char *user, const char *pw, const char *realm,
			 const char *nonce, const char *alg, const char *method, const char *uri, unsigned nc)
{
	static char line[1024];
	enum digest_alg a;
	ck_assert_int_eq(digest_alg_parse(alg, &a), 0);
	char ha1[DIGEST_HEX_MAX], resp[DIGEST_HEX_MAX], ncs[9];
	snprintf(ncs, sizeof(ncs), "%08x", nc);
	digest_ha1(a, user, realm, pw, ha1);
	digest_response(a, ha1, nonce, ncs, "c0ffee", method, uri, resp);
	snprintf(line, sizeof(line),
		 "%s: Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", response=\"%s\", "
		 "algorithm=%s, cnonce=\"c0ffee\", qop=auth, nc=%s\r\n",
		 hname, user, realm, nonce, uri, resp, alg, ncs);
	return line;
}

/* REGISTER for user on flow i: challenged, then answered with pw; returns the final status. */
static int register_on(int i, const char *user, const char *pw, const char *alg)
{
	msg_t *c = exchange(i, register_text(user, ""));
	ck_assert_int_eq(status_of(c), 401);
	char nonce[NONCE_LEN + 1];
	snprintf(nonce, sizeof(nonce), "%s", challenge_param(c, 0, "nonce="));
	msg_destroy(c);
	msg_t *r = exchange(i, register_text(user, credentials("Authorization", user, pw, DOMAIN, nonce, alg,
								"REGISTER", "sip:" DOMAIN, 1)));
	int st = status_of(r);
	msg_destroy(r);
	return st;
}

/* The algorithm decides the side: browsers (ws) are offered MD5 alone, the network more. */
static int register_with(const char *user, const char *pw, const char *alg)
{
	return register_on(strcmp(alg, "MD5") == 0 ? 0 : NET, user, pw, alg);
}

static void setup_default(void) { start(NULL); }

START_TEST(test_register_challenge_md5_first)
{
	int64_t before = metrics_get(M_AUTH_CHALLENGES);
	/* Over WebSocket: MD5 alone (auth.websocket_algorithms), one header, which every browser
	 * client reads the same way (sipML5 gives up on several for one realm). */
	msg_t *c = exchange(0, register_text("alice", ""));
	ck_assert_int_eq(status_of(c), 401);
	ck_assert_int_eq(count_challenges(c), 1);
	ck_assert_str_eq(challenge_param(c, 0, "algorithm="), "MD5");
	msg_destroy(c);
	ck_assert_int_eq(metrics_get(M_AUTH_CHALLENGES), before + 1);
	before++;
	/* SHA-256 is refused over WebSocket: it was not offered there. */
	ck_assert_int_eq(register_on(0, "bob", "bob-pw", "SHA-256"), 401);
	before += 2;
	c = exchange(NET, register_text("alice", ""));
	ck_assert_int_eq(status_of(c), 401);
	/* MD5 first (SIP.js reads the first), SHA-256, and MD5 again last (JsSIP reads the last). */
	ck_assert_int_eq(count_challenges(c), 3);
	ck_assert_ptr_nonnull(sip_object(c)->sip_www_authenticate);
	ck_assert_ptr_null(sip_object(c)->sip_proxy_authenticate);
	ck_assert_str_eq(sip_object(c)->sip_www_authenticate->au_scheme, "Digest");
	ck_assert_str_eq(challenge_param(c, 0, "algorithm="), "MD5");
	ck_assert_str_eq(challenge_param(c, 1, "algorithm="), "SHA-256");
	ck_assert_str_eq(challenge_param(c, 2, "algorithm="), "MD5");
	ck_assert_str_eq(challenge_param(c, 2, "nonce="), challenge_param(c, 0, "nonce="));
	ck_assert_str_eq(challenge_param(c, 0, "realm="), DOMAIN);
	ck_assert_str_eq(challenge_param(c, 0, "qop="), "auth");
	ck_assert_ptr_null(challenge_param(c, 0, "stale="));
	ck_assert_uint_eq(strlen(challenge_param(c, 0, "nonce=")), NONCE_LEN);
	ck_assert_str_eq(challenge_param(c, 0, "nonce="), challenge_param(c, 1, "nonce="));
	/* The whole header made it to the wire (sofia drops trailing parameters of long ones). */
	ck_assert_ptr_nonnull(strstr(boxes[NET].msg[0], "qop=\"auth\"\r\n"));
	msg_destroy(c);
	ck_assert_int_eq(metrics_get(M_AUTH_CHALLENGES), before + 1);
	const struct binding *b[4];
	ck_assert_int_eq(location_lookup("sip:alice@" DOMAIN, b, 4), 0);
}
END_TEST

START_TEST(test_register_right_password)
{
	int64_t ok = metrics_get(M_AUTH_SUCCESS);
	ck_assert_int_eq(register_with("alice", "alice-pw", "MD5"), 200);
	ck_assert_int_eq(register_with("bob", "bob-pw", "SHA-256"), 200);
	ck_assert_int_eq(metrics_get(M_AUTH_SUCCESS), ok + 2);
	const struct binding *b[4];
	ck_assert_int_eq(location_lookup("sip:alice@" DOMAIN, b, 4), 1);
	ck_assert_int_eq(location_lookup("sip:bob@" DOMAIN, b, 4), 1);
}
END_TEST

START_TEST(test_register_wrong_password_or_user_rechallenged)
{
	int64_t fails = metrics_get(M_AUTH_FAILURES);
	ck_assert_int_eq(register_with("alice", "wrong", "MD5"), 401);
	ck_assert_int_eq(register_with("alice", "wrong", "SHA-256"), 401);
	ck_assert_int_eq(register_with("mallory", "x", "MD5"), 401); /* same answer as a wrong password */
	ck_assert_int_eq(metrics_get(M_AUTH_FAILURES), fails + 3);
	const struct binding *b[4];
	ck_assert_int_eq(location_lookup("sip:alice@" DOMAIN, b, 4), 0);
}
END_TEST

START_TEST(test_register_algorithm_not_offered)
{
	/* SHA-512-256 is known but not in the default list: a fresh challenge, nothing bound. */
	ck_assert_int_eq(register_with("alice", "alice-pw", "SHA-512-256"), 401);
}
END_TEST

START_TEST(test_register_identity_mismatch_403)
{
	msg_t *c = exchange(0, register_text("bob", ""));
	char nonce[NONCE_LEN + 1];
	snprintf(nonce, sizeof(nonce), "%s", challenge_param(c, 0, "nonce="));
	msg_destroy(c);
	/* alice's right password, but for bob's AOR */
	int64_t forbidden = metrics_get(M_AUTH_FORBIDDEN);
	msg_t *r = exchange(0, register_text("bob", credentials("Authorization", "alice", "alice-pw", DOMAIN, nonce,
								 "MD5", "REGISTER", "sip:" DOMAIN, 1)));
	ck_assert_int_eq(status_of(r), 403);
	msg_destroy(r);
	ck_assert_int_eq(metrics_get(M_AUTH_FORBIDDEN), forbidden + 1);
	const struct binding *b[4];
	ck_assert_int_eq(location_lookup("sip:bob@" DOMAIN, b, 4), 0);
}
END_TEST

/* Credentials on flow i answering the challenge nonce with digest uri; the final status. */
static int register_uri(int i, const char *nonce, const char *uri, unsigned nc, const char **phrase)
{
	msg_t *r = exchange(i, register_text("alice", credentials("Authorization", "alice", "alice-pw", DOMAIN,
								   nonce, "MD5", "REGISTER", uri, nc)));
	int st = status_of(r);
	static char why[64];
	snprintf(why, sizeof(why), "%s", sip_object(r)->sip_status->st_phrase);
	if (phrase)
		*phrase = why;
	msg_destroy(r);
	return st;
}

static char *fresh_nonce(int i)
{
	static char nonce[NONCE_LEN + 1];
	msg_t *c = exchange(i, register_text("alice", ""));
	snprintf(nonce, sizeof(nonce), "%s", challenge_param(c, 0, "nonce="));
	msg_destroy(c);
	return nonce;
}

START_TEST(test_register_uri_mismatch_400)
{
	const char *why = NULL;
	char *nonce = fresh_nonce(0);
	/* Naming another server: refused. */
	ck_assert_int_eq(register_uri(0, nonce, "sip:other.example.com", 1, &why), 400);
	ck_assert_str_eq(why, "Digest URI Names Another Server");
	ck_assert_int_eq(register_uri(0, nonce, "sip:192.0.2.1:8080", 2, NULL), 400);
	ck_assert_int_eq(register_uri(0, nonce, "sip:127.0.0.1:9999", 3, NULL), 400); /* not our port */
	ck_assert_int_eq(register_uri(0, nonce, "tel:+15551234", 4, NULL), 400);
	ck_assert_int_eq(register_uri(0, nonce, "not a uri", 5, NULL), 400);
	/* The Request-URI, equal as URIs though not as text: fine. */
	ck_assert_int_eq(register_uri(0, nonce, "sip:EXAMPLE.com", 6, NULL), 200);
	/* One of our listeners, with or without its port (SIPp signs sip:IP:PORT): fine. */
	ck_assert_int_eq(register_uri(0, nonce, "sip:127.0.0.1:8080", 7, NULL), 200);
	ck_assert_int_eq(register_uri(NET, fresh_nonce(NET), "sip:127.0.0.1:5060", 1, NULL), 200);
	ck_assert_int_eq(register_uri(0, nonce, "sip:127.0.0.1", 8, NULL), 200);
	/* One of our domains, with a user or a port: fine. */
	ck_assert_int_eq(register_uri(0, nonce, "sip:alice@example.com", 9, NULL), 200);
	ck_assert_int_eq(register_uri(0, nonce, "sips:example.com:5061", 10, NULL), 200);
}
END_TEST

static void strict_uri(struct app_config *c) { c->auth.auth_strict_uri = true; }
static void setup_strict_uri(void) { start(strict_uri); }

START_TEST(test_register_strict_uri)
{
	const char *why = NULL;
	char *nonce = fresh_nonce(0);
	ck_assert_int_eq(register_uri(0, nonce, "sip:127.0.0.1:8080", 1, &why), 400);
	ck_assert_str_eq(why, "Digest URI Does Not Match Request-URI");
	ck_assert_int_eq(register_uri(0, nonce, "sip:alice@example.com", 2, NULL), 400);
	ck_assert_int_eq(register_uri(0, nonce, "sip:example.com", 3, NULL), 200);
}
END_TEST

START_TEST(test_register_nc_replay)
{
	msg_t *c = exchange(NET, register_text("alice", ""));
	char nonce[NONCE_LEN + 1];
	snprintf(nonce, sizeof(nonce), "%s", challenge_param(c, 0, "nonce="));
	msg_destroy(c);
	msg_t *r = exchange(NET, register_text("alice", credentials("Authorization", "alice", "alice-pw", DOMAIN, nonce,
								   "SHA-256", "REGISTER", "sip:" DOMAIN, 1)));
	ck_assert_int_eq(status_of(r), 200);
	msg_destroy(r);
	/* The same credentials again in a new request: refused, with a fresh nonce the client may
	 * answer without asking its user again (stale=true), and no failure on record. */
	int64_t replays = metrics_get(M_AUTH_REPLAYS), failures = metrics_get(M_AUTH_FAILURES);
	r = exchange(NET, register_text("alice", credentials("Authorization", "alice", "alice-pw", DOMAIN, nonce,
							    "SHA-256", "REGISTER", "sip:" DOMAIN, 1)));
	ck_assert_int_eq(status_of(r), 401);
	ck_assert_str_eq(challenge_param(r, 0, "stale="), "true");
	msg_destroy(r);
	ck_assert_int_eq(metrics_get(M_AUTH_REPLAYS), replays + 1);
	ck_assert_int_eq(metrics_get(M_AUTH_FAILURES), failures);
	/* The next count is fine, a lower one is not. */
	r = exchange(NET, register_text("alice", credentials("Authorization", "alice", "alice-pw", DOMAIN, nonce,
							    "SHA-256", "REGISTER", "sip:" DOMAIN, 3)));
	ck_assert_int_eq(status_of(r), 200);
	msg_destroy(r);
	r = exchange(NET, register_text("alice", credentials("Authorization", "alice", "alice-pw", DOMAIN, nonce,
							    "SHA-256", "REGISTER", "sip:" DOMAIN, 2)));
	ck_assert_int_eq(status_of(r), 401);
	msg_destroy(r);
}
END_TEST

START_TEST(test_register_forged_nonce_rechallenged)
{
	char nonce[NONCE_LEN + 1];
	memset(nonce, 'a', NONCE_LEN);
	nonce[NONCE_LEN] = '\0';
	msg_t *r = exchange(0, register_text("alice", credentials("Authorization", "alice", "alice-pw", DOMAIN, nonce,
								   "MD5", "REGISTER", "sip:" DOMAIN, 1)));
	ck_assert_int_eq(status_of(r), 401);
	ck_assert_ptr_null(challenge_param(r, 0, "stale="));
	msg_destroy(r);
}
END_TEST

START_TEST(test_register_malformed_credentials_400)
{
	msg_t *r = exchange(0, register_text("alice", "Authorization: Digest username=\"alice\", realm=\"" DOMAIN
						   "\", nonce=\"x\"\r\n"));
	ck_assert_int_eq(status_of(r), 400);
	msg_destroy(r);
	msg_t *c = exchange(0, register_text("alice", ""));
	char nonce[NONCE_LEN + 1];
	snprintf(nonce, sizeof(nonce), "%s", challenge_param(c, 0, "nonce="));
	msg_destroy(c);
	char line[1024];
	snprintf(line, sizeof(line), "Authorization: Digest username=\"alice\", realm=\"" DOMAIN "\", nonce=\"%s\", "
		 "uri=\"sip:" DOMAIN "\", response=\"00\", qop=auth, nc=1, cnonce=\"x\"\r\n", nonce);
	r = exchange(0, register_text("alice", line));
	ck_assert_int_eq(status_of(r), 400);
	msg_destroy(r);
	/* Credentials for another realm are not ours to check: challenged. */
	r = exchange(0, register_text("alice", credentials("Authorization", "alice", "alice-pw", "elsewhere", nonce,
							    "MD5", "REGISTER", "sip:" DOMAIN, 1)));
	ck_assert_int_eq(status_of(r), 401);
	msg_destroy(r);
}
END_TEST

static void short_ttl(struct app_config *c) { c->auth.nonce_ttl = 1; }
static void setup_short_ttl(void) { start(short_ttl); }

START_TEST(test_register_stale_nonce)
{
	msg_t *c = exchange(0, register_text("alice", ""));
	char nonce[NONCE_LEN + 1];
	snprintf(nonce, sizeof(nonce), "%s", challenge_param(c, 0, "nonce="));
	msg_destroy(c);
	sleep(2);
	int64_t stale = metrics_get(M_AUTH_STALE);
	msg_t *r = exchange(0, register_text("alice", credentials("Authorization", "alice", "alice-pw", DOMAIN, nonce,
								   "MD5", "REGISTER", "sip:" DOMAIN, 1)));
	ck_assert_int_eq(status_of(r), 401);
	ck_assert_int_eq(count_challenges(r), 1);
	ck_assert_str_eq(challenge_param(r, 0, "stale="), "true");
	ck_assert_str_ne(challenge_param(r, 0, "nonce="), nonce);
	msg_destroy(r);
	ck_assert_int_eq(metrics_get(M_AUTH_STALE), stale + 1);
}
END_TEST

static void no_users(struct app_config *c) { config_set_string(&c->auth.users_file, ""); }
static void setup_no_users(void) { start(no_users); }

START_TEST(test_register_without_users_403)
{
	msg_t *r = exchange(0, register_text("alice", ""));
	ck_assert_int_eq(status_of(r), 403);
	ck_assert_str_eq(sip_object(r)->sip_status->st_phrase, "Authentication Not Configured");
	msg_destroy(r);
}
END_TEST

static void sha_first(struct app_config *c)
{
	string_list_clear(&c->auth.auth_algorithms);
	string_list_add(&c->auth.auth_algorithms, "SHA-256");
	string_list_add(&c->auth.auth_algorithms, "SHA-512-256");
	string_list_add(&c->auth.auth_algorithms, "MD5");
	config_set_string(&c->auth.realm, "sipedge");
	c->auth.auth_repeat_first = false;
}
static void setup_sha_first(void) { start(sha_first); }

START_TEST(test_register_configured_algorithms_and_realm)
{
	msg_t *c = exchange(NET, register_text("alice", ""));
	ck_assert_int_eq(count_challenges(c), 3);
	ck_assert_str_eq(challenge_param(c, 0, "algorithm="), "SHA-256");
	ck_assert_str_eq(challenge_param(c, 1, "algorithm="), "SHA-512-256");
	ck_assert_str_eq(challenge_param(c, 2, "algorithm="), "MD5"); /* not repeated: configured so */
	ck_assert_str_eq(challenge_param(c, 0, "realm="), "sipedge");
	char nonce[NONCE_LEN + 1];
	snprintf(nonce, sizeof(nonce), "%s", challenge_param(c, 0, "nonce="));
	msg_destroy(c);
	msg_t *r = exchange(NET, register_text("alice", credentials("Authorization", "alice", "alice-pw", "sipedge", nonce,
								   "SHA-512-256", "REGISTER", "sip:" DOMAIN, 1)));
	ck_assert_int_eq(status_of(r), 200);
	msg_destroy(r);
}
END_TEST

START_TEST(test_users_reload)
{
	ck_assert_int_eq(register_with("carol", "carol-pw", "MD5"), 401);
	char md5[DIGEST_HEX_MAX], text[256];
	digest_ha1(DIGEST_MD5, "carol", DOMAIN, "carol-pw", md5);
	snprintf(text, sizeof(text), "alice:alice-pw\ncarol:ha1:MD5=%s\n", md5);
	write_users(text);
	ck_assert_int_eq(auth_reload(), 0);
	ck_assert_int_eq(metrics_get(M_AUTH_USERS), 2);
	ck_assert_int_eq(register_with("carol", "carol-pw", "MD5"), 200);
	ck_assert_int_eq(register_with("bob", "bob-pw", "MD5"), 401); /* gone */
	/* carol has only an MD5 HA1: SHA-256 cannot work for her. */
	ck_assert_int_eq(register_with("carol", "carol-pw", "SHA-256"), 401);
	/* A broken file keeps the users in force. */
	write_users("alice:alice-pw\nbroken line\n");
	ck_assert_int_eq(auth_reload(), -1);
	ck_assert_int_eq(register_with("carol", "carol-pw", "MD5"), 200);
}
END_TEST

/* MESSAGE from alice (flow 0) to bob, registered on flow 1. */
static char *message_text(const char *from_user, const char *from_domain, const char *ruri, const char *auth)
{
	static char text[4096];
	seq++;
	snprintf(text, sizeof(text),
		 "MESSAGE %s SIP/2.0\r\n"
		 "Via: SIP/2.0/WS a.invalid;branch=z9hG4bKmsg%u\r\n"
		 "Max-Forwards: 70\r\n"
		 "To: <%s>\r\n"
		 "From: <sip:%s@%s>;tag=m%u\r\n"
		 "Call-ID: msg-%u\r\n"
		 "CSeq: 1 MESSAGE\r\n"
		 "%s"
		 "Content-Type: text/plain\r\n"
		 "Content-Length: 2\r\n\r\nhi",
		 ruri, seq, ruri, from_user, from_domain, seq, seq, auth);
	return text;
}

static void register_bob_on_flow1(void)
{
	msg_t *c = exchange(1, register_text("bob", ""));
	char nonce[NONCE_LEN + 1];
	snprintf(nonce, sizeof(nonce), "%s", challenge_param(c, 0, "nonce="));
	msg_destroy(c);
	msg_t *r = exchange(1, register_text("bob", credentials("Authorization", "bob", "bob-pw", DOMAIN, nonce,
								 "MD5", "REGISTER", "sip:" DOMAIN, 1)));
	ck_assert_int_eq(status_of(r), 200);
	msg_destroy(r);
	clear_box(1);
}

START_TEST(test_message_from_our_user_407_then_forwarded)
{
	register_bob_on_flow1();
	msg_t *c = exchange(0, message_text("alice", DOMAIN, "sip:bob@" DOMAIN, ""));
	ck_assert_int_eq(status_of(c), 407);
	ck_assert_ptr_nonnull(sip_object(c)->sip_proxy_authenticate);
	ck_assert_ptr_null(sip_object(c)->sip_www_authenticate);
	ck_assert_str_eq(challenge_param(c, 0, "algorithm="), "MD5");
	char nonce[NONCE_LEN + 1];
	snprintf(nonce, sizeof(nonce), "%s", challenge_param(c, 0, "nonce="));
	msg_destroy(c);
	ck_assert_int_eq(boxes[1].n, 0);
	/* Authorization (not Proxy-) does not answer a 407. */
	msg_t *r = exchange(0, message_text("alice", DOMAIN, "sip:bob@" DOMAIN,
					    credentials("Authorization", "alice", "alice-pw", DOMAIN, nonce, "MD5",
							"MESSAGE", "sip:bob@" DOMAIN, 1)));
	ck_assert_int_eq(status_of(r), 407);
	msg_destroy(r);
	const char *cred = credentials("Proxy-Authorization", "alice", "alice-pw", DOMAIN, nonce, "MD5", "MESSAGE",
				       "sip:bob@" DOMAIN, 1);
	const char *t = message_text("alice", DOMAIN, "sip:bob@" DOMAIN, cred);
	dispatch_receive(flows[0], t, strlen(t));
	/* Forwarded to bob's flow, without our credentials. */
	ck_assert_int_eq(boxes[1].n, 1);
	ck_assert(strncmp(boxes[1].msg[0], "MESSAGE ", 8) == 0);
	ck_assert_ptr_null(strstr(boxes[1].msg[0], "Proxy-Authorization"));
}
END_TEST

/* RFC 3261 §22.3: credentials for our realm are ours to consume, also on requests the policy
 * lets through without them (in dialog, ACK); another realm's go on to whoever asked. */
START_TEST(test_our_credentials_never_forwarded)
{
	register_bob_on_flow1();
	char token[FLOW_TOKEN_LEN + 1], text[1536];
	flow_token_make(flows[1]->id, token);
	snprintf(text, sizeof(text),
		 "BYE sip:bob@b.invalid;transport=ws SIP/2.0\r\n"
		 "Via: SIP/2.0/WS a.invalid;branch=z9hG4bKbye1\r\n"
		 "Max-Forwards: 70\r\n"
		 "Route: <sip:%s@127.0.0.1:8080;transport=ws;lr>\r\n"
		 "To: <sip:bob@" DOMAIN ">;tag=b1\r\n"
		 "From: <sip:alice@" DOMAIN ">;tag=a1\r\n"
		 "Call-ID: dialog-1\r\n"
		 "CSeq: 2 BYE\r\n"
		 "Proxy-Authorization: Digest username=\"alice\", realm=\"" DOMAIN "\", nonce=\"n1\", "
		 "uri=\"sip:bob@" DOMAIN "\", response=\"00000000000000000000000000000000\"\r\n"
		 "Proxy-Authorization: Digest username=\"alice\", realm=\"pbx.example\", nonce=\"n2\", "
		 "uri=\"sip:bob@" DOMAIN "\", response=\"11111111111111111111111111111111\"\r\n"
		 "Content-Length: 0\r\n\r\n",
		 token);
	dispatch_receive(flows[0], text, strlen(text));
	ck_assert_int_eq(boxes[1].n, 1);
	ck_assert(strncmp(boxes[1].msg[0], "BYE ", 4) == 0);
	ck_assert_ptr_null(strstr(boxes[1].msg[0], "realm=\"" DOMAIN "\""));
	ck_assert_ptr_nonnull(strstr(boxes[1].msg[0], "realm=\"pbx.example\""));
}
END_TEST

START_TEST(test_message_identity_mismatch_403)
{
	register_bob_on_flow1();
	msg_t *c = exchange(0, message_text("alice", DOMAIN, "sip:bob@" DOMAIN, ""));
	char nonce[NONCE_LEN + 1];
	snprintf(nonce, sizeof(nonce), "%s", challenge_param(c, 0, "nonce="));
	msg_destroy(c);
	/* bob's credentials on a MESSAGE that claims to be from alice */
	msg_t *r = exchange(0, message_text("alice", DOMAIN, "sip:bob@" DOMAIN,
					    credentials("Proxy-Authorization", "bob", "bob-pw", DOMAIN, nonce, "MD5",
							"MESSAGE", "sip:bob@" DOMAIN, 1)));
	ck_assert_int_eq(status_of(r), 403);
	msg_destroy(r);
	ck_assert_int_eq(boxes[1].n, 0);
}
END_TEST

START_TEST(test_relay_foreign_denied)
{
	int64_t denied = metrics_get(M_RELAY_DENIED);
	/* Not our user, to another domain: 403, no challenge. */
	msg_t *r = exchange(0, message_text("eve", "evil.example", "sip:victim@carrier.example", ""));
	ck_assert_int_eq(status_of(r), 403);
	ck_assert_str_eq(sip_object(r)->sip_status->st_phrase, "Relaying Denied");
	msg_destroy(r);
	ck_assert_int_eq(metrics_get(M_RELAY_DENIED), denied + 1);
	/* Claiming to be our user: must authenticate first. */
	r = exchange(0, message_text("alice", DOMAIN, "sip:victim@carrier.example", ""));
	ck_assert_int_eq(status_of(r), 407);
	msg_destroy(r);
}
END_TEST

START_TEST(test_relay_authenticated_user_passes_policy)
{
	msg_t *c = exchange(0, message_text("alice", DOMAIN, "sip:friend@192.0.2.78", ""));
	ck_assert_int_eq(status_of(c), 407);
	char nonce[NONCE_LEN + 1];
	snprintf(nonce, sizeof(nonce), "%s", challenge_param(c, 0, "nonce="));
	msg_destroy(c);
	msg_t *r = exchange(0, message_text("alice", DOMAIN, "sip:friend@192.0.2.78",
					    credentials("Proxy-Authorization", "alice", "alice-pw", DOMAIN, nonce,
							"MD5", "MESSAGE", "sip:friend@192.0.2.78", 1)));
	/* Allowed by the policy and sent to that address; without a UDP transport in these unit
	 * tests the branch fails 503, which goes upstream as 500 (§16.7). */
	ck_assert_int_eq(status_of(r), 500);
	msg_destroy(r);
}
END_TEST

START_TEST(test_from_outside_into_our_users_403)
{
	register_bob_on_flow1();
	msg_t *r = exchange(0, message_text("eve", "evil.example", "sip:bob@" DOMAIN, ""));
	ck_assert_int_eq(status_of(r), 403);
	msg_destroy(r);
	ck_assert_int_eq(boxes[1].n, 0);
}
END_TEST

static void trust_10(struct app_config *c) { string_list_add(&c->auth.trusted_peers, "10.0.0.0/8"); }
static void setup_trust_10(void) { start(trust_10); }

START_TEST(test_trusted_peer_relays_and_calls_in)
{
	/* Flow 1 is 10.1.1.1: trusted. Flow 2 (192.0.2.9) is not. */
	/* Another domain, at an address: past the policy, the proxy sends it there. These unit
	 * tests have no UDP transport: the branch fails 503, which goes upstream as 500 (§16.7). */
	msg_t *r = exchange(1, message_text("carrier", "pstn.example", "sip:someone@192.0.2.77", ""));
	ck_assert_int_eq(status_of(r), 500);
	msg_destroy(r);
	r = exchange(2, message_text("carrier", "pstn.example", "sip:someone@192.0.2.77", ""));
	ck_assert_int_eq(status_of(r), 403);
	msg_destroy(r);
	/* A WebSocket client's .invalid host is never looked up in DNS: answered at once. */
	r = exchange(1, message_text("carrier", "pstn.example", "sip:someone@df7jal23ls0d.invalid", ""));
	ck_assert_int_eq(status_of(r), 404);
	msg_destroy(r);
	r = exchange(1, message_text("carrier", "pstn.example", "sip:nobody@" DOMAIN, ""));
	ck_assert_int_eq(status_of(r), 404); /* not registered, but not refused */
	msg_destroy(r);
}
END_TEST

static void only_invite(struct app_config *c)
{
	string_list_clear(&c->auth.auth_challenge_methods);
	string_list_add(&c->auth.auth_challenge_methods, "INVITE");
}
static void setup_only_invite(void) { start(only_invite); }

START_TEST(test_challenge_methods_configurable)
{
	register_bob_on_flow1();
	/* MESSAGE is not challenged between our users ... */
	int before = boxes[0].n;
	const char *t = message_text("alice", DOMAIN, "sip:bob@" DOMAIN, "");
	dispatch_receive(flows[0], t, strlen(t));
	ck_assert_int_eq(boxes[0].n, before);
	ck_assert_int_eq(boxes[1].n, 1);
	/* ... but relaying still is. */
	msg_t *r = exchange(0, message_text("alice", DOMAIN, "sip:x@other.example", ""));
	ck_assert_int_eq(status_of(r), 407);
	msg_destroy(r);
	/* INVITE is. */
	char invite[2048];
	snprintf(invite, sizeof(invite),
		 "INVITE sip:bob@" DOMAIN " SIP/2.0\r\nVia: SIP/2.0/WS a.invalid;branch=z9hG4bKinv1\r\n"
		 "Max-Forwards: 70\r\nTo: <sip:bob@" DOMAIN ">\r\nFrom: <sip:alice@" DOMAIN ">;tag=i1\r\n"
		 "Call-ID: inv1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@a.invalid;transport=ws>\r\n"
		 "Content-Length: 0\r\n\r\n");
	r = exchange(0, invite);
	ck_assert_int_eq(status_of(r), 407);
	msg_destroy(r);
}
END_TEST

static void no_auth(struct app_config *c) { c->auth.no_auth = true; }
static void setup_no_auth(void) { start(no_auth); }

START_TEST(test_no_auth_registers_but_never_relays)
{
	msg_t *r = exchange(0, register_text("anyone", ""));
	ck_assert_int_eq(status_of(r), 200);
	msg_destroy(r);
	r = exchange(0, message_text("anyone", DOMAIN, "sip:x@other.example", ""));
	ck_assert_int_eq(status_of(r), 403);
	msg_destroy(r);
}
END_TEST

Suite *auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *tc = tcase_create("digest");
	tcase_add_test(tc, test_digest_rfc7616_md5);
	tcase_add_test(tc, test_digest_rfc7616_sha256);
	tcase_add_test(tc, test_digest_sha512_256);
	tcase_add_test(tc, test_digest_rfc2617_md5);
	tcase_add_test(tc, test_digest_helpers);
	tcase_add_test(tc, test_digest_credentials_from_sofia);
	suite_add_tcase(s, tc);

	tc = tcase_create("nonce");
	tcase_add_test(tc, test_nonce_sign_verify);
	tcase_add_test(tc, test_nonce_expiry);
	tcase_add_test(tc, test_nc_replay_rejected);
	tcase_add_test(tc, test_nc_table_full_never_allows_replay);
	tcase_add_test(tc, test_nc_expired_forgotten);
	tcase_add_test(tc, test_nc_own_nonces_past_table_size);
	tcase_add_test(tc, test_nc_own_nonce_used_many_times);
	tcase_add_test(tc, test_nc_nonce_of_another_epoch);
	suite_add_tcase(s, tc);

	tc = tcase_create("users");
	tcase_add_test(tc, test_users_parse);
	tcase_add_test(tc, test_users_errors_reject_the_whole_file);
	tcase_add_test(tc, test_users_load_file);
	tcase_add_test(tc, test_cidr);
	tcase_add_test(tc, test_config_check);
	suite_add_tcase(s, tc);

	tc = tcase_create("policy");
	tcase_add_checked_fixture(tc, setup_default, teardown);
	tcase_add_test(tc, test_register_challenge_md5_first);
	tcase_add_test(tc, test_register_right_password);
	tcase_add_test(tc, test_register_wrong_password_or_user_rechallenged);
	tcase_add_test(tc, test_register_algorithm_not_offered);
	tcase_add_test(tc, test_register_identity_mismatch_403);
	tcase_add_test(tc, test_register_uri_mismatch_400);
	tcase_add_test(tc, test_register_nc_replay);
	tcase_add_test(tc, test_register_forged_nonce_rechallenged);
	tcase_add_test(tc, test_register_malformed_credentials_400);
	tcase_add_test(tc, test_users_reload);
	tcase_add_test(tc, test_message_from_our_user_407_then_forwarded);
	tcase_add_test(tc, test_our_credentials_never_forwarded);
	tcase_add_test(tc, test_message_identity_mismatch_403);
	tcase_add_test(tc, test_relay_foreign_denied);
	tcase_add_test(tc, test_relay_authenticated_user_passes_policy);
	tcase_add_test(tc, test_from_outside_into_our_users_403);
	suite_add_tcase(s, tc);

#define FIXTURE_CASE(name, adjust, test)                                                           \
	do {                                                                                       \
		TCase *t_ = tcase_create(name);                                                    \
		tcase_add_checked_fixture(t_, setup_##adjust, teardown);                          \
		tcase_add_test(t_, test);                                                          \
		suite_add_tcase(s, t_);                                                            \
	} while (0)
	FIXTURE_CASE("stale", short_ttl, test_register_stale_nonce);
	FIXTURE_CASE("no users", no_users, test_register_without_users_403);
	FIXTURE_CASE("algorithms", sha_first, test_register_configured_algorithms_and_realm);
	FIXTURE_CASE("strict uri", strict_uri, test_register_strict_uri);
	FIXTURE_CASE("trusted", trust_10, test_trusted_peer_relays_and_calls_in);
	FIXTURE_CASE("methods", only_invite, test_challenge_methods_configurable);
	FIXTURE_CASE("no-auth", no_auth, test_no_auth_registers_but_never_relays);
	return s;
}
