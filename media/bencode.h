/** @file bencode.h  The bencode subset rtpengine's NG protocol speaks: dictionaries, lists,
 *  byte strings and integers. Bencode has no Debian C library, so this is our own, kept to what
 *  NG needs and bounded: a decoded document never nests deeper than BENCODE_MAX_DEPTH nor holds
 *  more than BENCODE_MAX_ITEMS values, and strings point into the input (nothing is copied). */
#ifndef SIPEDGE_BENCODE_H
#define SIPEDGE_BENCODE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCODE_MAX_DEPTH 32
#define BENCODE_MAX_ITEMS 65536

enum bencode_type { BENCODE_INT, BENCODE_STR, BENCODE_LIST, BENCODE_DICT };

struct bencode {
	enum bencode_type type;
	int64_t i;		/* BENCODE_INT */
	const char *s;		/* BENCODE_STR: into the decoded buffer, not NUL-terminated */
	size_t len;		/* BENCODE_STR: bytes; LIST/DICT: entries (a dict entry is a key and a value) */
	struct bencode *child;	/* LIST/DICT: first element; in a dict keys and values alternate */
	struct bencode *next;	/* the next element of the enclosing list or dict */
};

/** A decoded document: its values live in one array freed by bencode_doc_free. */
struct bencode_doc {
	struct bencode *items;
	size_t n, cap;
	struct bencode *root;
};

/** Decode exactly one value filling buf[0..len). 0 on success; -1 on malformed input, trailing
 *  bytes, too deep or too many values (doc is then empty and needs no free). */
int bencode_decode(struct bencode_doc *doc, const char *buf, size_t len);
void bencode_doc_free(struct bencode_doc *doc);

/** The value under key in a dictionary, or NULL (also when dict is not a dictionary). */
const struct bencode *bencode_get(const struct bencode *dict, const char *key);
/** A string value under key copied as a C string into out (truncated to size - 1); NULL if absent or not a string. */
const char *bencode_get_str(const struct bencode *dict, const char *key, char *out, size_t size);
bool bencode_is_str(const struct bencode *v, const char *text);

/** An encoder writing into a growing buffer. Errors (allocation, unbalanced ends, depth) are
 *  sticky: check bencode_w_finish once at the end. */
struct bencode_writer {
	char *buf;
	size_t len, cap;
	int depth;
	bool failed;
};

void bencode_w_init(struct bencode_writer *w);
void bencode_w_dict(struct bencode_writer *w);
void bencode_w_list(struct bencode_writer *w);
void bencode_w_end(struct bencode_writer *w);
void bencode_w_str(struct bencode_writer *w, const char *s, size_t len);
void bencode_w_cstr(struct bencode_writer *w, const char *s);
void bencode_w_int(struct bencode_writer *w, int64_t v);
/** key then string value, for dictionaries */
void bencode_w_kv(struct bencode_writer *w, const char *key, const char *value);
/** Raw bytes (the NG cookie and its space, before the dictionary). */
void bencode_w_raw(struct bencode_writer *w, const char *s, size_t len);
/** 0 when the output is one complete, balanced value; -1 otherwise. */
int bencode_w_finish(struct bencode_writer *w);
void bencode_w_free(struct bencode_writer *w);

#endif
