/** @file sipmsg.c  SIP message functions over sofia-sip. */
#include "base/sipmsg.h"
#include "base/log.h"

#include <ctype.h>
#include <openssl/rand.h>
#include <sofia-sip/msg_buffer.h>
#include <sofia-sip/msg_parser.h>
#include <sofia-sip/su.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static msg_mclass_t *mclass;

void sipmsg_init(void)
{
	/* An extended class so that sip_extra headers (P-Asserted-Identity, ...) parse as typed
	 * headers where we need them; everything else stays as unknown headers, passed through. */
	if (!mclass)
		mclass = sip_extend_mclass(NULL);
}

void sipmsg_shutdown(void)
{
	if (mclass && mclass != sip_default_mclass())
		free(mclass);
	mclass = NULL;
}

msg_mclass_t const *sipmsg_mclass(void) { return mclass ? mclass : sip_default_mclass(); }

bool sipmsg_is_keepalive(const char *data, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (data[i] != '\r' && data[i] != '\n')
			return false;
	return true;
}

/** Length of the header section: up to and including the empty line that ends it (CRLF CRLF,
 *  or bare LF LF as sofia-sip also accepts), or len if there is none. */
static size_t header_section_len(const char *data, size_t len)
{
	for (const char *lf = len ? memchr(data, '\n', len) : NULL; lf;
	     lf = memchr(lf + 1, '\n', len - (size_t)(lf + 1 - data))) {
		size_t i = (size_t)(lf - data);
		if (i + 1 >= len)
			break;
		if (data[i + 1] == '\n')
			return i + 2;
		if (data[i + 1] == '\r' && i + 2 < len && data[i + 2] == '\n')
			return i + 3;
	}
	return len;
}

/** Offset of the first NUL in the header section that the grammar forbids, or hlen if none.
 *  The one place it allows a NUL is the escaped octet of a quoted-pair inside a quoted string
 *  (RFC 3261 §25.1: quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F); RFC 4475 §3.1.1.2).
 *  Quoted strings do not span lines (only folded ones), so the state resets at each line. */
static size_t forbidden_nul(const char *data, size_t hlen)
{
	/* Nearly every message has no NUL at all: memchr finds that out at a fraction of the
	 * cost of the walk below. */
	if (!hlen || !memchr(data, '\0', hlen))
		return hlen;
	bool in_quotes = false, escaped = false;
	for (size_t i = 0; i < hlen; i++) {
		char c = data[i];
		if (c == '\0' && !(in_quotes && escaped))
			return i;
		if (escaped) {
			escaped = false;
		} else if (in_quotes && c == '\\') {
			escaped = true;
		} else if (c == '"') {
			in_quotes = !in_quotes;
		} else if (c == '\n' && !(i + 1 < hlen && (data[i + 1] == ' ' || data[i + 1] == '\t'))) {
			in_quotes = false;
		}
	}
	return hlen;
}

/** Copy len bytes of data into the nvec buffers msg_recv_iovec() gave. NUL bytes in the first
 *  blank_upto bytes (the header section) become spaces: sofia-sip reads header fields as C
 *  strings. The body is copied as it is: it is framed by its length, not read as text. */
static void fill_iovec(msg_iovec_t *iov, issize_t nvec, const char *data, size_t len, size_t blank_upto)
{
	size_t off = 0;
	for (issize_t i = 0; i < nvec && off < len; i++) {
		size_t n = iov[i].mv_len;
		if (n > len - off)
			n = len - off;
		char *dst = iov[i].mv_base;
		memcpy(dst, data + off, n);
		size_t blank = off < blank_upto ? (blank_upto - off < n ? blank_upto - off : n) : 0;
		for (char *z = blank ? memchr(dst, '\0', blank) : NULL; z;
		     z = memchr(z + 1, '\0', blank - (size_t)(z + 1 - dst)))
			*z = ' ';
		off += n;
	}
}

/* sofia-sip allocates every header, parameter list and string of a message on its own from the
 * message's home: some 40 malloc and free pairs for a REGISTER and for its 200. A preloaded
 * area takes the small ones in one block, freed with the message (su_home_preload). The
 * sanitizer build (make check) keeps one allocation each, so that AddressSanitizer still sees
 * an overflow from one header's memory into the next. */
#ifndef SIPMSG_PRELOAD
#if defined(__SANITIZE_ADDRESS__)
#define SIPMSG_PRELOAD 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIPMSG_PRELOAD 0
#endif
#endif
#endif
#ifndef SIPMSG_PRELOAD
#define SIPMSG_PRELOAD 4096
#endif

