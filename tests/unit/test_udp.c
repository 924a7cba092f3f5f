/** @file test_udp.c  The UDP transport on real loopback sockets: rport/received, 64 KiB
 *  datagrams, flows per peer with idle expiry and a cap, §18.2.2 replies, URI destinations. */
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "base/config.h"
#include "base/log.h"
#include "base/loop.h"
#include "base/metrics.h"
#include "base/sipmsg.h"
#include "proxy/proxy.h"
#include "sip/txn.h"
#include "registrar/location.h"
#include "registrar/registrar.h"
#include "app/dispatch.h"
#include "tests/unit/rooms.h"
#include "tests/unit/unit.h"
#include "transport/flow.h"
#include "transport/transport.h"
#include "transport/udp.h"

static struct app_config cfg;
static uv_loop_t loop;
static int port; /* sipedge's UDP port */

static void start(int max_flows)
{
	settings_defaults(&cfg);
	string_list_add(&cfg.domains, "example.com");
	string_list_add(&cfg.listen_text, "udp:127.0.0.1:0");
	cfg.auth.no_auth = true;
	cfg.udp.udp_max_flows = max_flows;
	rooms_start(&loop, &cfg);
	struct transport_setup setup = {.loop = &loop, .listen = cfg.listen, .n_listen = cfg.n_listen,
					 .tls = &cfg.tls, .receiver = dispatch_receiver()};
	ck_assert_int_eq(udp_start(&cfg.udp, &setup), 0);
	port = cfg.listen[0].port;
	ck_assert_int_ne(port, 0);
}

static void setup(void) { start(65536); }

static void teardown(void)
{
	proxy_shutdown();
	udp_stop();
	rooms_stop(&loop, &cfg);
}

/** A client socket on 127.0.0.1; *cport gets its port. */
static int client(int *cport)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	ck_assert_int_ge(fd, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	socklen_t len = sizeof(a);
	getsockname(fd, (struct sockaddr *)&a, &len);
	*cport = ntohs(a.sin_port);
	int size = 1 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	return fd;
}

static void client_send(int fd, const char *text)
{
	struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	ck_assert_int_eq(sendto(fd, text, strlen(text), 0, (struct sockaddr *)&to, sizeof(to)),
			 (ssize_t)strlen(text));
}

/** Run the loop until fd has a datagram (returned, malloc'd) or ms pass (NULL). */
static char *client_recv(int fd, int ms)
{
	uint64_t start = uv_now(&loop);
	while (uv_now(&loop) - start < (uint64_t)ms) {
		uv_run(&loop, UV_RUN_NOWAIT);
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 10) == 1) {
			char *buf = malloc(70000);
			ssize_t n = recv(fd, buf, 69999, 0);
			ck_assert_int_gt(n, 0);
			buf[n] = '\0';
			return buf;
		}
		uv_update_time(&loop);
	}
	return NULL;
}

static char *options(const char *via_host, int via_port, bool rport, const char *branch, size_t pad)
{
	char *padding = malloc(pad + 1);
	memset(padding, 'x', pad);
	padding[pad] = '\0';
	char *text = NULL;
	ck_assert_int_gt(asprintf(&text,
				  "OPTIONS sip:example.com SIP/2.0\r\n"
				  "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%s%s\r\n"
				  "From: <sip:a@example.com>;tag=1\r\nTo: <sip:example.com>\r\n"
				  "Call-ID: %s\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
				  "X-Pad: %s\r\nContent-Length: 0\r\n\r\n",
				  via_host, via_port, branch, rport ? ";rport" : "", branch, padding),
			 0);
	free(padding);
	return text;
}

START_TEST(test_udp_options_answered_with_rport_and_received)
{
	int cport, fd = client(&cport);
	char *req = options("10.9.9.9", 5060, true, "rp1", 0);
	client_send(fd, req);
	char *resp = client_recv(fd, 2000);
	ck_assert_ptr_nonnull(resp);
	ck_assert_msg(strncmp(resp, "SIP/2.0 200 ", 12) == 0, "%s", resp);
	char want[96];
	snprintf(want, sizeof(want), "branch=z9hG4bKrp1;rport=%d;received=127.0.0.1\r\n", cport);
	ck_assert_msg(strstr(resp, want), "want %s in\n%s", want, resp);
	free(resp);
	free(req);
	close(fd);
}
END_TEST

