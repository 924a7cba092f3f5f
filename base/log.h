/** @file log.h  Leveled logging to stderr, one line per event. */
#ifndef SIPEDGE_LOG_H
#define SIPEDGE_LOG_H

enum log_level { LOGL_ERROR, LOGL_WARN, LOGL_NOTICE, LOGL_INFO, LOGL_DEBUG };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/** Parse "error", "warn", "notice", "info", "debug"; 0 on success, -1 if unknown. */
int log_level_parse(const char *name, enum log_level *out);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

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
