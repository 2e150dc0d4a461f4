#ifndef RELAYWATCH_DB_INT_H
#define RELAYWATCH_DB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mysql.h>

#include "db.h"

/*
 * Inside the database module only (ingester/db*.c): the connection and the replay machinery that
 * db_schema.c, db_query.c and db_purge.c build their statements on. No other file includes
 * this header or <mysql.h>.
 */

struct db {
	MYSQL *my;
	char *defaults_file;
	/* The statement being built, reused from chunk to chunk. */
	char *buf;
	size_t len, cap;
	/* Where an aggregate statement is cut: DB_STMT_TARGET, less on a small max_allowed_packet.
	 */
	size_t stmt_target;
	/*
	 * Aggregate rows go by MariaDB's bulk protocol where the client library and the server
	 * have it (db_rows.c): a prepared statement per table, made on first use on a connection,
	 * and the arrays its rows are bound from. bulk is false once the server lacked it.
	 */
	bool bulk;
	/*
	 * The server is a Galera node (wsrep_on; false when it could not tell), asked once per
	 * connection when it opens: asked inside a chunk's transaction, the SHOW would be the
	 * statement that receives the error of a transaction a replicated write set aborted
	 * meanwhile, and the rows sent next would commit on their own (autocommit), outside the
	 * chunk's transaction.
	 */
	bool galera;
	MYSQL_STMT *upsert[AGG_TABLES];
	struct db_bulk *arrays;
	/* A chunk's transaction opened by db_stream_rows, to be finished by db_ingest_chunk. */
	enum { DB_STREAM_NONE, DB_STREAM_OPEN, DB_STREAM_FAILED } stream;
	/* The last error of the current attempt. */
	unsigned err;
	char errmsg[512];
};

/* Records the connection's last error in db->err and db->errmsg (never 0). */
void db_fail(struct db *db);

/* Logs the last error once, the server's own text rendered safely. */
void db_log_error(struct db *db, const char *what);

/* Sends one statement. 0, or -1 with db->err set (nothing logged). */
int db_query(struct db *db, const char *sql, size_t len);
int db_q(struct db *db, const char *sql);

/*
 * The statement buffer db->buf: each appends to it, 0 or -1 with db->err set (no memory).
 * db_buf_quoted appends a quoted string literal; log bytes reach SQL text only through it, or as
 * bound values (db_rows.c). db_buf_datetime appends a DATETIME literal in UTC (the session zone
 * does not apply to DATETIME); a stamp that does not fit the column (db_datetime_fits: a hostile
 * TAI64N label) is written as NULL when as_null, else as 1970-01-01 00:00:00, the undated hour
 * (strict mode would reject it and fail the whole chunk, and the line is still counted).
 */
int db_buf_lit(struct db *db, const char *s, size_t n);
int db_buf_str(struct db *db, const char *s);
int db_buf_quoted(struct db *db, const char *s, size_t n);
int db_buf_u64(struct db *db, uint64_t v);
int db_buf_datetime(struct db *db, int64_t utc, bool as_null);
bool db_datetime_fits(int64_t utc);

/* s, cut to at most max bytes (a column's width). */
struct span db_span_cut(struct span s, size_t max);

/*
 * Upserts rows[0..count) of table t (adding n to a row that exists), in statements of about
 * db->stmt_target bytes. unsent: add only each row's n - sent (the rest went with the stream),
 * skipping rows with nothing left. 0, or -1 with db->err set.
 */
int db_rows_upsert(struct db *db, enum agg_table t, const struct agg_row *const *rows, size_t count,
		   bool unsent);

/* Whether rows may go by the bulk protocol (on by default); tests turn it off for the text path. */
void db_set_bulk(struct db *db, bool on);

/* Frees the prepared statements of the connection (before it closes) and, when all, the arrays. */
void db_rows_close(struct db *db, bool all);

/* One attempt of a unit of work: 0 or a positive result, or -1 with db->err set. */
typedef int (*db_attempt_fn)(struct db *db, void *arg);

/*
 * Runs fn, replaying it after a transient error (rollback first) or a lost connection
 * (reconnect first), a bounded number of times. Returns fn's result, or DB_UNAVAILABLE /
 * DB_ERROR after logging the last error once.
 */
int db_retry(struct db *db, const char *what, db_attempt_fn fn, void *arg);

/*
 * One statement that stands alone (no open transaction: each is its own autocommit), replayed
 * like an ingest after a lock conflict or a lost connection. db_select returns its stored
 * result, or NULL after logging; db_exec_count stores the affected rows and returns DB_OK,
 * DB_ERROR or DB_UNAVAILABLE (logged).
 */
MYSQL_RES *db_select(struct db *db, const char *sql, size_t len);
enum db_result db_exec_count(struct db *db, const char *sql, size_t len, uint64_t *affected);

#endif