START_TEST(test_udp_received_only_when_host_differs)
{
	int cport, fd = client(&cport);
	char *req = options("127.0.0.1", cport, false, "rp2", 0);
	client_send(fd, req);
	char *resp = client_recv(fd, 2000);
	ck_assert_ptr_nonnull(resp);
	ck_assert_msg(!strstr(resp, "received="), "%s", resp);
	free(resp);
	free(req);
	close(fd);
}
END_TEST

START_TEST(test_udp_64k_datagram_not_truncated)
{
	int cport, fd = client(&cport);
	int64_t cut = metrics_get(M_UDP_TRUNCATED);
	/* The padding is a header: lift limits.max_header_size, which is not what this tests. */
	int header_limit = cfg.limits.limit_header_bytes;
	cfg.limits.limit_header_bytes = 128 * 1024;
	/* Just under the IPv4 maximum of 65507 bytes of payload. */
	char *req = options("127.0.0.1", cport, true, "big", 65000);
	ck_assert_uint_gt(strlen(req), 65000);
	client_send(fd, req);
	char *resp = client_recv(fd, 3000);
	ck_assert_ptr_nonnull(resp);
	ck_assert_msg(strncmp(resp, "SIP/2.0 200 ", 12) == 0, "%.200s", resp);
	ck_assert_int_eq(metrics_get(M_UDP_TRUNCATED), cut);
	cfg.limits.limit_header_bytes = header_limit;
	free(resp);
	free(req);
	close(fd);
}
END_TEST

START_TEST(test_udp_flow_per_peer_and_idle_expiry)
{
	int p1, p2, a = client(&p1), b = client(&p2);
	char *r1 = options("127.0.0.1", p1, true, "f1", 0), *r2 = options("127.0.0.1", p2, true, "f2", 0);
	char *r3 = options("127.0.0.1", p1, true, "f3", 0);
	client_send(a, r1);
	free(client_recv(a, 2000));
	client_send(b, r2);
	free(client_recv(b, 2000));
	client_send(a, r3);
	free(client_recv(a, 2000));
	ck_assert_uint_eq(udp_flow_count(), 2);
	ck_assert_uint_eq(udp_expire(uv_now(&loop)), 0);
	ck_assert_uint_eq(udp_expire(uv_now(&loop) + (uint64_t)cfg.udp.udp_flow_idle * 1000), 2);
	ck_assert_uint_eq(udp_flow_count(), 0);
	free(r1);
	free(r2);
	free(r3);
	close(a);
	close(b);
}
END_TEST

START_TEST(test_udp_registration_survives_flow_expiry)
{
	int cport, fd = client(&cport);
	char *reg = NULL;
	ck_assert_int_gt(asprintf(&reg,
				  "REGISTER sip:example.com SIP/2.0\r\n"
				  "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKreg1;rport\r\n"
				  "From: <sip:carol@example.com>;tag=1\r\nTo: <sip:carol@example.com>\r\n"
				  "Call-ID: reg1\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\n"
				  "Contact: <sip:carol@127.0.0.1:%d>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n",
				  cport, cport),
			 0);
	client_send(fd, reg);
	char *resp = client_recv(fd, 2000);
	ck_assert_ptr_nonnull(resp);
	ck_assert_msg(strncmp(resp, "SIP/2.0 200 ", 12) == 0, "%s", resp);
	ck_assert_uint_eq(udp_expire(uv_now(&loop) + (uint64_t)cfg.udp.udp_flow_idle * 1000), 1);
	const struct binding *b[2];
	ck_assert_int_eq(location_lookup("sip:carol@example.com", b, 2), 1);
	free(resp);
	free(reg);
	close(fd);
}
END_TEST

