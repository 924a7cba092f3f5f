/** @file config.h  Reading settings: embedded defaults, the libconfig file, command-line values.
 *
 * Each module owns its settings: it declares a struct of values, a table naming each setting
 * (`section.name` as written in the file, its kind, its default, where it lands in the struct)
 * and a check of its own. This file only reads: it fills any table it is given, from the
 * defaults, a file and `config_set`, and knows nothing about what the values mean. The app
 * room binds every module's table to the module's struct (app/settings.c).
 */
#ifndef SIPEDGE_CONFIG_H
#define SIPEDGE_CONFIG_H
#include <stdbool.h>
#include <stddef.h>

#include "base/net.h"

#define CONFIG_MAX_LISTEN 16
#define CONFIG_MAX_LIST 32

struct listen_spec {
	enum transport_proto proto;
	char host[64]; /* numeric address, no brackets */
	int port;
};

struct string_list {
	char *item[CONFIG_MAX_LIST];
	int count;
};

enum setting_kind { SETTING_INT, SETTING_BOOL, SETTING_STRING, SETTING_LIST };

/** One setting of a module: the file's `section.name`, and where its value lives. */
struct setting {
	const char *path;
	enum setting_kind kind;
	size_t offset;			  /* of the value in the module's struct */
	int int_default;		  /* int and bool */
	const char *string_default;	  /* string */
	const char *const *list_default;  /* list: NULL-terminated, or NULL for an empty list */
};

/* Where field f of struct T lies; the compound literal makes the build fail when the field is
 * not of the kind the table says. */
#define SETTING_AT(T, f, type) (offsetof(T, f) + 0 * sizeof((type *){&((T *)0)->f}))
#define SETTING_INT(p, T, f, d) {.path = (p), .kind = SETTING_INT, .offset = SETTING_AT(T, f, int), .int_default = (d)}
#define SETTING_BOOL(p, T, f, d) {.path = (p), .kind = SETTING_BOOL, .offset = SETTING_AT(T, f, bool), .int_default = (d)}
#define SETTING_STRING(p, T, f, d) \
	{.path = (p), .kind = SETTING_STRING, .offset = SETTING_AT(T, f, char *), .string_default = (d)}
#define SETTING_LIST(p, T, f) {.path = (p), .kind = SETTING_LIST, .offset = SETTING_AT(T, f, struct string_list)}
#define SETTING_LIST_OF(p, T, f, ...)                                                                \
	{.path = (p), .kind = SETTING_LIST, .offset = SETTING_AT(T, f, struct string_list),          \
	 .list_default = (const char *const[]){__VA_ARGS__, NULL}}
#define SETTING_END {.path = NULL}

/** A module's table bound to the struct that holds its values. */
struct config_part {
	const struct setting *settings; /* ends with SETTING_END */
	void *values;
};

/** Every setting of every part (the array ends with a part whose settings are NULL) to its
 *  default. */
void config_defaults(const struct config_part *parts);
/** Read a libconfig file over the values. 0 on success; each problem (syntax, a value of the
 *  wrong kind) is logged as file:line: reason and makes it -1. An unknown setting is a warning. */
int config_load(const struct config_part *parts, const char *path);
/** Set one setting from text (the command line): a number, true/false, a string, or for a list
 *  one item that is added. 0 on success, -1 (logged) if there is no such setting or the text
 *  does not fit it. */
int config_set(const struct config_part *parts, const char *path, const char *text);
/** Empty a list setting (before the command line adds its own items). */
void config_clear_list(const struct config_part *parts, const char *path);
/** Free what the values hold. */
void config_free(const struct config_part *parts);

/** Two bindings of the same tables (the values in force, and the values a reload has read):
 *  fn runs for every setting whose values differ, with the part of each. */
typedef void (*config_diff_fn)(const struct config_part *a, const struct config_part *b, const struct setting *s,
			       void *arg);
void config_diff(const struct config_part *a, const struct config_part *b, config_diff_fn fn, void *arg);
/** Exchange setting s's values between part a and part b (of the same table): a module that
 *  keeps a's struct by pointer sees b's value, and b's struct now holds what a had, to free. */
void config_swap(const struct config_part *a, const struct config_part *b, const struct setting *s);

/** Parse "ws:127.0.0.1:8080" or "ws:[::1]:8080". 0 on success. */
int config_parse_listen(const char *text, struct listen_spec *out);
int string_list_add(struct string_list *list, const char *value);
void string_list_clear(struct string_list *list);
bool string_list_contains(const struct string_list *list, const char *value); /* case-insensitive */
/** Replace *slot with a copy of value. */
void config_set_string(char **slot, const char *value);

#endif
