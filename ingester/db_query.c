#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "db_int.h"
#include "db_sql.h"
#include "log.h"
#include "logtime.h"
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

/* The shape of most queries: one table over the window, grouped. */
struct window_query {
	const char *select; /* the columns, decoded by layout */
	const char *table;
	const char *filter; /* more conditions (" AND ..."), or NULL */
	const char *in_col; /* with in/nin: " AND in_col IN (the keys)" */
	const struct span *in;
	size_t nin;
	const char *tail;   /* GROUP BY and ORDER BY */
	const char *having; /* with min: " HAVING having >= min" */
	uint64_t min;
	unsigned limit; /* " LIMIT limit" when > 0 */
	const char *layout;
};

static struct db_rows *window_rows(struct db *db, const struct db_window *w,
				   const struct window_query *wq)
{
	struct db_sql q;

	db_sql_init(&q);
	db_sql_add(&q, "SELECT %s FROM %s", wq->select, wq->table);
	db_sql_window(&q, w);
	if (wq->filter != NULL) {
		db_sql_add(&q, "%s", wq->filter);
	}
	if (wq->nin > 0) {
		db_sql_add(&q, " AND %s IN (", wq->in_col);
		db_sql_list(&q, wq->in, wq->nin);
		db_sql_add(&q, ")");
	}
	db_sql_add(&q, "%s", wq->tail);
	if (wq->having != NULL) {
		db_sql_add(&q, " HAVING %s >= %" PRIu64, wq->having, wq->min);
	}
	if (wq->limit > 0) {
		db_sql_add(&q, " LIMIT %u", wq->limit);
	}
	return run(db, &q, wq->layout);
}

/* ---- for the rules ---- */

struct db_rows *db_account_hours(struct db *db, const struct db_window *w,
				 const struct span *accounts, size_t count)
{
	return window_rows(db, w,
			   &(struct window_query){
				   .select = count ? "host, auth_user, hour_utc, SUM(n)"
						   : "host, auth_user, hour_utc, SUM(n), "
						     "COUNT(DISTINCT rcpt_domain)",
				   .table = SCHEMA_RELAY_HOURLY_NAME,
				   .filter = count ? NULL : " AND auth_user <> ''",
				   .in_col = "auth_user",
				   .in = accounts,
				   .nin = count,
				   .tail = " GROUP BY host, auth_user, hour_utc ORDER BY host, "
					   "auth_user, hour_utc",
				   .layout = "kktnn",
			   });
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
	struct db_window day = {w->until - 86400, w->until, w->host};
	char t[20], select[600];

	logtime_format(day.since, t);
	snprintf(select, sizeof(select), "host, auth_user, '%s', COUNT(DISTINCT " SQL_NETWORK ")",
		 t);
	return window_rows(
		db, one_day ? &day : w,
		&(struct window_query){
			.select = one_day ? select
					  : "host, auth_user, CAST(DATE(hour_utc) AS"
					    " DATETIME) AS d, COUNT(DISTINCT " SQL_NETWORK ")",
			.table = SCHEMA_RELAY_HOURLY_NAME,
			.filter = " AND auth_user <> ''",
			.tail = one_day ? " GROUP BY host, auth_user"
					: " GROUP BY d, host, auth_user",
			.having = "COUNT(DISTINCT " SQL_NETWORK ")",
			.min = min,
			.layout = "kktn",
		});
}

struct db_rows *db_sender_hours(struct db *db, const struct db_window *w)
{
	return window_rows(db, w,
			   &(struct window_query){
				   .select = "hour_utc, host, auth_user, sender, SUM(n)",
				   .table = SCHEMA_RELAY_HOURLY_NAME,
				   .filter = " AND auth_user <> ''",
				   .tail = " GROUP BY hour_utc, host, auth_user, sender"
					   " ORDER BY hour_utc, host, auth_user",
				   .layout = "tkkkn",
			   });
}

struct db_rows *db_denied_hours(struct db *db, const struct db_window *w, uint64_t min)
{
	return window_rows(db, w,
			   &(struct window_query){
				   .select = "host, remote_ip, hour_utc, SUM(n)",
				   .table = SCHEMA_DENIED_HOURLY_NAME,
				   .tail = " GROUP BY hour_utc, host, remote_ip",
				   .having = "SUM(n)",
				   .min = min,
				   .layout = "kktn",
			   });
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
	return window_rows(
		db, w,
		&(struct window_query){
			.select = "hour_utc, SUM(n),"
				  " SUM(IF(event = 'relaying rcpt', n, 0)),"
				  " SUM(IF(event = 'rejected relaying', n, 0)),"
				  " SUM(IF(event IN ('accepted rcpt', 'accepted any rcpt'), n,"
				  " 0)),"
				  " SUM(IF(event = 'rejected rcpt', n, 0))",
			.table = SCHEMA_EVENT_HOURLY_NAME,
			.tail = " GROUP BY hour_utc ORDER BY hour_utc",
			.layout = "tnnnnn",
		});
}

