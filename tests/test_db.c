/*
 * db.c (and check_collect, which reads through it) against the real MariaDB of the test servers
 * (RW_MYCNF; a missing variable fails the test, it never skips). Each case works in a database of
 * its own, dropped at the end.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mysql.h>

#include "unit.h"

#include "agg.h"
#include "check_alerts.h"
#include "db.h"
#include "db_alerts.h"
#include "db_int.h"
#include "log.h"
#include "logtime.h"
#include "schema.h"

/* Rows go as multi-row text statements (the path of servers without the bulk protocol). */
static bool text_rows;

struct fixture {
	MYSQL *admin;
	char name[64];
	char cnf[64];
	struct db *db;
	struct agg *agg;
};

static MYSQL *admin_connect(const char *database)
{
	const char *cnf = getenv("RW_MYCNF");
	MYSQL *m;

	assert_non_null(cnf); /* run through scripts/test */
	m = mysql_init(NULL);
	assert_non_null(m);
	mysql_options(m, MYSQL_READ_DEFAULT_FILE, cnf);
	mysql_options(m, MYSQL_READ_DEFAULT_GROUP, "client");
	mysql_options(m, MYSQL_SET_CHARSET_NAME, "binary");
	if (mysql_real_connect(m, NULL, NULL, NULL, database, 0, NULL, 0) == NULL) {
		fail_msg("connect: %s", mysql_error(m));
	}
	return m;
}

static void admin_exec(MYSQL *m, const char *sql)
{
	if (mysql_query(m, sql) != 0) {
		fail_msg("%s: %s", sql, mysql_error(m));
	}
}

/* The first column of the first row, as a string (static buffer), or NULL for SQL NULL. */
static const char *admin_value(MYSQL *m, const char *sql)
{
	static char out[4096];
	MYSQL_RES *res;
	MYSQL_ROW row;
	unsigned long *len;

	admin_exec(m, sql);
	res = mysql_store_result(m);
	assert_non_null(res);
	row = mysql_fetch_row(res);
	assert_non_null(row);
	len = mysql_fetch_lengths(res);
	if (row[0] == NULL) {
		mysql_free_result(res);
		return NULL;
	}
	assert_true(len[0] < sizeof(out));
	memcpy(out, row[0], len[0]);
	out[len[0]] = '\0';
	mysql_free_result(res);
	return out;
}

static uint64_t admin_u64(MYSQL *m, const char *sql)
{
	const char *v = admin_value(m, sql);

	assert_non_null(v);
	return strtoull(v, NULL, 10);
}

/* A fresh database and an option file for it, then db_connect + db_migrate. */
static void fixture_init(struct fixture *f, const char *tag)
{
	char sql[256], line[512];
	FILE *in, *out;

	memset(f, 0, sizeof(*f));
	log_set_level(LOG_WARN);
	snprintf(f->name, sizeof(f->name), "relaywatch_tdb_%s_%d", tag, (int)getpid());
	f->admin = admin_connect(NULL);
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS `%s`", f->name);
	admin_exec(f->admin, sql);
	snprintf(sql, sizeof(sql), "CREATE DATABASE `%s`", f->name);
	admin_exec(f->admin, sql);
	snprintf(sql, sizeof(sql), "USE `%s`", f->name);
	admin_exec(f->admin, sql);

	snprintf(f->cnf, sizeof(f->cnf), "/tmp/rw-tdb-%d-%s.cnf", (int)getpid(), tag);
	in = fopen(getenv("RW_MYCNF"), "r");
	assert_non_null(in);
	out = fopen(f->cnf, "w");
	assert_non_null(out);
	assert_int_equal(chmod(f->cnf, 0600), 0);
	while (fgets(line, sizeof(line), in) != NULL) {
		if (strncmp(line, "database", 8) != 0) {
			fputs(line, out);
		}
	}
	fprintf(out, "database=%s\n", f->name);
	fclose(in);
	assert_int_equal(fclose(out), 0);

	bool bad_config;
	f->db = db_connect(f->cnf, &bad_config);
	assert_non_null(f->db);
	db_set_bulk(f->db, !text_rows);
	assert_int_equal(db_migrate(f->db), 0);
	f->agg = agg_create();
	assert_non_null(f->agg);
}

static void fixture_finish(struct fixture *f)
{
	char sql[256];

	db_destroy(f->db);
	agg_destroy(f->agg);
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS `%s`", f->name);
	admin_exec(f->admin, sql);
	mysql_close(f->admin);
	unlink(f->cnf);
}

static void chunk_init(struct db_chunk *c, struct scan_stats *st, char *id, unsigned seed)
{
	*c = (struct db_chunk){0};
	memset(st, 0, sizeof(*st));
	st->lines = 10 + seed;
	st->events = 5;
	st->malformed = 1;
	st->bytes = 1000 + seed;
	st->first_utc = 1390973534;
	st->last_utc = 1390977134;
	snprintf(id, DIGEST_HEX_LEN + 1, "%064x", seed);
	c->id_hex = id;
	c->host = SPAN_LIT("mx1");
	c->source = SPAN_LIT("/var/log/maillog.1");
	c->st = st;
}

static void add_event(struct agg *a, int64_t utc, const char *reason, uint64_t n)
{
	struct span f[4] = {SPAN_LIT("mx1"),
			    SPAN_LIT("smtp"),
			    SPAN_LIT("relaying rcpt"),
			    {reason, strlen(reason)}};

	assert_int_equal(agg_add(a, AGG_EVENT, utc, f, n), 0);
}

