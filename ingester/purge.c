#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mysql.h>

#include "check.h"
#include "commands.h"
#include "db.h"
#include "ingest_config.h"
#include "log.h"
#include "logtime.h"

/*
 * Retention: deletes aggregate rows of hours before a cutoff, and ledger rows of chunks whose
 * data and ingestion are both before it, in small batches. Each batch is its own short
 * autocommit transaction that locks a range at the old end of the primary key, far from the
 * hours that `run` is writing, so ingestion goes on while a purge runs.
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

static const char *const purge_tables[] = {"event_hourly", "relay_hourly", "denied_hourly"};

static int count_rows(struct db *db, struct check_sql *q, uint64_t *n)
{
	MYSQL_RES *res = check_sql_query(db, q);
	MYSQL_ROW row;

	if (res == NULL) {
		return -1;
	}
	row = mysql_fetch_row(res);
	*n = row ? check_sql_u64(row[0], mysql_fetch_lengths(res)[0]) : 0;
	mysql_free_result(res);
	return 0;
}

/* The ledger condition: both the chunk's data and its ingestion are older than the cutoff. */
static void chunk_old(struct check_sql *q, int64_t cutoff)
{
	check_sql_add(q, " WHERE ingested_at < ");
	check_sql_time(q, cutoff);
	check_sql_add(q, " AND COALESCE(last_utc, ingested_at) < ");
	check_sql_time(q, cutoff);
}

static int purge_table(struct db *db, const char *table, int64_t cutoff, unsigned batch, bool dry,
		       uint64_t *total)
{
	struct check_sql q;
	uint64_t n;
	int ret = -1;

	*total = 0;
	check_sql_init(&q);
	if (dry) {
		check_sql_add(&q, "SELECT COUNT(*) FROM %s WHERE hour_utc < ", table);
		check_sql_time(&q, cutoff);
		ret = count_rows(db, &q, total);
		goto out;
	}
	check_sql_add(&q, "DELETE FROM %s WHERE hour_utc < ", table);
	check_sql_time(&q, cutoff);
	check_sql_add(&q, " LIMIT %u", batch);
	if (q.failed) {
		log_error("out of memory");
		goto out;
	}
	do {
		if (db_exec_count(db, q.p, q.len, &n) != DB_OK) {
			goto out;
		}
		*total += n;
	} while (n == batch);
	ret = 0;
out:
	check_sql_finish(&q);
	return ret;
}

/*
 * Chunks have no index on their times: a DELETE with that condition would scan and lock the
 * whole ledger, blocking `run`'s inserts. The ids are read without locks, then deleted by
 * primary key (the condition repeated, in case a row changed in between).
 */
static int purge_chunks(struct db *db, int64_t cutoff, unsigned batch, bool dry, uint64_t *total)
{
	struct check_sql q;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	uint64_t n;
	size_t ids;
	int ret = -1;

	*total = 0;
	check_sql_init(&q);
	if (dry) {
		check_sql_add(&q, "SELECT COUNT(*) FROM chunks");
		chunk_old(&q, cutoff);
		ret = count_rows(db, &q, total);
		goto out;
	}
	do {
		check_sql_finish(&q);
		check_sql_add(&q, "SELECT chunk_id FROM chunks");
		chunk_old(&q, cutoff);
		check_sql_add(&q, " LIMIT %u", batch);
		res = check_sql_query(db, &q);
		if (res == NULL) {
			goto out;
		}
		check_sql_finish(&q);
		ids = 0;
		check_sql_add(&q, "DELETE FROM chunks");
		chunk_old(&q, cutoff);
		check_sql_add(&q, " AND chunk_id IN (");
		while ((row = mysql_fetch_row(res)) != NULL) {
			unsigned long *len = mysql_fetch_lengths(res);
			check_sql_add(&q, "%s", ids++ ? ", " : "");
			check_sql_bytes(&q, row[0], len[0]);
		}
		check_sql_add(&q, ")");
		mysql_free_result(res);
		res = NULL;
		if (ids == 0) {
			break;
		}
		if (q.failed) {
			log_error("out of memory");
			goto out;
		}
		if (db_exec_count(db, q.p, q.len, &n) != DB_OK) {
			goto out;
		}
		*total += n;
		/* Rows that matched the SELECT but not the DELETE would come back forever. */
	} while (ids == batch && n > 0);
	ret = 0;
out:
	mysql_free_result(res);
	check_sql_finish(&q);
	return ret;
}

int cmd_purge(int argc, char **argv)
{
	enum { OPT_DEFAULTS = 256, OPT_OLDER, OPT_BATCH };
	static const struct option opts[] = {
		{"older-than", required_argument, NULL, OPT_OLDER},
		{"dry-run", no_argument, NULL, 'n'},
		{"batch", required_argument, NULL, OPT_BATCH},
		{"config", required_argument, NULL, 'c'},
		{"defaults-file", required_argument, NULL, OPT_DEFAULTS},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	const char *config = NULL, *defaults = NULL, *older = NULL;
	struct ingest_config cfg;
	struct db *db = NULL;
	bool dry = false;
	unsigned batch = 10000;
	int64_t age, cutoff;
	uint64_t n;
	char when[20];
	int ret = CMD_USAGE, c;

	ingest_config_init(&cfg);
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
		case 'c':
			config = optarg;
			break;
		case OPT_DEFAULTS:
			defaults = optarg;
			break;
		default:
			switch (cmd_option(c, argv, purge_usage)) {
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
	if (cmd_setup(argc, argv, config, &cfg, &defaults) != 0) {
		goto out;
	}
	if (older == NULL) {
		log_error("--older-than is required, e.g. --older-than 400d (try --help)");
		goto out;
	}
	/* A slip like "--older-than 400" (seconds) must not wipe the database. */
	if (check_parse_duration(older, &age) < 0 || age < 86400) {
		log_error("--older-than: expected an age of at least 1d, e.g. 400d");
		goto out;
	}
	cutoff = logtime_hour_floor((int64_t)time(NULL) - age);
	logtime_format(cutoff, when);

	bool bad_config;
	db = db_connect(defaults, &bad_config);
	if (db == NULL) {
		ret = bad_config ? CMD_USAGE : CMD_DB;
		goto out;
	}
	ret = CMD_FAILED;
	for (size_t i = 0; i < sizeof(purge_tables) / sizeof(purge_tables[0]); i++) {
		if (purge_table(db, purge_tables[i], cutoff, batch, dry, &n) < 0) {
			goto out;
		}
		if (dry) {
			printf("%s: %" PRIu64 " rows before %s UTC would be deleted\n",
			       purge_tables[i], n, when);
		} else {
			log_info("%s: deleted %" PRIu64 " rows before %s UTC", purge_tables[i], n,
				 when);
		}
	}
	if (purge_chunks(db, cutoff, batch, dry, &n) < 0) {
		goto out;
	}
	if (dry) {
		printf("chunks: %" PRIu64 " ledger rows before %s UTC would be deleted\n", n, when);
	} else {
		log_info("chunks: deleted %" PRIu64 " ledger rows before %s UTC", n, when);
	}
	ret = CMD_OK;
out:
	if (ret == CMD_FAILED && db != NULL && db_unavailable(db)) {
		ret = CMD_DB;
	}
	db_destroy(db);
	ingest_config_finish(&cfg);
	return ret;
}
