#ifndef RELAYWATCH_LOG_H
#define RELAYWATCH_LOG_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Logging for cron jobs: everything goes to stderr as one line "prog: message".
 * Default threshold is LOG_NOTICE; --quiet lowers it to LOG_WARN, each --verbose raises it.
 * Never pass untrusted bytes (log content, remote names) as the format or raw through %s:
 * render them with log_escape() first. Every line is also sanitised where it is written (any byte
 * outside printable ASCII becomes \xNN), so a forgotten log_escape cannot reach a terminal raw;
 * a line is cut with "..." at about 2000 bytes.
 */
enum log_level {
	LOG_ERROR = 0,
	LOG_WARN = 1,
	LOG_NOTICE = 2,
	LOG_INFO = 3,
	LOG_DEBUG = 4,
};

/* Sets the program name prefixed to each line and the threshold. */
void log_init(const char *progname, enum log_level threshold);
void log_set_level(enum log_level threshold);
enum log_level log_get_level(void);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...)  log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)   log_msg(LOG_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)   log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)  log_msg(LOG_DEBUG, __VA_ARGS__)

/*
 * For a caller that reports a problem in its own words, so that the admin reads one line per
 * problem: from log_hold() to log_release(), errors and warnings (from any thread) are not
 * printed; the first is kept, the rest dropped. log_release() copies the kept message (without
 * the program name) into buf and returns true, or returns false when none came. Not nested,
 * and process-wide: never around work that other threads do at the same time, unless those
 * threads called log_hold_exempt().
 */
void log_hold(void);
bool log_release(char *buf, size_t size);
/* The calling thread's lines are printed even during a hold: it works beside the holder. */
void log_hold_exempt(void);

/*
 * Renders n untrusted bytes as printable ASCII into out (always NUL-terminated when size > 0):
 * printable ASCII except backslash is copied, everything else becomes \xNN, and the result is
 * cut with "..." when it does not fit (escape_text of escape.h, the one terminal escaper). This
 * keeps terminal escapes and newlines that an attacker put into a log line out of the admin's
 * terminal and cron mail. A size below 4 gives "". Returns out.
 */
char *log_escape(char *out, size_t size, const void *s, size_t n);

/* Size of a log_escape() buffer that shows about 120 input bytes. */
#define LOG_ESCAPE_SIZE 512

#endif
