#ifndef RELAYWATCH_ALERT_COMMAND_H
#define RELAYWATCH_ALERT_COMMAND_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/*
 * The admin's alert_command (ingest.conf `alert_command = PATH [ARG...]`), run once per new
 * alert by `check --new`. The alert's fields come from SMTP clients (an account may be named
 * `x$(touch /tmp/p)@evil.test`), so the command is executed directly with fork + execve, never
 * through a shell: what the alert holds reaches the program as data, in its environment and on
 * its standard input, never as a command line to be parsed.
 *
 * The run is bounded: the program gets the input on a pipe and its standard output and error go
 * to a pipe that this module drains (so a chatty program never blocks, and never blocks us);
 * after the timeout it is killed with SIGKILL, with its whole process group (it runs in its
 * own), and reaped. Its output is logged escaped, at LOG_WARN when it failed, LOG_INFO otherwise.
 */

struct alert_command {
	char **argv;        /* NULL-terminated, argv[0] an absolute path; NULL: not configured */
	int64_t timeout_ms; /* default 30 s */
};

/* Sets the defaults (no command). */
void alert_command_init(struct alert_command *c);

/* Frees what c owns; c can be initialised again afterwards. */
void alert_command_finish(struct alert_command *c);

/*
 * Applies one config line. Keys: `alert_command = PATH [ARG...]` (words separated by blanks, no
 * quoting, no shell; PATH absolute, so that what runs does not depend on the PATH of cron or
 * systemd; a repeated key replaces the command) and `alert_timeout = DURATION` ("30s", "2m").
 */
enum config_set_result alert_command_set(struct alert_command *c, const struct config_line *cl);

/* One environment variable for the command: name and value (a C string: no NUL inside). */
struct alert_command_env {
	const char *name;
	const char *value;
};

enum alert_command_result {
	ALERT_COMMAND_ERROR = -1,  /* it could not be started: no such program, no fork, no pipe */
	ALERT_COMMAND_OK = 0,      /* it exited with status 0 */
	ALERT_COMMAND_FAILED = 1,  /* it exited with another status or was killed by a signal */
	ALERT_COMMAND_TIMEOUT = 2, /* still running at the timeout: killed with its group, reaped */
};

/*
 * Runs c->argv with the caller's environment, less every RELAYWATCH_* variable it held (the
 * command sees only this alert's, never e.g. a test's RELAYWATCH_CRASH), plus env[0..nenv);
 * writes input[0..input_len) to its standard input and then closes it (a program that does not
 * read it is no error). Returns when the program has exited and been reaped, or has been killed
 * at the timeout and reaped. Every result but ALERT_COMMAND_OK is logged with the reason.
 * SIGPIPE is ignored while the input is written and restored before returning; not for use
 * while other threads run.
 */
enum alert_command_result alert_command_exec(const struct alert_command *c,
					     const struct alert_command_env *env, size_t nenv,
					     const void *input, size_t input_len);

#endif
