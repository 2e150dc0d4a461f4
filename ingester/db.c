#include "db.h"
#include "db_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include "config.h"
#include "crashpoint.h"
#include "db_sql.h"
#include "log.h"
#include "logtime.h"
#include "schema.h"

/* One attempt plus this many replays of a transaction that hit a transient error. */
#define DB_TRIES 6

/* Aggregate statements are cut at about this size (far below max_allowed_packet's 16 MB). */
#define DB_STMT_TARGET (1024 * 1024)

/*
 * The read timeout must outlast innodb_lock_wait_timeout (50 s by default), or a lock wait would
 * surface as a lost connection instead of error 1205.
 */
#define DB_CONNECT_TIMEOUT 10
#define DB_IO_TIMEOUT      300

/*
 * Errors after which the transaction is replayed on the same connection. On a Galera cluster a
 * certification failure (another node committed a conflicting write set first, e.g. the same
 * chunk's ledger row or a hot aggregate row) is also error 1213, at COMMIT or at any statement of
 * a transaction aborted by a replicated one: nothing of it was written, so the replay is safe.
 * There, too, a statement holding a metadata lock that a replicated DDL needs (two migrates on
 * two nodes at once) is aborted with error 1317 (MDEV-15808); elsewhere 1317 is an admin's KILL
 * QUERY, which stands.
 */
static bool err_transient(struct db *db)
{
	return db->err == ER_LOCK_DEADLOCK || db->err == ER_LOCK_WAIT_TIMEOUT ||
	       (db->err == ER_QUERY_INTERRUPTED && db->galera);
}

/* Errors that mean the connection is unusable: reconnect, then replay. */
static bool err_connection(unsigned e)
{
	switch (e) {
	case CR_SERVER_GONE_ERROR:
	case CR_SERVER_LOST:
	case CR_SERVER_LOST_EXTENDED:
	case CR_CONNECTION_ERROR:
	case CR_CONN_HOST_ERROR:
	case ER_CON_COUNT_ERROR:
	case ER_SERVER_SHUTDOWN:
	case ER_CONNECTION_KILLED:
	case ER_NET_READ_ERROR:
	case ER_NET_READ_INTERRUPTED:
	case 4031: /* ER_CLIENT_INTERACTION_TIMEOUT (MariaDB 10.11 idle disconnect) */
	/*
	 * "WSREP has not yet prepared node for application use": a Galera node that lost the
	 * cluster (or is still joining) refuses work until it is back in the primary component.
	 * Like a server that went away: reconnect and replay, and give up with the claim kept.
	 */
	case ER_UNKNOWN_COM_ERROR:
		return true;
	default:
		return false;
	}
}

void db_fail(struct db *db)
{
	db->err = db->my ? mysql_errno(db->my) : CR_SERVER_GONE_ERROR;
	snprintf(db->errmsg, sizeof(db->errmsg), "%s",
		 db->my ? mysql_error(db->my) : "not connected");
	if (db->err == 0) {
		/* libmariadb did not say why (e.g. a failed allocation): still an error. */
		db->err = CR_UNKNOWN_ERROR;
		snprintf(db->errmsg, sizeof(db->errmsg), "unknown client error");
	}
}

/* Logs the last error once, the server's own text rendered safely. */
void db_log_error(struct db *db, const char *what)
{
	char esc[LOG_ESCAPE_SIZE];

	log_escape(esc, sizeof(esc), db->errmsg, strlen(db->errmsg));
	if (db->err == ER_NO_SUCH_TABLE || db->err == ER_BAD_FIELD_ERROR) {
		log_error("database: %s: %s (error %u; run 'relaywatch-ingest migrate')", what, esc,
			  db->err);
	} else {
		log_error("database: %s: %s (error %u)", what, esc, db->err);
	}
}

int db_query(struct db *db, const char *sql, size_t len)
{
	if (db->my == NULL) {
		db->err = CR_SERVER_GONE_ERROR;
		snprintf(db->errmsg, sizeof(db->errmsg), "not connected");
		return -1;
	}
	if (mysql_real_query(db->my, sql, len) != 0) {
		db_fail(db);
		return -1;
	}
	return 0;
}