/* Adds n recipients that acct relayed, as its own sender, through host in the hour of utc. */
static void add_relay(struct agg *a, int64_t utc, const char *host, const char *acct, uint64_t n)
{
	struct span f[6] = {{host, strlen(host)}, SPAN_LIT("smtp"),      {acct, strlen(acct)},
			    {acct, strlen(acct)}, SPAN_LIT("192.0.2.1"), SPAN_LIT("example.com")};

	assert_int_equal(agg_add(a, AGG_RELAY, utc, f, n), 0);
}

/* Ingests the rows in f->agg as chunk_init's chunk of seed. */
static void ingest_rows(struct fixture *f, unsigned seed)
{
	struct db_chunk c;
	struct scan_stats st;
	char id[DIGEST_HEX_LEN + 1];

	chunk_init(&c, &st, id, seed);
	assert_int_equal(db_ingest_chunk(f->db, &c, f->agg), DB_OK);
}

static void migrate(void **state)
{
	struct fixture f;

	fixture_init(&f, "migrate");
	/* Again: nothing to do, nothing lost. */
	assert_int_equal(db_migrate(f.db), 0);
	assert_int_equal(admin_u64(f.admin, "SELECT version FROM schema_version WHERE id = 1"),
			 SCHEMA_VERSION);
	/* The tables of the schema, and schema_version. */
	assert_int_equal(admin_u64(f.admin, "SELECT COUNT(*) FROM information_schema.tables "
					    "WHERE table_schema = DATABASE()"),
			 SCHEMA_TABLES + 1);
	/* A schema from a newer relaywatch is refused, not downgraded. */
	admin_exec(f.admin, "UPDATE schema_version SET version = 99");
	assert_int_equal(db_migrate(f.db), -1);
	assert_int_equal(admin_u64(f.admin, "SELECT version FROM schema_version"), 99);
	fixture_finish(&f);
}

/* Every byte value, quotes, backslashes and NUL among them, comes back exactly. */
static void bytes_exact(void **state)
{
	struct fixture f;
	struct db_chunk c = {0};
	struct scan_stats st;
	char id[DIGEST_HEX_LEN + 1];
	char all[256], hex[600], sql[256];
	struct span rf[6];
	int i;

	fixture_init(&f, "bytes");
	for (i = 0; i < 256; i++) {
		all[i] = (char)i;
	}
	/* relay_hourly.sender holds 255 bytes: the 256th is cut, never rejected. */
	rf[0] = SPAN_LIT("mx1");
	rf[1] = SPAN_LIT("smtp");
	rf[2] = (struct span){all, 64};       /* auth_user: bytes 0..63 */
	rf[3] = (struct span){all, 256};      /* sender: 0..254 */
	rf[4] = (struct span){all + 192, 64}; /* remote_ip: 192..255 */
	rf[5] = SPAN_LIT("x'); DROP TABLE chunks; -- \\");
	assert_int_equal(agg_add(f.agg, AGG_RELAY, 1390973534, rf, 3), 0);
	chunk_init(&c, &st, id, 1);
	c.host = (struct span){all + 1, 255};
	assert_int_equal(db_ingest_chunk(f.db, &c, f.agg), DB_OK);
	/* The path asked for was the one taken: this server has the bulk protocol. */
	assert_int_equal(f.db->upsert[AGG_RELAY] != NULL, !text_rows);

	for (i = 0; i < 255; i++) {
		sprintf(hex + 2 * i, "%02X", i);
	}
	assert_string_equal(admin_value(f.admin, "SELECT HEX(sender) FROM relay_hourly"), hex);
	hex[128] = '\0';
	assert_string_equal(admin_value(f.admin, "SELECT HEX(auth_user) FROM relay_hourly"), hex);
	for (i = 0; i < 64; i++) {
		sprintf(hex + 2 * i, "%02X", 192 + i);
	}
	assert_string_equal(admin_value(f.admin, "SELECT HEX(remote_ip) FROM relay_hourly"), hex);
	assert_string_equal(admin_value(f.admin, "SELECT rcpt_domain FROM relay_hourly"),
			    "x'); DROP TABLE chunks; -- \\");
	for (i = 0; i < 255; i++) {
		sprintf(hex + 2 * i, "%02X", i + 1);
	}
	assert_string_equal(admin_value(f.admin, "SELECT HEX(host) FROM chunks"), hex);
	assert_int_equal(admin_u64(f.admin, "SELECT n FROM relay_hourly"), 3);
	snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM chunks WHERE chunk_id = '%s'", id);
	assert_int_equal(admin_u64(f.admin, sql), 1);
	assert_string_equal(admin_value(f.admin, "SELECT hour_utc FROM relay_hourly"),
			    "2014-01-29 05:00:00");
	assert_string_equal(admin_value(f.admin, "SELECT first_utc FROM chunks"),
			    "2014-01-29 05:32:14");
	fixture_finish(&f);
}

