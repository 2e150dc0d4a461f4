#ifndef RELAYWATCH_SHIP_H
#define RELAYWATCH_SHIP_H

#include <stdbool.h>

#include "shipconf.h"

/*
 * One run of relaywatch-ship: find the files of every source, plan what is new, save the plan,
 * then stream each chunk (read -> SHA-256 + line count -> deflate -> SFTP) and record what was
 * delivered. See ship_state.h for why a crash anywhere neither loses nor duplicates a line.
 */

/* Exit statuses (cron reads them). */
enum ship_exit {
	SHIP_EXIT_OK = 0,
	SHIP_EXIT_PARTIAL = 1, /* some chunks or files failed (logged); a later run retries */
	SHIP_EXIT_USAGE = 2,   /* bad command line, config or state file */
	SHIP_EXIT_CONNECT = 3, /* could not connect, authenticate, or the host key was refused */
};

struct ship_options {
	bool dry_run;             /* print what would ship; connect to nothing, change nothing */
	bool accept_new_host_key; /* first contact: record the server's key in known_hosts */
	bool progress;            /* a progress line on stderr (only on a terminal) */
};

/*
 * Runs once with the given config: to the first of cfg->servers that connects and verifies,
 * and on to the next when one fails mid-run. Logs every problem; errno is not meaningful after.
 */
enum ship_exit ship_run(const struct ship_config *cfg, const struct ship_options *opt);

#endif