int db_q(struct db *db, const char *sql)
{
	return db_query(db, sql, strlen(sql));
}

/*
 * Statements are cut well below the server's max_allowed_packet (16 MB by default, 1 MB on old
 * MySQL servers): a statement over it fails the whole chunk with error 1153. One row adds at most
 * a few kB past the cut.
 */
static void db_packet_limit(struct db *db)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	unsigned long long max = 0;

	db->stmt_target = DB_STMT_TARGET;
	if (mysql_query(db->my, "SELECT @@max_allowed_packet") == 0 &&
	    (res = mysql_store_result(db->my)) != NULL && (row = mysql_fetch_row(res)) != NULL &&
	    row[0] != NULL) {
		max = strtoull(row[0], NULL, 10);
	}
	mysql_free_result(res);
	if (max > 0 && max / 2 < DB_STMT_TARGET) {
		db->stmt_target = max / 2 > 16 * 1024 ? max / 2 : 16 * 1024;
	}
}

/*
 * Whether the SHOW statement sql gives value in its first row's second column: 1 yes, 0 no (also
 * when it gives no row), -1 when it failed (db->err untouched: db_fail says why).
 */
static int show_is(struct db *db, const char *sql, const char *value)
{
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;

	if (db->my == NULL || mysql_query(db->my, sql) != 0 ||
	    (res = mysql_store_result(db->my)) == NULL) {
		return -1;
	}
	row = mysql_fetch_row(res);
	int is = row != NULL && row[1] != NULL && strcmp(row[1], value) == 0;
	mysql_free_result(res);
	return is;
}