/* A chunk already in the ledger changes nothing; upserts add up across chunks. */
static void duplicate(void **state)
{
	struct fixture f;
	struct db_chunk c = {0};
	struct scan_stats st;
	char id[DIGEST_HEX_LEN + 1];

	fixture_init(&f, "dup");
	add_event(f.agg, 1390973534, "client allowed to relay", 7);
	chunk_init(&c, &st, id, 2);
	assert_int_equal(db_chunk_exists(f.db, id), 0);
	assert_int_equal(db_ingest_chunk(f.db, &c, f.agg), DB_OK);
	assert_int_equal(db_chunk_exists(f.db, id), 1);
	assert_int_equal(db_ingest_chunk(f.db, &c, f.agg), DB_DUPLICATE);
	assert_int_equal(admin_u64(f.admin, "SELECT SUM(n) FROM event_hourly"), 7);
	chunk_init(&c, &st, id, 3);
	assert_int_equal(db_ingest_chunk(f.db, &c, f.agg), DB_OK);
	assert_int_equal(admin_u64(f.admin, "SELECT SUM(n) FROM event_hourly"), 14);
	assert_int_equal(admin_u64(f.admin, "SELECT COUNT(*) FROM event_hourly"), 1);
	assert_int_equal(admin_u64(f.admin, "SELECT COUNT(*) FROM chunks"), 2);
	/* Not a chunk id: refused before SQL. */
	assert_int_equal(db_chunk_exists(f.db, "' OR 1=1 -- "), -1);
	fixture_finish(&f);
}

/* Many long rows: several ~1 MB statements in one transaction, every row written once. */
static void big_chunk(void **state)
{
	struct fixture f;
	struct db_chunk c = {0};
	struct scan_stats st;
	char id[DIGEST_HEX_LEN + 1];
	char sender[256];
	struct span rf[6];
	uint64_t total = 0;
	int i;

	fixture_init(&f, "big");
	memset(sender, '\'', sizeof(sender)); /* every byte doubles when escaped */
	for (i = 0; i < 12000; i++) {
		snprintf(sender, 12, "%011d", i);
		sender[11] = '\'';
		rf[0] = SPAN_LIT("mx1");
		rf[1] = SPAN_LIT("smtp");
		rf[2] = SPAN_LIT("user@example.org");
		rf[3] = (struct span){sender, 255};
		rf[4] = SPAN_LIT("192.0.2.1");
		rf[5] = SPAN_LIT("example.com");
		assert_int_equal(agg_add(f.agg, AGG_RELAY, 1390973534 + 3600 * (i % 7), rf,
					 (uint64_t)(i % 5 + 1)),
				 0);
		total += (uint64_t)(i % 5 + 1);
	}
	chunk_init(&c, &st, id, 4);
	assert_int_equal(db_ingest_chunk(f.db, &c, f.agg), DB_OK);
	assert_int_equal(admin_u64(f.admin, "SELECT COUNT(*) FROM relay_hourly"), 12000);
	assert_int_equal(admin_u64(f.admin, "SELECT SUM(n) FROM relay_hourly"), total);
	assert_int_equal(admin_u64(f.admin, "SELECT MIN(LENGTH(sender)) FROM relay_hourly"), 255);
	fixture_finish(&f);
}

/*
 * A pack's files: counted with the chunk; another chunk holding one of them (a pack rebuilt
 * without a deleted file) is a duplicate that writes nothing; the rows go with their chunk.
 */
static void pack_parts(void **state)
{
	struct fixture f;
	struct db_chunk c = {0};
	struct scan_stats st;
	char id[DIGEST_HEX_LEN + 1];
	char parts[3][DIGEST_HEX_LEN + 1];

	fixture_init(&f, "parts");
	for (int i = 0; i < 3; i++) {
		snprintf(parts[i], sizeof(parts[i]), "%064x", 0x100 + i);
	}
	add_event(f.agg, 1390973534, "a", 3);
	chunk_init(&c, &st, id, 1);
	c.part_ids = parts;
	c.nparts = 2;
	assert_int_equal(db_ingest_chunk(f.db, &c, f.agg), DB_OK);
	assert_int_equal(admin_u64(f.admin, "SELECT COUNT(*) FROM chunk_parts"), 2);

	/* Another chunk id, the second file again: nothing of it is written. */
	chunk_init(&c, &st, id, 2);
	c.part_ids = parts + 1;
	c.nparts = 1;
	assert_int_equal(db_ingest_chunk(f.db, &c, f.agg), DB_DUPLICATE);
	assert_int_equal(admin_u64(f.admin, "SELECT COUNT(*) FROM chunks"), 1);
	assert_int_equal(admin_u64(f.admin, "SELECT SUM(n) FROM event_hourly"), 3);

	/* A new file is counted. */
	chunk_init(&c, &st, id, 3);
	c.part_ids = parts + 2;
	c.nparts = 1;
	assert_int_equal(db_ingest_chunk(f.db, &c, f.agg), DB_OK);
	assert_int_equal(admin_u64(f.admin, "SELECT SUM(n) FROM event_hourly"), 6);

	/* purge deletes ledger rows; their files' rows follow. */
	admin_exec(f.admin, "DELETE FROM chunks WHERE chunk_id = "
			    "'0000000000000000000000000000000000000000000000000000000000000001'");
	assert_int_equal(admin_u64(f.admin, "SELECT COUNT(*) FROM chunk_parts"), 1);
	fixture_finish(&f);
}

/*
 * A pack some of whose files another chunk counted first (the pack rebuilt without a deleted
 * file got there first): DB_PARTIAL names them and writes nothing; called again without them,
 * the others are counted under this chunk; a pack all of whose files are counted is a
 * duplicate.
 */
