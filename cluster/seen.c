/** @file seen.c  Signatures seen recently (seen.h). */
#include "cluster/seen.h"

#include <stdlib.h>
#include <string.h>

struct set {
	uint64_t *keys; /* 0 = empty slot (a key of 0 is stored as 1: a 1-in-2^64 collision) */
	size_t cap, n;	/* cap a power of two */
};

static struct {
	struct set cur, old;
	time_t started; /* when cur began */
	int window;
} S;

static void set_free(struct set *s)
{
	free(s->keys);
	memset(s, 0, sizeof(*s));
}

static bool set_has(const struct set *s, uint64_t k)
{
	if (!s->cap)
		return false;
	for (size_t i = k & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (s->keys[i] == k)
			return true;
		if (!s->keys[i])
			return false;
	}
}

static void set_put_slot(struct set *s, uint64_t k)
{
	size_t i = k & (s->cap - 1);
	while (s->keys[i] && s->keys[i] != k)
		i = (i + 1) & (s->cap - 1);
	if (!s->keys[i])
		s->n++;
	s->keys[i] = k;
}

static bool set_add(struct set *s, uint64_t k)
{
	if ((s->n + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint64_t *keys = calloc(cap, sizeof(*keys));
		if (!keys)
			return false;
		struct set grown = {.keys = keys, .cap = cap};
		for (size_t i = 0; i < s->cap; i++)
			if (s->keys[i])
				set_put_slot(&grown, s->keys[i]);
		free(s->keys);
		*s = grown;
	}
	set_put_slot(s, k);
	return true;
}

void seen_init(int window)
{
	seen_shutdown();
	S.window = window > 0 ? window : 1;
}

bool seen_check_and_add(uint64_t key, time_t now)
{
	if (!key)
		key = 1;
	if (!S.started)
		S.started = now;
	if (now - S.started >= 2 * S.window) {
		/* Quiet for two windows: everything held is older than one. */
		set_free(&S.cur);
		set_free(&S.old);
		S.started = now;
	} else if (now - S.started >= S.window) {
		/* cur has covered a whole window: it becomes the older generation, so that a key is
		 * kept at least one window whenever it came. */
		set_free(&S.old);
		S.old = S.cur;
		memset(&S.cur, 0, sizeof(S.cur));
		S.started = now;
	}
	if (set_has(&S.cur, key) || set_has(&S.old, key))
		return true;
	set_add(&S.cur, key);
	return false;
}

void seen_shutdown(void)
{
	set_free(&S.cur);
	set_free(&S.old);
	S.started = 0;
}
