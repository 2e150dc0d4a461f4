#ifndef RELAYWATCH_DB_H
#define RELAYWATCH_DB_H

#include <stdbool.h>

#include "agg.h"
#include "scan.h"

/*
 * The MySQL/MariaDB side of the ingester. Credentials come only from MySQL option files: the
 * given --defaults-file, or the standard locations, reading the groups [client] and [relaywatch]
 * (later groups override), as the mysql tools do. Every string that came from a log line reaches
 * SQL only through mysql_real_escape_string() (the connection's character set is binary, and
 * the session's sql_mode keeps backslash escapes).
 */
struct db;

/*
 * Connects (defaults_file may be NULL). Returns NULL after logging why; *config_error then says
 * whether the option file itself was at fault (missing, or writable by others: a configuration
 * error that no retry mends) rather than the server.
 */
struct db *db_connect(const char *defaults_file, bool *config_error);

/* Accepts NULL. */
void db_destroy(struct db *db);

/*
 * Creates or upgrades the schema to the current version; idempotent, and safe to run on two
 * servers of one Galera cluster at once. 0, or -1 (logged).
 */
int db_migrate(struct db *db);

/* The ledger row of a chunk. */
struct db_chunk {
	const char *id_hex; /* SHA-256 of the uncompressed bytes, 64 lowercase hex */
	struct span host;   /* mail server (cut to 255 bytes) */
	struct span source; /* original file name (cut to 1024 bytes) */
	const struct scan_stats *st;
};

enum db_result {
	/* The server could not be reached, or the connection was lost and not re-established. */
	DB_UNAVAILABLE = -2,
	DB_ERROR = -1,
	DB_OK = 0,
	DB_DUPLICATE = 1, /* the chunk is already in the ledger: nothing was written */
};

/*
 * Writes the chunk's ledger row and every row of agg in one transaction. A chunk already in the
 * ledger changes nothing and returns DB_DUPLICATE. On a deadlock, lock wait timeout or lost
 * connection the whole transaction is rolled back, the connection re-established and the
 * transaction replayed, a bounded number of times; after that DB_ERROR with nothing written.
 * On a Galera cluster a certification failure counts as a deadlock, and a node outside the
 * primary component (error 1047) as a lost connection (DB_UNAVAILABLE when it stays out).
 */
enum db_result db_ingest_chunk(struct db *db, const struct db_chunk *c, struct agg *agg);

/* Whether the ledger holds the chunk: 1 yes, 0 no, -1 error (logged). */
int db_chunk_exists(struct db *db, const char *id_hex);

/*
 * The connection itself, for tests that act on it (its session settings, its thread id): set up
 * with the binary character set, time_zone '+00:00', strict sql_mode and no auto-reconnect. It
 * changes after a reconnect; do not keep it across calls.
 */
struct st_mysql *db_handle(struct db *db);

/* Runs one statement that returns no rows. 0, or -1 after logging the server's message. */
int db_exec(struct db *db, const char *sql);

/*
 * One statement that stands alone (no open transaction: each is its own autocommit), replayed
 * like an ingest after a lock conflict or a lost connection. db_select returns its stored
 * result, or NULL after logging; db_exec_count stores the affected rows and returns DB_OK,
 * DB_ERROR or DB_UNAVAILABLE (logged).
 */
struct st_mysql_res;
struct st_mysql_res *db_select(struct db *db, const char *sql, size_t len);

/* After a failure: whether the server was lost for good (not only a statement refused). */
bool db_unavailable(const struct db *db);
enum db_result db_exec_count(struct db *db, const char *sql, size_t len, uint64_t *affected);

#endif
