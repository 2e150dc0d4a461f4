#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "escape.h"
#include "log.h"

static const char *log_prog = "relaywatch";
static enum log_level log_threshold = LOG_NOTICE;

void log_init(const char *progname, enum log_level threshold)
{
	log_prog = progname;
	log_threshold = threshold;
}

void log_set_level(enum log_level threshold)
{
	log_threshold = threshold;
}

enum log_level log_get_level(void)
{
	return log_threshold;
}

/* Serialises the hold; also keeps the lines of the two scan threads whole. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static bool log_holding, log_held;
static char log_held_msg[1024];
/* This thread's lines are never held (log_hold_exempt). */
static _Thread_local bool log_exempt;

void log_hold_exempt(void)
{
	log_exempt = true;
}

void log_hold(void)
{
	pthread_mutex_lock(&log_mu);
	log_holding = true;
	log_held = false;
	pthread_mutex_unlock(&log_mu);
}

bool log_release(char *buf, size_t size)
{
	pthread_mutex_lock(&log_mu);
	bool held = log_held;
	if (held && size > 0) {
		snprintf(buf, size, "%s", log_held_msg);
	}
	log_holding = log_held = false;
	pthread_mutex_unlock(&log_mu);
	return held;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (level > log_threshold) {
		return;
	}
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	size_t mlen = m < 0 ? 0 : (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;

	/* One write per line, so lines of concurrent processes sharing a cron mail never mix. */
	char line[2048];
	int n = snprintf(line, sizeof(line), "%s: ", log_prog);
	if (n < 0 || (size_t)n >= sizeof(line) / 2) {
		n = 0;
	}
	/*
	 * Sanitised where it is written, as OpenSSH's do_log does: a caller that forgot log_escape
	 * on bytes from a log line or a peer still cannot put a terminal escape or a line break
	 * into the admin's terminal or cron mail. Backslashes stay: they start log_escape's own.
	 */
	size_t len = (size_t)n + escape_text(line + n, sizeof(line) - (size_t)n - 2, msg, mlen,
					     ESCAPE_BACKSLASH);
	pthread_mutex_lock(&log_mu);
	if (log_holding && !log_exempt && level <= LOG_WARN) {
		if (!log_held) {
			size_t k = len - (size_t)n;
			k = k < sizeof(log_held_msg) ? k : sizeof(log_held_msg) - 1;
			memcpy(log_held_msg, line + n, k);
			log_held_msg[k] = '\0';
			log_held = true;
		}
	} else {
		line[len++] = '\n';
		fwrite(line, 1, len, stderr);
	}
	pthread_mutex_unlock(&log_mu);
}

char *log_escape(char *out, size_t size, const void *s, size_t n)
{
	if (size < 4) {
		if (size > 0) {
			out[0] = '\0';
		}
		return out;
	}
	escape_text(out, size - 1, s, n, 0);
	return out;
}
