#include <inttypes.h>
#include <string.h>

#include "db_int.h"
#include "db_sql.h"
#include "log.h"
#include "schema.h"

/*
 * The read-side queries of the rules and the report. Each one builds its statement with
 * db_sql_* (byte strings as hex literals only) and hands back its rows decoded (db_sql_rows).
 */

/* A statement that is complete once built: its rows, then the text is freed. */
static struct db_rows *run(struct db *db, struct db_sql *q, const char *layout)
{
	struct db_rows *rs = db_sql_rows(db, q, layout);

	db_sql_finish(q);
	return rs;
}

/* ---- for the rules ---- */

struct db_rows *db_account_hours(struct db *db, const struct db_window *w,
				 const struct span *accounts, size_t count)
{
	struct db_sql q;

	db_sql_init(&q);
	if (count == 0) {
		db_sql_add(&q,
			   "SELECT host, auth_user, hour_utc, SUM(n), COUNT(DISTINCT rcpt_domain)"
			   " FROM " SCHEMA_RELAY_HOURLY_NAME);
		db_sql_window(&q, w);
		db_sql_add(&q, " AND auth_user <> ''");
	} else {
		db_sql_add(&q, "SELECT host, auth_user, hour_utc, SUM(n)"
			       " FROM " SCHEMA_RELAY_HOURLY_NAME);
		db_sql_window(&q, w);
		db_sql_add(&q, " AND auth_user IN (");
		db_sql_list(&q, accounts, count);
		db_sql_add(&q, ")");
	}
	db_sql_add(&q, " GROUP BY host, auth_user, hour_utc ORDER BY host, auth_user, hour_utc");
	return run(db, &q, "kktnn");
}

/*
 * The remote network of an address, for relay_ips: its /24 for IPv4 (IPv4-mapped IPv6 too), its
 * /48 for IPv6, the text itself when the server cannot read it as an address. A user who roams
 * (home, office, phone, hotel) moves among a few networks a day, each often with a new address;
 * a stolen password is used from hosts scattered over many networks. Counting networks tells
 * the two apart, counting addresses does not.
 */
#define SQL_NETWORK                                                                                \
	"COALESCE(CASE WHEN LENGTH(INET6_ATON(remote_ip)) = 4"                                     \
	" THEN CONCAT('4', LEFT(INET6_ATON(remote_ip), 3))"                                        \
	" WHEN LEFT(INET6_ATON(remote_ip), 12) = X'00000000000000000000FFFF'"                      \
	" THEN CONCAT('4', SUBSTRING(INET6_ATON(remote_ip), 13, 3))"                               \
	" ELSE CONCAT('6', LEFT(INET6_ATON(remote_ip), 6)) END, CONCAT('?', remote_ip))"

struct db_rows *db_account_ips(struct db *db, const struct db_window *w, bool one_day, uint64_t min)
{
	struct db_sql q;

	db_sql_init(&q);
	if (one_day) {
		struct db_window day = {w->until - 86400, w->until, w->host};
		db_sql_add(&q, "SELECT host, auth_user, ");
		db_sql_time(&q, day.since);
		db_sql_add(&q, ", COUNT(DISTINCT " SQL_NETWORK ") FROM " SCHEMA_RELAY_HOURLY_NAME);
		db_sql_window(&q, &day);
		db_sql_add(&q, " AND auth_user <> '' GROUP BY host, auth_user");
	} else {
		db_sql_add(&q, "SELECT host, auth_user, CAST(DATE(hour_utc) AS DATETIME) AS d,"
			       " COUNT(DISTINCT " SQL_NETWORK ") FROM " SCHEMA_RELAY_HOURLY_NAME);
		db_sql_window(&q, w);
		db_sql_add(&q, " AND auth_user <> '' GROUP BY d, host, auth_user");
	}
	db_sql_add(&q, " HAVING COUNT(DISTINCT " SQL_NETWORK ") >= %" PRIu64, min);
	return run(db, &q, "kktn");
}

struct db_rows *db_sender_hours(struct db *db, const struct db_window *w)
{
	struct db_sql q;

	db_sql_init(&q);
	db_sql_add(&q, "SELECT hour_utc, host, auth_user, sender, SUM(n)"
		       " FROM " SCHEMA_RELAY_HOURLY_NAME);
	db_sql_window(&q, w);
	db_sql_add(&q, " AND auth_user <> '' GROUP BY hour_utc, host, auth_user, sender"
		       " ORDER BY hour_utc, host, auth_user");
	return run(db, &q, "tkkkn");
}

struct db_rows *db_denied_hours(struct db *db, const struct db_window *w, uint64_t min)
{
	struct db_sql q;