/* Opens the connection and sets up the session. 0, or -1 with db->err set. */
static int db_open(struct db *db)
{
	unsigned connect_timeout = DB_CONNECT_TIMEOUT, io_timeout = DB_IO_TIMEOUT;
	my_bool no = 0;

	db->my = mysql_init(NULL);
	if (db->my == NULL) {
		db->err = CR_OUT_OF_MEMORY;
		snprintf(db->errmsg, sizeof(db->errmsg), "out of memory");
		return -1;
	}
	/*
	 * Set before the option file is read at connect time, so the file's connect-timeout etc.
	 * win. Without a file, the group alone makes libmariadb read the standard locations.
	 */
	mysql_options(db->my, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
	mysql_options(db->my, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
	mysql_options(db->my, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
	if (db->defaults_file != NULL) {
		mysql_options(db->my, MYSQL_READ_DEFAULT_FILE, db->defaults_file);
	}
	mysql_options(db->my, MYSQL_READ_DEFAULT_GROUP, "relaywatch");
	/*
	 * A silent reconnect would drop the open transaction and carry on in autocommit mode
	 * half-way through a chunk; we reconnect ourselves and replay the whole transaction.
	 */
	mysql_options(db->my, MYSQL_OPT_RECONNECT, &no);
	/*
	 * The binary character set: literals are byte strings, never converted or checked as
	 * UTF-8, so any byte sequence from a log line is stored exactly as it came.
	 */
	mysql_options(db->my, MYSQL_SET_CHARSET_NAME, "binary");

	if (mysql_real_connect(db->my, NULL, NULL, NULL, NULL, 0, NULL, 0) == NULL) {
		db_fail(db);
		mysql_close(db->my);
		db->my = NULL;
		return -1;
	}
	/*
	 * Strict mode turns a value that does not fit into an error instead of a silent cut (C
	 * cuts every string to its column bound first, so this never fires on good code). The
	 * session zone must not matter; UTC anyway, in case a reader uses NOW().
	 */
	if (db_q(db, "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
		     "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION', time_zone = '+00:00', "
		     "autocommit = 1") != 0) {
		mysql_close(db->my);
		db->my = NULL;
		return -1;
	}
	db_packet_limit(db);
	/*
	 * Whether the server is a node of a Galera cluster (a MariaDB built with Galera but not in
	 * a cluster says OFF; MySQL gives no row). Unanswered, the connection fails: taken for a
	 * plain server, a node would get bulk arrays and no replay of error 1317 (see db->galera).
	 */
	int galera = show_is(db, "SHOW GLOBAL VARIABLES LIKE 'wsrep_on'", "ON");
	if (galera < 0) {
		db_fail(db);
		mysql_close(db->my);
		db->my = NULL;
		return -1;
	}
	db->galera = galera == 1;
	return 0;
}

static void db_close(struct db *db)
{
	db_rows_close(db, false);
	if (db->my != NULL) {
		mysql_close(db->my);
		db->my = NULL;
	}
}

struct db *db_connect(const char *defaults_file, bool *config_error)
{
	struct db *db = calloc(1, sizeof(*db));
	int fd = -1;

	*config_error = false;
	if (db == NULL) {
		log_error("database: out of memory");
		return NULL;
	}
	db->bulk = true;
	/* Backoff jitter: ingesters started by the same cron minute must not retry in step. */
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	if (defaults_file != NULL) {
		/*
		 * The option file holds the database password: refuse one that another local user
		 * could have rewritten to point us at their server or steal ours. libmariadb would
		 * also silently ignore a missing file; say so instead.
		 */
		fd = open(defaults_file, O_RDONLY | O_NOCTTY | O_NONBLOCK);
		if (fd < 0) {
			log_error("%s: %s", defaults_file, strerror(errno));
			*config_error = true;
			goto fail;
		}
		if (config_check_secure(fd, defaults_file) != 0) {
			*config_error = true;
			goto fail;
		}
		close(fd);
		fd = -1;
		db->defaults_file = strdup(defaults_file);
		if (db->defaults_file == NULL) {
			log_error("database: out of memory");
			goto fail;
		}
	}
	if (db_open(db) != 0) {
		db_log_error(db, "cannot connect");
		goto fail;
	}
	return db;

fail:
	if (fd >= 0) {
		close(fd);
	}
	db_destroy(db);
	return NULL;
}

void db_destroy(struct db *db)
{
	if (db == NULL) {
		return;
	}
	db_close(db);
	db_rows_close(db, true);
	free(db->defaults_file);
	free(db->buf);
	free(db);
}

struct st_mysql *db_handle(struct db *db)
{
	return db->my;
}

/* --- statement buffer --- */

static int buf_reserve(struct db *db, size_t more)
{
	size_t cap;
	char *p;

	if (more <= db->cap - db->len) {
		return 0;
	}
	cap = db->cap ? db->cap : DB_STMT_TARGET + 64 * 1024;
	while (cap - db->len < more) {
		if (cap > SIZE_MAX / 2) {
			goto nomem;
		}
		cap *= 2;
	}
	p = realloc(db->buf, cap);
	if (p == NULL) {
		goto nomem;
	}
	db->buf = p;
	db->cap = cap;
	return 0;

nomem:
	db->err = CR_OUT_OF_MEMORY;
	snprintf(db->errmsg, sizeof(db->errmsg), "out of memory");
	return -1;
}

int db_buf_lit(struct db *db, const char *s, size_t n)
{
	if (buf_reserve(db, n + 1) != 0) {
		return -1;
	}
	memcpy(db->buf + db->len, s, n);
	db->len += n;
	db->buf[db->len] = '\0';
	return 0;
}

int db_buf_str(struct db *db, const char *s)
{
	return db_buf_lit(db, s, strlen(s));
}

/*
 * The connection's character set is binary, so mysql_real_escape_string() escapes byte by byte
 * (quote, backslash, NUL, CR, LF, ^Z; quotes doubled instead under NO_BACKSLASH_ESCAPES) and
 * nothing in the value can end the literal.
 */
int db_buf_quoted(struct db *db, const char *s, size_t n)
{
	unsigned long w;

	if (buf_reserve(db, 2 * n + 3) != 0) {
		return -1;
	}
	db->buf[db->len++] = '\'';
	w = mysql_real_escape_string(db->my, db->buf + db->len, n ? s : "", (unsigned long)n);
	if (w == (unsigned long)-1) {
		db->err = CR_UNKNOWN_ERROR;
		snprintf(db->errmsg, sizeof(db->errmsg), "cannot escape a string");
		return -1;
	}
	db->len += w;
	db->buf[db->len++] = '\'';
	db->buf[db->len] = '\0';
	return 0;
}

int db_buf_u64(struct db *db, uint64_t v)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)v);

	return db_buf_lit(db, tmp, (size_t)n);
}

