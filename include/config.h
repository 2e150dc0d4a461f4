#ifndef RELAYWATCH_CONFIG_H
#define RELAYWATCH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Plain "key = value" files: one setting per line, blank lines and lines whose first non-blank
 * character is '#' ignored, whitespace around key and value trimmed, the value is the rest of the
 * line (it may contain spaces and '='). Keys are case-sensitive.
 */

struct config_line {
	const char *file;
	unsigned line;
	const char *key;
	const char *value;
};

/*
 * What a module's setter (check_rules_set, alert_command_set) did with one config line: each
 * takes the keys it owns and leaves the others to the next setter.
 */
enum config_set_result {
	CONFIG_SET_BAD = -1,    /* one of its keys, with a bad value (logged with file:line) */
	CONFIG_SET_OTHER = 0,   /* not one of its keys (nothing logged) */
	CONFIG_SET_APPLIED = 1, /* one of its keys, applied */
};

/* Called once per setting; returns 0 to go on, -1 to stop (it has logged why, with file:line). */
typedef int (*config_fn)(const struct config_line *cl, void *data);

enum config_flags {
	/*
	 * Refuse the file unless it is a regular file owned by root or the caller and not writable
	 * by group or others: a config that names a private key or a database must not be
	 * replaceable by another local user.
	 */
	CONFIG_SECURE = 1 << 0,
};

/*
 * Reads path and calls fn for each setting. Returns 0, or -1 after logging "file:line: why" (or
 * "file: why" for open and permission errors) for the first problem.
 */
int config_parse(const char *path, int flags, config_fn fn, void *data);

/* The same over a buffer already in memory (name is used in messages). */
int config_parse_buffer(const char *name, const char *buf, size_t len, config_fn fn, void *data);

/* The CONFIG_SECURE check on an open file; logs and returns -1 when it fails. */
int config_check_secure(int fd, const char *path);

/*
 * Value helpers: each logs "file:line: why" and returns -1 when the value does not fit.
 */
int config_uint(const struct config_line *cl, uint64_t min, uint64_t max, uint64_t *out);
/* A byte count, with an optional suffix k, M or G (powers of 1024). */
int config_size(const struct config_line *cl, uint64_t min, uint64_t max, uint64_t *out);
int config_bool(const struct config_line *cl, bool *out);
/* Replaces *out (freed) with a copy of the value; -1 on empty value or no memory. */
int config_string(const struct config_line *cl, char **out);

/*
 * The words of a value that lists several (alert_command, check_sender_allow): separated by
 * blanks (spaces and tabs), no quoting. Returns the next word from *p, its length in *n, and
 * moves *p past it; NULL when no word is left.
 */
const char *config_word(const char **p, size_t *n);

/* Logs "file:line: unknown key 'key'" and returns -1. */
int config_unknown(const struct config_line *cl);

/* Logs "FILE:LINE: KEY: 'VALUE' WHAT" (the value escaped) for a value the caller refused; -1. */
int config_bad_value(const struct config_line *cl, const char *what);

#endif