	db_sql_init(&q);
	db_sql_add(&q, "SELECT host, remote_ip, hour_utc, SUM(n) FROM " SCHEMA_DENIED_HOURLY_NAME);
	db_sql_window(&q, w);
	db_sql_add(&q, " GROUP BY hour_utc, host, remote_ip HAVING SUM(n) >= %" PRIu64, min);
	return run(db, &q, "kktn");
}

struct db_rows *db_host_chunks(struct db *db, const char *host)
{
	struct db_sql q;

	db_sql_init(&q);
	db_sql_add(&q, "SELECT host, MAX(COALESCE(last_utc, ingested_at)),"
		       " MIN(COALESCE(first_utc, ingested_at)) FROM " SCHEMA_CHUNKS_NAME);
	if (host != NULL) {
		db_sql_add(&q, " WHERE host = ");
		db_sql_bytes(&q, host, strlen(host));
	}
	db_sql_add(&q, " GROUP BY host");
	return run(db, &q, "ktt");
}

int db_first_hour(struct db *db, int64_t *first)
{
	struct db_sql q;
	struct db_rows *rs;
	struct db_row row;

	db_sql_init(&q);
	db_sql_add(&q, "SELECT MIN(hour_utc) FROM " SCHEMA_EVENT_HOURLY_NAME);
	rs = run(db, &q, "t");
	if (rs == NULL) {
		return -1;
	}
	*first = INT64_MAX;
	if (db_rows_next(rs, &row) && row.when[0] != INT64_MIN) {
		*first = row.when[0];
	}
	db_rows_free(rs);
	return 0;
}

int db_window_totals(struct db *db, const struct db_window *w, struct db_totals *t)
{
	static const char *const tables[3] = {SCHEMA_RELAY_HOURLY_NAME, SCHEMA_DENIED_HOURLY_NAME,
					      SCHEMA_EVENT_HOURLY_NAME};
	struct db_sql q;
	struct db_rows *rs;
	struct db_row row;
	int ret = -1;

	db_sql_init(&q);
	db_sql_add(&q, "SELECT");
	for (int i = 0; i < 3; i++) {
		db_sql_add(&q, "%s (SELECT COALESCE(SUM(n), 0) FROM %s", i ? "," : "", tables[i]);
		db_sql_window(&q, w);
		db_sql_add(&q, ")");
	}
	db_sql_add(&q, ", (SELECT COALESCE(MAX(s), 0) FROM (SELECT SUM(n) AS s "
		       "FROM " SCHEMA_DENIED_HOURLY_NAME);
	db_sql_window(&q, w);
	db_sql_add(&q, " GROUP BY hour_utc, host, remote_ip) AS t)");
	rs = run(db, &q, "nnnn");
	if (rs != NULL && db_rows_next(rs, &row)) {
		*t = (struct db_totals){row.n[0], row.n[1], row.n[2], row.n[3]};
		ret = 0;
	}
	db_rows_free(rs);
	return ret;
}

/* ---- for the report ---- */

struct db_rows *db_event_hours(struct db *db, const struct db_window *w)
{
	struct db_sql q;

	db_sql_init(&q);
	db_sql_add(&q, "SELECT hour_utc, SUM(n),"
		       " SUM(IF(event = 'relaying rcpt', n, 0)),"
		       " SUM(IF(event = 'rejected relaying', n, 0)),"
		       " SUM(IF(event IN ('accepted rcpt', 'accepted any rcpt'), n, 0)),"
		       " SUM(IF(event = 'rejected rcpt', n, 0))"
		       " FROM " SCHEMA_EVENT_HOURLY_NAME);
	db_sql_window(&q, w);
	db_sql_add(&q, " GROUP BY hour_utc ORDER BY hour_utc");
	return run(db, &q, "tnnnnn");
}

struct db_rows *db_event_types(struct db *db, const struct db_window *w)
{
	struct db_sql q;

	db_sql_init(&q);
	db_sql_add(&q, "SELECT event, reason, SUM(n) AS s FROM " SCHEMA_EVENT_HOURLY_NAME);
	db_sql_window(&q, w);
	db_sql_add(&q, " GROUP BY event, reason ORDER BY s DESC, event, reason");
	return run(db, &q, "kkn");
}

struct db_rows *db_top_accounts(struct db *db, const struct db_window *w, unsigned top)
{
	struct db_sql q;

	db_sql_init(&q);
	db_sql_add(&q, "SELECT auth_user, SUM(n) AS s, COUNT(DISTINCT rcpt_domain),"
		       " COUNT(DISTINCT remote_ip) FROM " SCHEMA_RELAY_HOURLY_NAME);
	db_sql_window(&q, w);
	db_sql_add(&q,
		   " AND auth_user <> '' GROUP BY auth_user ORDER BY s DESC, auth_user LIMIT %u",
		   top);
	return run(db, &q, "knnn");
}

