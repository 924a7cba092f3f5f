/** @file bytes.h  Two small things done to bytes across the daemon: the FNV-1a hash that its
 * hash tables share, and lowercase hex.
 *
 * FNV-1a is for tables, not for secrets: whoever sends can choose what collides, so a table
 * keyed by what a peer sends must stay bounded or cheap to walk. */
#ifndef SIPEDGE_BYTES_H
#define SIPEDGE_BYTES_H

#include <stddef.h>
#include <stdint.h>

#define FNV1A_INIT 2166136261u

/** h extended over n bytes (start with FNV1A_INIT, or a seed folded into it). */
static inline uint32_t fnv1a(uint32_t h, const void *data, size_t n)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/** h extended over a NUL-terminated string. */
static inline uint32_t fnv1a_str(uint32_t h, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h;
}

/** n bytes as 2n lowercase hex digits and a NUL. */
static inline void hex_lower(const unsigned char *raw, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 15];
	}
	out[2 * n] = '\0';
}

#endif