/* DATETIME holds 1000-01-01 .. 9999-12-31; the epoch bounds of that range. */
#define DB_DATETIME_MIN (-30610224000LL)
#define DB_DATETIME_MAX 253402300799LL

bool db_datetime_fits(int64_t utc)
{
	return utc != LOGTIME_NONE && utc >= DB_DATETIME_MIN && utc <= DB_DATETIME_MAX;
}

int db_buf_datetime(struct db *db, int64_t utc, bool as_null)
{
	char tmp[24];

	if (!db_datetime_fits(utc)) {
		if (as_null) {
			return db_buf_lit(db, "NULL", 4);
		}
		utc = 0;
	}
	tmp[0] = '\'';
	logtime_format(utc, tmp + 1);
	return db_buf_str(db, tmp) == 0 ? db_buf_lit(db, "'", 1) : -1;
}

/* --- retry --- */

/*
 * Whether the server is a Galera node outside the primary component. Such a node refuses
 * statements with error 1047, but a write caught while the node loses the cluster fails with
 * other codes (1180 "Not connected to Primary Component"): the node's status says what the code
 * does not. SHOW is answered even outside the cluster. db->err is left as it was.
 */
static bool node_out_of_cluster(struct db *db)
{
	return db->galera && show_is(db, "SHOW STATUS LIKE 'wsrep_ready'", "OFF") == 1;
}

static void backoff(int attempt, bool connection)
{
	/* Deadlocks clear in milliseconds; a restarting server needs seconds. */
	long ms = (connection ? 500L : 50L) << (attempt < 5 ? attempt : 5);
	struct timespec ts;

	ms += rand() % (ms / 2 + 1); /* two ingesters that deadlocked must not retry in step */
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

/*
 * Runs fn, replaying it after a transient error (rollback first) or a lost connection
 * (reconnect first), up to DB_TRIES attempts. Returns fn's result, or DB_UNAVAILABLE / DB_ERROR
 * after logging the last error once.
 */
int db_retry(struct db *db, const char *what, db_attempt_fn fn, void *arg)
{
	bool connection = false;
	int attempt, r;
	char esc[LOG_ESCAPE_SIZE];

	/* A stream nobody finished must not be committed by what comes next. */
	db_stream_abort(db);
	for (attempt = 0; attempt < DB_TRIES; attempt++) {
		if (attempt > 0) {
			backoff(attempt - 1, connection);
		}
		if (db->my == NULL && db_open(db) != 0) {
			connection = err_connection(db->err);
			if (!connection) {
				break;
			}
			log_escape(esc, sizeof(esc), db->errmsg, strlen(db->errmsg));
			log_info("database: %s: reconnect failed: %s", what, esc);
			continue;
		}
		r = fn(db, arg);
		if (r >= 0) {
			return r;
		}
		bool transient = err_transient(db);
		connection = err_connection(db->err) || (!transient && node_out_of_cluster(db));
		if (!connection && !transient) {
			break;
		}
		log_escape(esc, sizeof(esc), db->errmsg, strlen(db->errmsg));
		log_info("database: %s: %s (error %u), retrying", what, esc, db->err);
		if (connection) {
			db_close(db);
		} else {
			mysql_query(db->my, "ROLLBACK");
		}
	}
	db_log_error(db, what);
	if (db->my != NULL && !connection) {
		/* Leave no half transaction open for the next caller. */
		if (mysql_query(db->my, "ROLLBACK") != 0) {
			db_close(db);
		}
	}
	return connection ? DB_UNAVAILABLE : DB_ERROR;
}

/* --- ingest --- */

static bool id_valid(const char *id)
{
	size_t i;

	for (i = 0; i < DIGEST_HEX_LEN; i++) {
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'))) {
			return false;
		}
	}
	return id[i] == '\0';
}

struct span db_span_cut(struct span s, size_t max)
{
	if (s.n > max) {
		s.n = max;
	}
	return s;
}

