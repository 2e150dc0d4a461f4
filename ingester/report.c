#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "logtime.h"
#include "report.h"

const char *const report_group_name[GRP_COUNT] = {"relaying rcpt", "rejected relaying",
						  "accepted rcpt", "rejected rcpt", "other"};
const char *const report_group_key[GRP_COUNT] = {"relaying_rcpt", "rejected_relaying",
						 "accepted_rcpt", "rejected_rcpt", "other"};

#define NCOLS(a) (unsigned)(sizeof(a) / sizeof((a)[0]))

static const struct col cols_anomalies[] = {
	{"status", "st", COL_STATUS, 4},       {"subject", "account/ip/host", COL_STR, 17},
	{"rule", "rule", COL_RULE, 15},        {"value", "value", COL_NUM, 7},
	{"threshold", "limit", COL_NUM, 6},    {"host", "host", COL_STR, 8},
	{"start", "when (UTC)", COL_TIME, 16},
};
static const struct col cols_period[] = {
	{"period", "period (UTC)", COL_TIME, 16},
	{"total", "total", COL_NUM, 9},
	{"relaying_rcpt", "relayed", COL_NUM, 9},
	{"rejected_relaying", "rej.relay", COL_NUM, 9},
	{"accepted_rcpt", "accepted", COL_NUM, 9},
	{"rejected_rcpt", "rej.rcpt", COL_NUM, 9},
	{"other", "other", COL_NUM, 9},
};
static const struct col cols_types[] = {
	{"event", "event", COL_STR, 22},
	{"reason", "reason", COL_STR, 44},
	{"n", "count", COL_NUM, 10},
};
static const struct col cols_accounts[] = {
	{"account", "account", COL_STR, 34},       {"recipients", "recipients", COL_NUM, 10},
	{"domains", "domains", COL_NUM, 8},        {"remote_ips", "ips", COL_NUM, 6},
	{"foreign_sender", "foreign", COL_NUM, 8},
};
static const struct col cols_iprelay[] = {
	{"remote_ip", "remote ip", COL_STR, 39},
	{"recipients", "recipients", COL_NUM, 10},
	{"domains", "domains", COL_NUM, 8},
	{"senders", "senders", COL_NUM, 8},
};
static const struct col cols_denied[] = {
	{"remote_ip", "remote ip", COL_STR, 26},
	{"attempts", "attempts", COL_NUM, 9},
	{"domains", "domains", COL_NUM, 7},
	{"top_domain", "most aimed at", COL_STR, 29},
};
static const struct col cols_ddomains[] = {
	{"domain", "domain", COL_STR, 44},
	{"attempts", "attempts", COL_NUM, 10},
	{"remote_ips", "ips", COL_NUM, 8},
};
static const struct col cols_inbound[] = {
	{"host", "host", COL_STR, 26},
	{"accepted", "accepted", COL_NUM, 10},
	{"unknown_rcpt", "unknown", COL_NUM, 10},
	{"rejected_other", "rej.other", COL_NUM, 10},
	{"unknown_pct", "unknown%", COL_PERMILLE, 9},
};
static const struct col cols_hosts[] = {
	{"host", "host", COL_STR, 17},           {"chunks", "chunks", COL_NUM, 6},
	{"lines", "lines", COL_NUM, 10},         {"malformed", "malformed", COL_NUM, 9},
	{"newest", "newest data", COL_TIME, 16}, {"age", "age", COL_AGE, 6},
	{"status", "st", COL_STATUS, 4},
};

static void section_setup(struct section *s, const char *id, const char *title, const char *note,
			  const struct col *cols, unsigned ncols, bool flags)
{
	*s = (struct section){.id = id,
			      .title = title,
			      .note = note,
			      .cols = cols,
			      .ncols = ncols,
			      .flags = flags};
}

static void section_finish(struct section *s)
{
	for (size_t i = 0; i < s->rows * s->ncols; i++) {
		free(s->cells[i].s);
	}
	free(s->cells);
	free(s->status);
}

/* Adds an empty row (numbers 0, strings empty); returns its cells or NULL on no memory. */
static struct cell *section_row(struct section *s)
{
	if (s->rows == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 32;
		struct cell *c = realloc(s->cells, cap * s->ncols * sizeof(*c));
		if (c == NULL) {
			log_error("out of memory");
			return NULL;
		}
		s->cells = c;
		enum check_status *st = realloc(s->status, cap * sizeof(*st));
		if (st == NULL) {
			log_error("out of memory");
			return NULL;
		}
		s->status = st;
		s->cap = cap;
	}
	struct cell *row = &s->cells[s->rows * s->ncols];
	memset(row, 0, s->ncols * sizeof(*row));
	s->status[s->rows] = CHECK_OK;
	s->rows++;
	return row;
}

