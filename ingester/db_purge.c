#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"
#include "db_sql.h"
#include "log.h"
#include "schema.h"

/*
 * Retention: each batch is its own short autocommit transaction that locks a range at the old end
 * of the primary key, far from the hours that `run` is writing, so ingestion goes on while a
 * purge runs.
 */

/*
 * What one deleted row can add to a Galera write set at most: its row image (the widest row, a
 * ledger row, holds about 1.4 kB of columns) and its key, with room to spare.
 */
#define PURGE_ROW_WS_BYTES 4096

unsigned db_purge_batch(struct db *db, unsigned batch)
{
	static const char sql[] = "SHOW GLOBAL VARIABLES LIKE 'wsrep_max_ws_%'";
	MYSQL_RES *res;
	MYSQL_ROW row;
	unsigned long long v, fit;

	/* Outside a cluster the variables may exist (MariaDB) but limit nothing. */
	if (!db->galera) {
		return batch;
	}
	res = db_select(db, sql, sizeof(sql) - 1);
	if (res == NULL) {
		return 0;
	}
	while ((row = mysql_fetch_row(res)) != NULL) {
		if (row[0] == NULL || row[1] == NULL) {
			continue;
		}
		v = strtoull(row[1], NULL, 10);
		if (strcmp(row[0], "wsrep_max_ws_rows") == 0) {
			fit = v; /* 0: no limit */
		} else if (strcmp(row[0], "wsrep_max_ws_size") == 0) {
			/* Half: a margin for what the bound does not count. */
			fit = v / 2 / PURGE_ROW_WS_BYTES;
		} else {
			continue;
		}
		if (fit > 0 && fit < batch) {
			batch = (unsigned)fit;
		}
	}
	mysql_free_result(res);
	return batch;
}

/* The first count of q's only row into *n. */
static int count_rows(struct db *db, const struct db_sql *q, uint64_t *n)
{
	struct db_rows *rs = db_sql_rows(db, q, "n");
	struct db_row row;

	if (rs == NULL) {
		return -1;
	}
	*n = db_rows_next(rs, &row) ? row.n[0] : 0;
	db_rows_free(rs);
	return 0;
}

/* The ledger condition: both the chunk's data and its ingestion are older than the cutoff. */
static void chunk_old(struct db_sql *q, int64_t cutoff)
{
	db_sql_add(q, " WHERE ingested_at < ");
	db_sql_time(q, cutoff);
	db_sql_add(q, " AND COALESCE(last_utc, ingested_at) < ");
	db_sql_time(q, cutoff);
}

/*
 * "FROM table WHERE cond" of rows before the cutoff (cond ending in a column compared with "<"):
 * counted into *total with dry_run, else deleted in autocommit batches of at most batch rows.
 */
static int purge_where(struct db *db, const char *from_where, int64_t cutoff, unsigned batch,
		       bool dry_run, uint64_t *total)
{
	struct db_sql q;
	uint64_t n;
	int ret = -1;

	*total = 0;
	db_sql_init(&q);
	db_sql_add(&q, "%s %s", dry_run ? "SELECT COUNT(*)" : "DELETE", from_where);
	db_sql_time(&q, cutoff);
	if (dry_run) {
		ret = count_rows(db, &q, total);
		goto out;
	}
	db_sql_add(&q, " LIMIT %u", batch);
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
	db_sql_finish(&q);
	return ret;
}

int db_purge_hours(struct db *db, enum agg_table t, int64_t cutoff, unsigned batch, bool dry_run,
		   uint64_t *total)
{
	char from_where[128];

	snprintf(from_where, sizeof(from_where), "FROM %s WHERE hour_utc < ", agg_table_name[t]);
	return purge_where(db, from_where, cutoff, batch, dry_run, total);
}

/*
 * The ids are read without locks through the (ingested_at, last_utc) index (schema version 4;
 * before it each batch scanned the whole ledger): a range at its old end, whose entries hold the
 * condition's columns and the id. They are then deleted by primary key (the condition repeated,
 * in case a row changed in between), so that only the rows that go are locked.
 */
int db_purge_chunks(struct db *db, int64_t cutoff, unsigned batch, bool dry_run, uint64_t *total)
{
	struct db_sql q;
	struct db_rows *rs = NULL;
	struct db_row row;
	uint64_t n;
	size_t ids;
	int ret = -1;

	*total = 0;
	db_sql_init(&q);
	if (dry_run) {
		db_sql_add(&q, "SELECT COUNT(*) FROM " SCHEMA_CHUNKS_NAME);
		chunk_old(&q, cutoff);
		ret = count_rows(db, &q, total);
		goto out;
	}
	do {
		db_sql_finish(&q);
		db_sql_add(&q, "SELECT chunk_id FROM " SCHEMA_CHUNKS_NAME);
		chunk_old(&q, cutoff);
		db_sql_add(&q, " LIMIT %u", batch);
		rs = db_sql_rows(db, &q, "k");
		if (rs == NULL) {
			goto out;
		}
		db_sql_finish(&q);
		ids = 0;
		db_sql_add(&q, "DELETE FROM " SCHEMA_CHUNKS_NAME);
		chunk_old(&q, cutoff);
		db_sql_add(&q, " AND chunk_id IN (");
		while (db_rows_next(rs, &row)) {
			db_sql_add(&q, "%s", ids++ ? ", " : "");
			db_sql_bytes(&q, row.key[0].p, row.key[0].n);
		}
		db_sql_add(&q, ")");
		db_rows_free(rs);
		rs = NULL;
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
	db_rows_free(rs);
	db_sql_finish(&q);
	return ret;
}

/*
 * The alert ledger keeps an alert as long as what it is about: rows of periods before the cutoff
 * go, except those whose alert_command has yet to succeed, and a stale alert (its period is the
 * host's newest line) only once the ledger holds no chunk of that host: old logs ingested lately
 * keep their chunks, and the host would be judged stale, and reported as new, after every purge.
 * The table is small (one row per alert ever reported) and has no index on period; each batch
 * is still its own short statement.
 */
int db_purge_alerts(struct db *db, int64_t cutoff, unsigned batch, bool dry_run, uint64_t *total)
{
	return purge_where(db,
			   "FROM " SCHEMA_ALERTS_NAME " WHERE to_send = 0 AND (rule <> 'stale' OR "
			   "NOT EXISTS (SELECT 1 FROM " SCHEMA_CHUNKS_NAME
			   " c WHERE c.host = " SCHEMA_ALERTS_NAME ".host)) AND period < ",
			   cutoff, batch, dry_run, total);
}