static void pack_partial(void **state)
{
	struct fixture f;
	struct db_chunk c = {0};
	struct scan_stats st;
	char id[DIGEST_HEX_LEN + 1];
	char parts[3][DIGEST_HEX_LEN + 1];
	bool counted[3] = {false};

	fixture_init(&f, "partial");
	for (int i = 0; i < 3; i++) {
		snprintf(parts[i], sizeof(parts[i]), "%064x", 0x200 + i);
	}
	/* The rebuilt pack: the second file alone. */
	add_event(f.agg, 1390973534, "a", 3);
	chunk_init(&c, &st, id, 1);
	c.part_ids = parts + 1;
	c.nparts = 1;
	c.counted = counted;
	assert_int_equal(db_ingest_chunk(f.db, &c, f.agg), DB_OK);

	/* The whole pack: its second file is found, nothing is written. */
	chunk_init(&c, &st, id, 2);
	c.part_ids = parts;
	c.nparts = 3;
	c.counted = counted;
	assert_int_equal(db_ingest_chunk(f.db, &c, f.agg), DB_PARTIAL);
	assert_false(counted[0]);
	assert_true(counted[1]);
	assert_false(counted[2]);
	assert_int_equal(admin_u64(f.admin, "SELECT COUNT(*) FROM chunks"), 1);
	assert_int_equal(admin_u64(f.admin, "SELECT COUNT(*) FROM chunk_parts"), 1);
	assert_int_equal(admin_u64(f.admin, "SELECT SUM(n) FROM event_hourly"), 3);

	/* Again, scanned without the second file: the others count under this chunk. */
	agg_reset(f.agg);
	add_event(f.agg, 1390973534, "a", 4);
	assert_int_equal(db_ingest_chunk(f.db, &c, f.agg), DB_OK);
	assert_int_equal(admin_u64(f.admin, "SELECT SUM(n) FROM event_hourly"), 7);
	assert_int_equal(admin_u64(f.admin,
				   "SELECT COUNT(*) FROM chunk_parts WHERE chunk_id = "
				   "'00000000000000000000000000000000000000000000000000000000"
				   "00000002'"),
			 2);

	/* A third chunk of the first and last files: all counted, a duplicate. */
	memset(counted, 0, sizeof(counted));
	chunk_init(&c, &st, id, 3);
	memcpy(parts[1], parts[2], sizeof(parts[1]));
	c.part_ids = parts;
	c.nparts = 2;
	c.counted = counted;
	assert_int_equal(db_ingest_chunk(f.db, &c, f.agg), DB_DUPLICATE);
	assert_true(counted[0] && counted[1]);
	assert_int_equal(admin_u64(f.admin, "SELECT COUNT(*) FROM chunks"), 2);
	assert_int_equal(admin_u64(f.admin, "SELECT SUM(n) FROM event_hourly"), 7);
	fixture_finish(&f);
}

/* Stamps outside DATETIME's range are stored under the undated hour, never rejected. */
static void hour_range(void **state)
{
	struct fixture f;
	struct db_chunk c = {0};
	struct scan_stats st;
	char id[DIGEST_HEX_LEN + 1];

	fixture_init(&f, "hours");
	add_event(f.agg, 0, "undated", 1);
	add_event(f.agg, 999999999999LL, "year 33658", 2);
	add_event(f.agg, -62000000000LL, "year 5", 3);
	add_event(f.agg, 253402300799LL, "last hour", 4);
	chunk_init(&c, &st, id, 5);
	st.first_utc = -62000000000LL;
	st.last_utc = LOGTIME_NONE;
	assert_int_equal(db_ingest_chunk(f.db, &c, f.agg), DB_OK);
	assert_int_equal(admin_u64(f.admin, "SELECT SUM(n) FROM event_hourly"), 10);
	assert_int_equal(admin_u64(f.admin, "SELECT COUNT(*) FROM event_hourly WHERE hour_utc = "
					    "'1970-01-01 00:00:00'"),
			 3);
	assert_string_equal(admin_value(f.admin, "SELECT hour_utc FROM event_hourly WHERE reason "
						 "= 'last hour'"),
			    "9999-12-31 23:00:00");
	assert_null(admin_value(f.admin, "SELECT first_utc FROM chunks"));
	assert_null(admin_value(f.admin, "SELECT last_utc FROM chunks"));
	fixture_finish(&f);
}

struct holder {
	MYSQL *m;
	unsigned hold_ms;
};

