/*
 * sipload: SIP-over-WebSocket load generator for `make bench` (tests/bench/run).
 *
 * It has to cost the client less than the server, or the benchmark measures the client (the
 * Node clients it replaces saturated first). So: one thread, epoll, raw non-blocking sockets,
 * a WebSocket framer that masks every frame it sends (RFC 6455 §5.3: a server must close on an
 * unmasked client frame) and a line scanner that reads only the few SIP headers a UA needs
 * to answer or to build the next request. It drives one server process (and its children,
 * for Kamailio's workers) and reports that process tree's CPU time per completed operation,
 * from /proc/PID/stat before and after.
 *
 *   sipload [options] SCENARIO
 * Scenarios:
 *   register       each connection refreshes its binding (REGISTER → 200) in a loop
 *   register-auth  each REGISTER is challenged (401) and answered with an MD5 digest → 200
 *   call           pairs of registered connections: INVITE/100/180/200/ACK/BYE/200, SDP both ways
 *   idle           N registered connections that only answer the server's pings
 *   cpu            print the server tree's CPU clock ticks and exit (for the SIPp scenarios)
 * Options:
 *   --server HOST:PORT   the WebSocket listener (IPv4)       --domain D   AOR domain
 *   --pid PID            the server process (CPU, memory)    --conns N    connections
 *   --duration S         seconds of load (default 5)         --rate R     operations/s (0: closed loop)
 *   --sdp-size B         SDP body size (default 1024)        --idle S     idle seconds (default 30)
 *   --timeout MS         per operation (default 5000)        --label L    first column of the result
 *   --out FILE           append the result as one tab-separated line
 *   --user-base N        the first connection's user is bN (default 0): several sipload
 *                        processes, each under its own fd limit, hold distinct AORs
 * Users are b0, b1, ... with the password pw-b0, pw-b1, ... (tests/bench/run writes them for
 * both servers). The result line: label scenario ops failures rate/s cpu_us/op p50_us p99_us
 * pss_B/conn rss_B/conn idle_cpu_% failures-by-code.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define MAX_MSG 65536
#define MAX_CONNECTING 256 /* handshakes in flight: more overflow the listen backlog */

enum scenario { SC_REGISTER, SC_REGISTER_AUTH, SC_CALL, SC_IDLE, SC_CPU };
enum cstate { C_CONNECTING, C_HANDSHAKE, C_OPEN, C_DEAD };
/* What a connection is waiting for. */
enum phase { P_NONE, P_REG, P_REG_AUTH, P_INVITE, P_BYE };

struct conn {
	int fd, id;
	enum cstate st;
	char accept[32]; /* the Sec-WebSocket-Accept we expect */
	uint8_t *rbuf;
	size_t rlen, rcap;
	uint8_t *wbuf; /* bytes the kernel did not take yet */
	size_t wlen, wcap;
	char user[24];
	char reg_callid[40];
	uint32_t cseq;
	enum phase phase;
	int registered;
	uint64_t t_start, deadline;
	struct conn *peer; /* call: the callee of a caller (even id), the caller of a callee */
	/* the caller's dialog */
	char callid[48], ftag[24], branch[40];
	char *dialog_to;     /* the To header line of the 200, with the tag */
	char *remote_target; /* the Contact URI of the 200 */
	char *route;         /* Route header line: the 200's Record-Route reversed, or "" */
};

static struct {
	enum scenario sc;
	struct sockaddr_in addr;
	char hostport[160], domain[128];
	int pid, conns, user_base;
	double duration, rate, idle_secs;
	int sdp_size, timeout_ms;
	const char *label, *out;
} opt = {.domain = "bench.test", .conns = 50, .duration = 5, .idle_secs = 30, .sdp_size = 1024,
	 .timeout_ms = 5000, .label = "sipload"};

static const char USAGE[] =
	"usage: sipload [options] SCENARIO   (tests/bench/README.md)\n"
	"  register       each connection refreshes its binding (REGISTER -> 200) in a loop\n"
	"  register-auth  each REGISTER is challenged (401) and answered with an MD5 digest -> 200\n"
	"  call           pairs of registered connections: INVITE/100/180/200/ACK/BYE/200, SDP both ways\n"
	"  idle           N registered connections that only answer the server's pings\n"
	"  cpu            print the server tree's CPU clock ticks and exit\n"
	"  --server HOST:PORT  the WebSocket listener (IPv4)   --domain D     AOR domain (bench.test)\n"
	"  --pid PID           the server process (required)  --conns N      connections (50)\n"
	"  --duration S        seconds of load (5)            --rate R       operations/s (0: closed loop)\n"
	"  --sdp-size B        SDP body size (1024)           --idle S       idle seconds (30)\n"
	"  --timeout MS        per operation (5000)           --label L      first column of the result\n"
	"  --out FILE          append the result as one tab-separated line\n"
	"  --user-base N       the first connection's user is bN (0)\n"
	"Users b0, b1, ... have the password pw-b0, pw-b1, ...\n";

static int ep;
static struct conn *conns;
static char *sdp;
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static long ops_done, ops_failed, pings, in_flight;
static long fail_code[700], fail_timeout, fail_closed;
static uint32_t *lat;
static size_t nlat, lat_cap;
static int measuring;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("sipload: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(2);
}

/* ---- the server's process tree, from /proc ---- */

static int tree[256], ntree;

/* /proc/PID/stat read into buf: from the ')' that closes the command name on (NULL if the
 * process is gone). */
static const char *stat_of(int pid, char *buf, size_t size)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t n = fread(buf, 1, size - 1, f);
	fclose(f);
	buf[n] = 0;
	return strrchr(buf, ')');
}

static int parent_of(int pid)
{
	char buf[512];
	const char *p = stat_of(pid, buf, sizeof buf);
	int ppid = -1;
	if (p)
		sscanf(p + 2, "%*c %d", &ppid);
	return ppid;
}