static int ledger_insert(struct db *db, const struct db_chunk *c)
{
	const struct scan_stats *st = c->st;
	const struct schema_column *cols = schema_tables[SCHEMA_CHUNKS].col;
	struct span host = db_span_cut(c->host, cols[SCHEMA_CHUNK_HOST].width);
	struct span source = db_span_cut(c->source, cols[SCHEMA_CHUNK_SOURCE].width);

	db->len = 0;
	if (db_buf_str(db, "INSERT INTO " SCHEMA_CHUNKS_NAME
			   " (chunk_id, host, source, first_utc, last_utc,"
			   " line_count, event_count, malformed_count, bytes, ingested_at)"
			   " VALUES (_ascii'") != 0 ||
	    db_buf_str(db, c->id_hex) != 0 || db_buf_lit(db, "',", 2) != 0 ||
	    db_buf_quoted(db, host.p, host.n) != 0 || db_buf_lit(db, ",", 1) != 0 ||
	    db_buf_quoted(db, source.p, source.n) != 0 || db_buf_lit(db, ",", 1) != 0 ||
	    db_buf_datetime(db, st->first_utc, true) != 0 || db_buf_lit(db, ",", 1) != 0 ||
	    db_buf_datetime(db, st->last_utc, true) != 0 || db_buf_lit(db, ",", 1) != 0 ||
	    db_buf_u64(db, st->lines) != 0 || db_buf_lit(db, ",", 1) != 0 ||
	    db_buf_u64(db, st->events) != 0 || db_buf_lit(db, ",", 1) != 0 ||
	    db_buf_u64(db, st->malformed) != 0 || db_buf_lit(db, ",", 1) != 0 ||
	    db_buf_u64(db, st->bytes) != 0 || db_buf_str(db, ", UTC_TIMESTAMP())") != 0) {
		return -1;
	}
	return db_query(db, db->buf, db->len);
}

/*
 * The rows of a pack's files, after its ledger row: a file counted before in another pack (one
 * that a shipper rebuilt without a file deleted since) fails here with a duplicate key.
 */
static int parts_insert(struct db *db, const struct db_chunk *c)
{
	if (c->nparts == 0) {
		return 0;
	}
	db->len = 0;
	if (db_buf_str(db, "INSERT INTO " SCHEMA_CHUNK_PARTS_NAME " (part_id, chunk_id) VALUES ") !=
	    0) {
		return -1;
	}
	bool first = true;
	for (size_t i = 0; i < c->nparts; i++) {
		if (c->counted != NULL && c->counted[i]) {
			continue;
		}
		if (db_buf_str(db, first ? "(_ascii'" : ",(_ascii'") != 0 ||
		    db_buf_str(db, c->part_ids[i]) != 0 || db_buf_str(db, "',_ascii'") != 0 ||
		    db_buf_str(db, c->id_hex) != 0 || db_buf_str(db, "')") != 0) {
			return -1;
		}
		first = false;
	}
	return first ? 0 : db_query(db, db->buf, db->len);
}

/*
 * After parts_insert met a duplicate key (and the rollback): flags the parts that are in the
 * ledger. DB_DUPLICATE when all are, DB_PARTIAL when some more are; -1 when none is (the rows
 * went with a purged chunk, or the pack names a file twice): the next run tries again.
 */
static int parts_counted(struct db *db, const struct db_chunk *c)
{
	MYSQL_RES *res;
	MYSQL_ROW row;
	size_t found = 0, all = 0;

	db->len = 0;
	if (db_buf_str(db, "SELECT part_id FROM " SCHEMA_CHUNK_PARTS_NAME " WHERE part_id IN (") !=
	    0) {
		return -1;
	}
	for (size_t i = 0; i < c->nparts; i++) {
		if (db_buf_str(db, i ? ",_ascii'" : "_ascii'") != 0 ||
		    db_buf_str(db, c->part_ids[i]) != 0 || db_buf_lit(db, "'", 1) != 0) {
			return -1;
		}
	}
	if (db_buf_lit(db, ")", 1) != 0 || db_query(db, db->buf, db->len) != 0) {
		return -1;
	}
	res = mysql_store_result(db->my);
	if (res == NULL) {
		db_fail(db);
		return -1;
	}
	while ((row = mysql_fetch_row(res)) != NULL) {
		for (size_t i = 0; row[0] != NULL && i < c->nparts; i++) {
			if (strcmp(row[0], c->part_ids[i]) == 0 && !c->counted[i]) {
				c->counted[i] = true;
				found++;
			}
		}
	}
	mysql_free_result(res);
	for (size_t i = 0; i < c->nparts; i++) {
		all += c->counted[i];
	}
	if (found == 0) {
		db->err = ER_DUP_ENTRY;
		snprintf(db->errmsg, sizeof(db->errmsg), "a part's row was there, now none is");
		return -1;
	}
	return all == c->nparts ? DB_DUPLICATE : DB_PARTIAL;
}