static void *release_later(void *arg)
{
	struct holder *h = arg;
	struct timespec ts = {h->hold_ms / 1000, (long)(h->hold_ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
	mysql_query(h->m, "ROLLBACK");
	return NULL;
}

/*
 * Another transaction holds a row the chunk upserts: the first attempts fail with lock wait
 * timeout (1205), the transaction is rolled back and replayed, and commits once the lock is
 * gone, with every count exactly once.
 */
static void lock_wait_retry(void **state)
{
	struct fixture f;
	struct db_chunk c = {0};
	struct scan_stats st;
	char id[DIGEST_HEX_LEN + 1];
	struct holder h;
	pthread_t t;

	fixture_init(&f, "lockwait");
	add_event(f.agg, 1390973534, "a", 1);
	add_event(f.agg, 1390973534, "held", 2);
	add_event(f.agg, 1390973534, "z", 3);
	assert_int_equal(mysql_query(db_handle(f.db), "SET SESSION innodb_lock_wait_timeout = 1"),
			 0);
	h.m = admin_connect(f.name);
	admin_exec(h.m, "START TRANSACTION");
	admin_exec(h.m, "INSERT INTO event_hourly VALUES ('2014-01-29 05:00:00', 'mx1', 'smtp', "
			"'relaying rcpt', 'held', 100)");
	h.hold_ms = 1500;
	assert_int_equal(pthread_create(&t, NULL, release_later, &h), 0);
	chunk_init(&c, &st, id, 6);
	assert_int_equal(db_ingest_chunk(f.db, &c, f.agg), DB_OK);
	pthread_join(t, NULL);
	mysql_close(h.m);
	assert_int_equal(admin_u64(f.admin, "SELECT SUM(n) FROM event_hourly"), 6);
	assert_int_equal(admin_u64(f.admin, "SELECT COUNT(*) FROM chunks"), 1);
	fixture_finish(&f);
}

/* The server drops the connection (KILL): db.c reconnects by itself and replays. */
static void connection_killed(void **state)
{
	struct fixture f;
	struct db_chunk c = {0};
	struct scan_stats st;
	char id[DIGEST_HEX_LEN + 1];
	char sql[64];

	fixture_init(&f, "killed");
	add_event(f.agg, 1390973534, "a", 5);
	snprintf(sql, sizeof(sql), "KILL %lu", mysql_thread_id(db_handle(f.db)));
	admin_exec(f.admin, sql);
	chunk_init(&c, &st, id, 7);
	assert_int_equal(db_ingest_chunk(f.db, &c, f.agg), DB_OK);
	assert_int_equal(admin_u64(f.admin, "SELECT SUM(n) FROM event_hourly"), 5);
	/* The new session has the same settings. */
	assert_int_equal(mysql_query(db_handle(f.db), "SELECT @@SESSION.time_zone"), 0);
	{
		MYSQL_RES *res = mysql_store_result(db_handle(f.db));
		MYSQL_ROW row = mysql_fetch_row(res);

		assert_string_equal(row[0], "+00:00");
		mysql_free_result(res);
	}
	/* Killed again, now with the ledger lookup. */
	snprintf(sql, sizeof(sql), "KILL %lu", mysql_thread_id(db_handle(f.db)));
	admin_exec(f.admin, sql);
	assert_int_equal(db_chunk_exists(f.db, id), 1);
	fixture_finish(&f);
}

/* A statement error that is not transient: DB_ERROR, and the ledger row is rolled back too. */
static void error_rolls_back(void **state)
{
	struct fixture f;
	struct db_chunk c = {0};
	struct scan_stats st;
	char id[DIGEST_HEX_LEN + 1];
	struct span df[5] = {SPAN_LIT("mx1"), SPAN_LIT("smtp"), SPAN_LIT("192.0.2.9"),
			     SPAN_LIT("a@b"), SPAN_LIT("c.example")};

	fixture_init(&f, "error");
	add_event(f.agg, 1390973534, "a", 5);
	assert_int_equal(agg_add(f.agg, AGG_DENIED, 1390973534, df, 1), 0);
	admin_exec(f.admin, "DROP TABLE denied_hourly");
	chunk_init(&c, &st, id, 8);
	assert_int_equal(db_ingest_chunk(f.db, &c, f.agg), DB_ERROR);
	assert_int_equal(admin_u64(f.admin, "SELECT COUNT(*) FROM chunks"), 0);
	assert_int_equal(admin_u64(f.admin, "SELECT COUNT(*) FROM event_hourly"), 0);
	/* migrate repairs it, and the same chunk then goes in whole. */
	assert_int_equal(db_migrate(f.db), 0);
	admin_exec(f.admin, "UPDATE schema_version SET version = 0");
	assert_int_equal(db_migrate(f.db), 0);
	assert_int_equal(db_ingest_chunk(f.db, &c, f.agg), DB_OK);
	assert_int_equal(admin_u64(f.admin, "SELECT SUM(n) FROM denied_hourly"), 1);
	assert_int_equal(admin_u64(f.admin, "SELECT SUM(n) FROM event_hourly"), 5);
	fixture_finish(&f);
}

/*
 * The stream of overlap.c, driven by hand: hour 1 streamed, then a late event of hour 1 and
 * hour 2; the finish adds only what was not sent, and the ledger row commits with them.
 */
static void stream_finish(void **state)
{
	struct fixture f;
	struct db_chunk c;
	struct scan_stats st;
	char id[DIGEST_HEX_LEN + 1];
	struct agg_batch *b = agg_batch_create(64 * 1024);

	fixture_init(&f, "stream");
	assert_non_null(b);
	agg_track(f.agg, true);
	add_event(f.agg, 1390973534, "a", 5);
	add_event(f.agg, 1390973534, "b", 1);
	/* Fewer rows than asked for: nothing taken. */
	assert_int_equal(agg_take(f.agg, b, 1390978800, 3), 0);
	assert_int_equal(agg_take(f.agg, b, 1390978800, 1), 2);
	assert_int_equal(db_stream_rows(f.db, b), 0);
	/* Streamed, not committed: nobody else sees the rows. */
	assert_int_equal(admin_u64(f.admin, "SELECT COUNT(*) FROM event_hourly"), 0);
	add_event(f.agg, 1390973534, "a", 2);
	add_event(f.agg, 1390980000, "a", 3);
	assert_int_equal(agg_take(f.agg, b, 1390978800, 1), 1); /* the late one */
	assert_int_equal(b->row[0]->n, 2);
	assert_int_equal(db_stream_rows(f.db, b), 0);
	add_event(f.agg, 1390973534, "b", 4);
	chunk_init(&c, &st, id, 11);
	assert_int_equal(db_ingest_chunk(f.db, &c, f.agg), DB_OK);
	assert_int_equal(admin_u64(f.admin, "SELECT SUM(n) FROM event_hourly"), 15);
	assert_int_equal(admin_u64(f.admin, "SELECT n FROM event_hourly WHERE reason = 'a' AND "
					    "hour_utc = '2014-01-29 05:00:00'"),
			 7);
	assert_int_equal(admin_u64(f.admin, "SELECT COUNT(*) FROM chunks"), 1);
	/* The same chunk again, streamed: rolled back at its ledger row. */
	agg_reset(f.agg);
	agg_track(f.agg, true);
	add_event(f.agg, 1390973534, "a", 9);
	assert_int_equal(agg_take(f.agg, b, 1390978800, 1), 1);
	assert_int_equal(db_stream_rows(f.db, b), 0);
	assert_int_equal(db_ingest_chunk(f.db, &c, f.agg), DB_DUPLICATE);
	assert_int_equal(admin_u64(f.admin, "SELECT SUM(n) FROM event_hourly"), 15);
	/* A stream that is abandoned leaves nothing. */
	assert_int_equal(agg_take(f.agg, b, 1390978800, 0), 0);
	add_event(f.agg, 1390973534, "a", 1);
	assert_int_equal(agg_take(f.agg, b, 1390978800, 1), 1);
	assert_int_equal(db_stream_rows(f.db, b), 0);
	db_stream_abort(f.db);
	assert_int_equal(admin_u64(f.admin, "SELECT SUM(n) FROM event_hourly"), 15);
	agg_batch_destroy(b);
	fixture_finish(&f);
}

/*
 * The connection killed while the stream is open: the next batch fails, and db_ingest_chunk
 * replays the whole chunk from the table on a new connection, exactly once.
 */
static void stream_killed(void **state)
{
	struct fixture f;
	struct db_chunk c;
	struct scan_stats st;
	char id[DIGEST_HEX_LEN + 1];
	char sql[64];
	struct agg_batch *b = agg_batch_create(64 * 1024);

	fixture_init(&f, "streamkill");
	assert_non_null(b);
	agg_track(f.agg, true);
	add_event(f.agg, 1390973534, "a", 5);
	assert_int_equal(agg_take(f.agg, b, 1390978800, 1), 1);
	assert_int_equal(db_stream_rows(f.db, b), 0);
	snprintf(sql, sizeof(sql), "KILL %lu", mysql_thread_id(db_handle(f.db)));
	admin_exec(f.admin, sql);
	add_event(f.agg, 1390980000, "a", 3);
	assert_int_equal(agg_take(f.agg, b, 1390985000, 1), 1);
	assert_int_equal(db_stream_rows(f.db, b), -1);
	/* Once failed, the stream takes nothing more. */
	assert_int_equal(db_stream_rows(f.db, b), -1);
	add_event(f.agg, 1390980000, "a", 1);
	chunk_init(&c, &st, id, 12);
	assert_int_equal(db_ingest_chunk(f.db, &c, f.agg), DB_OK);
	assert_int_equal(admin_u64(f.admin, "SELECT SUM(n) FROM event_hourly"), 9);
	assert_int_equal(admin_u64(f.admin, "SELECT COUNT(*) FROM chunks"), 1);
	agg_batch_destroy(b);
	fixture_finish(&f);
}

/* The hour of chunk_init's lines. */
#define CHUNK_HOUR 1390971600

/* check_collect over CHUNK_HOUR, stale not judged, into out (initialised here). */
static enum check_collect_result collect_hour(struct fixture *f, const struct check_rules *r,
					      unsigned flags, int64_t *first,
					      struct check_alerts *out)
{
	check_alerts_init(out);
	return check_collect(f->db, r, CHUNK_HOUR, CHUNK_HOUR + 3600, flags, CHECK_NO_STALE, NULL,
			     first, out);
}

/*
 * check_collect reads the window's account hours only when something uses them: with every
 * account rule off (notify's daily pass judges relay_ips alone) it reads nothing, while the
 * plugin's performance data (CHECK_PERF) and each account rule still read them. The table moved
 * out of the way makes a read fail, so that a read shows.
 */
static void collect_accounts_read(void **state)
{
	struct fixture f;
	const struct check_level off = {0, 0}, on = {500, 2000};
	struct check_rules r, one;
	struct check_alerts out;
	int64_t first = CHECK_FIRST_HOUR_UNREAD;

	fixture_init(&f, "collect");
	add_relay(f.agg, 1390973534, "mx1", "a@example.org", 700);
	ingest_rows(&f, 9);
	check_rules_init(&r);
	r.relay_rcpt = r.relay_domains = r.relay_ips = r.sender_mismatch = r.denied = off;
	r.baseline_factor = r.stale = off;

	/* The performance data reads the hours: the account's one is the busiest. */
	assert_int_equal(collect_hour(&f, &r, CHECK_PERF, &first, &out), CHECK_COLLECT_OK);
	assert_int_equal(out.max_account_rcpt, 700);
	assert_int_equal(out.count, 0);
	check_alerts_finish(&out);

	admin_exec(f.admin, "RENAME TABLE relay_hourly TO relay_hourly_away");
	/* Every rule off and no performance data: nothing is read, so nothing fails. */
	assert_int_equal(collect_hour(&f, &r, 0, &first, &out), CHECK_COLLECT_OK);
	assert_int_equal(out.max_account_rcpt, 0);
	check_alerts_finish(&out);
	/* The performance data, or any one account rule, reads them (and so fails here). */
	for (int i = 0; i < 4; i++) {
		one = r;
		one.relay_rcpt = i == 0 ? on : off;
		one.relay_domains = i == 1 ? on : off;
		one.baseline_factor = i == 2 ? on : off;
		assert_int_equal(collect_hour(&f, &one, i == 3 ? CHECK_PERF : 0, &first, &out),
				 CHECK_COLLECT_ERROR);
		check_alerts_finish(&out);
	}
	admin_exec(f.admin, "RENAME TABLE relay_hourly_away TO relay_hourly");
	check_rules_finish(&r);
	fixture_finish(&f);
}

/* The default rules with every one but the baseline turned off. */
static void rules_baseline_only(struct check_rules *r)
{
	check_rules_init(r);
	r->relay_rcpt = r->relay_domains = r->relay_ips = r->sender_mismatch = r->denied =
		r->stale = (struct check_level){0, 0};
}

/*
 * The first hour of data, which the baseline needs, is read once per run: the first check_collect
 * that needs it reads it into the caller's variable, and the later ones of the run take it from
 * there; without the caller's variable (NULL) each call reads it. The table it is read from moved
 * out of the way makes a read fail, so that a read shows.
 */
static void collect_first_hour_once(void **state)
{
	struct fixture f;
	int64_t first = CHECK_FIRST_HOUR_UNREAD;
	struct check_rules r;
	struct check_alerts out;

	fixture_init(&f, "first");
	add_event(f.agg, 1390973534, "a", 1);
	add_relay(f.agg, 1390973534, "mx1", "a@example.org", 700);
	ingest_rows(&f, 9);
	/* The baseline alone: a's 700 recipients make it a candidate. */
	rules_baseline_only(&r);

	assert_int_equal(collect_hour(&f, &r, 0, &first, &out), CHECK_COLLECT_OK);
	assert_int_equal(first, CHUNK_HOUR);
	/* Less than baseline_days of history: no baseline is judged. */
	assert_int_equal(out.count, 0);
	check_alerts_finish(&out);
	/* The run's next windows do not read it again; a new run does. */
	admin_exec(f.admin, "RENAME TABLE event_hourly TO event_hourly_away");
	assert_int_equal(collect_hour(&f, &r, 0, &first, &out), CHECK_COLLECT_OK);
	check_alerts_finish(&out);
	first = CHECK_FIRST_HOUR_UNREAD;
	assert_int_equal(collect_hour(&f, &r, 0, &first, &out), CHECK_COLLECT_ERROR);
	assert_int_equal(first, CHECK_FIRST_HOUR_UNREAD);
	check_alerts_finish(&out);
	/* NULL (check's and report's one window): that call reads it for itself. */
	assert_int_equal(collect_hour(&f, &r, 0, NULL, &out), CHECK_COLLECT_ERROR);
	check_alerts_finish(&out);
	admin_exec(f.admin, "RENAME TABLE event_hourly_away TO event_hourly");
	assert_int_equal(collect_hour(&f, &r, 0, NULL, &out), CHECK_COLLECT_OK);
	check_alerts_finish(&out);
	check_rules_finish(&r);
	fixture_finish(&f);
}

/*
 * The baseline's candidates are each account once, however many hosts it relays through: 250
 * accounts on two hosts (more than one IN list of the second pass) make one alert per host and
 * account, none twice.
 */
static void collect_candidates_once(void **state)
{
	struct fixture f;
	char acct[32];
	int64_t first = CHECK_FIRST_HOUR_UNREAD;
	struct check_rules r;
	struct check_alerts out;
	size_t baseline = 0;

	fixture_init(&f, "cand");
	/* Data since long before: the baseline has its whole history (all quiet hours). */
	add_event(f.agg, CHUNK_HOUR - 10 * 86400, "a", 1);
	for (int h = 0; h < 2; h++) {
		for (int i = 0; i < 250; i++) {
			snprintf(acct, sizeof(acct), "a%03d@example.org", i);
			add_relay(f.agg, CHUNK_HOUR + 60, h ? "mx2" : "mx1", acct, 150);
		}
	}
	ingest_rows(&f, 9);
	rules_baseline_only(&r);

	assert_int_equal(collect_hour(&f, &r, 0, &first, &out), CHECK_COLLECT_OK);
	check_alerts_sort(&out);
	for (size_t i = 0; i < out.count; i++) {
		const struct check_alert *a = &out.v[i], *b = i ? &out.v[i - 1] : NULL;
		baseline += a->rule == CHECK_BASELINE;
		assert_false(b != NULL && a->status == b->status && a->rule == b->rule &&
			     a->host_len == b->host_len && a->subject_len == b->subject_len &&
			     memcmp(a->host, b->host, a->host_len) == 0 &&
			     memcmp(a->subject, b->subject, a->subject_len) == 0);
	}
	assert_int_equal(baseline, 500);
	assert_int_equal(out.count, 500);
	check_alerts_finish(&out);
	check_rules_finish(&r);
	fixture_finish(&f);
}

/* The width of column name of table t (a VARBINARY one). */
static unsigned width_of(enum schema_table_id t, const char *name)
{
	for (unsigned i = 0; i < schema_tables[t].ncols; i++) {
		if (strcmp(schema_tables[t].col[i].name, name) == 0) {
			return schema_tables[t].col[i].width;
		}
	}
	fail_msg("%s has no column %s", schema_name(t), name);
	return 0;
}

/*
 * The alert ledger keeps host and subject whole: its columns are as wide as every column an
 * alert takes them from, and two alerts whose names differ only in their last byte are two.
 */
static void alert_long_names(void **state)
{
	static const struct {
		enum schema_table_id t;
		const char *col;
	} hosts[] = {{SCHEMA_RELAY_HOURLY, "host"},
		     {SCHEMA_DENIED_HOURLY, "host"},
		     {SCHEMA_CHUNKS, "host"}},
	  subjects[] = {{SCHEMA_RELAY_HOURLY, "auth_user"},
			{SCHEMA_DENIED_HOURLY, "remote_ip"},
			{SCHEMA_CHUNKS, "host"}};
	const struct schema_table *al = &schema_tables[SCHEMA_ALERTS];
	unsigned hw = al->col[SCHEMA_ALERT_HOST].width, sw = al->col[SCHEMA_ALERT_SUBJECT].width;
	char host[2][256], subject[2][256];
	struct fixture f;
	bool is_new;

	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		assert_true(width_of(hosts[i].t, hosts[i].col) <= hw);
		assert_true(width_of(subjects[i].t, subjects[i].col) <= sw);
	}
	assert_int_equal(hw, sizeof(host[0]) - 1);
	assert_int_equal(sw, sizeof(subject[0]) - 1);
	for (int k = 0; k < 2; k++) {
		memset(host[k], 'h', hw);
		memset(subject[k], 's', sw);
		host[k][hw - 1] = subject[k][sw - 1] = (char)('0' + k);
	}

	fixture_init(&f, "alerts");
	assert_int_equal(db_alerts_begin(f.db), 0);
	for (int k = 0; k < 4; k++) {
		/* (host 0, subject 0), (0, 1), (1, 0), then (0, 0) again */
		struct db_alert a = {
			.rule = "relay_rcpt",
			.host = {host[k == 2], hw},
			.subject = {subject[k == 1], sw},
			.period = 1390971600,
			.level = 2,
			.value = 700,
			.threshold = 500,
		};
		assert_int_equal(db_alerts_record(f.db, &a, false, &is_new), 0);
		assert_int_equal(is_new, k < 3);
	}
	assert_int_equal(db_alerts_commit(f.db), 0);
	assert_int_equal(admin_u64(f.admin, "SELECT COUNT(*) FROM alerts"), 3);
	assert_int_equal(admin_u64(f.admin, "SELECT COUNT(*) FROM alerts WHERE LENGTH(host) = 255"
					    " AND LENGTH(subject) = 255"),
			 3);
	assert_int_equal(admin_u64(f.admin,
				   "SELECT COUNT(DISTINCT RIGHT(host, 1), RIGHT(subject, 1))"
				   " FROM alerts"),
			 3);
	fixture_finish(&f);
}

/* A missing or group-writable option file is refused before any connection. */
static void defaults_file_checked(void **state)
{
	char path[] = "/tmp/rw-tdb-cnf-XXXXXX";
	int fd;
	bool bad_config = false;

	log_set_level(LOG_ERROR);
	assert_null(db_connect("/nonexistent/my.cnf", &bad_config));
	assert_true(bad_config);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0666), 0);
	close(fd);
	bad_config = false;
	assert_null(db_connect(path, &bad_config));
	assert_true(bad_config);
	unlink(path);
}