static int cell_bytes(struct cell *c, const char *p, size_t n)
{
	c->s = check_bytes_dup(p, n);
	if (c->s == NULL) {
		log_error("out of memory");
		return -1;
	}
	c->n = n;
	return 0;
}

static struct cell *section_cell(struct section *s, size_t row, unsigned col)
{
	return &s->cells[row * s->ncols + col];
}

/* ---- reading ---- */

/*
 * Copies each of the query's rows into a new row of s: its first ncols columns, as bytes for
 * COL_STR, as a time for COL_TIME and as a number otherwise, in the order the query gives them.
 */
static int fill_section(struct db_rows *rs, struct section *s, unsigned ncols)
{
	struct db_row row;
	int ret = -1;

	if (rs == NULL) {
		return -1;
	}
	while (db_rows_next(rs, &row)) {
		struct cell *c = section_row(s);
		unsigned k = 0, t = 0, n = 0;
		if (c == NULL) {
			goto out;
		}
		for (unsigned i = 0; i < ncols && i < s->ncols; i++) {
			switch (s->cols[i].kind) {
			case COL_STR:
				if (cell_bytes(&c[i], row.key[k].p, row.key[k].n) < 0) {
					goto out;
				}
				k++;
				break;
			case COL_TIME:
				c[i].v = row.when[t++];
				break;
			default:
				c[i].v = (int64_t)row.n[n++];
			}
		}
	}
	ret = 0;
out:
	db_rows_free(rs);
	return ret;
}

static struct db_window window(const struct report *r)
{
	return (struct db_window){r->since, r->until, r->host};
}

static int query_hourly(struct db *db, struct report *r)
{
	struct db_window w = window(r);
	struct db_rows *rs;
	struct db_row row;

	r->nhourly = (size_t)((r->until - r->since) / 3600);
	r->hourly = calloc(r->nhourly ? r->nhourly : 1, sizeof(*r->hourly));
	if (r->hourly == NULL) {
		log_error("out of memory");
		return -1;
	}
	for (size_t i = 0; i < r->nhourly; i++) {
		r->hourly[i].t = r->since + (int64_t)i * 3600;
	}
	rs = db_event_hours(db, &w);
	if (rs == NULL) {
		return -1;
	}
	while (db_rows_next(rs, &row)) {
		int64_t t = row.when[0];
		if (t < r->since || t >= r->until) {
			continue;
		}
		struct bucket *b = &r->hourly[(t - r->since) / 3600];
		uint64_t total = row.n[0], known = 0;
		for (int g = 0; g < GRP_OTHER; g++) {
			b->v[g] = row.n[1 + g];
			known += b->v[g];
		}
		b->v[GRP_OTHER] = total - known;
		r->events += total;
		r->relayed += b->v[GRP_RELAYED];
		r->denied += b->v[GRP_DENIED];
	}
	db_rows_free(rs);

	/* The period table: the hours themselves, or the days they add up to. */
	struct section *s = &r->sec[SEC_PERIOD];
	struct cell *c = NULL;
	int64_t cur = INT64_MIN;
	for (size_t i = 0; i < r->nhourly; i++) {
		const struct bucket *b = &r->hourly[i];
		int64_t p = r->day ? logtime_day_floor(b->t) : b->t;
		if (c == NULL || p != cur) {
			c = section_row(s);
			if (c == NULL) {
				return -1;
			}
			cur = p;
			c[0].v = p;
			c[0].n = r->day;
		}
		for (int g = 0; g < GRP_COUNT; g++) {
			c[1].v += (int64_t)b->v[g];
			c[2 + g].v += (int64_t)b->v[g];
		}
	}
	return 0;
}

/* The worst alert about subject (of the given rules mask), for highlighting. */
static enum check_status alert_status(const struct report *r, unsigned rules, const char *s,
				      size_t n)
{
	enum check_status st = CHECK_OK;

	for (size_t i = 0; i < r->alerts.count; i++) {
		const struct check_alert *a = &r->alerts.v[i];
		if ((rules & (1u << a->rule)) &&
		    span_eq((struct span){a->subject, a->subject_len}, (struct span){s, n}) &&
		    a->status > st) {
			st = a->status;
		}
	}
	return st;
}

/* The first-column strings of s's rows (borrowed), for a follow-up query; NULL on no memory. */
static struct span *section_keys(const struct section *s)
{
	struct span *v = calloc(s->rows ? s->rows : 1, sizeof(*v));