static msg_t *msg_new(int flags)
{
	msg_t *msg = msg_create(sipmsg_mclass(), flags);
	if (msg && SIPMSG_PRELOAD)
		su_home_preload(msg_home(msg), 1, SIPMSG_PRELOAD);
	return msg;
}

/** Copy data into a new message and run the parser over it; *rc is msg_extract's result. */
static msg_t *parse_raw(const char *data, size_t len, size_t blank_upto, int *rc)
{
	msg_t *msg = msg_new(MSG_DO_EXTRACT_COPY);
	if (!msg)
		return NULL;
	msg_iovec_t iov[2];
	issize_t nvec = msg_recv_iovec(msg, iov, 2, len, 1);
	if (nvec < 1) {
		msg_destroy(msg);
		return NULL;
	}
	fill_iovec(iov, nvec, data, len, blank_upto);
	msg_recv_commit(msg, len, 1);
	*rc = msg_extract(msg);
	return msg;
}

msg_t *sipmsg_parse(const char *data, size_t len, const char **why)
{
	*why = NULL;
	if (len == 0) {
		*why = "empty message";
		return NULL;
	}
	/* A NUL is refused only where RFC 3261's grammar has no room for one: in the header
	 * section outside a quoted-pair. The body is arbitrary octets (§7.4). */
	size_t hlen = header_section_len(data, len);
	if (forbidden_nul(data, hlen) < hlen) {
		*why = "NUL byte in header";
		return NULL;
	}
	int rc;
	msg_t *msg = parse_raw(data, len, hlen, &rc);
	if (!msg) {
		*why = "out of memory";
		return NULL;
	}
	if (rc <= 0 || msg_has_error(msg)) {
		sip_t *sip = sip_object(msg);
		if ((rc == 0 || msg_get_flags(msg, MSG_FLG_TRUNC)) && sip &&
		    (sip->sip_request || sip->sip_status) && sip->sip_content_length) {
			*why = "body shorter than Content-Length";
			/* Keep it: the caller can still answer 400 to a request it can read. */
			msg_set_flags(msg, MSG_FLG_TRUNC);
			return msg;
		}
		msg_destroy(msg);
		*why = rc < 0 ? "unparsable message" : "incomplete message";
		return NULL;
	}
	sip_t *sip = sip_object(msg);
	if (!sip || (!sip->sip_request && !sip->sip_status)) {
		msg_destroy(msg);
		*why = "no request or status line";
		return NULL;
	}
	/* A Content-Length with no body at all after the blank line is complete for the
	 * parser (the datagram or WebSocket message ended); it is still a short body. */
	if (sip->sip_content_length && sip->sip_content_length->l_length > 0 &&
	    (!sip->sip_payload || sip->sip_payload->pl_len < sip->sip_content_length->l_length))
		msg_set_flags(msg, MSG_FLG_TRUNC);
	return msg;
}

/** RFC 3261 §25.1 token characters (methods, and the scheme test below). */
static bool is_token_char(unsigned char c)
{
	return isalnum(c) || (c && strchr("-.!%*_+`'~", c));
}

/** The request line's method if it is a token followed by SP, else 0: its length. */
static size_t start_line_method(const char *data, size_t len)
{
	size_t n = 0;
	while (n < len && is_token_char((unsigned char)data[n]))
		n++;
	return n > 0 && n < len && data[n] == ' ' ? n : 0;
}

/** Why a request line sofia-sip could not read is wrong: the Request-URI when the line is
 *  otherwise right (method SP uri SP SIP/2.0, single spaces), else the line as a whole. */
static const char *start_line_fault(const char *line, size_t n)
{
	const char *sp1 = memchr(line, ' ', n);
	const char *sp2 = n > 8 ? line + n - 8 : NULL;
	if (sp1 && sp2 && sp2 > sp1 + 1 && memcmp(sp2, " SIP/2.0", 8) == 0 && sp1[1] != ' ' &&
	    sp2[-1] != ' ')
		return "Malformed Request-URI";
	return "Malformed Request-Line";
}

/** A copy of data whose request line is "METHOD sip:invalid SIP/2.0" (or, with method NULL,
 *  its own method): the headers can then be read to answer a request whose own line cannot be
 *  (LWS inside the Request-URI, an IPv6 reference without brackets: RFC 4475 §3.1.2.8, RFC
 *  5118 §4.2). NULL if the line does not even start with a method. */