/* The server and every descendant (Kamailio forks its workers; sipedge is one process). */
static void find_tree(void)
{
	ntree = 0;
	tree[ntree++] = opt.pid;
	for (int grew = 1; grew;) {
		grew = 0;
		DIR *d = opendir("/proc");
		struct dirent *e;
		while (d && (e = readdir(d))) {
			int pid = atoi(e->d_name), known = 0;
			if (pid <= 0)
				continue;
			for (int i = 0; i < ntree; i++)
				known |= tree[i] == pid;
			if (known)
				continue;
			int pp = parent_of(pid);
			for (int i = 0; i < ntree && ntree < 256; i++)
				if (tree[i] == pp) {
					tree[ntree++] = pid;
					grew = 1;
					break;
				}
		}
		if (d)
			closedir(d);
	}
}

/* user + system clock ticks of the tree (fields 14 and 15 of /proc/PID/stat). */
static long long cpu_ticks(void)
{
	long long sum = 0;
	for (int i = 0; i < ntree; i++) {
		char buf[1024];
		const char *p = stat_of(tree[i], buf, sizeof buf);
		unsigned long long ut = 0, st = 0;
		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
			sum += (long long)(ut + st);
	}
	return sum;
}

/* Pss and Rss of the tree in kB (/proc/PID/smaps_rollup): Pss shares Kamailio's shared memory
 * out between its processes instead of counting it once per process. */
static void mem_kb(long long *pss, long long *rss)
{
	*pss = *rss = 0;
	for (int i = 0; i < ntree; i++) {
		char path[64], line[256];
		snprintf(path, sizeof path, "/proc/%d/smaps_rollup", tree[i]);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		long long v;
		while (fgets(line, sizeof line, f)) {
			if (sscanf(line, "Pss: %lld kB", &v) == 1)
				*pss += v;
			else if (sscanf(line, "Rss: %lld kB", &v) == 1)
				*rss += v;
		}
		fclose(f);
	}
}

/* ---- shared functions ---- */

static void b64(const unsigned char *in, int n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, in, n);
}

static void md5_hex(const char *s, char out[33])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_Digest(s, strlen(s), d, &n, EVP_md5(), NULL);
	for (unsigned int i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
	out[2 * n] = 0;
}

static void token(char *out, int n)
{
	static const char al[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	for (int i = 0; i < n; i++)
		out[i] = al[rnd() % 36];
	out[n] = 0;
}

static void add_latency(uint64_t ns)
{
	if (nlat == lat_cap) {
		lat_cap = lat_cap ? lat_cap * 2 : 65536;
		lat = realloc(lat, lat_cap * sizeof *lat);
		if (!lat)
			die("out of memory");
	}
	lat[nlat++] = (uint32_t)(ns / 1000);
}

/* ---- the socket and the WebSocket framing ---- */

static void conn_close(struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	c->fd = -1;
	c->st = C_DEAD;
}

static void want_out(struct conn *c, int on)
{
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void raw_send(struct conn *c, const void *p, size_t n)
{
	if (c->st == C_DEAD)
		return;
	if (c->wlen == 0) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			conn_close(c);
			return;
		}
		if (w < 0)
			w = 0;
		if ((size_t)w == n)
			return;
		p = (const uint8_t *)p + w;
		n -= (size_t)w;
		want_out(c, 1);
	}
	if (c->wlen + n > c->wcap) {
		c->wcap = (c->wlen + n) * 2;
		c->wbuf = realloc(c->wbuf, c->wcap);
		if (!c->wbuf)
			die("out of memory");
	}
	memcpy(c->wbuf + c->wlen, p, n);
	c->wlen += n;
}

static void flush_out(struct conn *c)
{
	while (c->wlen) {
		ssize_t w = send(c->fd, c->wbuf, c->wlen, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_close(c);
			return;
		}
		memmove(c->wbuf, c->wbuf + w, c->wlen - (size_t)w);
		c->wlen -= (size_t)w;
	}
	want_out(c, 0);
}

/* One client frame (RFC 6455 §5.2): FIN, the opcode, the mask bit always set, the payload
 * length in 7, 7+16 or 7+64 bits, a fresh 4-byte masking key, the payload XORed with it. */
