#ifndef RELAYWATCH_COMMANDS_H
#define RELAYWATCH_COMMANDS_H

/*
 * The subcommands of relaywatch-ingest. Each gets argv starting at the subcommand (argv[0] is
 * "relaywatch-ingest NAME", so that getopt's own messages name the program), parses its options
 * with getopt_long, and returns the exit status:
 * 0 success, 1 some input failed (the others went on), 2 usage or config error, 3 database
 * unreachable. cmd_check uses the monitoring-plugin codes (0 OK, 1 WARNING, 2 CRITICAL,
 * 3 UNKNOWN) instead.
 */

enum cmd_exit {
	CMD_OK = 0,
	CMD_FAILED = 1,
	CMD_USAGE = 2,
	CMD_DB = 3,
};

/* Creates or upgrades the schema (ingester/backfill.c). */
int cmd_migrate(int argc, char **argv);
/* Ingests local files (ingester/backfill.c). */
int cmd_backfill(int argc, char **argv);
/* Drains the SFTP drop directory (ingester/drain.c). */
int cmd_run(int argc, char **argv);
/* Summaries over a time range. */
int cmd_report(int argc, char **argv);
/* Alert rules, as a monitoring plugin. */
int cmd_check(int argc, char **argv);
/* Deletes old aggregate rows and ledger entries. */
int cmd_purge(int argc, char **argv);

#endif