static char *replace_start_line(const char *data, size_t len, const char *method, size_t *out_len)
{
	size_t mlen = start_line_method(data, len);
	const char *eol = memchr(data, '\n', len);
	if (!mlen || !eol)
		return NULL;
	const char *m = method ? method : data;
	if (method)
		mlen = strlen(method);
	static const char tail[] = " sip:invalid SIP/2.0\r";
	size_t rest = len - (size_t)(eol - data);
	char *buf = malloc(mlen + sizeof(tail) - 1 + rest);
	if (!buf)
		return NULL;
	memcpy(buf, m, mlen);
	memcpy(buf + mlen, tail, sizeof(tail) - 1);
	memcpy(buf + mlen + sizeof(tail) - 1, eol, rest);
	*out_len = mlen + sizeof(tail) - 1 + rest;
	return buf;
}

/** Parse for an answer only: every NUL of the header section blanked. NULL unless the result
 *  is a request with a top Via to answer along. */
static msg_t *parse_request_for_answer(const char *data, size_t len)
{
	int rc;
	msg_t *msg = parse_raw(data, len, header_section_len(data, len), &rc);
	if (!msg)
		return NULL;
	sip_t *sip = sip_object(msg);
	if (sip && sip->sip_request && !sip->sip_via)
		sipmsg_recover_via(msg, sip);
	if (!sip || !sip->sip_request || !sip->sip_via) {
		msg_destroy(msg);
		return NULL;
	}
	return msg;
}

/** parse_request_for_answer over data with its request line replaced (replace_start_line). */
static msg_t *parse_with_start_line(const char *data, size_t len, const char *method)
{
	size_t n;
	char *copy = replace_start_line(data, len, method, &n);
	if (!copy)
		return NULL;
	msg_t *msg = parse_request_for_answer(copy, n);
	free(copy);
	return msg;
}

msg_t *sipmsg_parse_salvage(const char *data, size_t len, const char **fault)
{
	*fault = NULL;
	if (len == 0)
		return NULL;
	msg_t *msg = parse_request_for_answer(data, len);
	if (msg)
		return msg;
	const char *eol = memchr(data, '\n', len);
	size_t line = eol ? (size_t)(eol - data) : len;
	*fault = start_line_fault(data, line > 0 && data[line - 1] == '\r' ? line - 1 : line);
	msg = parse_with_start_line(data, len, NULL);
	if (msg)
		return msg;
	/* Even the method is unreadable to sofia-sip (its method token refuses '+' and '`',
	 * which RFC 3261 allows). It is not ACK then, so an answer is due: read the rest under
	 * another method. */
	*fault = "Malformed Request-Line";
	return parse_with_start_line(data, len, "OPTIONS");
}

/** The text of a header sofia-sip could not parse, after its name and colon. */
static const char *error_value(const sip_error_t *e, size_t *n)
{
	const char *s = e->er_common->h_data;
	size_t len = e->er_common->h_len;
	const char *colon = s ? memchr(s, ':', len) : NULL;
	if (!colon)
		return NULL;
	*n = len - (size_t)(colon + 1 - s);
	return colon + 1;
}

/** Parse the first via-parm of a Via value that failed as a whole, dropping unreadable
 *  parameters from the end until what is left parses (RFC 4475 §3.1.2.1: "SIP/2.0/UDP
 *  192.0.2.15;;,;,," still says where to answer). NULL if even the sent-by does not parse. */
static sip_via_t *readable_via(su_home_t *home, const char *value, size_t n)
{
	char *s = su_strndup(home, value, (isize_t)n);
	if (!s)
		return NULL;
	s[strcspn(s, ",")] = '\0';
	for (;;) {
		size_t end = strlen(s);
		while (end > 0 && strchr(" \t\r\n;", s[end - 1]))
			s[--end] = '\0';
		sip_via_t *v = end ? sip_via_make(home, s) : NULL;
		if (v && v->v_host)
			return v;
		char *semi = strrchr(s, ';');
		if (!semi)
			return NULL;
		*semi = '\0';
	}
}

bool sipmsg_recover_via(msg_t *msg, sip_t *sip)
{
	if (sip->sip_via)
		return true;
	for (sip_error_t *e = sip->sip_error; e; e = e->er_next) {
		const msg_hclass_t *hc = e->er_common->h_class;
		const char *name = hc && hc->hc_hash == msg_error_hash ? e->er_name : NULL;
		if (!name || (strcasecmp(name, "Via") != 0 && strcasecmp(name, "v") != 0))
			continue;
		size_t n;
		const char *value = error_value(e, &n);
		sip_via_t *v = value ? readable_via(msg_home(msg), value, n) : NULL;
		return v && msg_header_insert(msg, (msg_pub_t *)sip, (msg_header_t *)v) >= 0;
	}
	return false;
}

const char *sipmsg_error_name(const sip_error_t *e)
{
	const msg_hclass_t *hc = e->er_common->h_class;
	if (!hc)
		return NULL;
	return hc->hc_hash == msg_error_hash ? e->er_name : hc->hc_name;
}

