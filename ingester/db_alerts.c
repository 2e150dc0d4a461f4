#include "db_alerts.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <mysql.h>
#include <mysqld_error.h>

#include "db.h"
#include "log.h"

/* Chunk ids per UPDATE of db_alerts_mark_judged. */
#define MARK_BATCH 500

void db_unjudged_finish(struct db_unjudged *u)
{
	free(u->id);
	free(u->first);
	free(u->last);
	*u = (struct db_unjudged){0};
}

/* One statement on the connection as it is: inside a transaction, no replay may happen. */
static int tx_query(struct db *db, struct check_sql *q)
{
	MYSQL *my = db_handle(db);
	char esc[LOG_ESCAPE_SIZE];

	if (q->failed) {
		log_error("out of memory");
		return -1;
	}
	if (my == NULL) {
		log_error("database: not connected");
		return -1;
	}
	log_debug("sql: %.300s", q->p);
	if (mysql_real_query(my, q->p, q->len) == 0) {
		return 0;
	}
	unsigned e = mysql_errno(my);
	log_escape(esc, sizeof(esc), mysql_error(my), strlen(mysql_error(my)));
	log_error("database: alert ledger: %s (error %u%s)", esc, e,
		  e == ER_NO_SUCH_TABLE || e == ER_BAD_FIELD_ERROR
			  ? "; run 'relaywatch-ingest migrate'"
			  : "");
	return -1;
}

static int tx_plain(struct db *db, const char *sql)
{
	struct check_sql q;
	int r;

	check_sql_init(&q);
	check_sql_add(&q, "%s", sql);
	r = tx_query(db, &q);
	check_sql_finish(&q);
	return r;
}

int db_alerts_unjudged(struct db *db, struct db_unjudged *u)
{
	struct check_sql q;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	int ret = -1;

	check_sql_init(&q);
	check_sql_add(&q, "SELECT chunk_id, COALESCE(first_utc, ingested_at),"
			  " COALESCE(last_utc, ingested_at) FROM chunks WHERE judged = 0");
	res = check_sql_query(db, &q);
	if (res == NULL) {
		goto out;
	}
	size_t n = (size_t)mysql_num_rows(res);
	u->id = calloc(n + 1, sizeof(*u->id));
	u->first = calloc(n + 1, sizeof(*u->first));
	u->last = calloc(n + 1, sizeof(*u->last));
	if (u->id == NULL || u->first == NULL || u->last == NULL) {
		log_error("out of memory");
		goto out;
	}
	while ((row = mysql_fetch_row(res)) != NULL) {
		unsigned long *len = mysql_fetch_lengths(res);
		if (len[0] != 64) {
			continue;
		}
		memcpy(u->id[u->count], row[0], 64);
		u->id[u->count][64] = '\0';
		u->first[u->count] = check_sql_datetime(row[1], len[1]);
		u->last[u->count] = check_sql_datetime(row[2], len[2]);
		if (u->first[u->count] == INT64_MIN || u->last[u->count] == INT64_MIN) {
			continue;
		}
		u->count++;
	}
	ret = 0;
out:
	if (ret < 0) {
		db_unjudged_finish(u);
	}
	mysql_free_result(res);
	check_sql_finish(&q);
	return ret;
}

int db_alerts_mark_judged(struct db *db, const struct db_unjudged *u)
{
	struct check_sql q;
	uint64_t affected;
	int ret = 0;

	check_sql_init(&q);
	for (size_t i = 0; i < u->count && ret == 0; i += MARK_BATCH) {
		check_sql_finish(&q);
		check_sql_add(&q, "UPDATE chunks SET judged = 1 WHERE chunk_id IN (");
		for (size_t j = i; j < u->count && j < i + MARK_BATCH; j++) {
			/* Hex digits only (db_alerts_unjudged read 64 of them from the ledger). */
			check_sql_add(&q, "%s'%s'", j > i ? "," : "", u->id[j]);
		}
		check_sql_add(&q, ")");
		if (q.failed) {
			log_error("out of memory");
			ret = -1;
		} else if (db_exec_count(db, q.p, q.len, &affected) != DB_OK) {
			ret = -1;
		}
	}
	check_sql_finish(&q);
	return ret;
}

int db_alerts_begin(struct db *db)
{
	return tx_plain(db, "START TRANSACTION");
}

