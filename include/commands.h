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

#include <stdbool.h>

struct ingest_config;

/* What cmd_option() made of an option. */
enum cmd_opt {
	CMD_OPT_OWN,  /* not a shared option: the command handles it */
	CMD_OPT_NEXT, /* applied (-v, -q): go on parsing */
	CMD_OPT_DONE, /* printed (-h, -V): exit with success */
	CMD_OPT_BAD,  /* unknown option or missing value, said on stderr: exit as a usage error */
};

/*
 * The options every subcommand shares, for the default branch of a getopt_long loop whose
 * optstring starts with ':' (so that getopt itself prints nothing): -v/--verbose raises the log
 * level a step, -q/--quiet lowers it to warnings and errors, -h/--help prints usage on stdout,
 * -V/--version the version; ':' and '?' become one error line that points to --help.
 */
enum cmd_opt cmd_option(int c, char **argv, const char *usage);

/*
 * Loads the ingester config from path, or from INGEST_CONFIG_DEFAULT when path is NULL (then a
 * missing file is no error). cfg must be initialised. 0, or -1 after logging file:line.
 */
int cmd_config(struct ingest_config *cfg, const char *path);

/*
 * After the options of a command that takes no operands: refuses any operand, loads the config
 * (cmd_config) into cfg (initialised) and, when *defaults is NULL, takes the config's
 * defaults_file. 0, or -1 after logging why (a usage or configuration error).
 */
int cmd_setup(int argc, char **argv, const char *config, struct ingest_config *cfg,
	      const char **defaults);

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