/** A header that must appear once but came twice (sofia-sip keeps the first). */
static const char *duplicate_single(sip_t *sip)
{
	static const char *const names[] = {"Via", "From", "To", "Call-ID", "CSeq", "Max-Forwards",
					    "Content-Length", "Content-Type", "Expires"};
	for (sip_error_t *e = sip->sip_error; e; e = e->er_next) {
		const msg_hclass_t *hc = e->er_common->h_class;
		if (!hc || hc->hc_hash == msg_error_hash || !hc->hc_name)
			continue;
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strcasecmp(hc->hc_name, names[i]) == 0)
				return names[i];
	}
	return NULL;
}

static bool header_malformed(sip_t *sip, const char *name, size_t nlen)
{
	for (sip_error_t *e = sip->sip_error; e; e = e->er_next) {
		const msg_hclass_t *hc = e->er_common->h_class;
		if (!hc || hc->hc_hash != msg_error_hash)
			continue; /* a duplicate, not a parse failure */
		const char *n = e->er_name;
		if (n && strncasecmp(n, name, nlen) == 0 && (n[nlen] == ':' || n[nlen] == ' ' || n[nlen] == '\0'))
			return true;
	}
	return false;
}

/** scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3261 §25.1). */
static bool scheme_is_valid(const char *scheme)
{
	if (!scheme || !isalpha((unsigned char)scheme[0]))
		return false;
	for (const char *p = scheme + 1; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("+-.", *p))
			return false;
	return true;
}

/** The headers every request needs (§8.1.1): present, parsed, and only once. 0 or 400. */
static int check_required(msg_t *msg, sip_t *sip, const char **reason)
{
	static const struct {
		size_t off;
		const char *name, *missing, *malformed;
	} required[] = {
		{offsetof(sip_t, sip_via), "Via", "Missing Via header", "Malformed Via header"},
		{offsetof(sip_t, sip_from), "From", "Missing From header", "Malformed From header"},
		{offsetof(sip_t, sip_to), "To", "Missing To header", "Malformed To header"},
		{offsetof(sip_t, sip_call_id), "Call-ID", "Missing Call-ID header", "Malformed Call-ID header"},
		{offsetof(sip_t, sip_cseq), "CSeq", "Missing CSeq header", "Malformed CSeq header"},
	};
	/* A top Via that did not parse as a whole may still say where to send the 400. */
	if (!sip->sip_via)
		sipmsg_recover_via(msg, sip);
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		void *h = *(void **)((char *)sip + required[i].off);
		bool bad = header_malformed(sip, required[i].name, strlen(required[i].name));
		/* Present and in the error list too: a second CSeq, From, To or Call-ID (§7.3.1
		 * allows one), or a Via line that did not parse next to one that did. */
		if (!h || bad) {
			*reason = bad ? required[i].malformed : required[i].missing;
			return 400;
		}
	}
	const char *dup = duplicate_single(sip);
	if (dup) {
		static char why[48];
		snprintf(why, sizeof(why), "Duplicate %s header", dup);
		*reason = why;
		return 400;
	}
	return 0;
}

/** Headers the proxy and registrar read, which must not be silently dropped when they do not
 *  parse (sofia-sip leaves their typed pointer NULL). 0 or 400. */
static int check_malformed(sip_t *sip, const char **reason)
{
	static const struct {
		const char *name, *compact, *reason;
	} checked[] = {
		{"Max-Forwards", NULL, "Malformed Max-Forwards header"},
		{"Content-Length", "l", "Malformed Content-Length header"},
		{"Contact", "m", "Malformed Contact header"},
		{"Expires", NULL, "Malformed Expires header"},
		{"Route", NULL, "Malformed Route header"},
		{"Record-Route", NULL, "Malformed Route header"},
	};
	for (size_t i = 0; i < sizeof(checked) / sizeof(checked[0]); i++) {
		const char *c = checked[i].compact;
		if (header_malformed(sip, checked[i].name, strlen(checked[i].name)) ||
		    (c && header_malformed(sip, c, strlen(c)))) {
			*reason = checked[i].reason;
			return 400;
		}
	}
	return 0;
}

/** CSeq against the request line, and the body against Content-Length. 0 or 400. */
static int check_cseq_and_length(msg_t *msg, sip_t *sip, bool content_length_optional, const char **reason)
{
	if (sip->sip_cseq->cs_method != sip->sip_request->rq_method ||
	    (sip->sip_request->rq_method == sip_method_unknown &&
	     strcmp(sip->sip_cseq->cs_method_name, sip->sip_request->rq_method_name) != 0)) {
		*reason = "CSeq method does not match the request";
		return 400;
	}
	if (sip->sip_cseq->cs_seq >= 0x80000000u) {
		*reason = "CSeq number out of range";
		return 400;
	}
	if (msg_get_flags(msg, MSG_FLG_TRUNC)) {
		*reason = "Body shorter than Content-Length";
		return 400;
	}
	if (!sip->sip_content_length && !content_length_optional) {
		*reason = "Missing Content-Length header";
		return 400;
	}
	return 0;
}