struct db_rows *db_account_senders(struct db *db, const struct db_window *w,
				   const struct span *accounts, size_t count)
{
	struct db_sql q;

	db_sql_init(&q);
	db_sql_add(&q, "SELECT auth_user, sender, SUM(n) FROM " SCHEMA_RELAY_HOURLY_NAME);
	db_sql_window(&q, w);
	db_sql_add(&q, " AND auth_user IN (");
	db_sql_list(&q, accounts, count);
	db_sql_add(&q, ") GROUP BY auth_user, sender");
	return run(db, &q, "kkn");
}

struct db_rows *db_top_ip_relays(struct db *db, const struct db_window *w, unsigned top)
{
	struct db_sql q;

	db_sql_init(&q);
	db_sql_add(&q, "SELECT remote_ip, SUM(n) AS s, COUNT(DISTINCT rcpt_domain),"
		       " COUNT(DISTINCT sender) FROM " SCHEMA_RELAY_HOURLY_NAME);
	db_sql_window(&q, w);
	db_sql_add(&q, " AND auth_user = '' GROUP BY remote_ip ORDER BY s DESC, remote_ip LIMIT %u",
		   top);
	return run(db, &q, "knnn");
}

struct db_rows *db_top_denied_ips(struct db *db, const struct db_window *w, unsigned top)
{
	struct db_sql q;

	db_sql_init(&q);
	db_sql_add(&q, "SELECT remote_ip, SUM(n) AS s, COUNT(DISTINCT rcpt_domain)"
		       " FROM " SCHEMA_DENIED_HOURLY_NAME);
	db_sql_window(&q, w);
	db_sql_add(&q, " GROUP BY remote_ip ORDER BY s DESC, remote_ip LIMIT %u", top);
	return run(db, &q, "knn");
}

struct db_rows *db_denied_ip_domains(struct db *db, const struct db_window *w,
				     const struct span *ips, size_t count)
{
	struct db_sql q;

	db_sql_init(&q);
	db_sql_add(&q,
		   "SELECT remote_ip, rcpt_domain, SUM(n) AS s FROM " SCHEMA_DENIED_HOURLY_NAME);
	db_sql_window(&q, w);
	db_sql_add(&q, " AND remote_ip IN (");
	db_sql_list(&q, ips, count);
	db_sql_add(&q, ") GROUP BY remote_ip, rcpt_domain ORDER BY remote_ip, s DESC, rcpt_domain");
	return run(db, &q, "kkn");
}

struct db_rows *db_top_denied_domains(struct db *db, const struct db_window *w, unsigned top)
{
	struct db_sql q;

	db_sql_init(&q);
	db_sql_add(&q, "SELECT rcpt_domain, SUM(n) AS s, COUNT(DISTINCT remote_ip)"
		       " FROM " SCHEMA_DENIED_HOURLY_NAME);
	db_sql_window(&q, w);
	db_sql_add(&q, " GROUP BY rcpt_domain ORDER BY s DESC, rcpt_domain LIMIT %u", top);
	return run(db, &q, "knn");
}

struct db_rows *db_inbound(struct db *db, const struct db_window *w)
{
	struct db_sql q;

	db_sql_init(&q);
	db_sql_add(&q, "SELECT host,"
		       " SUM(IF(event IN ('accepted rcpt', 'accepted any rcpt'), n, 0)),"
		       " SUM(IF(event = 'rejected rcpt' AND reason = 'not existing recipient',"
		       " n, 0)),"
		       " SUM(IF(event = 'rejected rcpt' AND reason <> 'not existing recipient',"
		       " n, 0))"
		       " FROM " SCHEMA_EVENT_HOURLY_NAME);
	db_sql_window(&q, w);
	db_sql_add(&q, " GROUP BY host ORDER BY host");
	return run(db, &q, "knnn");
}

struct db_rows *db_host_freshness(struct db *db, const struct db_window *w)
{
	struct db_sql q;

	db_sql_init(&q);
	/* A chunk counts for the window when its data overlaps it. */
	db_sql_add(&q, "SELECT host, SUM(w), SUM(IF(w, line_count, 0)),"
		       " SUM(IF(w, malformed_count, 0)), MAX(COALESCE(last_utc, ingested_at))"
		       " FROM (SELECT host, line_count, malformed_count, last_utc, ingested_at,"
		       " COALESCE(last_utc, ingested_at) >= ");
	db_sql_time(&q, w->since);
	db_sql_add(&q, " AND COALESCE(first_utc, ingested_at) < ");
	db_sql_time(&q, w->until);
	db_sql_add(&q, " AS w FROM " SCHEMA_CHUNKS_NAME);
	if (w->host != NULL) {
		db_sql_add(&q, " WHERE host = ");
		db_sql_bytes(&q, w->host, strlen(w->host));
	}
	db_sql_add(&q, ") AS c GROUP BY host ORDER BY host");
	return run(db, &q, "knnnt");
}