/* The cases whose rows could go either way, on the text path. */
static void on_text_path(void **state, void (*test)(void **))
{
	text_rows = true;
	test(state);
	text_rows = false;
}

static void bytes_exact_text(void **state)
{
	on_text_path(state, bytes_exact);
}

static void duplicate_text(void **state)
{
	on_text_path(state, duplicate);
}

static void big_chunk_text(void **state)
{
	on_text_path(state, big_chunk);
}

static void stream_killed_text(void **state)
{
	on_text_path(state, stream_killed);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(migrate),
	cmocka_unit_test(bytes_exact),
	cmocka_unit_test(duplicate),
	cmocka_unit_test(big_chunk),
	cmocka_unit_test(hour_range),
	cmocka_unit_test(lock_wait_retry),
	cmocka_unit_test(connection_killed),
	cmocka_unit_test(error_rolls_back),
	cmocka_unit_test(defaults_file_checked),
	cmocka_unit_test(pack_parts),
	cmocka_unit_test(pack_partial),
	cmocka_unit_test(stream_finish),
	cmocka_unit_test(stream_killed),
	cmocka_unit_test(bytes_exact_text),
	cmocka_unit_test(duplicate_text),
	cmocka_unit_test(big_chunk_text),
	cmocka_unit_test(stream_killed_text),
	cmocka_unit_test(collect_accounts_read),
	cmocka_unit_test(collect_first_hour_once),
	cmocka_unit_test(collect_candidates_once),
	cmocka_unit_test(alert_long_names),
};

UNIT_MAIN("test_db", tests)