/** The version, the Via count and the Request-URI. 0, 400, 416, 483 or 505. */
static int check_request_line(sip_t *sip, const char **reason)
{
	if (!sip->sip_request->rq_version ||
	    strcasecmp(sip->sip_request->rq_version, SIP_VERSION_CURRENT) != 0) {
		*reason = "Version Not Supported";
		return 505;
	}
	/* More Vias than the largest Max-Forwards a sender may start with (RFC 3261 §8.1.1.6):
	 * a loop, or a header stuffed to exhaust us. */
	unsigned vias = 0;
	for (sip_via_t *v = sip->sip_via; v; v = v->v_next)
		vias++;
	if (vias > SIPMSG_MAX_VIAS) {
		*reason = "Too many Via headers";
		return 483;
	}
	url_t const *ruri = sip->sip_request->rq_url;
	if (!ruri || !scheme_is_valid(ruri->url_scheme)) {
		/* Not an absoluteURI at all, e.g. one in <> (RFC 4475 §3.1.2.7): malformed, not
		 * merely of a scheme we do not serve. */
		*reason = "Malformed Request-URI";
		return 400;
	}
	if (ruri->url_type != url_sip && ruri->url_type != url_sips) {
		*reason = "Unsupported URI Scheme";
		return 416;
	}
	if (!ruri->url_host || !ruri->url_host[0]) {
		*reason = "Request-URI has no host";
		return 400;
	}
	if (ruri->url_headers) {
		/* RFC 3261 §19.1.1 allows headers only outside the Request-URI; forwarding them
		 * is not allowed either (RFC 4475 §3.1.2.11), so the request is refused. */
		*reason = "Request-URI must not have headers";
		return 400;
	}
	return 0;
}

int sipmsg_check_request(msg_t *msg, sip_t *sip, bool content_length_optional, const char **reason)
{
	/* In this order: what a 400 needs first (a Via to send it to), then the rest. */
	int status = check_required(msg, sip, reason);
	if (!status)
		status = check_malformed(sip, reason);
	if (!status)
		status = check_cseq_and_length(msg, sip, content_length_optional, reason);
	if (!status)
		status = check_request_line(sip, reason);
	return status;
}

bool sipmsg_response_ok(sip_t *sip)
{
	return sip->sip_status && sip->sip_via && sip->sip_from && sip->sip_to && sip->sip_call_id &&
	       sip->sip_cseq;
}

/* Random bytes for tags and branches, drawn from OpenSSL's generator a pool at a time: one
 * RAND_bytes call costs about 6,500 instructions whatever its size (locks, parameter lookups,
 * the DRBG's bookkeeping), which was 7% of a REGISTER's; the bytes are the same generator's. */
static void random_bytes(unsigned char *out, size_t n)
{
	static unsigned char pool[1024];
	static size_t left;
	if (n > sizeof(pool)) {
		if (RAND_bytes(out, (int)n) != 1)
			memset(out, 0x5a, n);
		return;
	}
	if (left < n) {
		if (RAND_bytes(pool, sizeof(pool)) != 1) {
			memset(out, 0x5a, n);
			return;
		}
		left = sizeof(pool);
	}
	unsigned char *p = pool + sizeof(pool) - left;
	memcpy(out, p, n);
	memset(p, 0, n); /* a byte handed out is not kept */
	left -= n;
}

void sipmsg_random_token(char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char raw[32];
	size_t want = (n - 1 + 1) / 2;
	if (want > sizeof(raw))
		want = sizeof(raw);
	random_bytes(raw, want);
	size_t i = 0;
	for (; i + 1 < n && i / 2 < want; i++)
		out[i] = hex[(raw[i / 2] >> ((i & 1) ? 0 : 4)) & 15];
	out[i] = '\0';
}

/* The status line as sip_status_e() writes it ("%s %03u %s" CRLF), without its snprintf (about
 * 1.4k instructions a response), set as the header's encoding, which msg_headers_prepare() sends
 * as it is. Left to sofia-sip if the code is not three digits. */