struct db_rows *db_event_types(struct db *db, const struct db_window *w)
{
	return window_rows(db, w,
			   &(struct window_query){
				   .select = "event, reason, SUM(n) AS s",
				   .table = SCHEMA_EVENT_HOURLY_NAME,
				   .tail = " GROUP BY event, reason ORDER BY s DESC, event, reason",
				   .layout = "kkn",
			   });
}

struct db_rows *db_top_accounts(struct db *db, const struct db_window *w, unsigned top)
{
	return window_rows(db, w,
			   &(struct window_query){
				   .select = "auth_user, SUM(n) AS s, COUNT(DISTINCT rcpt_domain),"
					     " COUNT(DISTINCT remote_ip)",
				   .table = SCHEMA_RELAY_HOURLY_NAME,
				   .filter = " AND auth_user <> ''",
				   .tail = " GROUP BY auth_user ORDER BY s DESC, auth_user",
				   .limit = top,
				   .layout = "knnn",
			   });
}

struct db_rows *db_account_senders(struct db *db, const struct db_window *w,
				   const struct span *accounts, size_t count)
{
	return window_rows(db, w,
			   &(struct window_query){
				   .select = "auth_user, sender, SUM(n)",
				   .table = SCHEMA_RELAY_HOURLY_NAME,
				   .in_col = "auth_user",
				   .in = accounts,
				   .nin = count,
				   .tail = " GROUP BY auth_user, sender",
				   .layout = "kkn",
			   });
}

struct db_rows *db_top_ip_relays(struct db *db, const struct db_window *w, unsigned top)
{
	return window_rows(db, w,
			   &(struct window_query){
				   .select = "remote_ip, SUM(n) AS s, COUNT(DISTINCT rcpt_domain),"
					     " COUNT(DISTINCT sender)",
				   .table = SCHEMA_RELAY_HOURLY_NAME,
				   .filter = " AND auth_user = ''",
				   .tail = " GROUP BY remote_ip ORDER BY s DESC, remote_ip",
				   .limit = top,
				   .layout = "knnn",
			   });
}

struct db_rows *db_top_denied_ips(struct db *db, const struct db_window *w, unsigned top)
{
	return window_rows(db, w,
			   &(struct window_query){
				   .select = "remote_ip, SUM(n) AS s, COUNT(DISTINCT rcpt_domain)",
				   .table = SCHEMA_DENIED_HOURLY_NAME,
				   .tail = " GROUP BY remote_ip ORDER BY s DESC, remote_ip",
				   .limit = top,
				   .layout = "knn",
			   });
}

struct db_rows *db_denied_ip_domains(struct db *db, const struct db_window *w,
				     const struct span *ips, size_t count)
{
	return window_rows(db, w,
			   &(struct window_query){
				   .select = "remote_ip, rcpt_domain, SUM(n) AS s",
				   .table = SCHEMA_DENIED_HOURLY_NAME,
				   .in_col = "remote_ip",
				   .in = ips,
				   .nin = count,
				   .tail = " GROUP BY remote_ip, rcpt_domain"
					   " ORDER BY remote_ip, s DESC, rcpt_domain",
				   .layout = "kkn",
			   });
}

struct db_rows *db_top_denied_domains(struct db *db, const struct db_window *w, unsigned top)
{
	return window_rows(db, w,
			   &(struct window_query){
				   .select = "rcpt_domain, SUM(n) AS s, COUNT(DISTINCT remote_ip)",
				   .table = SCHEMA_DENIED_HOURLY_NAME,
				   .tail = " GROUP BY rcpt_domain ORDER BY s DESC, rcpt_domain",
				   .limit = top,
				   .layout = "knn",
			   });
}

struct db_rows *db_inbound(struct db *db, const struct db_window *w)
{
	return window_rows(
		db, w,
		&(struct window_query){
			.select = "host,"
				  " SUM(IF(event IN ('accepted rcpt', 'accepted any rcpt'), n, 0)),"
				  " SUM(IF(event = 'rejected rcpt' AND reason = 'not existing "
				  "recipient',"
				  " n, 0)),"
				  " SUM(IF(event = 'rejected rcpt' AND reason <> 'not existing "
				  "recipient',"
				  " n, 0))",
			.table = SCHEMA_EVENT_HOURLY_NAME,
			.tail = " GROUP BY host ORDER BY host",
			.layout = "knnn",
		});
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
