#ifndef RELAYWATCH_DB_SQL_H
#define RELAYWATCH_DB_SQL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

/*
 * Inside the database module only: SQL text for the statements that stand alone (the read-side
 * queries, the ledger lookup, purge), and the decoding of their results; those of an ingest's
 * transaction are built in db->buf (db_int.h). Only trusted pieces go in through db_sql_add
 * (keywords, numbers, table names); every byte string (a --host argument, an account read back from
 * the database) goes in as a hex literal X'..' through db_sql_bytes, so no byte of it can end the
 * literal: the account names are attacker-chosen (SMTP AUTH user names, envelope senders).
 */
struct db_sql {
	char *p;
	size_t len, cap;
	bool failed; /* no memory: the query is not run */
};

void db_sql_init(struct db_sql *q);
void db_sql_finish(struct db_sql *q);
void db_sql_add(struct db_sql *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void db_sql_bytes(struct db_sql *q, const char *s, size_t n);
/* 'YYYY-MM-DD HH:MM:SS' in UTC. */
void db_sql_time(struct db_sql *q, int64_t utc);
/* " WHERE hour_utc >= since AND hour_utc < until[ AND host = X'..']" of an hourly table. */
void db_sql_window(struct db_sql *q, const struct db_window *w);
/* ", X'..', X'..'" of n byte strings, without the leading comma. */
void db_sql_list(struct db_sql *q, const struct span *v, size_t n);

/*
 * Runs q (built without running out of memory) as a stand-alone statement and keeps its result
 * for reading with db_rows_next, each column decoded as layout says, one letter per column:
 * 'k' the next text column of row->key, 't' the next time of row->when, 'n' the next count of
 * row->n. NULL after logging.
 */
struct db_rows *db_sql_rows(struct db *db, const struct db_sql *q, const char *layout);

/* A DATETIME value as the server prints it ("YYYY-MM-DD HH:MM:SS"); INT64_MIN for NULL/bad. */
int64_t db_sql_datetime(const char *s, size_t n);
/* An unsigned integer column (SUM() comes back as DECIMAL text); 0 for NULL. */
uint64_t db_sql_u64(const char *s, size_t n);

#endif