static void status_line_encode(su_home_t *home, sip_status_t *st)
{
	if (st->st_status < 100 || st->st_status > 999 || !st->st_version || !st->st_phrase)
		return;
	size_t lv = strlen(st->st_version), lp = strlen(st->st_phrase), n = lv + 5 + lp + 2;
	char *b = su_alloc(home, n), *p = b;
	if (!b)
		return;
	memcpy(p, st->st_version, lv);
	p += lv;
	*p++ = ' ';
	*p++ = (char)('0' + st->st_status / 100);
	*p++ = (char)('0' + st->st_status / 10 % 10);
	*p++ = (char)('0' + st->st_status % 10);
	*p++ = ' ';
	memcpy(p, st->st_phrase, lp);
	p += lp;
	memcpy(p, "\r\n", 2);
	st->st_common->h_data = b;
	st->st_common->h_len = n;
}

/* CSeq as sofia-sip encodes it ("CSeq: " "%u %s" CRLF), without its snprintf (about 1k
 * instructions a response), set as the header's encoding. */
static void cseq_encode(su_home_t *home, sip_cseq_t *cs)
{
	if (!cs->cs_method_name)
		return;
	char num[12], *d = num + sizeof(num);
	uint32_t seq = cs->cs_seq;
	do
		*--d = (char)('0' + seq % 10);
	while (seq /= 10);
	size_t ld = (size_t)(num + sizeof(num) - d), lm = strlen(cs->cs_method_name);
	size_t n = 6 + ld + 1 + lm + 2;
	char *b = su_alloc(home, n), *p = b;
	if (!b)
		return;
	memcpy(p, "CSeq: ", 6);
	p += 6;
	memcpy(p, d, ld);
	p += ld;
	*p++ = ' ';
	memcpy(p, cs->cs_method_name, lm);
	p += lm;
	memcpy(p, "\r\n", 2);
	cs->cs_common->h_data = b;
	cs->cs_common->h_len = n;
}

msg_t *sipmsg_response(msg_t *req, int status, const char *reason)
{
	sip_t *rq = sip_object(req);
	msg_t *resp = msg_new(0);
	if (!resp)
		return NULL;
	sip_t *rs = sip_object(resp);
	su_home_t *home = msg_home(resp);
	if (!reason)
		reason = sip_status_phrase(status);
	if (!reason)
		reason = "Unknown";
	int err = 0;
	/* The copied headers share the request's strings (msg_header_copy copies the structures and
	 * parameter lists, not the strings they point to): the response holds a reference to the
	 * request, so those live as long as it does. Copying every string was a tenth of a
	 * REGISTER's instructions. Nothing changes these copies but the To's own parameters. */
	msg_set_parent(resp, req);
	sip_status_t *st = sip_status_create(home, status, reason, NULL);
	if (st)
		status_line_encode(home, st);
	err |= msg_header_insert(resp, (msg_pub_t *)rs, (msg_header_t *)st);
	if (rq->sip_via)
		err |= msg_header_insert(resp, (msg_pub_t *)rs, msg_header_copy(home, (msg_header_t *)rq->sip_via));
	if (rq->sip_from)
		err |= msg_header_insert(resp, (msg_pub_t *)rs, msg_header_copy(home, (msg_header_t *)rq->sip_from));
	if (rq->sip_to) {
		sip_to_t *to = (sip_to_t *)msg_header_copy(home, (msg_header_t *)rq->sip_to);
		if (to && !to->a_tag && status > 100) {
			/* What sip_to_tag() adds, without its su_sprintf (about 1k
			 * instructions). */
			char *tag = su_alloc(home, 4 + 17);
			if (tag) {
				memcpy(tag, "tag=", 4);
				sipmsg_random_token(tag + 4, 17);
			}
			err |= !tag || msg_header_replace_param(home, to->a_common, tag) < 0;
		}
		err |= msg_header_insert(resp, (msg_pub_t *)rs, (msg_header_t *)to);
	}
	if (rq->sip_call_id)
		err |= msg_header_insert(resp, (msg_pub_t *)rs, msg_header_copy(home, (msg_header_t *)rq->sip_call_id));
	if (rq->sip_cseq) {
		sip_cseq_t *cs = (sip_cseq_t *)msg_header_copy(home, (msg_header_t *)rq->sip_cseq);
		if (cs)
			cseq_encode(home, cs);
		err |= msg_header_insert(resp, (msg_pub_t *)rs, (msg_header_t *)cs);
	}
	err |= msg_header_insert(resp, (msg_pub_t *)rs,
				 sipmsg_header_as_is(home, sip_server_class, SIPEDGE_SERVER, strlen(SIPEDGE_SERVER)));
	if (err) {
		msg_destroy(resp);
		return NULL;
	}
	return resp;
}

