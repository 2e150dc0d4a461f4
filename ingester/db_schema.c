#include <stdio.h>
#include <stdlib.h>

#include "db_int.h"
#include "log.h"

/* The schema version this program creates; db_migrate upgrades step by step up to it. */
#define DB_SCHEMA_VERSION 1

static const char *const schema_v1[] = {
	"CREATE TABLE IF NOT EXISTS chunks ("
	" chunk_id CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,"
	" host VARBINARY(255) NOT NULL DEFAULT '',"
	" source VARBINARY(1024) NOT NULL DEFAULT '',"
	" first_utc DATETIME NULL,"
	" last_utc DATETIME NULL,"
	" line_count BIGINT UNSIGNED NOT NULL,"
	" event_count BIGINT UNSIGNED NOT NULL,"
	" malformed_count BIGINT UNSIGNED NOT NULL,"
	" bytes BIGINT UNSIGNED NOT NULL,"
	" ingested_at DATETIME NOT NULL,"
	" KEY host_last (host, last_utc)"
	") ENGINE=InnoDB",

	"CREATE TABLE IF NOT EXISTS event_hourly ("
	" hour_utc DATETIME NOT NULL,"
	" host VARBINARY(255) NOT NULL DEFAULT '',"
	" service VARBINARY(64) NOT NULL DEFAULT '',"
	" event VARBINARY(64) NOT NULL DEFAULT '',"
	" reason VARBINARY(255) NOT NULL DEFAULT '',"
	" n BIGINT UNSIGNED NOT NULL,"
	" PRIMARY KEY (hour_utc, host, service, event, reason)"
	") ENGINE=InnoDB",

	"CREATE TABLE IF NOT EXISTS relay_hourly ("
	" hour_utc DATETIME NOT NULL,"
	" host VARBINARY(255) NOT NULL DEFAULT '',"
	" service VARBINARY(64) NOT NULL DEFAULT '',"
	" auth_user VARBINARY(255) NOT NULL DEFAULT '',"
	" sender VARBINARY(255) NOT NULL DEFAULT '',"
	" remote_ip VARBINARY(64) NOT NULL DEFAULT '',"
	" rcpt_domain VARBINARY(255) NOT NULL DEFAULT '',"
	" n BIGINT UNSIGNED NOT NULL,"
	" PRIMARY KEY (hour_utc, host, service, auth_user, sender, remote_ip, rcpt_domain),"
	" KEY auth_hour (auth_user, hour_utc)"
	") ENGINE=InnoDB",

	"CREATE TABLE IF NOT EXISTS denied_hourly ("
	" hour_utc DATETIME NOT NULL,"
	" host VARBINARY(255) NOT NULL DEFAULT '',"
	" service VARBINARY(64) NOT NULL DEFAULT '',"
	" remote_ip VARBINARY(64) NOT NULL DEFAULT '',"
	" sender VARBINARY(255) NOT NULL DEFAULT '',"
	" rcpt_domain VARBINARY(255) NOT NULL DEFAULT '',"
	" n BIGINT UNSIGNED NOT NULL,"
	" PRIMARY KEY (hour_utc, host, service, remote_ip, sender, rcpt_domain),"
	" KEY ip_hour (remote_ip, hour_utc)"
	") ENGINE=InnoDB",

	NULL,
};

/* schema_steps[v - 1] upgrades version v - 1 to v. */
static const char *const *const schema_steps[DB_SCHEMA_VERSION] = {schema_v1};

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
	const char *const *s;

	/* DDL commits implicitly; the version row is written after each complete step. */
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
	if (v > DB_SCHEMA_VERSION) {
		return 0;
	}
	for (step = v + 1; step <= DB_SCHEMA_VERSION; step++) {
		for (s = schema_steps[step - 1]; *s != NULL; s++) {
			if (db_q(db, *s) != 0) {
				return -1;
			}
		}
		snprintf(sql, sizeof(sql),
			 "INSERT INTO schema_version (id, version) VALUES (1, %d)"
			 " ON DUPLICATE KEY UPDATE version = %d",
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
	 * a named lock serialises them. Its result does not matter beyond waiting for it.
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
	if (from > DB_SCHEMA_VERSION) {
		log_error("database: schema version %d is newer than this program knows (%d); "
			  "upgrade relaywatch",
			  from, DB_SCHEMA_VERSION);
		return -1;
	}
	if (from < DB_SCHEMA_VERSION) {
		log_info("database: schema upgraded from version %d to %d", from,
			 DB_SCHEMA_VERSION);
	} else {
		log_info("database: schema is up to date (version %d)", from);
	}
	return 0;
}
