/*
 * common/log.h — process-level logging (DESIGN 7: only process-level code
 * logs; modules return codes). Lines go to stderr with a syslog priority
 * prefix ("<3>") when stderr is the journal, or "modeld: level: " otherwise.
 */
#ifndef MD_LOG_H
#define MD_LOG_H

enum { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Parse "error|warn|info|debug"; returns the level or -1. */
int log_parse_level(const char *s);
void log_set_level(int level);
/* ident is borrowed for the life of the process. */
void log_init(const char *ident);

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
