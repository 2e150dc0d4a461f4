#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "commands.h"
#include "db.h"
#include "log.h"
#include "logtime.h"

/*
 * Retention: deletes aggregate rows of hours before a cutoff, and ledger rows of chunks whose
 * data and ingestion are both before it, in small batches (db_purge_*), so ingestion goes on
 * while a purge runs.
 */

static const char purge_usage[] =
	"usage: relaywatch-ingest purge --older-than AGE [OPTIONS]\n"
	"\n"
	"Deletes hourly aggregate rows older than AGE (e.g. 400d) and the ledger rows of chunks\n"
	"whose data and ingestion are both older, in batches that do not hold long locks.\n"
	"\n"
	"      --older-than AGE     e.g. 400d, 60w (at least 1d)\n"
	"  -n, --dry-run            count what would be deleted, delete nothing\n"
	"      --batch N            rows per DELETE (default 10000)\n"
	"  -c, --config FILE        ingester config (default " INGEST_CONFIG_DEFAULT ")\n"
	"      --defaults-file FILE MySQL option file with the database credentials\n"
	"  -q, --quiet              only errors on stderr\n"
	"  -v, --verbose            say how many rows were deleted\n"
	"  -h, --help               this text\n"
	"  -V, --version            version\n";

int cmd_purge(int argc, char **argv)
{
	enum { OPT_OLDER = CMD_LONG_OWN, OPT_BATCH };
	static const struct option opts[] = {
		{"older-than", required_argument, NULL, OPT_OLDER},
		{"dry-run", no_argument, NULL, 'n'},
		{"batch", required_argument, NULL, OPT_BATCH},
		CMD_OPTIONS_COMMON,
		{0},
	};
	const char *older = NULL;
	struct cmd cmd;
	struct db *db = NULL;
	bool dry = false;
	unsigned batch = 10000;
	int64_t age, cutoff;
	uint64_t n;
	char when[20];
	int ret = CMD_USAGE, c;

	cmd_init(&cmd, purge_usage);
	while ((c = getopt_long(argc, argv, ":nc:qvhV", opts, NULL)) != -1) {
		switch (c) {
		case OPT_OLDER:
			older = optarg;
			break;
		case 'n':
			dry = true;
			break;
		case OPT_BATCH: {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || v < 1 || v > 1000000) {
				log_error("--batch: expected a number from 1 to 1000000");
				goto out;
			}
			batch = (unsigned)v;
			break;
		}
		default:
			switch (cmd_parse(&cmd, c, argv)) {
			case CMD_OPT_NEXT:
				continue;
			case CMD_OPT_DONE:
				ret = CMD_OK;
				goto out;
			default:
				goto out;
			}
		}
	}
	if (cmd_load(&cmd, argc, argv) != 0) {
		goto out;
	}
	if (older == NULL) {
		log_error("--older-than is required, e.g. --older-than 400d (try --help)");
		goto out;
	}
	/* A slip like "--older-than 400" (seconds) must not wipe the database. */
	if (logtime_parse_duration(older, &age) < 0 || age < 86400) {
		log_error("--older-than: expected an age of at least 1d, e.g. 400d");
		goto out;
	}
	cutoff = logtime_hour_floor((int64_t)time(NULL) - age);
	logtime_format(cutoff, when);

	ret = cmd_connect(&cmd, &db);
	if (ret != CMD_OK) {
		goto out;
	}
	ret = CMD_FAILED;
	for (int t = 0; t < AGG_TABLES; t++) {
		if (db_purge_hours(db, (enum agg_table)t, cutoff, batch, dry, &n) < 0) {
			goto out;
		}
		if (dry) {
			printf("%s: %" PRIu64 " rows before %s UTC would be deleted\n",
			       agg_table_name[t], n, when);
		} else {
			log_info("%s: deleted %" PRIu64 " rows before %s UTC", agg_table_name[t], n,
				 when);
		}
	}
	if (db_purge_chunks(db, cutoff, batch, dry, &n) < 0) {
		goto out;
	}
	if (dry) {
		printf("chunks: %" PRIu64 " ledger rows before %s UTC would be deleted\n", n, when);
	} else {
		log_info("chunks: deleted %" PRIu64 " ledger rows before %s UTC", n, when);
	}
	ret = CMD_OK;
out:
	if (ret == CMD_FAILED) {
		ret = cmd_db_failed(db);
	}
	db_destroy(db);
	cmd_finish(&cmd);
	return ret;
}