sip_date_t *sipmsg_date_now(su_home_t *home)
{
	/* sofia-sip encodes a Date with snprintf (about 3.3k instructions); within a second
	 * every Date line is the same bytes. msg_headers_prepare() sends a header that has its
	 * h_data as it is, so the line made by sofia-sip's own encoder is copied into each new
	 * header, which keeps it for as long as its message lives. */
	static sip_time_t cached_at;
	static char line[64];
	static size_t line_len;
	sip_time_t now = sip_now();
	if (!line_len || now != cached_at) {
		sip_date_t d[1];
		sip_date_init(d);
		d->d_time = now;
		issize_t n = msg_header_e(line, sizeof(line), (msg_header_t *)d, 0);
		if (n <= 0 || (size_t)n >= sizeof(line)) {
			line_len = 0;
			return sip_date_create(home, now);
		}
		line_len = (size_t)n;
		cached_at = now;
	}
	sip_date_t *d = (sip_date_t *)msg_header_alloc(home, sip_date_class, (isize_t)line_len);
	if (!d)
		return NULL;
	d->d_time = now;
	char *data = (char *)(d + 1);
	memcpy(data, line, line_len);
	d->d_common->h_data = data;
	d->d_common->h_len = line_len;
	return d;
}

msg_header_t *sipmsg_header_as_is(su_home_t *home, msg_hclass_t *hc, const char *value, size_t len)
{
	size_t name_len = strlen(hc->hc_name);
	size_t line_len = name_len + 2 + len + 2;
	msg_header_t *h = msg_header_alloc(home, hc, (isize_t)line_len + 1);
	if (!h)
		return NULL;
	char *line = (char *)h + hc->hc_size;
	memcpy(line, hc->hc_name, name_len);
	memcpy(line + name_len, ": ", 2);
	memcpy(line + name_len + 2, value, len);
	memcpy(line + name_len + 2 + len, "\r\n", 3);
	h->sh_data = line;
	h->sh_len = line_len;
	return h;
}

char *sipmsg_encode(msg_t *msg, size_t *len)
{
	sip_t *sip = sip_object(msg);
	if (!sip->sip_content_length && !sip->sip_payload && !sip->sip_multipart) {
		/* What sip_complete_message() would add, with its encoding already made: sofia-sip
		 * formats the length with snprintf. */
		static const char zero[] = "Content-Length: 0\r\n";
		sip_content_length_t *l = sip_content_length_create(msg_home(msg), 0);
		if (l) {
			l->l_common->h_data = zero;
			l->l_common->h_len = sizeof(zero) - 1;
			msg_header_insert(msg, (msg_pub_t *)sip, (msg_header_t *)l);
		}
	}
	if (!sip->sip_content_length || !sip->sip_separator)
		sip_complete_message(msg);
	if (msg_serialize(msg, (msg_pub_t *)sip) < 0 || msg_prepare(msg) < 0)
		return NULL;
	msg_iovec_t stack[64], *iov = stack;
	isize_t n = msg_iovec(msg, iov, 64);
	if (n > 64) {
		iov = calloc((size_t)n, sizeof(*iov));
		if (!iov)
			return NULL;
		n = msg_iovec(msg, iov, n);
	}
	size_t total = 0;
	for (isize_t i = 0; i < n; i++)
		total += iov[i].mv_len;
	char *buf = malloc(total + 1);
	if (buf) {
		size_t off = 0;
		for (isize_t i = 0; i < n; i++) {
			memcpy(buf + off, iov[i].mv_base, iov[i].mv_len);
			off += iov[i].mv_len;
		}
		buf[total] = '\0';
		*len = total;
	}
	if (iov != stack)
		free(iov);
	return buf;
}

char *sipmsg_aor(const url_t *url)
{
	if (!url || !url->url_host || (url->url_type != url_sip && url->url_type != url_sips))
		return NULL;
	const char *user = url->url_user;
	size_t hlen = strlen(url->url_host);
	size_t ulen = user ? strlen(user) : 0;
	char *aor = malloc(4 + ulen + 1 + hlen + 1);
	if (!aor)
		return NULL;
	char *p = aor;
	memcpy(p, "sip:", 4);
	p += 4;
	if (user) {
		memcpy(p, user, ulen);
		p += ulen;
		*p++ = '@';
	}
	for (size_t i = 0; i < hlen; i++)
		*p++ = (char)tolower((unsigned char)url->url_host[i]);
	*p = '\0';
	return aor;
}

