#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errmsg.h>
#include <mysql.h>

#include "db_int.h"
#include "logtime.h"
#include "schema.h"

/*
 * Aggregate rows to the server. Where the client library and the server have MariaDB's bulk
 * protocol, each table's rows go to one prepared INSERT ... ON DUPLICATE KEY UPDATE executed
 * over arrays of rows: parsed once, every value bound (never SQL text), which costs the server
 * what LOAD DATA of the same rows costs, where multi-row text statements cost ~1.6 times as much
 * (the README's Performance section). Elsewhere (Oracle's libmysqlclient, a MySQL server, a
 * Galera node: see bulk_stmt) the same rows go as multi-row text statements with escaped
 * literals.
 */

#define UPSERT_TAIL " ON DUPLICATE KEY UPDATE n = n + VALUES(n)"

static const struct schema_column *field_col(enum agg_table t, unsigned i)
{
	return schema_field((enum schema_table_id)t, i);
}

/* "INSERT INTO t (hour_utc,<fields>,n) VALUES " into db->buf. */
static int upsert_head(struct db *db, enum agg_table t)
{
	db->len = 0;
	if (db_buf_str(db, "INSERT INTO ") != 0 || db_buf_str(db, agg_table_name[t]) != 0 ||
	    db_buf_str(db, " (hour_utc") != 0) {
		return -1;
	}
	for (unsigned i = 0; i < agg_nfields(t); i++) {
		if (db_buf_lit(db, ",", 1) != 0 || db_buf_str(db, field_col(t, i)->name) != 0) {
			return -1;
		}
	}
	return db_buf_str(db, ",n) VALUES ");
}

/* What row adds: all of n, or (unsent) what the stream has not sent yet. */
static uint64_t row_adds(const struct agg_row *row, bool unsent)
{
	return unsent ? row->n - row->sent : row->n;
}

/* --- multi-row text statements --- */

static int text_row(struct db *db, enum agg_table t, const struct agg_row *row, uint64_t n,
		    bool first)
{
	if (db_buf_lit(db, first ? "(" : ",(", first ? 1 : 2) != 0 ||
	    db_buf_datetime(db, row->hour, false) != 0) {
		return -1;
	}
	for (unsigned i = 0; i < agg_nfields(t); i++) {
		/* agg cut every field to its bound already; cut again so no row is rejected. */
		struct span f = db_span_cut(agg_field(row, i), field_col(t, i)->width);

		if (db_buf_lit(db, ",", 1) != 0 || db_buf_quoted(db, f.p, f.n) != 0) {
			return -1;
		}
	}
	return db_buf_lit(db, ",", 1) == 0 && db_buf_u64(db, n) == 0 ? db_buf_lit(db, ")", 1) : -1;
}

static int text_send(struct db *db)
{
	return db_buf_str(db, UPSERT_TAIL) == 0 ? db_query(db, db->buf, db->len) : -1;
}

static int text_upsert(struct db *db, enum agg_table t, const struct agg_row *const *rows,
		       size_t count, bool unsent)
{
	bool first = true;

	for (size_t i = 0; i < count; i++) {
		uint64_t n = row_adds(rows[i], unsent);
		if (n == 0) {
			continue;
		}
		if (first && upsert_head(db, t) != 0) {
			return -1;
		}
		if (text_row(db, t, rows[i], n, first) != 0) {
			return -1;
		}
		first = false;
		if (db->len >= db->stmt_target) {
			if (text_send(db) != 0) {
				return -1;
			}
			first = true;
		}
	}
	return first ? 0 : text_send(db);
}

/* --- bulk: arrays of bound rows --- */

/* Connector/C defines this macro; libmysqlclient has no bulk protocol. */
#ifdef MARIADB_STMT_BULK_SUPPORTED

/* Rows per execution, fewer when their bytes reach db->stmt_target first. */
#define BULK_ROWS 4096

/* Column-wise arrays: column 0 is hour_utc (as text), then the table's fields. */
struct db_bulk {
	const char *val[1 + AGG_MAX_FIELDS][BULK_ROWS];
	unsigned long len[1 + AGG_MAX_FIELDS][BULK_ROWS];
	unsigned long long n[BULK_ROWS];
	char hour[BULK_ROWS][20];
};

static void stmt_fail(struct db *db, MYSQL_STMT *st)
{
	db->err = mysql_stmt_errno(st);
	snprintf(db->errmsg, sizeof(db->errmsg), "%s", mysql_stmt_error(st));
	if (db->err == 0) {
		db->err = CR_UNKNOWN_ERROR;
	}
}

/*
 * Whether the server speaks the bulk protocol (MariaDB 10.2 and later; the test the library's own
 * MARIADB_STMT_BULK_SUPPORTED() makes, through the public accessor).
 */
static bool bulk_server(MYSQL *my)
{
	unsigned long caps = 0, ext = 0;

	if (mariadb_get_infov(my, MARIADB_CONNECTION_SERVER_CAPABILITIES, &caps) != 0 ||
	    mariadb_get_infov(my, MARIADB_CONNECTION_EXTENDED_SERVER_CAPABILITIES, &ext) != 0) {
		return false;
	}
	return (caps & CLIENT_MYSQL) == 0 &&
	       (ext & (MARIADB_CLIENT_STMT_BULK_OPERATIONS >> 32)) != 0;
}

/*
 * The table's prepared statement on this connection, made on first use. NULL with db->err set,
 * or NULL with db->bulk cleared when the server lacks the bulk protocol.
 */
