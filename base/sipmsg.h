/** @file sipmsg.h  SIP message functions over sofia-sip: parse, check, build responses, encode. */
#ifndef SIPEDGE_SIPMSG_H
#define SIPEDGE_SIPMSG_H
#include <sofia-sip/msg.h>
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <stdbool.h>
#include <stddef.h>

struct flow;

#define SIPEDGE_SERVER "sipedge/" PACKAGE_VERSION
/** Methods we route or answer; the Allow header of our responses. */
#define SIPEDGE_ALLOW "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, MESSAGE, INFO, UPDATE, PRACK, SUBSCRIBE, NOTIFY, REFER, PUBLISH"
#define SIPEDGE_SUPPORTED "path, outbound, gruu"

void sipmsg_init(void);
void sipmsg_shutdown(void);
msg_mclass_t const *sipmsg_mclass(void);

/** Parse one whole message (a WS message or datagram: Content-Length optional).
 *  NULL if it is not a SIP message at all; *why says why. */
msg_t *sipmsg_parse(const char *data, size_t len, const char **why);
/** For a message sipmsg_parse refused: parse what can be parsed (NUL bytes of the header
 *  section blanked, a request line that does not parse replaced, a top Via that does not
 *  parse cut down to what does) so that a request with a readable top Via can be answered
 *  400. NULL if it is no such request. *fault is set when the request line itself was what
 *  failed ("Malformed Request-URI" or "Malformed Request-Line"), else NULL. Never acted on
 *  beyond that answer. */
msg_t *sipmsg_parse_salvage(const char *data, size_t len, const char **fault);
/** If sip has no Via because the top one did not parse, put in its place the part of it that
 *  does (its sent-by, and the parameters before the first unreadable one), so that a 400 can
 *  be sent back along it. The header stays in the error list: the request is still refused.
 *  True if sip has a Via afterwards. */
bool sipmsg_recover_via(msg_t *msg, sip_t *sip);

/** True if data is only CR/LF bytes (RFC 5626 keep-alive). */
bool sipmsg_is_keepalive(const char *data, size_t len);

/** Most Via entries a request may carry (the usual initial Max-Forwards). */
#define SIPMSG_MAX_VIAS 70
/** Check a request for what every hop needs (RFC 3261 §8.2, §16.3 items 1-2): required headers,
 *  CSeq, Content-Length, URI scheme. Returns 0 if fine, else the status to answer with and
 *  *reason the phrase (which says what is wrong). Max-Forwards and Require are left to callers.
 *  A top Via that did not parse is first recovered (sipmsg_recover_via) so that the 400 saying
 *  so can be sent back. */
int sipmsg_check_request(msg_t *msg, sip_t *sip, bool content_length_optional, const char **reason);
/** The name of a header in sip->sip_error: one that did not parse (a msg_error_t carrying the
 *  name), or a second instance of a single-valued header such as CSeq, which sofia-sip puts in
 *  the same list as it is, with its own type (so er_name must not be read from it). */
const char *sipmsg_error_name(const sip_error_t *e);
/** Responses are dropped unless they have Via, From, To, Call-ID and CSeq. */
bool sipmsg_response_ok(sip_t *sip);

/** Build a response to req per §8.2.6 (Via, From, To+tag, Call-ID, CSeq copied; Server). The
 *  copies share req's strings, and the response holds a reference to req for them: change its
 *  To's parameters if need be, not the others'. */
msg_t *sipmsg_response(msg_t *req, int status, const char *reason);
/** A Date header for now (RFC 3261 §20.17), allocated from home, that carries its own
 * encoding: the line is formatted once a second and copied, not printed per message. */
sip_date_t *sipmsg_date_now(su_home_t *home);
/** A header of class hc, allocated from home, whose line is "Name: " value CRLF as it is:
 *  the encoder sends it without formatting it, and nothing parses it. For values the daemon
 *  writes itself from text sofia-sip encoded or from constants; its parsed fields stay empty,
 *  so it belongs in messages that are encoded and not read (responses). NULL on failure. */
msg_header_t *sipmsg_header_as_is(su_home_t *home, msg_hclass_t *hc, const char *value, size_t len);

/** Encode to one contiguous malloc'd buffer (caller frees). NULL on failure. */
char *sipmsg_encode(msg_t *msg, size_t *len);

/** Random token for tags and branches (hex, NUL-terminated, n-1 chars). */
void sipmsg_random_token(char *out, size_t n);
/** "sip:user@host" (lowercased host, no params) for an AOR; caller frees. NULL if url unusable. */
char *sipmsg_aor(const url_t *url);
/** The message's first line, for logs ("INVITE sip:bob@x" or "200 OK"). */
void sipmsg_summary(sip_t *sip, char *out, size_t n);

/* ---- SIP over a byte stream (TCP, TLS): RFC 3261 §18.3 framing by Content-Length ---- */

/** One connection's receive side: sofia-sip's parser takes the bytes as they come, a message
 *  is complete when its headers and Content-Length bytes of body are in. */
struct sipmsg_stream;
/** What sipmsg_stream_feed found: a complete message, or a CRLFCRLF keep-alive (msg NULL). The
 *  message is freed after the call returns (take a reference to keep it). */
typedef void (*sipmsg_stream_fn)(void *arg, msg_t *msg);
enum sipmsg_stream_error {
	SIPMSG_STREAM_TOO_LARGE = -1, /* a message over the size limit */
	SIPMSG_STREAM_BAD = -2,	      /* not a SIP message, or unframable (no Content-Length) */
	SIPMSG_STREAM_NOMEM = -3,
};

struct sipmsg_stream *sipmsg_stream_create(size_t max_message);
void sipmsg_stream_destroy(struct sipmsg_stream *s);
/** Feed received bytes; fn runs for every message and keep-alive they complete. 0, or an
 *  enum sipmsg_stream_error after which the stream is unusable (the caller closes it). On
 *  SIPMSG_STREAM_BAD *bad may get what was parsed of the message (caller frees), so that a
 *  request can still be answered 400. */
int sipmsg_stream_feed(struct sipmsg_stream *s, const char *data, size_t len, sipmsg_stream_fn fn,
		       void *arg, msg_t **bad);
/** Bytes held for a message not yet complete. */
size_t sipmsg_stream_pending(const struct sipmsg_stream *s);

#endif