void sipmsg_summary(sip_t *sip, char *out, size_t n)
{
	if (sip->sip_request)
		snprintf(out, n, "%s %s%s%s%s%s", sip->sip_request->rq_method_name,
			 sip->sip_request->rq_url->url_type == url_sips ? "sips:" : "sip:",
			 sip->sip_request->rq_url->url_user ? sip->sip_request->rq_url->url_user : "",
			 sip->sip_request->rq_url->url_user ? "@" : "",
			 sip->sip_request->rq_url->url_host ? sip->sip_request->rq_url->url_host : "",
			 "");
	else if (sip->sip_status)
		snprintf(out, n, "%d %s (%s)", sip->sip_status->st_status,
			 sip->sip_status->st_phrase ? sip->sip_status->st_phrase : "",
			 sip->sip_cseq ? sip->sip_cseq->cs_method_name : "?");
	else
		snprintf(out, n, "?");
}

/* ---- SIP over a byte stream ---- */

struct sipmsg_stream {
	msg_t *msg;	/* the message being received, NULL between messages */
	size_t max;	/* bytes a message may take */
	unsigned crlf;	/* CR/LF bytes seen in a row between messages */
};

struct sipmsg_stream *sipmsg_stream_create(size_t max_message)
{
	struct sipmsg_stream *s = calloc(1, sizeof(*s));
	if (s)
		s->max = max_message;
	return s;
}

void sipmsg_stream_destroy(struct sipmsg_stream *s)
{
	if (!s)
		return;
	if (s->msg)
		msg_destroy(s->msg);
	free(s);
}

size_t sipmsg_stream_pending(const struct sipmsg_stream *s)
{
	return s && s->msg ? msg_size(s->msg) + msg_buf_committed(s->msg) : 0;
}

static bool all_crlf(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != '\r' && p[i] != '\n')
			return false;
	return true;
}

/** Between messages: CR/LF bytes are keep-alives (RFC 5626 §4.4.1); every four a ping. */
static void count_crlf(struct sipmsg_stream *s, size_t n, sipmsg_stream_fn fn, void *arg)
{
	while (n--) {
		if (++s->crlf == 4) {
			s->crlf = 0;
			fn(arg, NULL);
		}
	}
}

/** Parse what the current message holds; every complete one goes to fn. */
static int stream_extract(struct sipmsg_stream *s, sipmsg_stream_fn fn, void *arg, msg_t **bad)
{
	while (s->msg) {
		int rc = msg_extract(s->msg);
		if (rc == 0)
			return 0; /* more bytes needed */
		if (rc < 0) {
			bool too_large = msg_get_flags(s->msg, MSG_FLG_TOOLARGE) != 0;
			if (too_large)
				msg_destroy(s->msg);
			else
				*bad = s->msg;
			s->msg = NULL;
			return too_large ? SIPMSG_STREAM_TOO_LARGE : SIPMSG_STREAM_BAD;
		}
		/* Bytes beyond this message start the next one. */
		msg_t *done = s->msg;
		s->msg = msg_next(done);
		if (s->msg) {
			msg_maxsize(s->msg, s->max);
			const char *rest = msg_buf_committed_data(s->msg);
			size_t n = msg_buf_committed(s->msg);
			if (rest && all_crlf(rest, n)) {
				msg_destroy(s->msg);
				s->msg = NULL;
				count_crlf(s, n, fn, arg);
			}
		}
		sip_t *sip = sip_object(done);
		if (!sip || (!sip->sip_request && !sip->sip_status)) {
			msg_destroy(done);
			return SIPMSG_STREAM_BAD;
		}
		fn(arg, done);
		msg_destroy(done);
	}
	return 0;
}

int sipmsg_stream_feed(struct sipmsg_stream *s, const char *data, size_t len, sipmsg_stream_fn fn,
		       void *arg, msg_t **bad)
{
	*bad = NULL;
	if (!s->msg) {
		size_t k = 0;
		while (k < len && (data[k] == '\r' || data[k] == '\n'))
			k++;
		count_crlf(s, k, fn, arg);
		data += k;
		len -= k;
		if (!len)
			return 0;
		s->crlf = 0;
		s->msg = msg_create(sipmsg_mclass(), MSG_DO_EXTRACT_COPY);
		if (!s->msg)
			return SIPMSG_STREAM_NOMEM;
		msg_maxsize(s->msg, s->max);
	}
	if (memchr(data, '\0', len))
		return SIPMSG_STREAM_BAD; /* the parser works on C strings: a NUL would cut a header */
	msg_iovec_t iov[2];
	issize_t nvec = msg_recv_iovec(s->msg, iov, 2, len, 0);
	if (nvec < 1)
		return msg_get_flags(s->msg, MSG_FLG_TOOLARGE) ? SIPMSG_STREAM_TOO_LARGE : SIPMSG_STREAM_NOMEM;
	fill_iovec(iov, nvec, data, len, false);
	msg_recv_commit(s->msg, len, 0);
	return stream_extract(s, fn, arg, bad);
}
