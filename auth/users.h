/** @file users.h  The users file: who may authenticate, with a password or stored HA1s.
 *
 * One user a line; blank lines and lines whose first non-blank character is '#' are ignored:
 *
 *     NAME:PASSWORD                      a plain password (everything after the first ':')
 *     NAME:ha1:ALG=HEX[:ALG=HEX ...]     HA1 = H(user ":" realm ":" password) per algorithm
 *
 * NAME is a user part ("alice", valid in every domain we serve) or "alice@example.com" (that
 * domain only; it wins over a bare "alice"). ALG is MD5, SHA-256 or SHA-512-256. With HA1
 * lines no password is stored, but each HA1 is bound to the realm it was computed for, and the
 * user can answer only the algorithms listed. A password cannot begin with "ha1:".
 */
#ifndef SIPEDGE_AUTH_USERS_H
#define SIPEDGE_AUTH_USERS_H
#include <stdbool.h>
#include <stddef.h>

#include "auth/digest.h"

struct users;

struct user_entry {
	char *name;	/* the key: "alice" or "alice@example.com" (domain lowercased) */
	char *user;	/* "alice" */
	char *domain;	/* NULL: every domain */
	char *password; /* NULL when only HA1s are stored */
	char ha1[DIGEST__COUNT][DIGEST_HEX_MAX];
	unsigned ha1_mask; /* bit (1 << alg) set when ha1[alg] is given */
};

/** Parse a users file's text; origin names it in error messages. NULL on any error (each logged
 *  as origin:line: reason): a file is taken whole or not at all. */
struct users *users_parse(const char *text, size_t len, const char *origin);
/** Read and parse a file. NULL on error (logged). */
struct users *users_load(const char *path);
void users_free(struct users *u);
size_t users_count(const struct users *u);
/** The entry for user in domain: "user@domain" first, then "user". NULL if none. */
const struct user_entry *users_find(const struct users *u, const char *user, const char *domain);
/** HA1 of the entry for alg in realm (from the password, or as stored). 0 on success, -1 if the
 *  entry has neither a password nor an HA1 for alg. */
int users_ha1(const struct user_entry *e, enum digest_alg alg, const char *realm, char out[DIGEST_HEX_MAX]);

#endif