	if (v == NULL) {
		log_error("out of memory");
		return NULL;
	}
	for (size_t i = 0; i < s->rows; i++) {
		v[i] = (struct span){s->cells[i * s->ncols].s, s->cells[i * s->ncols].n};
	}
	return v;
}

/* The row of s whose first column is key, or SIZE_MAX. */
static size_t section_find(const struct section *s, struct span key)
{
	for (size_t i = 0; i < s->rows; i++) {
		const struct cell *c = &s->cells[i * s->ncols];
		if (span_eq((struct span){c->s, c->n}, key)) {
			return i;
		}
	}
	return SIZE_MAX;
}

static int query_accounts(struct db *db, struct report *r)
{
	struct section *s = &r->sec[SEC_ACCOUNTS];
	struct db_window w = window(r);
	struct db_rows *rs = NULL;
	struct db_row row;
	struct span *keys = NULL;
	int ret = -1;

	if (fill_section(db_top_accounts(db, &w, r->top), s, 4) < 0) {
		return -1;
	}
	if (s->rows == 0) {
		return 0;
	}
	/* How many of their recipients went out under another sender (compared in C). */
	keys = section_keys(s);
	rs = keys ? db_account_senders(db, &w, keys, s->rows) : NULL;
	if (rs == NULL) {
		goto out;
	}
	while (db_rows_next(rs, &row)) {
		struct span acct = row.key[0], sender = row.key[1];
		if (check_sender_matches(sender.p, sender.n, acct.p, acct.n)) {
			continue;
		}
		size_t i = section_find(s, acct);
		if (i != SIZE_MAX) {
			section_cell(s, i, 4)->v += (int64_t)row.n[0];
		}
	}
	for (size_t i = 0; i < s->rows; i++) {
		struct cell *c = section_cell(s, i, 0);
		s->status[i] = alert_status(
			r,
			1u << CHECK_RELAY_RCPT | 1u << CHECK_RELAY_DOMAINS | 1u << CHECK_RELAY_IPS |
				1u << CHECK_SENDER_MISMATCH | 1u << CHECK_BASELINE,
			c->s, c->n);
	}
	ret = 0;
out:
	db_rows_free(rs);
	free(keys);
	return ret;
}

static int query_denied(struct db *db, struct report *r)
{
	struct section *s = &r->sec[SEC_DENIED];
	struct db_window w = window(r);
	struct db_rows *rs = NULL;
	struct db_row row;
	struct span *keys = NULL;
	int ret = -1;

	if (fill_section(db_top_denied_ips(db, &w, r->top), s, 3) < 0) {
		return -1;
	}
	if (s->rows == 0) {
		return 0;
	}
	/* The domain each source aimed at most. */
	keys = section_keys(s);
	rs = keys ? db_denied_ip_domains(db, &w, keys, s->rows) : NULL;
	if (rs == NULL) {
		goto out;
	}
	while (db_rows_next(rs, &row)) {
		size_t i = section_find(s, row.key[0]);
		struct cell *d = i != SIZE_MAX ? section_cell(s, i, 3) : NULL;
		if (d != NULL && d->s == NULL && cell_bytes(d, row.key[1].p, row.key[1].n) < 0) {
			goto out;
		}
	}
	for (size_t i = 0; i < s->rows; i++) {
		struct cell *c = section_cell(s, i, 0);
		s->status[i] = alert_status(r, 1u << CHECK_DENIED, c->s, c->n);
	}
	ret = 0;
out:
	db_rows_free(rs);
	free(keys);
	return ret;
}

static int query_inbound(struct db *db, struct report *r)
{
	struct section *s = &r->sec[SEC_INBOUND];
	struct db_window w = window(r);

	if (fill_section(db_inbound(db, &w), s, 4) < 0) {
		return -1;
	}
	for (size_t i = 0; i < s->rows; i++) {
		int64_t acc = section_cell(s, i, 1)->v, unk = section_cell(s, i, 2)->v;
		int64_t oth = section_cell(s, i, 3)->v, all = acc + unk + oth;
		section_cell(s, i, 4)->v = all ? (unk * 1000 + all / 2) / all : INT64_MIN;
	}
	return 0;
}

/* Freshness per host: the age is the report's, the status the stale rule's own alert. */
static int query_hosts(struct db *db, struct report *r)
{
	struct section *s = &r->sec[SEC_HOSTS];
	struct db_window w = window(r);

	if (fill_section(db_host_freshness(db, &w), s, 5) < 0) {
		return -1;
	}
	for (size_t i = 0; i < s->rows; i++) {
		struct cell *host = section_cell(s, i, 0);
		int64_t newest = section_cell(s, i, 4)->v;
		int64_t age =
			newest == INT64_MIN || newest > r->stale_ref ? 0 : r->stale_ref - newest;
		section_cell(s, i, 5)->v = age;
		/* Files backfilled without a host name belong to no shipper to watch. */
		enum check_status st =
			host->n == 0 ? CHECK_OK
				     : alert_status(r, 1u << CHECK_STALE, host->s, host->n);
		section_cell(s, i, 6)->v = st;
		s->status[i] = st;
	}
	return 0;
}

