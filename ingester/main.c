#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "log.h"

/*
 * The subcommand table. To add a command, declare it in ingester/commands.h, add one line
 * here, e.g. {"report", cmd_report, "summaries over a time range"}.
 */
static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{"migrate", cmd_migrate, "create or upgrade the database schema"},
	{"backfill", cmd_backfill, "ingest local log files (plain or gzip, - for stdin)"},
	{"run", cmd_run, "drain the drop directory that relaywatch-ship uploads into"},
	{"report", cmd_report, "summaries over a time range (text, tsv, json, html)"},
	{"check", cmd_check, "alert rules, as a monitoring plugin (exit 0/1/2/3)"},
	{"purge", cmd_purge, "delete aggregate and ledger rows older than an age"},
};

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: relaywatch-ingest COMMAND [OPTIONS] [ARGS]\n"
		   "       relaywatch-ingest COMMAND --help\n\n"
		   "Commands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	}
	fprintf(f, "\nDatabase credentials come from MySQL option files ([client] and "
		   "[relaywatch] groups),\nnamed with --defaults-file=FILE. Exit status: 0 ok, "
		   "1 some input failed, 2 usage or\nconfig error, 3 database unreachable.\n");
}

int main(int argc, char **argv)
{
	static char name[64];
	size_t i;

	log_init("relaywatch-ingest", LOG_NOTICE);
	if (argc < 2) {
		usage(stderr);
		return CMD_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return CMD_OK;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
		printf("relaywatch-ingest %s\n", RELAYWATCH_VERSION);
		return CMD_OK;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0) {
			/* getopt prefixes its messages with argv[0]: make it name the program. */
			snprintf(name, sizeof(name), "relaywatch-ingest %s", commands[i].name);
			argv[1] = name;
			return commands[i].fn(argc - 1, argv + 1);
		}
	}
	log_error("unknown command '%s' (try --help)",
		  log_escape(name, sizeof(name), argv[1], strlen(argv[1])));
	return CMD_USAGE;
}
