/* common/log.c — see log.h. */
#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cur_level = LOG_LVL_INFO;
static const char *log_ident = "modeld";
static int to_journal;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const names[] = { "error", "warning", "info", "debug" };
static const int prio[] = { 3, 4, 6, 7 };

int log_parse_level(const char *s)
{
	if (!strcmp(s, "error")) return LOG_LVL_ERROR;
	if (!strcmp(s, "warn") || !strcmp(s, "warning")) return LOG_LVL_WARN;
	if (!strcmp(s, "info")) return LOG_LVL_INFO;
	if (!strcmp(s, "debug")) return LOG_LVL_DEBUG;
	return -1;
}

void log_set_level(int level) { cur_level = level; }

void log_init(const char *ident)
{
	log_ident = ident;
	to_journal = getenv("JOURNAL_STREAM") != NULL;
}

void log_msg(int level, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	if (level > cur_level)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	/* one line per message: never let a newline from data split it */
	for (char *p = buf; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	pthread_mutex_lock(&log_lock);
	if (to_journal)
		fprintf(stderr, "<%d>%s\n", prio[level], buf);
	else
		fprintf(stderr, "%s: %s: %s\n", log_ident, names[level], buf);
	pthread_mutex_unlock(&log_lock);
}
