#ifndef RELAYWATCH_DB_H
#define RELAYWATCH_DB_H

#include <stdbool.h>

#include "agg.h"
#include "scan.h"

/*
 * The MySQL/MariaDB side of the ingester. Credentials come only from MySQL option files: the
 * given --defaults-file, or the standard locations, reading the groups [client] and [relaywatch]
 * (later groups override), as the mysql tools do. Every string that came from a log line reaches
 * the server only as a bound value of a prepared statement or through mysql_real_escape_string()
 * (the connection's character set is binary, and the session's sql_mode keeps backslash escapes).
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
	/* A pack's files, each one's identity (manifest_part_id(), 64 lowercase hex), written
	 * beside the ledger row: a file is counted once, whichever chunk brings it. */
	char (*part_ids)[DIGEST_HEX_LEN + 1];
	size_t nparts;
	/*
	 * NULL, or nparts flags, in and out: the files counted already by another chunk, which
	 * agg leaves out and whose rows are not written; DB_PARTIAL sets the flags of the files
	 * it found counted.
	 */
	bool *counted;
};

enum db_result {
	/* The server could not be reached, or the connection was lost and not re-established. */
	DB_UNAVAILABLE = -2,
	DB_ERROR = -1,
	DB_OK = 0,
	DB_DUPLICATE = 1, /* the chunk is already in the ledger: nothing was written */
	DB_PARTIAL = 2,   /* some of the pack's files not flagged counted were: nothing written */
};

/*
 * Writes the chunk's ledger row (and its parts' rows, but those flagged counted) and every row
 * of agg in one transaction. A chunk already in the ledger, or a pack all of whose parts are,
 * changes nothing and returns DB_DUPLICATE. A pack some of whose unflagged parts are (another
 * chunk counted them, a pack rebuilt without a file deleted since) changes nothing, flags them
 * and returns DB_PARTIAL: the caller scans the chunk again without them and calls again (parts
 * only ever get counted, so this ends). On a deadlock, lock wait timeout or lost
 * connection the whole transaction is rolled back, the connection re-established and the
 * transaction replayed, a bounded number of times; after that DB_ERROR with nothing written.
 * On a Galera cluster a certification failure counts as a deadlock, and a node outside the
 * primary component (error 1047) as a lost connection (DB_UNAVAILABLE when it stays out).
 */
enum db_result db_ingest_chunk(struct db *db, const struct db_chunk *c, struct agg *agg);

/*
 * Overlapped ingest (overlap.c): while a chunk is still being scanned, its finished rows leave for
 * the database from a writer thread, which owns the connection meanwhile. db_stream_rows opens
 * the chunk's transaction on its first call and adds each row's n to the stored rows. The
 * transaction stays open: db_ingest_chunk then writes the ledger row and the counts not yet sent
 * (each row's n - sent) and commits, all or nothing. After any error of the stream (0 or -1
 * here, with nothing logged: the replay decides what to say) db_ingest_chunk rolls it back and
 * writes the whole chunk from agg as above, so a deadlock or a lost connection while the writer
 * sends is replayed like any other. db_stream_abort rolls an open stream back (a chunk that is
 * not to be counted after all); any other use of the connection does so first.
 */
int db_stream_rows(struct db *db, const struct agg_batch *b);
void db_stream_abort(struct db *db);

/* Whether the ledger holds the chunk. */
enum db_exists {
	DB_EXISTS_ERROR = -1, /* logged */
	DB_EXISTS_NO = 0,
	DB_EXISTS_YES = 1,
};
enum db_exists db_chunk_exists(struct db *db, const char *id_hex);

/*
 * The connection itself, for tests that act on it (its session settings, its thread id): set up
 * with the binary character set, time_zone '+00:00', strict sql_mode and no auto-reconnect. It
 * changes after a reconnect; do not keep it across calls.
 */
struct st_mysql *db_handle(struct db *db);

/* After a failure: whether the server was lost for good (not only a statement refused). */
bool db_unavailable(const struct db *db);

/* ---- reading: typed rows for the rules, the report and purge ---- */

/*
 * Every read below is one statement that stands alone, replayed like an ingest after a lock
 * conflict or a lost connection; on failure it returns NULL or -1 after logging (then
 * db_unavailable tells a lost server from a refused statement).
 */

/* The hours [since, until) (UTC, whole hours) of one mail server, or of all when host is NULL. */
struct db_window {
	int64_t since, until;
	const char *host;
};

/*
 * One row of a query, decoded: its text columns in key[] (the database's bytes, chosen by SMTP
 * clients: escape them for any output; valid until the next db_rows_next), its times in when[]
 * (UTC seconds, INT64_MIN for NULL) and its counts in n[] (0 for NULL). Each query below names
 * the fields it fills, in this notation: key[0] host, key[1] account, when[0] hour, n[0] count.
 */
struct db_row {
	struct span key[3];
	int64_t when[2];
	uint64_t n[5];
};

/* The stored rows of one query, read in order. */
struct db_rows;

/* The next row into *row: true, or false after the last. */
bool db_rows_next(struct db_rows *rs, struct db_row *row);
size_t db_rows_count(const struct db_rows *rs);
/* Accepts NULL. */
void db_rows_free(struct db_rows *rs);

/*
 * For the rules (check_alerts.c). Relayed recipients of authenticated accounts per hour, ordered
 * by host, account, hour: key[0] host, key[1] account, when[0] hour, n[0] recipients, n[1]
 * distinct recipient domains. With accounts (count > 0): only those accounts, and n[1] is 0.
 */