static int report_anomalies(struct report *r)
{
	struct section *s = &r->sec[SEC_ANOMALIES];

	for (size_t i = 0; i < r->alerts.count; i++) {
		const struct check_alert *a = &r->alerts.v[i];
		struct cell *c = section_row(s);
		if (c == NULL) {
			return -1;
		}
		c[0].v = a->status;
		c[2].v = a->rule;
		if (cell_bytes(&c[1], a->subject, a->subject_len) < 0 ||
		    cell_bytes(&c[5], a->host, a->host_len) < 0) {
			return -1;
		}
		c[3].v = (int64_t)a->value;
		c[4].v = (int64_t)a->threshold;
		c[6].v = a->when;
		c[6].n = check_alert_is_day(a);
		s->status[s->rows - 1] = a->status;
	}
	return 0;
}

int report_gather(struct db *db, struct report *r)
{
	struct db_window w = window(r);
	enum check_collect_result got = check_collect(db, r->rules, r->since, r->until, 0,
						      r->stale_ref, r->host, NULL, &r->alerts);

	if (got == CHECK_COLLECT_ERROR) {
		return -1;
	}
	check_alerts_sort(&r->alerts);
	r->ledger_empty = got == CHECK_COLLECT_EMPTY;
	if (report_anomalies(r) < 0 || query_hourly(db, r) < 0 ||
	    fill_section(db_event_types(db, &w), &r->sec[SEC_TYPES], 3) < 0 ||
	    query_accounts(db, r) < 0 ||
	    fill_section(db_top_ip_relays(db, &w, r->top), &r->sec[SEC_IPRELAY], 4) < 0 ||
	    query_denied(db, r) < 0 ||
	    fill_section(db_top_denied_domains(db, &w, r->top), &r->sec[SEC_DDOMAINS], 3) < 0 ||
	    query_inbound(db, r) < 0 || query_hosts(db, r) < 0) {
		return -1;
	}
	return 0;
}

void report_setup(struct report *r)
{
	struct section *s = r->sec;

	section_setup(&s[SEC_ANOMALIES], "anomalies", "Anomalies (alert rules that fired)",
		      "The same rules as `relaywatch-ingest check`; value and limit in the rule's "
		      "unit (stale: seconds).",
		      cols_anomalies, NCOLS(cols_anomalies), false);
	section_setup(&s[SEC_PERIOD], "events_by_period",
		      r->day ? "Events per day (UTC)" : "Events per hour (UTC)", NULL, cols_period,
		      NCOLS(cols_period), false);
	section_setup(&s[SEC_TYPES], "events_by_type", "Events by type and reason", NULL,
		      cols_types, NCOLS(cols_types), false);
	section_setup(&s[SEC_ACCOUNTS], "accounts", "Top relaying accounts (authenticated)",
		      "foreign: recipients sent with an envelope sender other than the account; "
		      "ips: distinct remote IPs.",
		      cols_accounts, NCOLS(cols_accounts), true);
	section_setup(&s[SEC_IPRELAY], "ip_relays", "Relays allowed by IP (no authentication)",
		      NULL, cols_iprelay, NCOLS(cols_iprelay), false);
	section_setup(&s[SEC_DENIED], "denied_sources", "Top sources of rejected relaying", NULL,
		      cols_denied, NCOLS(cols_denied), true);
	section_setup(&s[SEC_DDOMAINS], "denied_domains", "Domains aimed at by rejected relaying",
		      NULL, cols_ddomains, NCOLS(cols_ddomains), false);
	section_setup(&s[SEC_INBOUND], "inbound", "Inbound recipients per host (harvesting)",
		      "unknown: rejected rcpt / not existing recipient; a high share means someone "
		      "is guessing addresses.",
		      cols_inbound, NCOLS(cols_inbound), false);
	section_setup(
		&s[SEC_HOSTS], "hosts", "Chunks and freshness per host",
		"chunks, lines, malformed: chunks whose data overlaps the window; newest: the "
		"newest line received from the host.",
		cols_hosts, NCOLS(cols_hosts), false);
}
void report_finish(struct report *r)
{
	for (int i = 0; i < SEC_COUNT; i++) {
		section_finish(&r->sec[i]);
	}
	free(r->hourly);
	check_alerts_finish(&r->alerts);
}
