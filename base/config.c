/** @file config.c  Settings read from modules' tables: defaults, a libconfig file, the command line. */
#include "base/config.h"
#include "base/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void config_set_string(char **slot, const char *value)
{
	free(*slot);
	*slot = value ? strdup(value) : NULL;
}

int string_list_add(struct string_list *list, const char *value)
{
	if (list->count >= CONFIG_MAX_LIST)
		return -1;
	list->item[list->count++] = strdup(value);
	return 0;
}

void string_list_clear(struct string_list *list)
{
	for (int i = 0; i < list->count; i++)
		free(list->item[i]);
	list->count = 0;
}

bool string_list_contains(const struct string_list *list, const char *value)
{
	for (int i = 0; value && i < list->count; i++)
		if (strcasecmp(list->item[i], value) == 0)
			return true;
	return false;
}

int config_parse_listen(const char *text, struct listen_spec *out)
{
	const char *colon = strchr(text, ':');
	if (!colon)
		return -1;
	int proto = proto_parse(text, (size_t)(colon - text));
	if (proto < 0)
		return -1;
	const char *host = colon + 1, *host_end, *port;
	if (*host == '[') {
		host_end = strchr(host, ']');
		if (!host_end || host_end[1] != ':')
			return -1;
		host++;
		port = host_end + 2;
	} else {
		host_end = strrchr(host, ':');
		if (!host_end)
			return -1;
		port = host_end + 1;
	}
	size_t hlen = (size_t)(host_end - host);
	if (hlen == 0 || hlen >= sizeof(out->host))
		return -1;
	char *end;
	long p = strtol(port, &end, 10);
	if (*port == '\0' || *end != '\0' || p < 0 || p > 65535)
		return -1;
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	unsigned char probe[sizeof(struct in6_addr)];
	if (inet_pton(AF_INET, out->host, probe) != 1 && inet_pton(AF_INET6, out->host, probe) != 1)
		return -1;
	out->proto = (enum transport_proto)proto;
	out->port = (int)p;
	return 0;
}

/* ---- the tables ---- */

static void *value_of(const struct config_part *part, const struct setting *s)
{
	return (char *)part->values + s->offset;
}

/** The setting called path, and the part it belongs to. */
static const struct setting *find(const struct config_part *parts, const char *path,
				  const struct config_part **part)
{
	for (const struct config_part *p = parts; p->settings; p++)
		for (const struct setting *s = p->settings; s->path; s++)
			if (strcmp(s->path, path) == 0) {
				*part = p;
				return s;
			}
	return NULL;
}

static void set_default(const struct config_part *part, const struct setting *s)
{
	void *v = value_of(part, s);
	switch (s->kind) {
	case SETTING_INT: *(int *)v = s->int_default; break;
	case SETTING_BOOL: *(bool *)v = s->int_default != 0; break;
	case SETTING_STRING: config_set_string((char **)v, s->string_default ? s->string_default : ""); break;
	case SETTING_LIST:
		string_list_clear(v);
		for (int i = 0; s->list_default && s->list_default[i]; i++)
			string_list_add(v, s->list_default[i]);
		break;
	}
}

void config_defaults(const struct config_part *parts)
{
	for (const struct config_part *p = parts; p->settings; p++)
		for (const struct setting *s = p->settings; s->path; s++)
			set_default(p, s);
}

void config_free(const struct config_part *parts)
{
	for (const struct config_part *p = parts; p->settings; p++)
		for (const struct setting *s = p->settings; s->path; s++) {
			void *v = value_of(p, s);
			if (s->kind == SETTING_STRING) {
				free(*(char **)v);
				*(char **)v = NULL;
			} else if (s->kind == SETTING_LIST) {
				string_list_clear(v);
			}
		}
}

void config_clear_list(const struct config_part *parts, const char *path)
{
	const struct config_part *part;
	const struct setting *s = find(parts, path, &part);
	if (s && s->kind == SETTING_LIST)
		string_list_clear(value_of(part, s));
}

int config_set(const struct config_part *parts, const char *path, const char *text)
{
	const struct config_part *part;
	const struct setting *s = find(parts, path, &part);
	if (!s) {
		log_error("config: no setting %s", path);
		return -1;
	}
	void *v = value_of(part, s);
	switch (s->kind) {
	case SETTING_INT: {
		char *end;
		errno = 0;
		long n = strtol(text, &end, 10);
		if (!*text || *end || errno || n < INT_MIN || n > INT_MAX) {
			log_error("config: %s must be an integer, not '%s'", path, text);
			return -1;
		}
		*(int *)v = (int)n;
		return 0;
	}
	case SETTING_BOOL:
		if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0) {
			log_error("config: %s must be true or false, not '%s'", path, text);
			return -1;
		}
		*(bool *)v = strcmp(text, "true") == 0;
		return 0;
	case SETTING_STRING: config_set_string((char **)v, text); return 0;
	case SETTING_LIST:
		if (string_list_add(v, text) != 0) {
			log_error("config: %s: at most %d entries", path, CONFIG_MAX_LIST);
			return -1;
		}
		return 0;
	}
	return -1;
}