static int table_upsert(struct db *db, struct agg *agg, enum agg_table t, bool unsent)
{
	const struct agg_row *const *rows;
	size_t count;

	rows = unsent ? agg_sorted_unsent(agg, t, &count) : agg_sorted(agg, t, &count);
	if (count == SIZE_MAX) {
		db->err = CR_OUT_OF_MEMORY;
		snprintf(db->errmsg, sizeof(db->errmsg), "out of memory sorting %s",
			 agg_table_name[t]);
		return -1;
	}
	return db_rows_upsert(db, t, rows, count, unsent);
}

int db_stream_rows(struct db *db, const struct agg_batch *b)
{
	if (db->stream == DB_STREAM_FAILED) {
		return -1;
	}
	if (db->stream == DB_STREAM_NONE) {
		if (db_q(db, "START TRANSACTION") != 0) {
			goto fail;
		}
		db->stream = DB_STREAM_OPEN;
	}
	for (int t = 0; t < AGG_TABLES; t++) {
		if (db_rows_upsert(db, (enum agg_table)t, b->row + b->start[t],
				   b->start[t + 1] - b->start[t], false) != 0) {
			goto fail;
		}
	}
	crashpoint("db-stream-batch");
	return 0;

fail:
	db->stream = DB_STREAM_FAILED;
	return -1;
}

void db_stream_abort(struct db *db)
{
	if (db->stream == DB_STREAM_NONE) {
		return;
	}
	/* After a lost connection there is nothing to roll back: the server has done it. */
	bool lost = db->stream == DB_STREAM_FAILED && err_connection(db->err);
	if (db->my != NULL && (lost || mysql_query(db->my, "ROLLBACK") != 0)) {
		db_close(db);
	}
	db->stream = DB_STREAM_NONE;
}

struct ingest_arg {
	const struct db_chunk *c;
	struct agg *agg;
	/* The first attempt finishes the transaction db_stream_rows opened. */
	bool streamed;
	/* A connection was lost during COMMIT: the commit may have happened. */
	bool commit_unknown;
};

static int ingest_attempt(struct db *db, void *arg)
{
	struct ingest_arg *a = arg;
	bool streamed = a->streamed;
	int t;

	/* A replay writes the whole chunk again, in a transaction of its own. */
	a->streamed = false;
	if (!streamed && db_q(db, "START TRANSACTION") != 0) {
		return -1;
	}
	/*
	 * The ledger row goes first: its primary key is the chunk's identity, so a second
	 * ingester of the same chunk blocks here until the first one commits and then fails with
	 * a duplicate key, before it has added a single count. (After a stream it comes after
	 * the rows sent so far: a duplicate is then found here and rolled back all the same.)
	 */
	if (ledger_insert(db, a->c) != 0) {
		if (db->err == ER_DUP_ENTRY) {
			mysql_query(db->my, "ROLLBACK");
			if (a->commit_unknown) {
				log_info("database: the interrupted commit of chunk %.16s had "
					 "succeeded",
					 a->c->id_hex);
				return DB_OK;
			}
			return DB_DUPLICATE;
		}
		return -1;
	}
	crashpoint("db-after-ledger");
	if (parts_insert(db, a->c) != 0) {
		if (db->err != ER_DUP_ENTRY) {
			return -1;
		}
		/* Another chunk counted some of these files: which ones, the caller must know. */
		mysql_query(db->my, "ROLLBACK");
		return a->c->counted != NULL ? parts_counted(db, a->c) : DB_DUPLICATE;
	}
	for (t = 0; t < AGG_TABLES; t++) {
		if (table_upsert(db, a->agg, (enum agg_table)t, streamed) != 0) {
			return -1;
		}
	}
	crashpoint("db-before-commit");
	if (db_q(db, "COMMIT") != 0) {
		if (err_connection(db->err)) {
			a->commit_unknown = true;
		}
		return -1;
	}
	crashpoint("db-after-commit");
	return DB_OK;
}

