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
 * Retention: deletes aggregate rows of hours before a cutoff, ledger rows of chunks whose data
 * and ingestion are both before it, and the alerts of periods before it (those already sent), in
 * small batches (db_purge_*), so ingestion goes on while a purge runs.
 */

static const char purge_usage[] =
	"usage: relaywatch-ingest purge --older-than AGE [OPTIONS]\n"
	"\n"
	"Deletes hourly aggregate rows older than AGE (e.g. 400d) and the ledger rows of chunks\n"
	"whose data and ingestion are both older, and the alerts of older hours (check --new's\n"
	"ledger), in batches that do not hold long locks.\n"
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

enum { OPT_OLDER = CMD_LONG_OWN, OPT_BATCH };

struct purge_opts {
	const char *older;
	bool dry;
	unsigned batch;
};

static enum cmd_opt purge_option(int c, void *data)
{
	struct purge_opts *o = data;

	switch (c) {
	case OPT_OLDER:
		o->older = optarg;
		return CMD_OPT_NEXT;
	case 'n':
		o->dry = true;
		return CMD_OPT_NEXT;
	case OPT_BATCH:
		return cmd_number("--batch", optarg, 1, 1000000, &o->batch) == 0 ? CMD_OPT_NEXT
										 : CMD_OPT_BAD;
	default:
		return CMD_OPT_OWN;
	}
}

/* What went (-v), or with --dry-run what would go (on stdout: it is the answer). */
static void said(bool dry, const char *table, const char *what, uint64_t n, const char *when)
{
	if (dry) {
		printf("%s: %" PRIu64 " %s before %s UTC would be deleted\n", table, n, what, when);
	} else {
		log_info("%s: deleted %" PRIu64 " %s before %s UTC", table, n, what, when);
	}
}

int cmd_purge(int argc, char **argv)
{
	static const struct option opts[] = {
		{"older-than", required_argument, NULL, OPT_OLDER},
		{"dry-run", no_argument, NULL, 'n'},
		{"batch", required_argument, NULL, OPT_BATCH},
		CMD_OPTIONS_COMMON,
		{0},
	};
	struct purge_opts o = {.batch = 10000};
	struct cmd cmd;
	struct db *db = NULL;
	unsigned fit;
	int64_t age, cutoff;
	uint64_t n;
	char when[20];
	int ret = CMD_USAGE;

	cmd_init(&cmd, purge_usage);
	if (cmd_getopt_exits(&cmd, argc, argv, ":nc:qvhV", opts, purge_option, &o, &ret)) {
		goto out;
	}
	if (cmd_load(&cmd, argc, argv) != 0) {
		goto out;
	}
	if (o.older == NULL) {
		log_error("--older-than is required, e.g. --older-than 400d (try --help)");
		goto out;
	}
	/* A slip like "--older-than 400" (seconds) must not wipe the database. */
	if (logtime_parse_duration(o.older, &age) < 0 || age < 86400) {
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
	fit = db_purge_batch(db, o.batch);
	if (fit == 0) {
		goto out;
	}
	if (fit < o.batch) {
		log_info("batches of %u rows, within the cluster's write-set limits", fit);
		o.batch = fit;
	}
	for (int t = 0; t < AGG_TABLES; t++) {
		if (db_purge_hours(db, (enum agg_table)t, cutoff, o.batch, o.dry, &n) < 0) {
			goto out;
		}
		said(o.dry, agg_table_name[t], "rows", n, when);
	}
	if (db_purge_chunks(db, cutoff, o.batch, o.dry, &n) < 0) {
		goto out;
	}
	said(o.dry, "chunks", "ledger rows", n, when);
	if (db_purge_alerts(db, cutoff, o.batch, o.dry, &n) < 0) {
		goto out;
	}
	said(o.dry, "alerts", "alerts", n, when);
	ret = CMD_OK;
out:
	if (ret == CMD_FAILED) {
		ret = cmd_db_failed(db);
	}
	db_destroy(db);
	cmd_finish(&cmd);
	return ret;
}