static void ws_send(struct conn *c, int opcode, const void *payload, size_t n)
{
	static uint8_t frame[MAX_MSG + 16];
	size_t h = 0;
	if (n > MAX_MSG)
		die("message too large");
	frame[h++] = (uint8_t)(0x80 | opcode);
	if (n < 126) {
		frame[h++] = (uint8_t)(0x80 | n);
	} else if (n < 65536) {
		frame[h++] = 0x80 | 126;
		frame[h++] = (uint8_t)(n >> 8);
		frame[h++] = (uint8_t)n;
	} else {
		frame[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			frame[h++] = (uint8_t)((uint64_t)n >> (8 * i));
	}
	uint32_t key = (uint32_t)rnd();
	uint8_t mask[4];
	memcpy(mask, &key, 4);
	memcpy(frame + h, mask, 4);
	h += 4;
	const uint8_t *in = payload;
	for (size_t i = 0; i < n; i++)
		frame[h + i] = in[i] ^ mask[i & 3];
	raw_send(c, frame, h + n);
}

static void sip_send(struct conn *c, const char *msg, size_t n)
{
	ws_send(c, 0x1, msg, n);
}

/* ---- SIP: the few header lines a UA needs ---- */

/* The next header line named NAME (or its compact form) after *at, before the blank line that
 * ends the headers: its start, its colon in *colon and its end (the '\n', or the end of the
 * message) in *eol; NULL if none. *at starts NULL and moves past each line found. */
static const char *next_hdr(const char *msg, size_t len, const char *name, char compact, const char **at,
			    const char **colon, const char **eol)
{
	const char *end = msg + len;
	const char *p = *at ? *at : memchr(msg, '\n', len);
	size_t nl = strlen(name);
	while (p && ++p < end) {
		const char *e = memchr(p, '\n', (size_t)(end - p));
		if (!e)
			e = end;
		if (p[0] == '\r' || p[0] == '\n')
			break; /* end of headers */
		const char *c = memchr(p, ':', (size_t)(e - p));
		if (c) {
			const char *ne = c;
			while (ne > p && (ne[-1] == ' ' || ne[-1] == '\t'))
				ne--;
			size_t n = (size_t)(ne - p);
			if ((n == nl && strncasecmp(p, name, nl) == 0) ||
			    (compact && n == 1 && tolower((unsigned char)p[0]) == compact)) {
				*at = *eol = e;
				*colon = c;
				return p;
			}
		}
		p = e;
	}
	return NULL;
}

/* The value of the first header NAME (or its compact form); NULL if none. */
static const char *hdr(const char *msg, size_t len, const char *name, char compact, size_t *vlen)
{
	const char *at = NULL, *colon, *eol;
	if (!next_hdr(msg, len, name, compact, &at, &colon, &eol))
		return NULL;
	const char *v = colon + 1;
	while (v < eol && (*v == ' ' || *v == '\t'))
		v++;
	const char *ve = eol;
	while (ve > v && (ve[-1] == '\r' || ve[-1] == ' '))
		ve--;
	*vlen = (size_t)(ve - v);
	return v;
}

/* Copy the header lines named NAME (or COMPACT) to OUT, in order; returns bytes written. */
static size_t copy_hdrs(const char *msg, size_t len, const char *name, char compact, char *out, size_t cap,
			int *count)
{
	const char *at = NULL, *colon, *eol, *p;
	size_t o = 0;
	while ((p = next_hdr(msg, len, name, compact, &at, &colon, &eol))) {
		size_t l = (size_t)(eol - p) + 1;
		if (o + l < cap) {
			memcpy(out + o, p, l);
			o += l;
			if (count)
				(*count)++;
		}
	}
	out[o] = 0;
	return o;
}

/* A quoted or token parameter of a Digest challenge. */
static int auth_param(const char *v, size_t vl, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	for (const char *p = v; p + nl < v + vl; p++) {
		if (strncasecmp(p, name, nl) || p[nl] != '=' || (p > v && isalnum((unsigned char)p[-1])))
			continue;
		p += nl + 1;
		const char *e;
		if (*p == '"') {
			p++;
			e = memchr(p, '"', (size_t)(v + vl - p));
		} else {
			e = p;
			while (e < v + vl && *e != ',' && *e != ' ')
				e++;
		}
		if (!e || (size_t)(e - p) >= cap)
			return 0;
		memcpy(out, p, (size_t)(e - p));
		out[e - p] = 0;
		return 1;
	}
	return 0;
}

/* ---- operations ---- */

static void op_begin(struct conn *c, enum phase ph)
{
	c->phase = ph;
	c->t_start = now_ns();
	c->deadline = c->t_start + (uint64_t)opt.timeout_ms * 1000000ull;
	in_flight++;
}

static void op_end(struct conn *c, int ok, int code)
{
	c->phase = P_NONE;
	in_flight--;
	if (!measuring)
		return;
	if (ok) {
		ops_done++;
		add_latency(now_ns() - c->t_start);
	} else {
		ops_failed++;
		if (code > 0 && code < 700)
			fail_code[code]++;
		else if (code == -1)
			fail_timeout++;
		else
			fail_closed++;
	}
}

static void send_register(struct conn *c, const char *authz)
{
	char msg[4096], br[24];
	token(br, 16);
	int n = snprintf(msg, sizeof msg,
			 "REGISTER sip:%s SIP/2.0\r\n"
			 "Via: SIP/2.0/WS %s.invalid;branch=z9hG4bK%s\r\n"
			 "Max-Forwards: 70\r\n"
			 "To: <sip:%s@%s>\r\n"
			 "From: <sip:%s@%s>;tag=%s\r\n"
			 "Call-ID: %s\r\n"
			 "CSeq: %u REGISTER\r\n"
			 "Contact: <sip:%s@%s.invalid;transport=ws>\r\n"
			 "Expires: 600\r\n"
			 "%s"
			 "User-Agent: sipload\r\n"
			 "Content-Length: 0\r\n\r\n",
			 opt.domain, c->user, br, c->user, opt.domain, c->user, opt.domain, c->user, c->reg_callid,
			 ++c->cseq, c->user, c->user, authz ? authz : "");
	sip_send(c, msg, (size_t)n);
}

static void start_register(struct conn *c)
{
	op_begin(c, P_REG);
	send_register(c, NULL);
}

/* RFC 2617 §3.2.2 with qop=auth when offered (RFC 2069 otherwise); MD5 only. */
static void answer_challenge(struct conn *c, const char *v, size_t vl)
{
	char realm[256], nonce[256], opaque[256] = "", qop[64] = "", algo[32] = "MD5";
	if (!auth_param(v, vl, "realm", realm, sizeof realm) || !auth_param(v, vl, "nonce", nonce, sizeof nonce)) {
		op_end(c, 0, 401);
		return;
	}
	auth_param(v, vl, "opaque", opaque, sizeof opaque);
	auth_param(v, vl, "qop", qop, sizeof qop);
	auth_param(v, vl, "algorithm", algo, sizeof algo);
	if (strcasecmp(algo, "MD5")) {
		op_end(c, 0, 401);
		return;
	}
	char buf[1024], ha1[33], ha2[33], resp[33], cnonce[17], uri[160], authz[1536], op[320] = "";
	snprintf(uri, sizeof uri, "sip:%s", opt.domain);
	snprintf(buf, sizeof buf, "%s:%s:pw-%s", c->user, realm, c->user);
	md5_hex(buf, ha1);
	snprintf(buf, sizeof buf, "REGISTER:%s", uri);
	md5_hex(buf, ha2);
	token(cnonce, 16);
	int use_qop = strstr(qop, "auth") != NULL;
	if (use_qop)
		snprintf(buf, sizeof buf, "%s:%s:00000001:%s:auth:%s", ha1, nonce, cnonce, ha2);
	else
		snprintf(buf, sizeof buf, "%s:%s:%s", ha1, nonce, ha2);
	md5_hex(buf, resp);
	if (opaque[0])
		snprintf(op, sizeof op, ", opaque=\"%s\"", opaque);
	if (use_qop)
		snprintf(authz, sizeof authz,
			 "Authorization: Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", "
			 "response=\"%s\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"%s\"%s\r\n",
			 c->user, realm, nonce, uri, resp, cnonce, op);
	else
		snprintf(authz, sizeof authz,
			 "Authorization: Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", "
			 "response=\"%s\", algorithm=MD5%s\r\n",
			 c->user, realm, nonce, uri, resp, op);
	c->phase = P_REG_AUTH;
	send_register(c, authz);
}

static void send_invite(struct conn *c)
{
	static char msg[MAX_MSG];
	struct conn *b = c->peer;
	token(c->callid, 20);
	token(c->ftag, 10);
	token(c->branch, 16);
	int n = snprintf(msg, sizeof msg,
			 "INVITE sip:%s@%s SIP/2.0\r\n"
			 "Via: SIP/2.0/WS %s.invalid;branch=z9hG4bK%s\r\n"
			 "Max-Forwards: 70\r\n"
			 "To: <sip:%s@%s>\r\n"
			 "From: <sip:%s@%s>;tag=%s\r\n"
			 "Call-ID: %s\r\n"
			 "CSeq: 1 INVITE\r\n"
			 "Contact: <sip:%s@%s.invalid;transport=ws>\r\n"
			 "User-Agent: sipload\r\n"
			 "Content-Type: application/sdp\r\n"
			 "Content-Length: %d\r\n\r\n%s",
			 b->user, opt.domain, c->user, c->branch, b->user, opt.domain, c->user, opt.domain, c->ftag,
			 c->callid, c->user, c->user, opt.sdp_size, sdp);
	op_begin(c, P_INVITE);
	sip_send(c, msg, (size_t)n);
}

static void start_op(struct conn *c)
{
	if (opt.sc == SC_CALL)
		send_invite(c);
	else
		start_register(c);
}

/* An in-dialog request of the caller: to the remote target, along the route set. */
static void send_in_dialog(struct conn *c, const char *method, int cseq)
{
	char msg[8192], br[24];
	token(br, 16);
	int n = snprintf(msg, sizeof msg,
			 "%s %s SIP/2.0\r\n"
			 "Via: SIP/2.0/WS %s.invalid;branch=z9hG4bK%s\r\n"
			 "Max-Forwards: 70\r\n"
			 "%s"
			 "%s\r\n"
			 "From: <sip:%s@%s>;tag=%s\r\n"
			 "Call-ID: %s\r\n"
			 "CSeq: %d %s\r\n"
			 "Content-Length: 0\r\n\r\n",
			 method, c->remote_target, c->user, br, c->route, c->dialog_to, c->user, opt.domain, c->ftag,
			 c->callid, cseq, method);
	sip_send(c, msg, (size_t)n);
}

/* Split Record-Route values (comma-separated, possibly several headers) and write the Route
 * header line with them reversed (RFC 3261 §12.1.2). */
static void build_route(struct conn *c, const char *rr)
{
	const char *vals[32];
	size_t lens[32];
	int nv = 0;
	for (const char *line = rr; *line && nv < 32;) {
		const char *eol = strchr(line, '\n');
		const char *v = strchr(line, ':');
		if (!v || (eol && v > eol))
			break;
		v++;
		const char *end = eol ? eol : line + strlen(line);
		while (v < end && nv < 32) {
			while (v < end && (*v == ' ' || *v == ','))
				v++;
			const char *e = v;
			int in_angle = 0;
			while (e < end && (in_angle || *e != ',') && *e != '\r') {
				if (*e == '<')
					in_angle = 1;
				else if (*e == '>')
					in_angle = 0;
				e++;
			}
			if (e > v) {
				vals[nv] = v;
				lens[nv++] = (size_t)(e - v);
			}
			v = e;
			if (v < end && *v == '\r')
				break;
		}
		line = eol ? eol + 1 : end;
	}
	free(c->route);
	size_t cap = 16;
	for (int i = 0; i < nv; i++)
		cap += lens[i] + 2;
	c->route = malloc(cap + 16);
	if (!c->route)
		die("out of memory");
	if (!nv) {
		c->route[0] = 0;
		return;
	}
	size_t o = (size_t)sprintf(c->route, "Route: ");
	for (int i = nv - 1; i >= 0; i--) {
		memcpy(c->route + o, vals[i], lens[i]);
		o += lens[i];
		if (i)
			o += (size_t)sprintf(c->route + o, ", ");
	}
	sprintf(c->route + o, "\r\n");
}

static char *dupn(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (!d)
		die("out of memory");
	memcpy(d, s, n);
	d[n] = 0;
	return d;
}

static void on_response(struct conn *c, const char *msg, size_t len)
{
	int code = atoi(msg + 8);
	size_t vl;
	const char *cseq = hdr(msg, len, "CSeq", 0, &vl);
	if (!cseq)
		return;
	const char *sp = memchr(cseq, ' ', vl);
	if (!sp)
		return;
	const char *method = sp + 1;
	size_t ml = (size_t)(cseq + vl - method);
	if (code < 200)
		return; /* 100 from the proxy, 180 from the callee */
	if (ml == 8 && !memcmp(method, "REGISTER", 8)) {
		if (c->phase == P_REG && code == 401 && opt.sc == SC_REGISTER_AUTH) {
			const char *v = hdr(msg, len, "WWW-Authenticate", 0, &vl);
			if (v)
				answer_challenge(c, v, vl);
			else
				op_end(c, 0, 401);
			return;
		}
		if (c->phase != P_REG && c->phase != P_REG_AUTH)
			return;
		if (code == 200)
			c->registered = 1;
		op_end(c, code == 200, code);
		return;
	}
	if (ml == 6 && !memcmp(method, "INVITE", 6) && c->phase == P_INVITE) {
		if (code >= 300) {
			/* hop-by-hop ACK for a failure (RFC 3261 §17.1.1.3): the INVITE's branch and
			 * Request-URI, the To of the response */
			char to[512], m[2048];
			const char *t = hdr(msg, len, "To", 't', &vl);
			snprintf(to, sizeof to, "To: %.*s", t ? (int)vl : 0, t ? t : "");
			int n = snprintf(m, sizeof m,
					 "ACK sip:%s@%s SIP/2.0\r\nVia: SIP/2.0/WS %s.invalid;branch=z9hG4bK%s\r\n"
					 "Max-Forwards: 70\r\n%s\r\nFrom: <sip:%s@%s>;tag=%s\r\nCall-ID: %s\r\n"
					 "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
					 c->peer->user, opt.domain, c->user, c->branch, to, c->user, opt.domain, c->ftag,
					 c->callid);
			sip_send(c, m, (size_t)n);
			op_end(c, 0, code);
			return;
		}
		const char *t = hdr(msg, len, "To", 't', &vl);
		size_t cl;
		const char *ct = hdr(msg, len, "Contact", 'm', &cl);
		if (!t || !ct) {
			op_end(c, 0, code);
			return;
		}
		free(c->dialog_to);
		c->dialog_to = malloc(vl + 8);
		sprintf(c->dialog_to, "To: %.*s", (int)vl, t);
		const char *lt = memchr(ct, '<', cl), *gt = lt ? memchr(lt, '>', cl - (size_t)(lt - ct)) : NULL;
		free(c->remote_target);
		c->remote_target = lt && gt ? dupn(lt + 1, (size_t)(gt - lt - 1)) : dupn(ct, cl);
		char rr[4096];
		copy_hdrs(msg, len, "Record-Route", 0, rr, sizeof rr, NULL);
		build_route(c, rr);
		send_in_dialog(c, "ACK", 1);
		c->phase = P_BYE;
		send_in_dialog(c, "BYE", 2);
		return;
	}
	if (ml == 3 && !memcmp(method, "BYE", 3) && c->phase == P_BYE)
		op_end(c, code == 200, code);
}

/* The callee: 180 and 200 (with SDP) to INVITE, 200 to anything else but ACK. */
static void on_request(struct conn *c, const char *msg, size_t len)
{
	static char out[MAX_MSG], hdrs[16384];
	if (!strncmp(msg, "ACK ", 4))
		return;
	int is_invite = !strncmp(msg, "INVITE ", 7);
	size_t o = 0, vl;
	o += copy_hdrs(msg, len, "Via", 'v', hdrs + o, sizeof hdrs - o, NULL);
	if (is_invite)
		o += copy_hdrs(msg, len, "Record-Route", 0, hdrs + o, sizeof hdrs - o, NULL);
	o += copy_hdrs(msg, len, "From", 'f', hdrs + o, sizeof hdrs - o, NULL);
	o += copy_hdrs(msg, len, "Call-ID", 'i', hdrs + o, sizeof hdrs - o, NULL);
	o += copy_hdrs(msg, len, "CSeq", 0, hdrs + o, sizeof hdrs - o, NULL);
	const char *to = hdr(msg, len, "To", 't', &vl);
	char toline[600];
	if (!to || vl > 500)
		return;
	if (memmem(to, vl, ";tag=", 5))
		snprintf(toline, sizeof toline, "To: %.*s\r\n", (int)vl, to);
	else
		snprintf(toline, sizeof toline, "To: %.*s;tag=%dx%s\r\n", (int)vl, to, c->id, c->user);
	int n;
	if (is_invite) {
		n = snprintf(out, sizeof out, "SIP/2.0 180 Ringing\r\n%s%sContact: <sip:%s@%s.invalid;transport=ws>\r\n"
					      "Content-Length: 0\r\n\r\n",
			     hdrs, toline, c->user, c->user);
		sip_send(c, out, (size_t)n);
		n = snprintf(out, sizeof out,
			     "SIP/2.0 200 OK\r\n%s%sContact: <sip:%s@%s.invalid;transport=ws>\r\n"
			     "Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
			     hdrs, toline, c->user, c->user, opt.sdp_size, sdp);
	} else {
		n = snprintf(out, sizeof out, "SIP/2.0 200 OK\r\n%s%sContent-Length: 0\r\n\r\n", hdrs, toline);
	}
	sip_send(c, out, (size_t)n);
}

static void on_sip(struct conn *c, const char *msg, size_t len)
{
	if (len > 12 && !memcmp(msg, "SIP/2.0 ", 8))
		on_response(c, msg, len);
	else if (len > 8)
		on_request(c, msg, len);
}

/* ---- reading: the handshake, then frames ---- */

static void on_readable(struct conn *c)
{
	for (;;) {
		if (c->rcap - c->rlen < 16384) {
			c->rcap = c->rcap ? c->rcap * 2 : 32768;
			c->rbuf = realloc(c->rbuf, c->rcap);
			if (!c->rbuf)
				die("out of memory");
		}
		ssize_t r = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			if (c->phase != P_NONE)
				op_end(c, 0, -2);
			conn_close(c);
			return;
		}
		if (r < 0)
			break;
		c->rlen += (size_t)r;
		if ((size_t)r < c->rcap - c->rlen + (size_t)r)
			break;
	}
	size_t off = 0;
	if (c->st == C_HANDSHAKE) {
		uint8_t *e = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
		if (!e)
			return;
		size_t hl = (size_t)(e - c->rbuf) + 4;
		char *h = dupn((char *)c->rbuf, hl);
		size_t vl;
		const char *acc = hdr(h, hl, "Sec-WebSocket-Accept", 0, &vl);
		const char *proto = hdr(h, hl, "Sec-WebSocket-Protocol", 0, &vl);
		if (strncmp(h, "HTTP/1.1 101", 12) || !acc || strncmp(acc, c->accept, strlen(c->accept)) || !proto ||
		    strncasecmp(proto, "sip", 3)) {
			static int said;
			if (!said++)
				fprintf(stderr, "sipload: handshake refused: %.*s\n", (int)strcspn(h, "\r"), h);
			free(h);
			conn_close(c);
			return;
		}
		free(h);
		c->st = C_OPEN;
		off = hl;
	}
	while (c->rlen - off >= 2) {
		uint8_t *f = c->rbuf + off;
		size_t avail = c->rlen - off, h = 2;
		uint64_t n = f[1] & 0x7f;
		if (n == 126) {
			if (avail < 4)
				break;
			n = (uint64_t)f[2] << 8 | f[3];
			h = 4;
		} else if (n == 127) {
			if (avail < 10)
				break;
			n = 0;
			for (int i = 0; i < 8; i++)
				n = n << 8 | f[2 + i];
			h = 10;
		}
		int masked = f[1] & 0x80;
		if (masked)
			h += 4;
		if (avail < h + n)
			break;
		uint8_t *p = f + h;
		if (masked) /* a server must not mask (RFC 6455 §5.1); unmask all the same */
			for (uint64_t i = 0; i < n; i++)
				p[i] ^= f[h - 4 + (i & 3)];
		int opcode = f[0] & 0x0f;
		if (opcode == 0x1 || opcode == 0x2)
			on_sip(c, (char *)p, (size_t)n);
		else if (opcode == 0x9) {
			pings++;
			ws_send(c, 0xA, p, (size_t)n);
		} else if (opcode == 0x8) {
			if (c->phase != P_NONE)
				op_end(c, 0, -2);
			conn_close(c);
			return;
		}
		if (c->st == C_DEAD)
			return;
		off += h + (size_t)n;
	}
	memmove(c->rbuf, c->rbuf + off, c->rlen - off);
	c->rlen -= off;
}