enum db_result db_ingest_chunk(struct db *db, const struct db_chunk *c, struct agg *agg)
{
	struct ingest_arg a = {c, agg, false, false};
	char what[LOG_ESCAPE_SIZE + 16];
	char esc[LOG_ESCAPE_SIZE];
	int r;

	if (!id_valid(c->id_hex)) {
		log_error("database: invalid chunk id");
		return DB_ERROR;
	}
	for (size_t i = 0; i < c->nparts; i++) {
		if (!id_valid(c->part_ids[i])) {
			log_error("database: invalid part id");
			return DB_ERROR;
		}
	}
	/* Messages name the chunk's source: the one line an admin needs to find it. */
	log_escape(esc, sizeof(esc), c->source.p, c->source.n);
	snprintf(what, sizeof(what), "ingest of %s", esc);
	if (db->stream == DB_STREAM_OPEN) {
		a.streamed = true;
		db->stream = DB_STREAM_NONE;
	} else if (db->stream == DB_STREAM_FAILED) {
		log_escape(esc, sizeof(esc), db->errmsg, strlen(db->errmsg));
		log_info("database: %s: %s (error %u) while writing ahead, replaying", what, esc,
			 db->err);
		db_stream_abort(db);
	}
	r = db_retry(db, what, ingest_attempt, &a);
	return (enum db_result)r;
}

/* --- stand-alone statements: the ledger lookup, report, check and purge --- */

struct stmt_arg {
	const char *sql;
	size_t len;
	MYSQL_RES *res;    /* db_select */
	uint64_t affected; /* db_exec_count */
};

static int select_attempt(struct db *db, void *arg)
{
	struct stmt_arg *a = arg;
	if (db_query(db, a->sql, a->len) != 0) {
		return -1;
	}
	a->res = mysql_store_result(db->my);
	if (a->res == NULL) {
		db_fail(db);
		return -1;
	}
	return 0;
}

/* db_select, with what naming the statement in the log. */
static MYSQL_RES *select_as(struct db *db, const char *what, const char *sql, size_t len)
{
	struct stmt_arg a = {.sql = sql, .len = len};

	return db_retry(db, what, select_attempt, &a) == 0 ? a.res : NULL;
}

MYSQL_RES *db_select(struct db *db, const char *sql, size_t len)
{
	log_debug("sql: %.300s", sql);
	return select_as(db, "query", sql, len);
}

enum db_exists db_chunk_exists(struct db *db, const char *id_hex)
{
	struct db_sql q;
	MYSQL_RES *res;
	enum db_exists ret = DB_EXISTS_ERROR;

	if (!id_valid(id_hex)) {
		log_error("database: invalid chunk id");
		return DB_EXISTS_ERROR;
	}
	db_sql_init(&q);
	db_sql_add(&q, "SELECT 1 FROM " SCHEMA_CHUNKS_NAME " WHERE chunk_id = _ascii'%s'", id_hex);
	if (q.failed) {
		log_error("out of memory");
		goto out;
	}
	if ((res = select_as(db, "ledger lookup", q.p, q.len)) == NULL) {
		goto out;
	}
	ret = mysql_num_rows(res) > 0 ? DB_EXISTS_YES : DB_EXISTS_NO;
	mysql_free_result(res);
out:
	db_sql_finish(&q);
	return ret;
}

static int exec_attempt(struct db *db, void *arg)
{
	struct stmt_arg *a = arg;
	if (db_query(db, a->sql, a->len) != 0) {
		return -1;
	}
	a->affected = (uint64_t)mysql_affected_rows(db->my);
	return 0;
}

enum db_result db_exec_count(struct db *db, const char *sql, size_t len, uint64_t *affected)
{
	struct stmt_arg a = {.sql = sql, .len = len};
	int r;

	log_debug("sql: %.300s", sql);
	r = db_retry(db, "statement", exec_attempt, &a);
	*affected = a.affected;
	return (enum db_result)r;
}

bool db_unavailable(const struct db *db)
{
	return db->my == NULL;
}
