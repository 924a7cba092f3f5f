/** @file log.h  Leveled logging to stderr, one line per event. */
#ifndef SIPEDGE_LOG_H
#define SIPEDGE_LOG_H

enum log_level { LOGL_ERROR, LOGL_WARN, LOGL_NOTICE, LOGL_INFO, LOGL_DEBUG };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/** Parse "error", "warn", "notice", "info", "debug"; 0 on success, -1 if unknown. */
int log_level_parse(const char *name, enum log_level *out);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** The last warnings and errors, kept for the operator's console (oldest first): a sequence
 *  number, when (Unix seconds), the level and the line as logged. Lines below the current
 *  level are never formatted, so they are not kept either. */
#define LOG_RECENT_MAX 64
#define LOG_RECENT_LEN 240
struct log_recent {
	unsigned long seq;
	long when;
	enum log_level level;
	char text[LOG_RECENT_LEN];
};
typedef void (*log_recent_fn)(const struct log_recent *line, void *arg);
/** Each kept line with a sequence number above after, oldest first. */
void log_recent_each(unsigned long after, log_recent_fn fn, void *arg);
/** The sequence number of the last line kept (0: none yet). */
unsigned long log_recent_last(void);
/** The name of a level ("warn"). */
const char *log_level_name(enum log_level level);

#define log_error(...) log_msg(LOGL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOGL_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOGL_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOGL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_get_level() >= LOGL_DEBUG)                                                 \
			log_msg(LOGL_DEBUG, __VA_ARGS__);                                          \
	} while (0)

#endif
