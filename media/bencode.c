/** @file bencode.c  Bencode decode and encode for the NG protocol (bencode.h). */
#include "media/bencode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct reader {
	const char *p, *end;
	struct bencode_doc *doc;
};

static struct bencode *new_item(struct reader *r, enum bencode_type type)
{
	if (r->doc->n >= r->doc->cap)
		return NULL;
	struct bencode *v = &r->doc->items[r->doc->n++];
	memset(v, 0, sizeof(*v));
	v->type = type;
	return v;
}

/* Digits up to `stop`; no sign, no leading zeros (bencode's canonical form), at most 18 digits
 * so that the value fits an int64_t without overflow checks. */
static int read_digits(struct reader *r, char stop, int64_t *out)
{
	const char *start = r->p;
	int64_t v = 0;
	while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
		if (r->p - start >= 18)
			return -1;
		v = v * 10 + (*r->p - '0');
		r->p++;
	}
	size_t n = (size_t)(r->p - start);
	if (n == 0 || (n > 1 && *start == '0') || r->p >= r->end || *r->p != stop)
		return -1;
	r->p++;
	*out = v;
	return 0;
}

static struct bencode *read_value(struct reader *r, int depth);

static struct bencode *read_string(struct reader *r)
{
	int64_t n;
	if (read_digits(r, ':', &n) != 0 || n > r->end - r->p)
		return NULL;
	struct bencode *v = new_item(r, BENCODE_STR);
	if (!v)
		return NULL;
	v->s = r->p;
	v->len = (size_t)n;
	r->p += n;
	return v;
}

static struct bencode *read_container(struct reader *r, enum bencode_type type, int depth)
{
	struct bencode *v = new_item(r, type), **tail;
	if (!v)
		return NULL;
	tail = &v->child;
	r->p++; /* 'l' or 'd' */
	size_t count = 0;
	while (r->p < r->end && *r->p != 'e') {
		/* dictionary keys are strings */
		if (type == BENCODE_DICT && count % 2 == 0 && !(*r->p >= '0' && *r->p <= '9'))
			return NULL;
		struct bencode *e = read_value(r, depth + 1);
		if (!e)
			return NULL;
		*tail = e;
		tail = &e->next;
		count++;
	}
	if (r->p >= r->end || (type == BENCODE_DICT && count % 2 != 0))
		return NULL;
	r->p++; /* 'e' */
	v->len = type == BENCODE_DICT ? count / 2 : count;
	return v;
}

static struct bencode *read_value(struct reader *r, int depth)
{
	if (depth > BENCODE_MAX_DEPTH || r->p >= r->end)
		return NULL;
	char c = *r->p;
	if (c == 'i') {
		r->p++;
		bool neg = r->p < r->end && *r->p == '-';
		if (neg)
			r->p++;
		int64_t n;
		if (read_digits(r, 'e', &n) != 0 || (neg && n == 0)) /* "-0" is not canonical */
			return NULL;
		struct bencode *v = new_item(r, BENCODE_INT);
		if (v)
			v->i = neg ? -n : n;
		return v;
	}
	if (c == 'l')
		return read_container(r, BENCODE_LIST, depth);
	if (c == 'd')
		return read_container(r, BENCODE_DICT, depth);
	if (c >= '0' && c <= '9')
		return read_string(r);
	return NULL;
}

int bencode_decode(struct bencode_doc *doc, const char *buf, size_t len)
{
	memset(doc, 0, sizeof(*doc));
	/* Every value takes at least two bytes ("0:", "le", "i0e"), which bounds the array. */
	size_t cap = len / 2 + 1;
	if (cap > BENCODE_MAX_ITEMS)
		cap = BENCODE_MAX_ITEMS;
	doc->items = calloc(cap, sizeof(*doc->items));
	if (!doc->items)
		return -1;
	doc->cap = cap;
	struct reader r = {.p = buf, .end = buf + len, .doc = doc};
	doc->root = read_value(&r, 1);
	if (!doc->root || r.p != r.end) {
		bencode_doc_free(doc);
		return -1;
	}
	return 0;
}

void bencode_doc_free(struct bencode_doc *doc)
{
	free(doc->items);
	memset(doc, 0, sizeof(*doc));
}

const struct bencode *bencode_get(const struct bencode *dict, const char *key)
{
	if (!dict || dict->type != BENCODE_DICT)
		return NULL;
	size_t klen = strlen(key);
	for (const struct bencode *k = dict->child; k && k->next; k = k->next->next)
		if (k->len == klen && memcmp(k->s, key, klen) == 0)
			return k->next;
	return NULL;
}

const char *bencode_get_str(const struct bencode *dict, const char *key, char *out, size_t size)
{
	const struct bencode *v = bencode_get(dict, key);
	if (!v || v->type != BENCODE_STR || size == 0)
		return NULL;
	size_t n = v->len < size - 1 ? v->len : size - 1;
	memcpy(out, v->s, n);
	out[n] = '\0';
	return out;
}

bool bencode_is_str(const struct bencode *v, const char *text)
{
	size_t n = strlen(text);
	return v && v->type == BENCODE_STR && v->len == n && memcmp(v->s, text, n) == 0;
}

/* ---- encoder ---- */

void bencode_w_init(struct bencode_writer *w) { memset(w, 0, sizeof(*w)); }

static void put(struct bencode_writer *w, const char *s, size_t n)
{
	if (w->failed)
		return;
	if (w->len + n + 1 > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap < w->len + n + 1)
			cap *= 2;
		char *b = realloc(w->buf, cap);
		if (!b) {
			w->failed = true;
			return;
		}
		w->buf = b;
		w->cap = cap;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void open_container(struct bencode_writer *w, const char *c)
{
	if (++w->depth > BENCODE_MAX_DEPTH)
		w->failed = true;
	put(w, c, 1);
}

void bencode_w_dict(struct bencode_writer *w) { open_container(w, "d"); }
void bencode_w_list(struct bencode_writer *w) { open_container(w, "l"); }

void bencode_w_end(struct bencode_writer *w)
{
	if (--w->depth < 0)
		w->failed = true;
	put(w, "e", 1);
}

void bencode_w_str(struct bencode_writer *w, const char *s, size_t len)
{
	char head[24];
	int n = snprintf(head, sizeof(head), "%zu:", len);
	put(w, head, (size_t)n);
	put(w, s, len);
}

void bencode_w_cstr(struct bencode_writer *w, const char *s) { bencode_w_str(w, s, strlen(s)); }

void bencode_w_int(struct bencode_writer *w, int64_t v)
{
	char text[32];
	int n = snprintf(text, sizeof(text), "i%llde", (long long)v);
	put(w, text, (size_t)n);
}

void bencode_w_kv(struct bencode_writer *w, const char *key, const char *value)
{
	bencode_w_cstr(w, key);
	bencode_w_cstr(w, value);
}

void bencode_w_raw(struct bencode_writer *w, const char *s, size_t len) { put(w, s, len); }

int bencode_w_finish(struct bencode_writer *w) { return w->failed || w->depth != 0 || !w->buf ? -1 : 0; }

void bencode_w_free(struct bencode_writer *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}