static void start_connect(struct conn *c)
{
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket: %s", strerror(errno));
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(c->fd, (struct sockaddr *)&opt.addr, sizeof opt.addr) < 0 && errno != EINPROGRESS)
		die("connect: %s", strerror(errno));
	c->st = C_CONNECTING;
	struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void on_connected(struct conn *c)
{
	int err = 0;
	socklen_t l = sizeof err;
	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
	if (err) {
		static int said;
		if (!said++)
			fprintf(stderr, "sipload: connect: %s\n", strerror(err));
		conn_close(c);
		return;
	}
	unsigned char k[16], d[EVP_MAX_MD_SIZE];
	char key[32], buf[128], req[512];
	for (int i = 0; i < 16; i++)
		k[i] = (unsigned char)rnd();
	b64(k, 16, key);
	snprintf(buf, sizeof buf, "%s%s", key, WS_GUID);
	unsigned int dn = 0;
	EVP_Digest(buf, strlen(buf), d, &dn, EVP_sha1(), NULL);
	b64(d, (int)dn, c->accept);
	int n = snprintf(req, sizeof req,
			 "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n"
			 "Origin: http://%s\r\n\r\n",
			 opt.hostport, key, opt.hostport);
	c->st = C_HANDSHAKE;
	want_out(c, 0);
	raw_send(c, req, (size_t)n);
}

