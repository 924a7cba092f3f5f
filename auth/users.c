/** @file users.c  The users file: parsed whole into a sorted table, looked up by name. */
#include "auth/users.h"
#include "base/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define USERS_FILE_MAX (64 * 1024 * 1024)

struct users {
	struct user_entry *e; /* sorted by name */
	size_t n, cap;
};

static void entry_free(struct user_entry *e)
{
	free(e->name);
	free(e->user);
	free(e->domain);
	if (e->password) {
		/* Do not leave passwords lying around in freed memory. */
		memset(e->password, 0, strlen(e->password));
		free(e->password);
	}
}

void users_free(struct users *u)
{
	if (!u)
		return;
	for (size_t i = 0; i < u->n; i++)
		entry_free(&u->e[i]);
	free(u->e);
	free(u);
}

size_t users_count(const struct users *u) { return u ? u->n : 0; }

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct user_entry *)a)->name, ((const struct user_entry *)b)->name);
}

static char *lower_dup(const char *s, size_t n)
{
	char *d = strndup(s, n);
	for (char *p = d; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

/* NAME: user[@domain], no blanks, no ':' (it ends at the first one). */
static const char *parse_name(struct user_entry *e, const char *name, size_t n)
{
	if (n == 0)
		return "empty user name";
	for (size_t i = 0; i < n; i++)
		if (isspace((unsigned char)name[i]) || iscntrl((unsigned char)name[i]))
			return "blank or control character in user name";
	const char *at = memrchr(name, '@', n);
	if (at) {
		size_t ul = (size_t)(at - name), dl = n - ul - 1;
		if (ul == 0 || dl == 0)
			return "user@domain needs both parts";
		e->user = strndup(name, ul);
		e->domain = lower_dup(at + 1, dl);
		e->name = e->user && e->domain ? malloc(ul + dl + 2) : NULL;
		if (e->name)
			snprintf(e->name, ul + dl + 2, "%s@%s", e->user, e->domain);
	} else {
		e->user = strndup(name, n);
		e->name = strndup(name, n);
	}
	return e->user && e->name ? NULL : "out of memory";
}

/* "ALG=HEX[:ALG=HEX ...]" */
static const char *parse_ha1s(struct user_entry *e, const char *s, size_t n)
{
	const char *end = s + n;
	while (s < end) {
		const char *colon = memchr(s, ':', (size_t)(end - s));
		const char *field_end = colon ? colon : end;
		const char *eq = memchr(s, '=', (size_t)(field_end - s));
		if (!eq)
			return "ha1 fields are ALG=HEX";
		char alg_name[16];
		size_t al = (size_t)(eq - s);
		if (al == 0 || al >= sizeof(alg_name))
			return "unknown algorithm in ha1 field (want MD5, SHA-256 or SHA-512-256)";
		memcpy(alg_name, s, al);
		alg_name[al] = '\0';
		enum digest_alg alg;
		if (digest_alg_parse(alg_name, &alg) != 0)
			return "unknown algorithm in ha1 field (want MD5, SHA-256 or SHA-512-256)";
		if (e->ha1_mask & (1u << alg))
			return "the same algorithm twice";
		const char *hex = eq + 1;
		size_t hl = (size_t)(field_end - hex);
		if (hl != digest_hex_len(alg))
			return alg == DIGEST_MD5 ? "MD5 HA1 must be 32 hex digits" : "SHA-256/SHA-512-256 HA1 must be 64 hex digits";
		for (size_t i = 0; i < hl; i++) {
			if (!isxdigit((unsigned char)hex[i]))
				return "HA1 must be hex digits";
			e->ha1[alg][i] = (char)tolower((unsigned char)hex[i]);
		}
		e->ha1[alg][hl] = '\0';
		e->ha1_mask |= 1u << alg;
		s = colon ? colon + 1 : end;
		if (colon && s == end)
			return "empty ha1 field at the end";
	}
	return e->ha1_mask ? NULL : "ha1: needs at least one ALG=HEX";
}

static const char *parse_line(struct user_entry *e, const char *line, size_t n)
{
	const char *colon = memchr(line, ':', n);
	if (!colon)
		return "want NAME:PASSWORD or NAME:ha1:ALG=HEX[:ALG=HEX...]";
	const char *why = parse_name(e, line, (size_t)(colon - line));
	if (why)
		return why;
	const char *rest = colon + 1;
	size_t rl = n - (size_t)(rest - line);
	if (rl >= 4 && strncasecmp(rest, "ha1:", 4) == 0)
		return parse_ha1s(e, rest + 4, rl - 4);
	if (rl == 0)
		return "empty password";
	e->password = strndup(rest, rl);
	return e->password ? NULL : "out of memory";
}

struct users *users_parse(const char *text, size_t len, const char *origin)
{
	struct users *u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	const char *p = text, *end = text + len;
	int lineno = 0, errors = 0;
	while (p < end) {
		lineno++;
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		const char *next = nl ? nl + 1 : end;
		if (le > p && le[-1] == '\r')
			le--;
		const char *s = p;
		while (s < le && (*s == ' ' || *s == '\t'))
			s++;
		p = next;
		if (s == le || *s == '#')
			continue;
		if (memchr(s, '\0', (size_t)(le - s))) {
			log_error("users: %s:%d: NUL byte in line", origin, lineno);
			errors++;
			continue;
		}
		if (u->n == u->cap) {
			size_t cap = u->cap ? u->cap * 2 : 16;
			struct user_entry *ne = realloc(u->e, cap * sizeof(*ne));
			if (!ne) {
				log_error("users: %s: out of memory", origin);
				users_free(u);
				return NULL;
			}
			u->e = ne;
			u->cap = cap;
		}
		struct user_entry *e = &u->e[u->n];
		memset(e, 0, sizeof(*e));
		const char *why = parse_line(e, s, (size_t)(le - s));
		if (why) {
			log_error("users: %s:%d: %s", origin, lineno, why);
			entry_free(e);
			errors++;
			continue;
		}
		u->n++;
	}
	if (u->n)
		qsort(u->e, u->n, sizeof(*u->e), entry_cmp);
	for (size_t i = 1; i < u->n; i++)
		if (strcmp(u->e[i - 1].name, u->e[i].name) == 0) {
			log_error("users: %s: user '%s' is listed twice", origin, u->e[i].name);
			errors++;
		}
	if (errors) {
		users_free(u);
		return NULL;
	}
	return u;
}

struct users *users_load(const char *path)
{
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		log_error("users: cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > USERS_FILE_MAX) {
		log_error("users: %s is not a regular file of at most %d bytes", path, USERS_FILE_MAX);
		fclose(fp);
		return NULL;
	}
	if (st.st_mode & S_IROTH)
		log_warn("users: %s is readable by every local user; chmod o-r it", path);
	size_t size = (size_t)st.st_size;
	char *buf = malloc(size + 1);
	if (!buf || fread(buf, 1, size, fp) != size) {
		log_error("users: cannot read %s", path);
		free(buf);
		fclose(fp);
		return NULL;
	}
	fclose(fp);
	buf[size] = '\0';
	struct users *u = users_parse(buf, size, path);
	memset(buf, 0, size); /* passwords */
	free(buf);
	return u;
}

static const struct user_entry *find_name(const struct users *u, const char *name)
{
	struct user_entry key = {.name = (char *)name};
	return u && u->n ? bsearch(&key, u->e, u->n, sizeof(*u->e), entry_cmp) : NULL;
}

const struct user_entry *users_find(const struct users *u, const char *user, const char *domain)
{
	if (!u || !user || !*user)
		return NULL;
	if (domain && *domain) {
		size_t n = strlen(user) + strlen(domain) + 2;
		char *name = malloc(n);
		if (!name)
			return NULL;
		snprintf(name, n, "%s@%s", user, domain);
		for (char *p = name + strlen(user) + 1; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		const struct user_entry *e = find_name(u, name);
		free(name);
		if (e)
			return e;
	}
	/* A bare name never matches a lookup that carries an '@' of its own. */
	return strchr(user, '@') ? NULL : find_name(u, user);
}

int users_ha1(const struct user_entry *e, enum digest_alg alg, const char *realm, char out[DIGEST_HEX_MAX])
{
	if (alg >= DIGEST__COUNT)
		return -1;
	if (e->ha1_mask & (1u << alg)) {
		memcpy(out, e->ha1[alg], DIGEST_HEX_MAX);
		return 0;
	}
	if (!e->password)
		return -1;
	return digest_ha1(alg, e->user, realm, e->password, out);
}