static MYSQL_STMT *bulk_stmt(struct db *db, enum agg_table t)
{
	MYSQL_STMT *st = db->upsert[t];

	if (st != NULL) {
		return st;
	}
	if (db->my == NULL) {
		db->err = CR_SERVER_GONE_ERROR;
		snprintf(db->errmsg, sizeof(db->errmsg), "not connected");
		return NULL;
	}
	/*
	 * Not on a Galera node: a transaction aborted there by a replicated write set (a
	 * certification conflict, replayed by db_retry) can be rolled back between two rows of
	 * an array, and the array's later rows then commit on their own, outside the chunk's
	 * transaction (fault_galera caught rows counted twice so). A multi-row text statement is
	 * one statement: it is rolled back whole.
	 */
	if (!bulk_server(db->my) || db->galera) {
		db->bulk = false;
		return NULL;
	}
	if (db->arrays == NULL && (db->arrays = malloc(sizeof(*db->arrays))) == NULL) {
		db->err = CR_OUT_OF_MEMORY;
		snprintf(db->errmsg, sizeof(db->errmsg), "out of memory");
		return NULL;
	}
	if (upsert_head(db, t) != 0 || db_buf_lit(db, "(?", 2) != 0) {
		return NULL;
	}
	for (unsigned i = 0; i <= agg_nfields(t); i++) {
		if (db_buf_lit(db, ",?", 2) != 0) {
			return NULL;
		}
	}
	if (db_buf_str(db, ")" UPSERT_TAIL) != 0) {
		return NULL;
	}
	if ((st = mysql_stmt_init(db->my)) == NULL) {
		db_fail(db);
		return NULL;
	}
	if (mysql_stmt_prepare(st, db->buf, db->len) != 0) {
		stmt_fail(db, st);
		mysql_stmt_close(st);
		return NULL;
	}
	db->upsert[t] = st;
	return st;
}

/* Executes the statement over the first k rows of the arrays. */
static int bulk_send(struct db *db, enum agg_table t, MYSQL_STMT *st, unsigned k)
{
	struct db_bulk *a = db->arrays;
	MYSQL_BIND b[1 + AGG_MAX_FIELDS + 1];
	unsigned nf = agg_nfields(t);

	memset(b, 0, sizeof(b));
	for (unsigned c = 0; c <= nf; c++) {
		b[c].buffer_type = MYSQL_TYPE_STRING;
		b[c].buffer = a->val[c];
		b[c].length = a->len[c];
	}
	b[nf + 1].buffer_type = MYSQL_TYPE_LONGLONG;
	b[nf + 1].buffer = a->n;
	b[nf + 1].is_unsigned = 1;
	if (mysql_stmt_attr_set(st, STMT_ATTR_ARRAY_SIZE, &k) != 0 ||
	    mysql_stmt_bind_param(st, b) != 0 || mysql_stmt_execute(st) != 0) {
		stmt_fail(db, st);
		return -1;
	}
	return 0;
}

/* 1: the server lacks the bulk protocol, nothing was sent; else as db_rows_upsert. */
static int bulk_upsert(struct db *db, enum agg_table t, const struct agg_row *const *rows,
		       size_t count, bool unsent)
{
	MYSQL_STMT *st = bulk_stmt(db, t);
	struct db_bulk *a = db->arrays;
	unsigned nf = agg_nfields(t), k = 0;
	size_t bytes = 0;
	int64_t hour = 0;

	if (st == NULL) {
		return db->bulk ? -1 : 1;
	}
	for (size_t i = 0; i < count; i++) {
		const struct agg_row *row = rows[i];
		uint64_t n = row_adds(row, unsent);

		if (n == 0) {
			continue;
		}
		/* Rows come sorted by hour: one text per hour, shared by its rows. */
		if (k == 0 || row->hour != hour) {
			hour = row->hour;
			logtime_format(db_datetime_fits(hour) ? hour : 0, a->hour[k]);
			a->val[0][k] = a->hour[k];
		} else {
			a->val[0][k] = a->val[0][k - 1];
		}
		a->len[0][k] = 19;
		for (unsigned c = 0; c < nf; c++) {
			struct span f = db_span_cut(agg_field(row, c), field_col(t, c)->width);

			a->val[1 + c][k] = f.p;
			a->len[1 + c][k] = (unsigned long)f.n;
			/* On the wire: the bytes, a length of up to 3 bytes and an indicator. */
			bytes += f.n + 4;
		}
		a->n[k] = n;
		bytes += 32;
		if (++k == BULK_ROWS || bytes >= db->stmt_target) {
			if (bulk_send(db, t, st, k) != 0) {
				return -1;
			}
			k = 0;
			bytes = 0;
		}
	}
	return k == 0 ? 0 : bulk_send(db, t, st, k);
}

void db_rows_close(struct db *db, bool all)
{
	for (int t = 0; t < AGG_TABLES; t++) {
		if (db->upsert[t] != NULL) {
			mysql_stmt_close(db->upsert[t]);
			db->upsert[t] = NULL;
		}
	}
	if (all) {
		free(db->arrays);
		db->arrays = NULL;
	}
}

#else

static int bulk_upsert(struct db *db, enum agg_table t, const struct agg_row *const *rows,
		       size_t count, bool unsent)
{
	db->bulk = false;
	return 1;
}

void db_rows_close(struct db *db, bool all)
{
}

#endif

int db_rows_upsert(struct db *db, enum agg_table t, const struct agg_row *const *rows, size_t count,
		   bool unsent)
{
	if (db->bulk) {
		int r = bulk_upsert(db, t, rows, count, unsent);
		if (r <= 0) {
			return r;
		}
	}
	return text_upsert(db, t, rows, count, unsent);
}

void db_set_bulk(struct db *db, bool on)
{
	db->bulk = on;
}
