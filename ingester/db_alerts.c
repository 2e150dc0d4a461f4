#include "db_alerts.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <mysqld_error.h>

#include "db_int.h"
#include "db_sql.h"
#include "log.h"
#include "schema.h"

/* Chunk ids per UPDATE of db_alerts_mark_judged. */
#define MARK_BATCH 500

void db_unjudged_finish(struct db_unjudged *u)
{
	free(u->id);
	free(u->first);
	free(u->last);
	*u = (struct db_unjudged){0};
}

/*
 * One statement on the connection as it is (inside a transaction): no replay. 0; 1 when the
 * server rolled the transaction back in a lock conflict (a deadlock, a lock wait that timed out:
 * it can start again; logged at info level); -1 on another error (logged).
 */
static int tx_query(struct db *db, const struct db_sql *q)
{
	if (q->failed) {
		log_error("out of memory");
		return -1;
	}
	log_debug("sql: %.300s", q->p);
	if (db_query(db, q->p, q->len) == 0) {
		return 0;
	}
	if (db->err == ER_LOCK_DEADLOCK || db->err == ER_LOCK_WAIT_TIMEOUT) {
		log_info("database: alert ledger: lock conflict (error %u), starting again",
			 db->err);
		return 1;
	}
	db_log_error(db, "alert ledger");
	return -1;
}

int db_alerts_unjudged(struct db *db, struct db_unjudged *u)
{
	struct db_sql q;
	struct db_rows *rs = NULL;
	struct db_row row;
	int ret = -1;

	db_sql_init(&q);
	db_sql_add(&q,
		   "SELECT chunk_id, COALESCE(first_utc, ingested_at),"
		   " COALESCE(last_utc, ingested_at) FROM " SCHEMA_CHUNKS_NAME " WHERE judged = 0");
	rs = db_sql_rows(db, &q, "ktt");
	if (rs == NULL) {
		goto out;
	}
	size_t n = db_rows_count(rs);
	u->id = calloc(n + 1, sizeof(*u->id));
	u->first = calloc(n + 1, sizeof(*u->first));
	u->last = calloc(n + 1, sizeof(*u->last));
	if (u->id == NULL || u->first == NULL || u->last == NULL) {
		log_error("out of memory");
		goto out;
	}
	while (db_rows_next(rs, &row)) {
		/* Only ids as the ingester writes them: they go back into SQL as they are. */
		if (row.key[0].n != 64 || strspn(row.key[0].p, "0123456789abcdef") < 64 ||
		    row.when[0] == INT64_MIN || row.when[1] == INT64_MIN) {
			continue;
		}
		memcpy(u->id[u->count], row.key[0].p, 64);
		u->id[u->count][64] = '\0';
		u->first[u->count] = row.when[0];
		u->last[u->count] = row.when[1];
		u->count++;
	}
	ret = 0;
out:
	if (ret < 0) {
		db_unjudged_finish(u);
	}
	db_rows_free(rs);
	db_sql_finish(&q);
	return ret;
}

int db_alerts_mark_judged(struct db *db, const struct db_unjudged *u)
{
	struct db_sql q;
	uint64_t affected;
	int ret = 0;

	db_sql_init(&q);
	for (size_t i = 0; i < u->count && ret == 0; i += MARK_BATCH) {
		db_sql_finish(&q);
		db_sql_add(&q, "UPDATE " SCHEMA_CHUNKS_NAME " SET judged = 1 WHERE chunk_id IN (");
		for (size_t j = i; j < u->count && j < i + MARK_BATCH; j++) {
			db_sql_add(&q, "%s'%s'", j > i ? "," : "", u->id[j]);
		}
		db_sql_add(&q, ")");
		if (q.failed) {
			log_error("out of memory");
			ret = -1;
		} else if (db_exec_count(db, q.p, q.len, &affected) != DB_OK) {
			ret = -1;
		}
	}
	db_sql_finish(&q);
	return ret;
}

static int tx_plain(struct db *db, const char *sql)
{
	log_debug("sql: %s", sql);
	if (db_q(db, sql) != 0) {
		db_log_error(db, "alert ledger");
		return -1;
	}
	return 0;
}

