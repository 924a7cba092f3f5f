/** @file log.c  Leveled logging to stderr with a timestamp. */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static enum log_level current = LOGL_INFO;
static const char *const names[] = {"error", "warn", "notice", "info", "debug"};
/* A ring of the last warnings and errors: small and fixed, so keeping it costs nothing. */
static struct log_recent recent[LOG_RECENT_MAX];
static unsigned long recent_seq;

const char *log_level_name(enum log_level level) { return names[level]; }
unsigned long log_recent_last(void) { return recent_seq; }

void log_recent_each(unsigned long after, log_recent_fn fn, void *arg)
{
	unsigned long first = recent_seq > LOG_RECENT_MAX ? recent_seq - LOG_RECENT_MAX + 1 : 1;
	if (after + 1 > first)
		first = after + 1;
	for (unsigned long s = first; s <= recent_seq; s++)
		fn(&recent[s % LOG_RECENT_MAX], arg);
}

__attribute__((format(printf, 3, 0))) static void keep_recent(enum log_level level, long when, const char *fmt,
								  va_list ap)
{
	struct log_recent *r = &recent[++recent_seq % LOG_RECENT_MAX];
	r->seq = recent_seq;
	r->when = when;
	r->level = level;
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
}

void log_set_level(enum log_level level) { current = level; }
enum log_level log_get_level(void) { return current; }

int log_level_parse(const char *name, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(name, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcmp(name, "warning") == 0) {
		*out = LOGL_WARN;
		return 0;
	}
	return -1;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (level > current)
		return;
	struct timeval tv;
	struct tm tm;
	char stamp[32];
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

	va_list ap;
	if (level <= LOGL_WARN) {
		va_start(ap, fmt);
		keep_recent(level, (long)tv.tv_sec, fmt, ap);
		va_end(ap);
	}
	va_start(ap, fmt);
	fprintf(stderr, "%s.%03ldZ %-6s ", stamp, (long)(tv.tv_usec / 1000), names[level]);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}