START_TEST(test_udp_reply_to_via_port_without_rport)
{
	/* §18.2.2: sent from a's port, Via names b's port and no rport: the answer goes to b. */
	int pa, pb, a = client(&pa), b = client(&pb);
	char *req = options("127.0.0.1", pb, false, "vp1", 0);
	client_send(a, req);
	char *resp = client_recv(b, 2000);
	ck_assert_ptr_nonnull(resp);
	ck_assert_msg(strncmp(resp, "SIP/2.0 200 ", 12) == 0, "%s", resp);
	char *none = client_recv(a, 200);
	ck_assert_ptr_null(none);
	free(resp);
	free(req);
	close(a);
	close(b);
}
END_TEST

START_TEST(test_udp_max_flows_evicts_least_recent)
{
	teardown();
	start(2);
	int p[3], fd[3];
	for (int i = 0; i < 3; i++) {
		fd[i] = client(&p[i]);
		char branch[16];
		snprintf(branch, sizeof(branch), "mx%d", i);
		char *req = options("127.0.0.1", p[i], true, branch, 0);
		usleep(3000); /* a flow heard in the current loop turn is never evicted */
		client_send(fd[i], req);
		free(client_recv(fd[i], 2000));
		free(req);
	}
	ck_assert_uint_eq(udp_flow_count(), 2);
	for (int i = 0; i < 3; i++)
		close(fd[i]);
}
END_TEST

START_TEST(test_udp_dest_from_url)
{
	su_home_t home[1] = {SU_HOME_INIT(home)};
	struct transport_dest d;
	ck_assert_int_eq(transport_dest_from_url(url_make(home, "sip:192.0.2.1"), &d), 0);
	ck_assert_int_eq(d.proto, PROTO_UDP);
	ck_assert_int_eq(ntohs(((struct sockaddr_in *)&d.addr)->sin_port), 5060);
	ck_assert_int_eq(transport_dest_from_url(url_make(home, "sip:u@[::1]:5070;transport=tcp"), &d), 0);
	ck_assert_int_eq(d.proto, PROTO_TCP);
	ck_assert_int_eq(d.addr.ss_family, AF_INET6);
	ck_assert_int_eq(ntohs(((struct sockaddr_in6 *)&d.addr)->sin6_port), 5070);
	ck_assert_int_eq(transport_dest_from_url(url_make(home, "sips:192.0.2.1"), &d), 0);
	ck_assert_int_eq(d.proto, PROTO_TLS);
	ck_assert_int_eq(ntohs(((struct sockaddr_in *)&d.addr)->sin_port), 5061);
	ck_assert_int_eq(transport_dest_from_url(url_make(home, "sip:x@pbx.example.net;maddr=192.0.2.9"), &d), 0);
	ck_assert_int_eq(((struct sockaddr_in *)&d.addr)->sin_addr.s_addr, inet_addr("192.0.2.9"));
	ck_assert_int_eq(transport_dest_from_url(url_make(home, "sip:pbx.example.net"), &d), -1);
	ck_assert_int_eq(transport_dest_from_url(url_make(home, "sip:a@b.invalid;transport=ws"), &d), -1);
	ck_assert_int_eq(transport_dest_from_url(url_make(home, "sip:192.0.2.1:99999"), &d), -1);
	su_home_deinit(home);
}
END_TEST

Suite *udp_suite(void)
{
	Suite *s = suite_create("udp");
	TCase *tc = tcase_create("udp");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_udp_options_answered_with_rport_and_received);
	tcase_add_test(tc, test_udp_received_only_when_host_differs);
	tcase_add_test(tc, test_udp_64k_datagram_not_truncated);
	tcase_add_test(tc, test_udp_flow_per_peer_and_idle_expiry);
	tcase_add_test(tc, test_udp_registration_survives_flow_expiry);
	tcase_add_test(tc, test_udp_reply_to_via_port_without_rport);
	tcase_add_test(tc, test_udp_max_flows_evicts_least_recent);
	tcase_add_test(tc, test_udp_dest_from_url);
	suite_add_tcase(s, tc);
	return s;
}