int db_alerts_begin(struct db *db)
{
	return tx_plain(db, "START TRANSACTION");
}

/*
 * host and subject go in whole: their columns are as wide as those they are read from (schema.c;
 * db@alert_long_names checks it). Cut, two alerts about long names that differ only past the
 * width would share the unique key, and the second would never be reported.
 */
int db_alerts_record(struct db *db, const struct db_alert *a, bool to_send, bool *is_new)
{
	struct db_sql q;
	int ret = -1;

	db_sql_init(&q);
	db_sql_add(&q, "INSERT IGNORE INTO " SCHEMA_ALERTS_NAME " (rule, host, subject, period,"
		       " level, daily, value, threshold, found_at, to_send) VALUES (");
	db_sql_bytes(&q, a->rule, strlen(a->rule));
	db_sql_add(&q, ", ");
	db_sql_bytes(&q, a->host.p, a->host.n);
	db_sql_add(&q, ", ");
	db_sql_bytes(&q, a->subject.p, a->subject.n);
	db_sql_add(&q, ", ");
	db_sql_time(&q, a->period);
	db_sql_add(&q, ", %u, %d, %" PRIu64 ", %" PRIu64 ", UTC_TIMESTAMP(), %d)", a->level,
		   a->daily ? 1 : 0, a->value, a->threshold, to_send ? 1 : 0);
	ret = tx_query(db, &q);
	if (ret == 0) {
		*is_new = mysql_affected_rows(db->my) == 1;
	}
	db_sql_finish(&q);
	return ret;
}

int db_alerts_commit(struct db *db)
{
	return tx_plain(db, "COMMIT");
}

void db_alerts_rollback(struct db *db)
{
	if (db->my != NULL) {
		mysql_query(db->my, "ROLLBACK");
	}
}

struct db_rows *db_alerts_pending(struct db *db)
{
	struct db_sql q;
	struct db_rows *rs;

	db_sql_init(&q);
	db_sql_add(&q, "SELECT id, rule, host, subject, period, level, daily, value, threshold"
		       " FROM " SCHEMA_ALERTS_NAME " WHERE to_send = 1 ORDER BY id");
	rs = db_sql_rows(db, &q, "nkkktnnnn");
	db_sql_finish(&q);
	return rs;
}

int db_alerts_claim(struct db *db, uint64_t id)
{
	struct db_sql q;
	MYSQL_RES *res = NULL;
	int ret = -1;

	db_sql_init(&q);
	if (db_alerts_begin(db) < 0) {
		goto out;
	}
	db_sql_add(&q,
		   "SELECT id FROM " SCHEMA_ALERTS_NAME " WHERE id = %" PRIu64
		   " AND to_send = 1 FOR UPDATE SKIP LOCKED",
		   id);
	switch (tx_query(db, &q)) {
	case 0:
		break;
	case 1:
		ret = 0; /* another run holds it: its business */
		goto out;
	default:
		goto out;
	}
	res = mysql_store_result(db->my);
	if (res == NULL) {
		db_fail(db);
		db_log_error(db, "alert ledger");
		goto out;
	}
	ret = mysql_num_rows(res) == 1 ? 1 : 0;
out:
	if (ret != 1) {
		db_alerts_rollback(db);
	}
	mysql_free_result(res);
	db_sql_finish(&q);
	return ret;
}

int db_alerts_release(struct db *db, uint64_t id, bool sent)
{
	struct db_sql q;
	int ret = -1;

	db_sql_init(&q);
	db_sql_add(&q, "UPDATE " SCHEMA_ALERTS_NAME " SET tries = tries + 1");
	if (sent) {
		db_sql_add(&q, ", to_send = 0, sent_at = UTC_TIMESTAMP()");
	}
	db_sql_add(&q, " WHERE id = %" PRIu64, id);
	if (tx_query(db, &q) == 0 && db_alerts_commit(db) == 0) {
		ret = 0;
	} else {
		db_alerts_rollback(db);
	}
	db_sql_finish(&q);
	return ret;
}