/* ---- the loop ---- */

static void poll_once(int timeout_ms)
{
	struct epoll_event evs[256];
	int n = epoll_wait(ep, evs, 256, timeout_ms);
	for (int i = 0; i < n; i++) {
		struct conn *c = evs[i].data.ptr;
		if (c->st == C_DEAD)
			continue;
		if (c->st == C_CONNECTING) {
			if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
				on_connected(c);
			continue;
		}
		if (evs[i].events & EPOLLOUT)
			flush_out(c);
		if (c->st != C_DEAD && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
			on_readable(c);
	}
}

static void check_timeouts(void)
{
	uint64_t t = now_ns();
	for (int i = 0; i < opt.conns; i++) {
		struct conn *c = &conns[i];
		if (c->phase != P_NONE && t > c->deadline)
			op_end(c, 0, -1);
	}
}

/* Connect every connection (MAX_CONNECTING handshakes at a time) and wait for the upgrades. */
static int connect_all(void)
{
	int next = 0, open = 0, dead = 0;
	uint64_t limit = now_ns() + 60ull * 1000000000ull;
	while (now_ns() < limit) {
		int pending = 0;
		open = dead = 0;
		for (int i = 0; i < next; i++) {
			pending += conns[i].st == C_CONNECTING || conns[i].st == C_HANDSHAKE;
			open += conns[i].st == C_OPEN;
			dead += conns[i].st == C_DEAD;
		}
		while (next < opt.conns && pending < MAX_CONNECTING) {
			start_connect(&conns[next++]);
			pending++;
		}
		if (open + dead == opt.conns)
			break;
		poll_once(10);
	}
	return open;
}

/* REGISTER each connection once (no credentials) and wait for the 200s. */
static int register_all(void)
{
	int next = 0;
	uint64_t limit = now_ns() + 60ull * 1000000000ull;
	for (;;) {
		int done = 0, pending = 0;
		for (int i = 0; i < next; i++) {
			done += conns[i].registered || conns[i].st == C_DEAD;
			pending += conns[i].phase != P_NONE;
		}
		for (int i = next; i < opt.conns && pending < MAX_CONNECTING; i++, next++, pending++)
			if (conns[i].st == C_OPEN)
				start_register(&conns[i]);
		if (done == opt.conns || now_ns() > limit)
			break;
		for (int i = 0; i < next; i++)
			if (conns[i].phase == P_NONE && !conns[i].registered && conns[i].st == C_OPEN)
				conns[i].st = C_DEAD; /* refused: counted below */
		poll_once(10);
		check_timeouts();
	}
	int ok = 0;
	for (int i = 0; i < opt.conns; i++)
		ok += conns[i].registered;
	return ok;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void make_sdp(void)
{
	sdp = malloc((size_t)opt.sdp_size + 1);
	int n = snprintf(sdp, (size_t)opt.sdp_size + 1,
			 "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
			 "a=group:BUNDLE 0\r\na=msid-semantic: WMS\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0 8 126\r\n"
			 "c=IN IP4 127.0.0.1\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:sipl\r\n"
			 "a=ice-pwd:0123456789abcdefghijklmn\r\na=ice-options:trickle\r\n"
			 "a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:"
			 "88:99:AA:BB:CC:DD:EE:FF\r\na=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\n"
			 "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\n"
			 "a=rtpmap:8 PCMA/8000\r\na=rtpmap:126 telephone-event/8000\r\n");
	if (n < 0 || n + 16 > opt.sdp_size)
		die("--sdp-size too small");
	/* pad to the size asked with one attribute line */
	int pad = opt.sdp_size - n - 2;
	memcpy(sdp + n, "a=x-pad:", 8);
	memset(sdp + n + 8, 'x', (size_t)(pad - 8));
	memcpy(sdp + n + pad, "\r\n", 3);
}

static void report(const char *scname, double secs, long long ticks, long long pss_b, long long rss_b, double idle_pct)
{
	double hz = (double)sysconf(_SC_CLK_TCK);
	double cpu_us = ops_done ? (double)ticks / hz * 1e6 / (double)ops_done : 0;
	double p50 = 0, p99 = 0;
	if (nlat) {
		qsort(lat, nlat, sizeof *lat, cmp_u32);
		p50 = lat[nlat / 2];
		p99 = lat[(size_t)((double)(nlat - 1) * 0.99)];
	}
	char fails[1024] = "";
	size_t o = 0;
	for (int i = 0; i < 700; i++)
		if (fail_code[i])
			o += (size_t)snprintf(fails + o, sizeof fails - o, "%s%d:%ld", o ? "," : "", i, fail_code[i]);
	if (fail_timeout)
		o += (size_t)snprintf(fails + o, sizeof fails - o, "%stimeout:%ld", o ? "," : "", fail_timeout);
	if (fail_closed)
		o += (size_t)snprintf(fails + o, sizeof fails - o, "%sclosed:%ld", o ? "," : "", fail_closed);
	if (!o)
		strcpy(fails, "-");
	double rate = secs > 0 ? (double)ops_done / secs : 0;
	printf("%s %s: %ld ops, %ld failed (%s), %.0f/s, server CPU %.1f us/op, latency p50 %.0f us p99 %.0f us",
	       opt.label, scname, ops_done, ops_failed, fails, rate, cpu_us, p50, p99);
	if (opt.sc == SC_IDLE)
		printf(", %lld B PSS (%lld B RSS) per connection, idle CPU %.2f%%, %ld pings", pss_b, rss_b, idle_pct, pings);
	printf("\n");
	if (opt.out) {
		FILE *f = fopen(opt.out, "a");
		if (!f)
			die("%s: %s", opt.out, strerror(errno));
		fprintf(f, "%s\t%s\t%ld\t%ld\t%.1f\t%.2f\t%.0f\t%.0f\t%lld\t%lld\t%.3f\t%s\n", opt.label, scname, ops_done,
			ops_failed, rate, cpu_us, p50, p99, pss_b, rss_b, idle_pct, fails);
		fclose(f);
	}
}

/* Close every connection (the server sees them go) and free what they hold. */
static void cleanup(void)
{
	for (int i = 0; i < opt.conns; i++) {
		struct conn *c = &conns[i];
		conn_close(c);
		free(c->rbuf);
		free(c->wbuf);
		free(c->dialog_to);
		free(c->remote_target);
		free(c->route);
	}
	free(conns);
	free(lat);
	free(sdp);
	close(ep);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"server", required_argument, NULL, 's'}, {"domain", required_argument, NULL, 'd'},
		{"pid", required_argument, NULL, 'p'},    {"conns", required_argument, NULL, 'n'},
		{"duration", required_argument, NULL, 't'}, {"rate", required_argument, NULL, 'r'},
		{"sdp-size", required_argument, NULL, 'b'}, {"idle", required_argument, NULL, 'i'},
		{"timeout", required_argument, NULL, 'T'}, {"label", required_argument, NULL, 'l'},
		{"out", required_argument, NULL, 'o'},    {"help", no_argument, NULL, 'h'},
		{"user-base", required_argument, NULL, 'u'},
		{NULL, 0, NULL, 0}};
	int ch;
	char server[64] = "127.0.0.1:8080";
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 's': snprintf(server, sizeof server, "%s", optarg); break;
		case 'd': snprintf(opt.domain, sizeof opt.domain, "%s", optarg); break;
		case 'p': opt.pid = atoi(optarg); break;
		case 'n': opt.conns = atoi(optarg); break;
		case 't': opt.duration = atof(optarg); break;
		case 'r': opt.rate = atof(optarg); break;
		case 'b': opt.sdp_size = atoi(optarg); break;
		case 'i': opt.idle_secs = atof(optarg); break;
		case 'T': opt.timeout_ms = atoi(optarg); break;
		case 'l': opt.label = optarg; break;
		case 'o': opt.out = optarg; break;
		case 'u': opt.user_base = atoi(optarg); break;
		case 'h': fputs(USAGE, stdout); return 0;
		default: fputs(USAGE, stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		fputs(USAGE, stderr);
		return 2;
	}
	const char *scname = argv[optind];
	if (!strcmp(scname, "register"))
		opt.sc = SC_REGISTER;
	else if (!strcmp(scname, "register-auth"))
		opt.sc = SC_REGISTER_AUTH;
	else if (!strcmp(scname, "call"))
		opt.sc = SC_CALL;
	else if (!strcmp(scname, "idle"))
		opt.sc = SC_IDLE;
	else if (!strcmp(scname, "cpu"))
		opt.sc = SC_CPU;
	else
		die("unknown scenario %s", scname);
	if (opt.pid <= 0)
		die("--pid is required: the server process to measure");
	find_tree();
	if (opt.sc == SC_CPU) {
		printf("%lld %ld\n", cpu_ticks(), sysconf(_SC_CLK_TCK));
		return 0;
	}
	char *colon = strrchr(server, ':');
	if (!colon)
		die("--server HOST:PORT");
	*colon = 0;
	opt.addr.sin_family = AF_INET;
	opt.addr.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, server, &opt.addr.sin_addr) != 1)
		die("--server: an IPv4 address");
	snprintf(opt.hostport, sizeof opt.hostport, "%s:%s", server, colon + 1);
	if (opt.sc == SC_CALL && opt.conns % 2)
		opt.conns++;
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	rng ^= (uint64_t)getpid() << 32 ^ now_ns();
	make_sdp();
	ep = epoll_create1(EPOLL_CLOEXEC);
	conns = calloc((size_t)opt.conns, sizeof *conns);
	for (int i = 0; i < opt.conns; i++) {
		struct conn *c = &conns[i];
		c->id = i;
		c->fd = -1;
		snprintf(c->user, sizeof c->user, "b%d", opt.user_base + i);
		token(c->reg_callid, 24);
		if (opt.sc == SC_CALL)
			c->peer = &conns[i ^ 1];
	}
	long long pss0, rss0, pss1, rss1;
	mem_kb(&pss0, &rss0);
	int open = connect_all();
	if (open < opt.conns)
		die("%d of %d connections upgraded", open, opt.conns);
	if (opt.sc == SC_CALL || opt.sc == SC_IDLE) {
		int reg = register_all();
		if (reg < opt.conns)
			die("%d of %d connections registered", reg, opt.conns);
	}
	if (opt.sc == SC_IDLE) {
		/* settle, then the memory of the registered connections and the CPU of holding them */
		for (uint64_t until = now_ns() + 2000000000ull; now_ns() < until;)
			poll_once(100);
		mem_kb(&pss1, &rss1);
		long long t0 = cpu_ticks();
		uint64_t w0 = now_ns(), until = w0 + (uint64_t)(opt.idle_secs * 1e9);
		pings = 0;
		while (now_ns() < until)
			poll_once(100);
		double secs = (double)(now_ns() - w0) / 1e9;
		long long t1 = cpu_ticks();
		int alive = 0;
		for (int i = 0; i < opt.conns; i++)
			alive += conns[i].st == C_OPEN;
		ops_done = alive;
		ops_failed = opt.conns - alive;
		fail_closed = ops_failed;
		/* ops: the connections held; no CPU per operation for holding them */
		double pct = (double)(t1 - t0) / (double)sysconf(_SC_CLK_TCK) / secs * 100.0;
		long long n = opt.conns;
		report(scname, 0, 0, (pss1 - pss0) * 1024 / n, (rss1 - rss0) * 1024 / n, pct);
		printf("%s idle: %d of %d connections still open after %.0f s\n", opt.label, alive, opt.conns, secs);
		cleanup();
		return ops_failed ? 1 : 0;
	}
	/* the load: closed loop (every connection, or every caller, always busy) or paced */
	int nactors = opt.sc == SC_CALL ? opt.conns / 2 : opt.conns;
	struct conn **actors = calloc((size_t)nactors, sizeof *actors);
	for (int i = 0; i < nactors; i++)
		actors[i] = opt.sc == SC_CALL ? &conns[2 * i] : &conns[i];
	measuring = 1;
	long long t0 = cpu_ticks();
	uint64_t w0 = now_ns(), stop = w0 + (uint64_t)(opt.duration * 1e9), last_check = w0, w1;
	long started = 0, skipped = 0;
	if (opt.rate <= 0)
		for (int i = 0; i < nactors; i++)
			start_op(actors[i]);
	int cursor = 0;
	for (;;) {
		uint64_t t = now_ns();
		if (t >= stop)
			break;
		if (opt.rate > 0) {
			long due = (long)((double)(t - w0) / 1e9 * opt.rate) - started;
			while (due-- > 0) {
				int tries = 0;
				while (tries < nactors && actors[cursor]->phase != P_NONE) {
					cursor = (cursor + 1) % nactors;
					tries++;
				}
				started++;
				if (tries == nactors) {
					skipped++;
					continue;
				}
				start_op(actors[cursor]);
				cursor = (cursor + 1) % nactors;
			}
		} else {
			for (int i = 0; i < nactors; i++)
				if (actors[i]->phase == P_NONE && actors[i]->st == C_OPEN)
					start_op(actors[i]);
		}
		poll_once(opt.rate > 0 ? 1 : 50);
		if (t - last_check > 100000000ull) {
			check_timeouts();
			last_check = t;
		}
	}
	/* let what was started finish */
	for (uint64_t drain = now_ns() + (uint64_t)opt.timeout_ms * 1000000ull; in_flight > 0 && now_ns() < drain;)
		poll_once(10);
	check_timeouts();
	w1 = now_ns();
	long long t1 = cpu_ticks();
	if (skipped)
		fprintf(stderr, "sipload: %ld paced operations found no idle connection\n", skipped);
	report(scname, (double)(w1 - w0) / 1e9, t1 - t0, 0, 0, 0);
	free(actors);
	cleanup();
	return ops_failed || !ops_done ? 1 : 0;
}