int db_alerts_record(struct db *db, const struct check_alert *a, bool to_send, bool *is_new)
{
	struct check_sql q;
	int ret = -1;

	check_sql_init(&q);
	check_sql_add(&q,
		      "INSERT IGNORE INTO alerts (rule, host, subject, period, level, daily,"
		      " value, threshold, found_at, to_send) VALUES ('%s', ",
		      check_rule_name[a->rule]);
	check_sql_bytes(&q, a->host, a->host_len < 255 ? a->host_len : 255);
	check_sql_add(&q, ", ");
	check_sql_bytes(&q, a->subject, a->subject_len < 255 ? a->subject_len : 255);
	check_sql_add(&q, ", ");
	check_sql_time(&q, a->when);
	check_sql_add(&q, ", %d, %d, %" PRIu64 ", %" PRIu64 ", UTC_TIMESTAMP(), %d)",
		      (int)a->status, a->daily ? 1 : 0, a->value, a->threshold, to_send ? 1 : 0);
	if (tx_query(db, &q) == 0) {
		*is_new = mysql_affected_rows(db_handle(db)) == 1;
		ret = 0;
	}
	check_sql_finish(&q);
	return ret;
}

int db_alerts_commit(struct db *db)
{
	return tx_plain(db, "COMMIT");
}

void db_alerts_rollback(struct db *db)
{
	MYSQL *my = db_handle(db);

	if (my != NULL) {
		mysql_query(my, "ROLLBACK");
	}
}

static int rule_of(const char *s, size_t n)
{
	for (int i = 0; i < CHECK_RULES; i++) {
		if (strlen(check_rule_name[i]) == n && memcmp(check_rule_name[i], s, n) == 0) {
			return i;
		}
	}
	return -1;
}

int db_alerts_pending(struct db *db, struct check_alerts *out, uint64_t **ids)
{
	struct check_sql q;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	uint64_t *v = NULL;
	int ret = -1;

	check_sql_init(&q);
	check_sql_add(&q, "SELECT id, rule, host, subject, period, level, daily, value, threshold"
			  " FROM alerts WHERE to_send = 1 ORDER BY id");
	res = check_sql_query(db, &q);
	if (res == NULL) {
		goto out;
	}
	v = calloc((size_t)mysql_num_rows(res) + 1, sizeof(*v));
	if (v == NULL) {
		log_error("out of memory");
		goto out;
	}
	while ((row = mysql_fetch_row(res)) != NULL) {
		unsigned long *len = mysql_fetch_lengths(res);
		int rule = rule_of(row[1], len[1]);
		uint64_t level = check_sql_u64(row[5], len[5]);
		/* A rule this version does not know, or a damaged row: not ours to send. */
		if (rule < 0 || level < CHECK_WARNING || level > CHECK_CRITICAL) {
			continue;
		}
		v[out->count] = check_sql_u64(row[0], len[0]);
		if (check_alerts_add(out, (enum check_rule)rule, (enum check_status)level, row[2],
				     len[2], row[3], len[3], check_sql_u64(row[7], len[7]),
				     check_sql_u64(row[8], len[8]),
				     check_sql_datetime(row[4], len[4]),
				     check_sql_u64(row[6], len[6]) != 0) < 0) {
			goto out;
		}
	}
	*ids = v;
	v = NULL;
	ret = 0;
out:
	free(v);
	mysql_free_result(res);
	check_sql_finish(&q);
	return ret;
}

int db_alerts_claim(struct db *db, uint64_t id)
{
	struct check_sql q;
	MYSQL_RES *res = NULL;
	int ret = -1;

	check_sql_init(&q);
	if (db_alerts_begin(db) < 0) {
		goto out;
	}
	check_sql_add(&q,
		      "SELECT id FROM alerts WHERE id = %" PRIu64
		      " AND to_send = 1 FOR UPDATE SKIP LOCKED",
		      id);
	if (tx_query(db, &q) < 0) {
		goto out;
	}
	res = mysql_store_result(db_handle(db));
	if (res == NULL) {
		log_error("database: alert ledger: no result");
		goto out;
	}
	ret = mysql_num_rows(res) == 1 ? 1 : 0;
out:
	if (ret != 1) {
		db_alerts_rollback(db);
	}
	mysql_free_result(res);
	check_sql_finish(&q);
	return ret;
}

int db_alerts_release(struct db *db, uint64_t id, bool sent)
{
	struct check_sql q;
	int ret = -1;

	check_sql_init(&q);
	if (sent) {
		check_sql_add(&q,
			      "UPDATE alerts SET to_send = 0, tries = tries + 1,"
			      " sent_at = UTC_TIMESTAMP() WHERE id = %" PRIu64,
			      id);
	} else {
		check_sql_add(&q, "UPDATE alerts SET tries = tries + 1 WHERE id = %" PRIu64, id);
	}
	if (tx_query(db, &q) == 0 && db_alerts_commit(db) == 0) {
		ret = 0;
	} else {
		db_alerts_rollback(db);
	}
	check_sql_finish(&q);
	return ret;
}
