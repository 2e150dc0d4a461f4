#include <getopt.h>
#include <stdio.h>

#include "commands.h"
#include "db.h"
#include "ingest_config.h"

static const char usage_migrate[] =
	"usage: relaywatch-ingest migrate [--config FILE] [--defaults-file=FILE] [--verbose] "
	"[--quiet]\n"
	"\n"
	"Creates the database schema, or upgrades it to this version. Safe to run again.\n"
	"\n"
	"  -c, --config FILE     ingester config (default " INGEST_CONFIG_DEFAULT
	", if it exists)\n"
	"  --defaults-file=FILE  MySQL option file with the credentials ([client], [relaywatch]);\n"
	"                        default: defaults_file of the config, else the standard files\n"
	"  -v, --verbose         say what was done\n"
	"  -q, --quiet           only warnings and errors\n"
	"  -h, --help            this text\n"
	"  -V, --version         the program's version\n";

int cmd_migrate(int argc, char **argv)
{
	static const struct option opts[] = {
		CMD_OPTIONS_COMMON,
		{NULL, 0, NULL, 0},
	};
	struct cmd cmd;
	struct db *db = NULL;
	int ret = CMD_USAGE;

	cmd_init(&cmd, usage_migrate);
	if (cmd_getopt_exits(&cmd, argc, argv, ":c:vqhV", opts, NULL, NULL, &ret)) {
		goto out;
	}
	if (cmd_load(&cmd, argc, argv) != 0) {
		goto out;
	}
	ret = cmd_connect(&cmd, &db);
	if (ret == CMD_OK) {
		ret = db_migrate(db) == 0 ? CMD_OK : CMD_DB;
	}
out:
	db_destroy(db);
	cmd_finish(&cmd);
	return ret;
}
