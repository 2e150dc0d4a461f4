#include <stdio.h>
#include <stdlib.h>

#include <errmsg.h>

#include "db_int.h"
#include "log.h"
#include "schema.h"

/*
 * The statements of each step beyond creating the tables it adds (schema.c): ALTERs of a later
 * version go here. schema_alters[v - 1] upgrades version v - 1 to v; NULL ends a list. Each must
 * be idempotent (ADD COLUMN IF NOT EXISTS, CREATE INDEX IF NOT EXISTS, DROP ... IF EXISTS), as
 * the tables are created IF NOT EXISTS: on a Galera cluster `migrate` started on two nodes at
 * once runs the same step twice, and only the DDL's total order (TOI) and the version row's
 * primary key keep them apart.
 */
static const char *const no_alters[] = {NULL};
/*
 * Version 2, the alert ledger: chunks.judged marks the chunks whose hours `check --new` has
 * judged. Chunks already there count as judged (the hourly check of before saw them), so the
 * first --new after the upgrade does not report the whole history again; new ones start at 0.
 */
static const char *const alters_v2[] = {
	"ALTER TABLE " SCHEMA_CHUNKS_NAME
	" ADD COLUMN IF NOT EXISTS judged TINYINT UNSIGNED NOT NULL DEFAULT 1",
	"ALTER TABLE " SCHEMA_CHUNKS_NAME " ALTER COLUMN judged SET DEFAULT 0",
	"ALTER TABLE " SCHEMA_CHUNKS_NAME " ADD INDEX IF NOT EXISTS judged (judged)",
	NULL,
};
/*
 * Version 4: purge reads the old end of the ledger by when a chunk was ingested (and when its data
 * ends) through an index, instead of scanning every row for each batch.
 */
static const char *const alters_v4[] = {
	"ALTER TABLE " SCHEMA_CHUNKS_NAME
	" ADD INDEX IF NOT EXISTS ingested_last (ingested_at, last_utc)",
	NULL,
};
static const char *const *const schema_alters[SCHEMA_VERSION] = {no_alters, alters_v2, no_alters,
								 alters_v4};

/* CREATE TABLE IF NOT EXISTS of table t, into out[size]. 0, or -1 when it does not fit. */
static int create_table_sql(const struct schema_table *t, char *out, size_t size)
{
	size_t len = 0;
	int n = snprintf(out, size, "CREATE TABLE IF NOT EXISTS %s (", t->name);

	for (unsigned i = 0; n >= 0 && (size_t)n < size - len && i < t->ncols; i++) {
		const struct schema_column *c = &t->col[i];
		len += (size_t)n;
		if (c->type != NULL) {
			n = snprintf(out + len, size - len, " %s %s,", c->name, c->type);
		} else {
			n = snprintf(out + len, size - len,
				     " %s VARBINARY(%u) NOT NULL DEFAULT '',", c->name,
				     (unsigned)c->width);
		}
	}
	if (n >= 0 && (size_t)n < size - len) {
		len += (size_t)n;
		n = snprintf(out + len, size - len, " %s) ENGINE=InnoDB", t->keys);
	}
	return n >= 0 && (size_t)n < size - len ? 0 : -1;
}

/* The step that upgrades version step - 1 to step. 0, or -1 with db->err set. */
static int step_run(struct db *db, int step)
{
	char sql[2048];

	for (int t = 0; t < SCHEMA_TABLES; t++) {
		if (schema_tables[t].version != (unsigned)step) {
			continue;
		}
		if (create_table_sql(&schema_tables[t], sql, sizeof(sql)) != 0) {
			db->err = CR_UNKNOWN_ERROR;
			snprintf(db->errmsg, sizeof(db->errmsg), "table %s: statement too long",
				 schema_tables[t].name);
			return -1;
		}
		if (db_q(db, sql) != 0) {
			return -1;
		}
	}
	for (const char *const *s = schema_alters[step - 1]; *s != NULL; s++) {
		if (db_q(db, *s) != 0) {
			return -1;
		}
	}
	return 0;
}

/* The stored version: 0 when none, or -1 with db->err set. */
static int schema_version_get(struct db *db)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	int v = 0;

	if (db_q(db, "SELECT version FROM schema_version WHERE id = 1") != 0) {
		return -1;
	}
	res = mysql_store_result(db->my);
	if (res == NULL) {
		db_fail(db);
		return -1;
	}
	row = mysql_fetch_row(res);
	if (row != NULL && row[0] != NULL) {
		v = atoi(row[0]);
	}
	mysql_free_result(res);
	return v;
}

static int migrate_attempt(struct db *db, void *arg)
{
	int *from = arg;
	int v, step;
	char sql[128];

	/*
	 * DDL commits implicitly; the version row is written after each complete step, and never
	 * lowered by a migration that started earlier and is one step behind another one.
	 */
	if (db_q(db, "CREATE TABLE IF NOT EXISTS schema_version ("
		     " id TINYINT NOT NULL PRIMARY KEY,"
		     " version INT NOT NULL"
		     ") ENGINE=InnoDB") != 0) {
		return -1;
	}
	v = schema_version_get(db);
	if (v < 0) {
		return -1;
	}
	*from = v;
	if (v > SCHEMA_VERSION) {
		return 0;
	}
	for (step = v + 1; step <= SCHEMA_VERSION; step++) {
		if (step_run(db, step) != 0) {
			return -1;
		}
		snprintf(sql, sizeof(sql),
			 "INSERT INTO schema_version (id, version) VALUES (1, %d)"
			 " ON DUPLICATE KEY UPDATE version = GREATEST(version, %d)",
			 step, step);
		if (db_q(db, sql) != 0) {
			return -1;
		}
	}
	return 0;
}

int db_migrate(struct db *db)
{
	int from = 0, r;
	MYSQL_RES *res;

	/*
	 * Two migrations at once (two cron jobs after an upgrade) would interleave their steps;
	 * a named lock serialises them on one server. Its result does not matter beyond waiting
	 * for it. On a Galera cluster the lock is local to a node and does not replicate: there
	 * the steps are safe to run twice at once instead (see schema_alters).
	 */
	if (db_q(db, "SELECT GET_LOCK('relaywatch.migrate', 60)") == 0) {
		res = mysql_store_result(db->my);
		mysql_free_result(res);
	}
	r = db_retry(db, "migrate", migrate_attempt, &from);
	if (db->my != NULL && db_q(db, "SELECT RELEASE_LOCK('relaywatch.migrate')") == 0) {
		res = mysql_store_result(db->my);
		mysql_free_result(res);
	}
	if (r < 0) {
		return -1;
	}
	if (from > SCHEMA_VERSION) {
		log_error("database: schema version %d is newer than this program knows (%d); "
			  "upgrade relaywatch",
			  from, SCHEMA_VERSION);
		return -1;
	}
	if (from < SCHEMA_VERSION) {
		log_info("database: schema upgraded from version %d to %d", from, SCHEMA_VERSION);
	} else {
		log_info("database: schema is up to date (version %d)", from);
	}
	return 0;
}