struct db_rows *db_account_hours(struct db *db, const struct db_window *w,
				 const struct span *accounts, size_t count);

/*
 * Distinct remote networks (IPv4 /24, IPv6 /48) per authenticated account: per UTC day of the
 * window (when[0] the day), or, when one_day, over the 24 hours before w->until as one (when[0]
 * its start); only counts of at least min. key[0] host, key[1] account, n[0] distinct networks.
 */
struct db_rows *db_account_ips(struct db *db, const struct db_window *w, bool one_day,
			       uint64_t min);

/*
 * Relayed recipients of authenticated accounts per hour and envelope sender, ordered by hour,
 * host, account: when[0] hour, key[0] host, key[1] account, key[2] sender, n[0] recipients.
 */
struct db_rows *db_sender_hours(struct db *db, const struct db_window *w);

/* Rejected relaying per remote IP per hour, of at least min: key[0] host, key[1] IP, when[0]
 * hour, n[0] attempts. */
struct db_rows *db_denied_hours(struct db *db, const struct db_window *w, uint64_t min);

/*
 * The ledger per host (of one host when host is not NULL): key[0] host, when[0] its newest data
 * (last_utc, or ingested_at when a chunk had no stamped line), when[1] its oldest.
 */
struct db_rows *db_host_chunks(struct db *db, const char *host);

/* The first hour of data in the database into *first (INT64_MAX when none). 0, or -1. */
int db_first_hour(struct db *db, int64_t *first);

/* The window's totals, and the busiest remote IP's hour of rejected relaying. */
struct db_totals {
	uint64_t relayed, denied, events, max_ip_denied;
};
int db_window_totals(struct db *db, const struct db_window *w, struct db_totals *t);

/*
 * For the report (report.c), each over the window. db_event_hours: per hour, ordered: when[0]
 * hour, n[0] events, n[1] relaying rcpt, n[2] rejected relaying, n[3] accepted (any) rcpt, n[4]
 * rejected rcpt.
 */
struct db_rows *db_event_hours(struct db *db, const struct db_window *w);
/* Per event and reason, the biggest first: key[0] event, key[1] reason, n[0] count. */
struct db_rows *db_event_types(struct db *db, const struct db_window *w);
/* The top authenticated accounts: key[0] account, n[0] recipients, n[1] domains, n[2] IPs. */
struct db_rows *db_top_accounts(struct db *db, const struct db_window *w, unsigned top);
/* Recipients of the given accounts per sender: key[0] account, key[1] sender, n[0] recipients. */
struct db_rows *db_account_senders(struct db *db, const struct db_window *w,
				   const struct span *accounts, size_t count);
/* The top unauthenticated relays: key[0] IP, n[0] recipients, n[1] domains, n[2] senders. */
struct db_rows *db_top_ip_relays(struct db *db, const struct db_window *w, unsigned top);
/* The top sources of rejected relaying: key[0] IP, n[0] attempts, n[1] domains. */
struct db_rows *db_top_denied_ips(struct db *db, const struct db_window *w, unsigned top);
/*
 * Rejected relaying of the given IPs per domain, by IP and the most aimed at first: key[0] IP,
 * key[1] domain, n[0] attempts.
 */
struct db_rows *db_denied_ip_domains(struct db *db, const struct db_window *w,
				     const struct span *ips, size_t count);
/* The domains most aimed at by rejected relaying: key[0] domain, n[0] attempts, n[1] IPs. */
struct db_rows *db_top_denied_domains(struct db *db, const struct db_window *w, unsigned top);
/*
 * Inbound recipients per host, ordered by host: key[0] host, n[0] accepted, n[1] rejected as
 * not existing, n[2] rejected otherwise.
 */
struct db_rows *db_inbound(struct db *db, const struct db_window *w);
/*
 * The ledger per host, ordered by host: key[0] host, n[0] chunks whose data overlaps the window,
 * n[1] their lines, n[2] their malformed lines, when[0] the host's newest data.
 */
struct db_rows *db_host_freshness(struct db *db, const struct db_window *w);

/*
 * Retention (purge). db_purge_hours deletes the rows of the hourly table t before cutoff,
 * db_purge_chunks the ledger rows whose data and ingestion are both before it, each in
 * autocommit batches of at most batch rows; with dry_run they only count. *n: the rows deleted
 * (or that would be). 0, or -1 (logged).
 */
int db_purge_hours(struct db *db, enum agg_table t, int64_t cutoff, unsigned batch, bool dry_run,
		   uint64_t *n);
int db_purge_chunks(struct db *db, int64_t cutoff, unsigned batch, bool dry_run, uint64_t *n);
/* The alert ledger's rows of periods before cutoff whose alert_command is not still to run. */
int db_purge_alerts(struct db *db, int64_t cutoff, unsigned batch, bool dry_run, uint64_t *n);

/*
 * The rows per purge batch: batch, or fewer when the server is a Galera node whose write-set
 * limits (wsrep_max_ws_rows, wsrep_max_ws_size) a DELETE of batch rows could exceed; such a
 * DELETE would fail whole (error 1180), and a large write set stalls every node while it is
 * certified and applied. 0 when the server did not answer (logged).
 */
unsigned db_purge_batch(struct db *db, unsigned batch);

#endif