static bool same_value(const struct config_part *a, const struct config_part *b, const struct setting *s)
{
	const void *va = value_of(a, s), *vb = value_of(b, s);
	switch (s->kind) {
	case SETTING_INT: return *(const int *)va == *(const int *)vb;
	case SETTING_BOOL: return *(const bool *)va == *(const bool *)vb;
	case SETTING_STRING: {
		const char *x = *(char *const *)va, *y = *(char *const *)vb;
		return strcmp(x ? x : "", y ? y : "") == 0;
	}
	case SETTING_LIST: {
		const struct string_list *x = va, *y = vb;
		if (x->count != y->count)
			return false;
		for (int i = 0; i < x->count; i++)
			if (strcmp(x->item[i], y->item[i]) != 0)
				return false;
		return true;
	}
	}
	return false;
}

void config_diff(const struct config_part *a, const struct config_part *b, config_diff_fn fn, void *arg)
{
	for (; a->settings && b->settings; a++, b++)
		for (const struct setting *s = a->settings; s->path; s++)
			if (!same_value(a, b, s))
				fn(a, b, s, arg);
}

void config_swap(const struct config_part *a, const struct config_part *b, const struct setting *s)
{
	static const size_t size[] = {
		[SETTING_INT] = sizeof(int),
		[SETTING_BOOL] = sizeof(bool),
		[SETTING_STRING] = sizeof(char *),
		[SETTING_LIST] = sizeof(struct string_list),
	};
	unsigned char tmp[sizeof(struct string_list)];
	void *va = value_of(a, s), *vb = value_of(b, s);
	memcpy(tmp, va, size[s->kind]);
	memcpy(va, vb, size[s->kind]);
	memcpy(vb, tmp, size[s->kind]);
}

/* ---- the file ---- */

static const char *source_file(const config_setting_t *cs)
{
	return config_setting_source_file(cs) ? config_setting_source_file(cs) : "";
}

static int wrong_kind(const config_setting_t *cs, const char *path, const char *want)
{
	log_error("config: %s:%d: %s must be %s", source_file(cs), config_setting_source_line(cs), path, want);
	return -1;
}

static int read_list(const config_setting_t *cs, const char *path, struct string_list *list)
{
	if (!config_setting_is_aggregate(cs))
		return wrong_kind(cs, path, "a list of strings");
	string_list_clear(list);
	for (int i = 0; i < config_setting_length(cs); i++) {
		const char *v = config_setting_get_string_elem(cs, i);
		if (!v || string_list_add(list, v) != 0) {
			log_error("config: %s:%d: %s[%d] must be a string (at most %d entries)", source_file(cs),
				  config_setting_source_line(cs), path, i, CONFIG_MAX_LIST);
			return -1;
		}
	}
	return 0;
}

/** The file's value of s, if the file has it. */
static int read_setting(config_t *lc, const struct config_part *part, const struct setting *s)
{
	config_setting_t *cs = config_lookup(lc, s->path);
	if (!cs)
		return 0; /* absent: the value stays */
	void *v = value_of(part, s);
	switch (s->kind) {
	case SETTING_INT:
		if (config_setting_type(cs) != CONFIG_TYPE_INT)
			return wrong_kind(cs, s->path, "an integer");
		*(int *)v = config_setting_get_int(cs);
		return 0;
	case SETTING_BOOL:
		if (config_setting_type(cs) != CONFIG_TYPE_BOOL)
			return wrong_kind(cs, s->path, "true or false");
		*(bool *)v = config_setting_get_bool(cs) != 0;
		return 0;
	case SETTING_STRING:
		if (config_setting_type(cs) != CONFIG_TYPE_STRING)
			return wrong_kind(cs, s->path, "a string");
		config_set_string((char **)v, config_setting_get_string(cs));
		return 0;
	case SETTING_LIST: return read_list(cs, s->path, v);
	}
	return -1;
}

/** A setting in the file that no module reads is most likely a typo: say so, and go on. */
static void warn_unknown(const struct config_part *parts, const config_setting_t *group, const char *prefix)
{
	for (int i = 0; i < config_setting_length(group); i++) {
		const config_setting_t *cs = config_setting_get_elem(group, i);
		const char *name = config_setting_name(cs);
		if (!name)
			continue;
		char path[128];
		snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", name);
		const struct config_part *part;
		if (config_setting_is_group(cs) && !find(parts, path, &part))
			warn_unknown(parts, cs, path);
		else if (!find(parts, path, &part))
			log_warn("config: %s:%d: unknown setting %s (ignored)", source_file(cs),
				 config_setting_source_line(cs), path);
	}
}

int config_load(const struct config_part *parts, const char *path)
{
	config_t lc;
	config_init(&lc);
	if (config_read_file(&lc, path) != CONFIG_TRUE) {
		if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
			log_error("config: cannot read %s", path);
		else
			log_error("config: %s:%d: %s", config_error_file(&lc) ? config_error_file(&lc) : path,
				  config_error_line(&lc), config_error_text(&lc));
		config_destroy(&lc);
		return -1;
	}
	int rc = 0;
	for (const struct config_part *p = parts; p->settings; p++)
		for (const struct setting *s = p->settings; s->path; s++)
			rc |= read_setting(&lc, p, s);
	warn_unknown(parts, config_root_setting(&lc), "");
	config_destroy(&lc);
	return rc ? -1 : 0;
}
