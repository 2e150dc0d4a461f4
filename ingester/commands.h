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

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ingest_config.h"

struct db;

/* What an option parser (cmd_parse, a command's cmd_own_fn, cmd_getopt) made of an option. */
enum cmd_opt {
	CMD_OPT_OWN,  /* not a shared option: the command handles it */
	CMD_OPT_NEXT, /* applied (-v, -q): go on parsing */
	CMD_OPT_DONE, /* printed (-h, -V): exit with success */
	CMD_OPT_BAD,  /* unknown option or missing value, said on stderr: exit as a usage error */
};

/*
 * Loads the ingester config from path, or from INGEST_CONFIG_DEFAULT when path is NULL (then a
 * missing file is no error). cfg must be initialised. 0, or -1 after logging file:line.
 */
int cmd_config(struct ingest_config *cfg, const char *path);

/* ---- the front-end that the subcommands share ---- */

/* getopt_long values of the shared long-only options; a command's own start at CMD_LONG_OWN. */
enum {
	CMD_LONG_DEFAULTS = 256,
	CMD_LONG_SINCE,
	CMD_LONG_UNTIL,
	CMD_LONG_HOST,
	CMD_LONG_OWN = 300,
};

/* Rows of a command's struct option table: the options every command has, and the window's. */
#define CMD_OPTIONS_COMMON                                                                         \
	{"config", required_argument, NULL, 'c'},                                                  \
		{"defaults-file", required_argument, NULL, CMD_LONG_DEFAULTS},                     \
		{"quiet", no_argument, NULL, 'q'}, {"verbose", no_argument, NULL, 'v'},            \
		{"help", no_argument, NULL, 'h'},                                                  \
	{                                                                                          \
		"version", no_argument, NULL, 'V'                                                  \
	}
#define CMD_OPTIONS_WINDOW                                                                         \
	{"since", required_argument, NULL, CMD_LONG_SINCE},                                        \
		{"until", required_argument, NULL, CMD_LONG_UNTIL},                                \
	{                                                                                          \
		"host", required_argument, NULL, CMD_LONG_HOST                                     \
	}

/* What a command was given besides its own options, and the config it loaded. */
struct cmd {
	const char *usage;
	const char *config;               /* -c FILE; NULL: INGEST_CONFIG_DEFAULT if it exists */
	const char *defaults;             /* --defaults-file, else (after cmd_load) the config's */
	const char *since, *until, *host; /* as given; NULL when absent */
	struct ingest_config cfg;
};

/* Initialises cmd (usage: the --help text); cmd_finish frees what it owns. */
void cmd_init(struct cmd *cmd, const char *usage);
void cmd_finish(struct cmd *cmd);

/*
 * For the default branch of a command's getopt_long loop: stores -c, --defaults-file, --since,
 * --until and --host (CMD_OPT_NEXT); -v/--verbose raises the log level a step, -q/--quiet lowers
 * it to warnings and errors, -h/--help prints usage on stdout, -V/--version the version; ':' and
 * '?' (optstring starts with ':', so that getopt itself prints nothing) become one error line that
 * points to --help.
 */
enum cmd_opt cmd_parse(struct cmd *cmd, int c, char **argv);

/*
 * A command's own options, for cmd_getopt: CMD_OPT_NEXT when c (with optarg) was applied,
 * CMD_OPT_OWN when c is not the command's (then it is a shared one), CMD_OPT_BAD after logging a
 * usage error.
 */
typedef enum cmd_opt (*cmd_own_fn)(int c, void *data);

/*
 * The getopt_long loop of a command (optstring starts with ':'): its own options through own
 * (may be NULL), the shared ones through cmd_parse. CMD_OPT_NEXT when every option was read
 * (optind is the first operand), CMD_OPT_DONE after --help or --version, CMD_OPT_BAD after a
 * usage error (logged).
 */
enum cmd_opt cmd_getopt(struct cmd *cmd, int argc, char **argv, const char *optstring,
			const struct option *opts, cmd_own_fn own, void *data);

/*
 * cmd_getopt for a command that exits with enum cmd_exit: false when every option was read (the
 * command goes on, *status untouched); true when the command is to exit now with *status: CMD_OK
 * after --help or --version, CMD_USAGE after a usage error (logged).
 */
bool cmd_getopt_exits(struct cmd *cmd, int argc, char **argv, const char *optstring,
		      const struct option *opts, cmd_own_fn own, void *data, int *status);

/*
 * An option's value as a number from min to max into *out. 0, or -1 after logging
 * "NAME: expected a number from MIN to MAX" (name as "--top").
 */
int cmd_number(const char *name, const char *arg, unsigned min, unsigned max, unsigned *out);

/*
 * After the options of a command that takes no operands: refuses any operand, loads the config
 * (cmd_config) into cmd->cfg and, when cmd->defaults is NULL, takes the config's defaults_file.
 * 0, or -1 after logging why (a usage or configuration error).
 */
int cmd_load(struct cmd *cmd, int argc, char **argv);

/*
 * The time window of --since/--until: until as given or default_until, since as given or
 * length seconds before until; since must come first. since is rounded down and until up to a
 * whole hour, the one rounding of every command; end keeps until unrounded (the reference of the
 * stale rule for a past window). 0, or -1 after logging a usage error.
 */
struct cmd_window {
	int64_t since, until, end;
};
int cmd_window(const struct cmd *cmd, int64_t now, int64_t default_until, int64_t length,
	       struct cmd_window *w);

/* Connects with cmd->defaults: CMD_OK, CMD_USAGE (the option file is at fault) or CMD_DB. */
enum cmd_exit cmd_connect(const struct cmd *cmd, struct db **db);

/* The exit status after a database failure: CMD_DB when the server was lost, else CMD_FAILED. */
enum cmd_exit cmd_db_failed(const struct db *db);

/*
 * Output replaced atomically: cmd_output_open writes to FILE.XXXXXX beside path (to stdout when
 * path is NULL), so that readers only ever see a complete file; cmd_output_commit flushes and
 * renames it over path. Both return NULL or -1 after logging; cmd_output_abort removes what was
 * not committed (accepts a committed or never opened output).
 */
struct cmd_output {
	const char *path;
	char *tmp;
	FILE *f;
};
FILE *cmd_output_open(struct cmd_output *o, const char *path);
int cmd_output_commit(struct cmd_output *o);
void cmd_output_abort(struct cmd_output *o);

/* Creates or upgrades the schema (ingester/cmd_migrate.c). */
int cmd_migrate(int argc, char **argv);
/* Ingests local files (ingester/backfill.c). */
int cmd_backfill(int argc, char **argv);
/* Drains the SFTP drop directory (ingester/drain.c). */
int cmd_run(int argc, char **argv);
/* Summaries over a time range (ingester/cmd_report.c). */
int cmd_report(int argc, char **argv);
/* Alert rules, as a monitoring plugin (ingester/cmd_check.c). */
int cmd_check(int argc, char **argv);
/* Deletes old aggregate rows and ledger entries (ingester/cmd_purge.c). */
int cmd_purge(int argc, char **argv);

#endif
