#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mysql.h>

#include "check.h"
#include "commands.h"
#include "db.h"
#include "ingest_config.h"
#include "log.h"
#include "logtime.h"
#include "report.h"

/* ---- escaping ---- */

size_t report_utf8(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t v, min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		v = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		v = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		v = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len) {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			return 0;
		}
		v = v << 6 | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
		return 0;
	}
	*cp = v;
	return len;
}

bool report_unsafe_cp(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x61c || cp == 0x200e ||
	       cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
	       cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb);
}

void report_html(FILE *f, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < n) {
		uint32_t cp;
		size_t len = report_utf8(s + i, n - i, &cp);
		if (len == 0 || report_unsafe_cp(cp)) {
			fputs("&#xFFFD;", f);
			i += len ? len : 1;
			continue;
		}
		switch (cp) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fwrite(s + i, 1, len, f);
		}
		i += len;
	}
}

void report_json(FILE *f, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	fputc('"', f);
	while (i < n) {
		uint32_t cp;
		size_t len = report_utf8(s + i, n - i, &cp);
		if (len == 0) {
			fputs("\\ufffd", f);
			i++;
			continue;
		}
		if (cp == '"' || cp == '\\') {
			fputc('\\', f);
			fputc((int)cp, f);
		} else if (cp == '\n') {
			fputs("\\n", f);
		} else if (cp == '\r') {
			fputs("\\r", f);
		} else if (cp == '\t') {
			fputs("\\t", f);
		} else if (report_unsafe_cp(cp)) {
			fprintf(f, "\\u%04" PRIx32, cp);
		} else {
			fwrite(s + i, 1, len, f);
		}
		i += len;
	}
	fputc('"', f);
}

void report_tsv(FILE *f, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < n) {
		uint32_t cp;
		size_t len = report_utf8(s + i, n - i, &cp);
		if (len == 1 && cp == '\\') {
			fputs("\\\\", f);
		} else if (len == 1 && cp == '\t') {
			fputs("\\t", f);
		} else if (len == 1 && cp == '\n') {
			fputs("\\n", f);
		} else if (len == 1 && cp == '\r') {
			fputs("\\r", f);
		} else if (len == 0 || report_unsafe_cp(cp)) {
			size_t k = len ? len : 1;
			for (size_t j = 0; j < k; j++) {
				fprintf(f, "\\x%02x", s[i + j]);
			}
			len = k;
		} else {
			fwrite(s + i, 1, len, f);
		}
		i += len;
	}
}

size_t report_text(char *out, size_t width, const char *str, size_t n, bool nospace)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t need = 0, col = 0;

	for (size_t i = 0; i < n; i++) {
		bool plain = s[i] > 0x20 && s[i] < 0x7f && s[i] != '\\';
		need += plain || (s[i] == ' ' && !nospace) ? 1 : 4;
	}
	size_t limit = need <= width ? width : width - 3;
	for (size_t i = 0; i < n; i++) {
		bool plain =
			(s[i] > 0x20 && s[i] < 0x7f && s[i] != '\\') || (s[i] == ' ' && !nospace);
		size_t w = plain ? 1 : 4;
		if (col + w > limit) {
			break;
		}
		if (plain) {
			out[col++] = (char)s[i];
		} else {
			out[col++] = '\\';
			out[col++] = 'x';
			out[col++] = hex[s[i] >> 4];
			out[col++] = hex[s[i] & 15];
		}
	}
	if (need > width) {
		memcpy(out + col, "...", 3);
		col += 3;
	}
	out[col] = '\0';
	return col;
}

void report_time(int64_t utc, bool day, char out[static 17])
{
	char t[20];

	logtime_format(utc, t);
	snprintf(out, 17, "%.*s", day ? 10 : 16, t);
}

/* ---- the report's data: sections of rows, the same for every format ---- */

enum col_kind {
	COL_STR,      /* bytes from the database */
	COL_NUM,      /* a count */
	COL_TIME,     /* UTC seconds; cell.n = 1 for a day */
	COL_PERMILLE, /* tenths of a percent */
	COL_STATUS,   /* enum check_status */
	COL_RULE,     /* enum check_rule */
	COL_AGE,      /* seconds */
};

struct col {
	const char *name; /* JSON key, TSV header */
	const char *head; /* text and HTML header */
	enum col_kind kind;
	unsigned width; /* text columns */
};

struct cell {
	char *s;
	size_t n;
	int64_t v; /* INT64_MIN: none */
};

struct section {
	const char *id, *title, *note;
	const struct col *cols;
	unsigned ncols;
	bool flags; /* rows carry an alert status that the text marks with "! " or "* " */
	struct cell *cells;
	enum check_status *status;
	size_t rows, cap;
};

enum {
	SEC_ANOMALIES,
	SEC_PERIOD,
	SEC_TYPES,
	SEC_ACCOUNTS,
	SEC_IPRELAY,
	SEC_DENIED,
	SEC_DDOMAINS,
	SEC_INBOUND,
	SEC_HOSTS,
	SEC_COUNT,
};

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

/* Chart buckets: the hourly (or daily) volume of the five event groups. */
enum { GRP_RELAYED, GRP_DENIED, GRP_ACCEPTED, GRP_REJECTED, GRP_OTHER, GRP_COUNT };
static const char *const grp_name[GRP_COUNT] = {"relaying rcpt", "rejected relaying",
						"accepted rcpt", "rejected rcpt", "other"};
static const char *const s_grp_key[GRP_COUNT] = {"relaying_rcpt", "rejected_relaying",
						 "accepted_rcpt", "rejected_rcpt", "other"};
static const char *const grp_color[GRP_COUNT] = {"#d9534f", "#f0ad4e", "#5cb85c", "#5bc0de",
						 "#999999"};

struct bucket {
	int64_t t;
	uint64_t v[GRP_COUNT];
};

struct report {
	int64_t since, until, now, stale_ref;
	const char *host;
	unsigned top;
	bool day; /* the period table has one row per day */
	const struct check_rules *rules;
	struct check_alerts alerts;
	bool ledger_empty;
	struct section sec[SEC_COUNT];
	struct bucket *hourly; /* one per hour of the window */
	size_t nhourly;
	uint64_t events, relayed, denied;
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
	c->s = check_sql_bytes_dup(p, n);
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

/* ---- queries ---- */

static void where_window(struct check_sql *q, const struct report *r)
{
	check_sql_add(q, " WHERE hour_utc >= ");
	check_sql_time(q, r->since);
	check_sql_add(q, " AND hour_utc < ");
	check_sql_time(q, r->until);
	if (r->host != NULL) {
		check_sql_add(q, " AND host = ");
		check_sql_bytes(q, r->host, strlen(r->host));
	}
}

/*
 * Runs q and copies each row into a new row of s: column i of the result into cell i, as bytes
 * for COL_STR and as a number otherwise (DATETIME for COL_TIME).
 */
static int fill_section(struct db *db, struct check_sql *q, struct section *s)
{
	MYSQL_RES *res = check_sql_query(db, q);
	MYSQL_ROW row;
	int ret = -1;

	check_sql_finish(q);
	if (res == NULL) {
		return -1;
	}
	unsigned nf = mysql_num_fields(res);
	while ((row = mysql_fetch_row(res)) != NULL) {
		unsigned long *len = mysql_fetch_lengths(res);
		struct cell *c = section_row(s);
		if (c == NULL) {
			goto out;
		}
		for (unsigned i = 0; i < nf && i < s->ncols; i++) {
			switch (s->cols[i].kind) {
			case COL_STR:
				if (cell_bytes(&c[i], row[i] ? row[i] : "", row[i] ? len[i] : 0) <
				    0) {
					goto out;
				}
				break;
			case COL_TIME:
				c[i].v = check_sql_datetime(row[i], len[i]);
				break;
			default:
				c[i].v = (int64_t)check_sql_u64(row[i], len[i]);
			}
		}
	}
	ret = 0;
out:
	mysql_free_result(res);
	return ret;
}

static int query_hourly(struct db *db, struct report *r)
{
	struct check_sql q;
	MYSQL_RES *res;
	MYSQL_ROW row;

	r->nhourly = (size_t)((r->until - r->since) / 3600);
	r->hourly = calloc(r->nhourly ? r->nhourly : 1, sizeof(*r->hourly));
	if (r->hourly == NULL) {
		log_error("out of memory");
		return -1;
	}
	for (size_t i = 0; i < r->nhourly; i++) {
		r->hourly[i].t = r->since + (int64_t)i * 3600;
	}
	check_sql_init(&q);
	check_sql_add(&q, "SELECT hour_utc, SUM(n),"
			  " SUM(IF(event = 'relaying rcpt', n, 0)),"
			  " SUM(IF(event = 'rejected relaying', n, 0)),"
			  " SUM(IF(event IN ('accepted rcpt', 'accepted any rcpt'), n, 0)),"
			  " SUM(IF(event = 'rejected rcpt', n, 0))"
			  " FROM event_hourly");
	where_window(&q, r);
	check_sql_add(&q, " GROUP BY hour_utc ORDER BY hour_utc");
	res = check_sql_query(db, &q);
	check_sql_finish(&q);
	if (res == NULL) {
		return -1;
	}
	while ((row = mysql_fetch_row(res)) != NULL) {
		unsigned long *len = mysql_fetch_lengths(res);
		int64_t t = check_sql_datetime(row[0], len[0]);
		if (t < r->since || t >= r->until) {
			continue;
		}
		struct bucket *b = &r->hourly[(t - r->since) / 3600];
		uint64_t total = check_sql_u64(row[1], len[1]), known = 0;
		for (int g = 0; g < GRP_OTHER; g++) {
			b->v[g] = check_sql_u64(row[2 + g], len[2 + g]);
			known += b->v[g];
		}
		b->v[GRP_OTHER] = total - known;
		r->events += total;
		r->relayed += b->v[GRP_RELAYED];
		r->denied += b->v[GRP_DENIED];
	}
	mysql_free_result(res);

	/* The period table: the hours themselves, or the days they add up to. */
	struct section *s = &r->sec[SEC_PERIOD];
	struct cell *c = NULL;
	int64_t cur = INT64_MIN;
	for (size_t i = 0; i < r->nhourly; i++) {
		const struct bucket *b = &r->hourly[i];
		int64_t p = r->day ? b->t - b->t % 86400 : b->t;
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

static int query_types(struct db *db, struct report *r)
{
	struct check_sql q;

	check_sql_init(&q);
	check_sql_add(&q, "SELECT event, reason, SUM(n) AS s FROM event_hourly");
	where_window(&q, r);
	check_sql_add(&q, " GROUP BY event, reason ORDER BY s DESC, event, reason");
	return fill_section(db, &q, &r->sec[SEC_TYPES]);
}

/* The worst alert about subject (of the given rules mask), for highlighting. */
static enum check_status alert_status(const struct report *r, unsigned rules, const char *s,
				      size_t n)
{
	enum check_status st = CHECK_OK;

	for (size_t i = 0; i < r->alerts.count; i++) {
		const struct check_alert *a = &r->alerts.v[i];
		if ((rules & (1u << a->rule)) && a->subject_len == n &&
		    (n == 0 || memcmp(a->subject, s, n) == 0) && a->status > st) {
			st = a->status;
		}
	}
	return st;
}

static int query_accounts(struct db *db, struct report *r)
{
	struct section *s = &r->sec[SEC_ACCOUNTS];
	struct check_sql q;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	int ret = -1;

	check_sql_init(&q);
	check_sql_add(&q, "SELECT auth_user, SUM(n) AS s, COUNT(DISTINCT rcpt_domain),"
			  " COUNT(DISTINCT remote_ip) FROM relay_hourly");
	where_window(&q, r);
	check_sql_add(&q,
		      " AND auth_user <> '' GROUP BY auth_user ORDER BY s DESC, auth_user"
		      " LIMIT %u",
		      r->top);
	if (fill_section(db, &q, s) < 0) {
		return -1;
	}
	if (s->rows == 0) {
		return 0;
	}
	/* How many of their recipients went out under another sender (compared in C). */
	check_sql_init(&q);
	check_sql_add(&q, "SELECT auth_user, sender, SUM(n) FROM relay_hourly");
	where_window(&q, r);
	check_sql_add(&q, " AND auth_user IN (");
	for (size_t i = 0; i < s->rows; i++) {
		struct cell *c = section_cell(s, i, 0);
		check_sql_add(&q, "%s", i ? ", " : "");
		check_sql_bytes(&q, c->s, c->n);
	}
	check_sql_add(&q, ") GROUP BY auth_user, sender");
	res = check_sql_query(db, &q);
	if (res == NULL) {
		goto out;
	}
	while ((row = mysql_fetch_row(res)) != NULL) {
		unsigned long *len = mysql_fetch_lengths(res);
		if (check_sender_matches(row[1], len[1], row[0], len[0])) {
			continue;
		}
		for (size_t i = 0; i < s->rows; i++) {
			struct cell *c = section_cell(s, i, 0);
			if (c->n == len[0] && memcmp(c->s, row[0], len[0]) == 0) {
				section_cell(s, i, 4)->v += (int64_t)check_sql_u64(row[2], len[2]);
				break;
			}
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
	mysql_free_result(res);
	check_sql_finish(&q);
	return ret;
}

static int query_iprelay(struct db *db, struct report *r)
{
	struct check_sql q;

	check_sql_init(&q);
	check_sql_add(&q, "SELECT remote_ip, SUM(n) AS s, COUNT(DISTINCT rcpt_domain),"
			  " COUNT(DISTINCT sender) FROM relay_hourly");
	where_window(&q, r);
	check_sql_add(&q,
		      " AND auth_user = '' GROUP BY remote_ip ORDER BY s DESC, remote_ip"
		      " LIMIT %u",
		      r->top);
	return fill_section(db, &q, &r->sec[SEC_IPRELAY]);
}

static int query_denied(struct db *db, struct report *r)
{
	struct section *s = &r->sec[SEC_DENIED];
	struct check_sql q;
	MYSQL_RES *res = NULL;
	MYSQL_ROW row;
	int ret = -1;

	check_sql_init(&q);
	check_sql_add(&q, "SELECT remote_ip, SUM(n) AS s, COUNT(DISTINCT rcpt_domain)"
			  " FROM denied_hourly");
	where_window(&q, r);
	check_sql_add(&q, " GROUP BY remote_ip ORDER BY s DESC, remote_ip LIMIT %u", r->top);
	if (fill_section(db, &q, s) < 0) {
		return -1;
	}
	if (s->rows == 0) {
		return 0;
	}
	/* The domain each source aimed at most. */
	check_sql_init(&q);
	check_sql_add(&q, "SELECT remote_ip, rcpt_domain, SUM(n) AS s FROM denied_hourly");
	where_window(&q, r);
	check_sql_add(&q, " AND remote_ip IN (");
	for (size_t i = 0; i < s->rows; i++) {
		struct cell *c = section_cell(s, i, 0);
		check_sql_add(&q, "%s", i ? ", " : "");
		check_sql_bytes(&q, c->s, c->n);
	}
	check_sql_add(&q, ") GROUP BY remote_ip, rcpt_domain ORDER BY remote_ip, s DESC,"
			  " rcpt_domain");
	res = check_sql_query(db, &q);
	if (res == NULL) {
		goto out;
	}
	while ((row = mysql_fetch_row(res)) != NULL) {
		unsigned long *len = mysql_fetch_lengths(res);
		for (size_t i = 0; i < s->rows; i++) {
			struct cell *c = section_cell(s, i, 0), *d = section_cell(s, i, 3);
			if (c->n == len[0] && memcmp(c->s, row[0], len[0]) == 0) {
				if (d->s == NULL && cell_bytes(d, row[1], len[1]) < 0) {
					goto out;
				}
				break;
			}
		}
	}
	for (size_t i = 0; i < s->rows; i++) {
		struct cell *c = section_cell(s, i, 0);
		s->status[i] = alert_status(r, 1u << CHECK_DENIED, c->s, c->n);
	}
	ret = 0;
out:
	mysql_free_result(res);
	check_sql_finish(&q);
	return ret;
}

static int query_ddomains(struct db *db, struct report *r)
{
	struct check_sql q;

	check_sql_init(&q);
	check_sql_add(&q, "SELECT rcpt_domain, SUM(n) AS s, COUNT(DISTINCT remote_ip)"
			  " FROM denied_hourly");
	where_window(&q, r);
	check_sql_add(&q, " GROUP BY rcpt_domain ORDER BY s DESC, rcpt_domain LIMIT %u", r->top);
	return fill_section(db, &q, &r->sec[SEC_DDOMAINS]);
}

static int query_inbound(struct db *db, struct report *r)
{
	struct section *s = &r->sec[SEC_INBOUND];
	struct check_sql q;

	check_sql_init(&q);
	check_sql_add(&q, "SELECT host,"
			  " SUM(IF(event IN ('accepted rcpt', 'accepted any rcpt'), n, 0)),"
			  " SUM(IF(event = 'rejected rcpt' AND reason = 'not existing recipient',"
			  " n, 0)),"
			  " SUM(IF(event = 'rejected rcpt' AND reason <> 'not existing recipient',"
			  " n, 0))"
			  " FROM event_hourly");
	where_window(&q, r);
	check_sql_add(&q, " GROUP BY host ORDER BY host");
	if (fill_section(db, &q, s) < 0) {
		return -1;
	}
	for (size_t i = 0; i < s->rows; i++) {
		int64_t acc = section_cell(s, i, 1)->v, unk = section_cell(s, i, 2)->v;
		int64_t oth = section_cell(s, i, 3)->v, all = acc + unk + oth;
		section_cell(s, i, 4)->v = all ? (unk * 1000 + all / 2) / all : INT64_MIN;
	}
	return 0;
}

static int query_hosts(struct db *db, struct report *r)
{
	struct section *s = &r->sec[SEC_HOSTS];
	struct check_sql q;

	check_sql_init(&q);
	/* A chunk counts for the window when its data overlaps it. */
	check_sql_add(&q, "SELECT host, SUM(w), SUM(IF(w, line_count, 0)),"
			  " SUM(IF(w, malformed_count, 0)), MAX(COALESCE(last_utc, ingested_at))"
			  " FROM (SELECT host, line_count, malformed_count, last_utc, ingested_at,"
			  " COALESCE(last_utc, ingested_at) >= ");
	check_sql_time(&q, r->since);
	check_sql_add(&q, " AND COALESCE(first_utc, ingested_at) < ");
	check_sql_time(&q, r->until);
	check_sql_add(&q, " AS w FROM chunks");
	if (r->host != NULL) {
		check_sql_add(&q, " WHERE host = ");
		check_sql_bytes(&q, r->host, strlen(r->host));
	}
	check_sql_add(&q, ") AS c GROUP BY host ORDER BY host");
	if (fill_section(db, &q, s) < 0) {
		return -1;
	}
	for (size_t i = 0; i < s->rows; i++) {
		int64_t newest = section_cell(s, i, 4)->v;
		int64_t age =
			newest == INT64_MIN || newest > r->stale_ref ? 0 : r->stale_ref - newest;
		section_cell(s, i, 5)->v = age;
		/* Files backfilled without a host name belong to no shipper to watch. */
		enum check_status st = section_cell(s, i, 0)->n == 0
					       ? CHECK_OK
					       : check_judge((uint64_t)age, &r->rules->stale);
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
		c[6].n = a->daily && a->when % 86400 == 0;
		s->status[s->rows - 1] = a->status;
	}
	return 0;
}

/* ---- rendering ---- */

enum fmt { FMT_TEXT, FMT_TSV, FMT_JSON, FMT_HTML };

static void format_age(int64_t s, char *out, size_t size)
{
	if (s < 3600) {
		snprintf(out, size, "%" PRId64 "m", s / 60);
	} else if (s < 2 * 86400) {
		snprintf(out, size, "%" PRId64 "h%02" PRId64 "m", s / 3600, s % 3600 / 60);
	} else {
		snprintf(out, size, "%" PRId64 "d%02" PRId64 "h", s / 86400, s % 86400 / 3600);
	}
}

/* A non-string cell as text for fmt (JSON: a complete JSON value). */
static void format_cell(enum fmt fmt, enum col_kind kind, const struct cell *c, char *out,
			size_t size)
{
	static const char *const short_status[4] = {"OK", "WARN", "CRIT", "UNKN"};
	char t[20];

	if (c->v == INT64_MIN && (kind == COL_TIME || kind == COL_PERMILLE)) {
		snprintf(out, size, "%s", fmt == FMT_JSON ? "null" : fmt == FMT_TSV ? "" : "-");
		return;
	}
	switch (kind) {
	case COL_STR:
		out[0] = '\0';
		break;
	case COL_NUM:
		snprintf(out, size, "%" PRId64, c->v);
		break;
	case COL_TIME:
		logtime_format(c->v, t);
		if (fmt == FMT_JSON) {
			if (c->n) {
				snprintf(out, size, "\"%.10s\"", t);
			} else {
				snprintf(out, size, "\"%.10sT%sZ\"", t, t + 11);
			}
		} else {
			snprintf(out, size, "%.*s", c->n ? 10 : 16, t);
		}
		break;
	case COL_PERMILLE:
		snprintf(out, size, "%" PRId64 ".%" PRId64 "%s", c->v / 10, c->v % 10,
			 fmt == FMT_TEXT || fmt == FMT_HTML ? "%" : "");
		break;
	case COL_STATUS:
		snprintf(out, size, fmt == FMT_JSON ? "\"%s\"" : "%s",
			 fmt == FMT_TEXT ? short_status[c->v & 3] : check_status_name[c->v & 3]);
		break;
	case COL_RULE:
		snprintf(out, size, fmt == FMT_JSON ? "\"%s\"" : "%s",
			 c->v >= 0 && c->v < CHECK_RULES ? check_rule_name[c->v] : "?");
		break;
	case COL_AGE:
		if (fmt == FMT_TEXT || fmt == FMT_HTML) {
			format_age(c->v, out, size);
		} else {
			snprintf(out, size, "%" PRId64, c->v);
		}
		break;
	}
}

static void window_text(const struct report *r, char *out, size_t size)
{
	char a[17], b[17];

	report_time(r->since, false, a);
	report_time(r->until, false, b);
	snprintf(out, size, "%s to %s UTC", a, b);
}

static size_t count_status(const struct report *r, enum check_status st)
{
	size_t n = 0;
	for (size_t i = 0; i < r->alerts.count; i++) {
		n += r->alerts.v[i].status == st;
	}
	return n;
}

/* -- text -- */

static void text_section(FILE *f, const struct section *s)
{
	char buf[256];
	size_t tl = strlen(s->title);

	fprintf(f, "\n%s\n", s->title);
	for (size_t i = 0; i < tl; i++) {
		fputc('-', f);
	}
	fputc('\n', f);
	if (s->rows == 0) {
		fprintf(f, "(none)\n");
		return;
	}
	/* header */
	if (s->flags) {
		fputs("  ", f);
	}
	for (unsigned j = 0; j < s->ncols; j++) {
		const struct col *col = &s->cols[j];
		bool right = col->kind != COL_STR && col->kind != COL_TIME &&
			     col->kind != COL_RULE && col->kind != COL_STATUS;
		bool last = j + 1 == s->ncols;
		fprintf(f, "%s%*s", j ? " " : "",
			right ? (int)col->width : -(int)(last ? 0 : col->width), col->head);
	}
	fputc('\n', f);
	for (size_t i = 0; i < s->rows; i++) {
		if (s->flags) {
			fputs(s->status[i] == CHECK_CRITICAL  ? "! "
			      : s->status[i] == CHECK_WARNING ? "* "
							      : "  ",
			      f);
		}
		for (unsigned j = 0; j < s->ncols; j++) {
			const struct col *col = &s->cols[j];
			const struct cell *c = &s->cells[i * s->ncols + j];
			bool last = j + 1 == s->ncols;
			bool right = col->kind != COL_STR && col->kind != COL_TIME &&
				     col->kind != COL_RULE && col->kind != COL_STATUS;
			if (col->kind == COL_STR) {
				report_text(buf, col->width, c->s ? c->s : "", c->n, false);
			} else {
				format_cell(FMT_TEXT, col->kind, c, buf, sizeof(buf));
			}
			if (last && !right) {
				fprintf(f, "%s%s", j ? " " : "", buf);
			} else {
				fprintf(f, "%s%*s", j ? " " : "",
					right ? (int)col->width : -(int)col->width, buf);
			}
		}
		fputc('\n', f);
	}
}

/* Prints a note (our own text, not from the database) wrapped at width columns. */
static void text_wrap(FILE *f, const char *s, size_t width)
{
	while (*s != '\0') {
		size_t n = strlen(s);
		if (n > width) {
			n = width;
			while (n > 0 && s[n] != ' ') {
				n--;
			}
			if (n == 0) {
				n = width;
			}
		}
		fprintf(f, "%.*s\n", (int)n, s);
		s += n;
		while (*s == ' ') {
			s++;
		}
	}
}

static void render_text(FILE *f, const struct report *r)
{
	char w[64], h[64];

	window_text(r, w, sizeof(w));
	if (r->host != NULL) {
		report_text(h, 40, r->host, strlen(r->host), false);
	}
	fprintf(f, "relaywatch report, %s, %s%s\n", w, r->host ? "host " : "all hosts",
		r->host ? h : "");
	fprintf(f,
		"events %" PRIu64 ", relayed %" PRIu64 ", rejected relaying %" PRIu64
		", alerts %zu (%zu critical)\n",
		r->events, r->relayed, r->denied, r->alerts.count, count_status(r, CHECK_CRITICAL));
	if (r->ledger_empty) {
		fprintf(f, "The ledger holds no chunk: nothing has been ingested yet.\n");
	}
	for (int i = 0; i < SEC_COUNT; i++) {
		text_section(f, &r->sec[i]);
		if (r->sec[i].note != NULL && r->sec[i].rows > 0) {
			text_wrap(f, r->sec[i].note, 79);
		}
		if (r->sec[i].flags && r->sec[i].rows > 0) {
			fputs("! critical, * warning: an alert rule fired for this row.\n", f);
		}
	}
}

/* -- TSV -- */

static void render_tsv(FILE *f, const struct report *r)
{
	char a[17], b[17], buf[64];

	report_time(r->since, false, a);
	report_time(r->until, false, b);
	fprintf(f, "#report\tsince\tuntil\thost\tperiod\n");
	fprintf(f, "report\t%s\t%s\t", a, b);
	if (r->host != NULL) {
		report_tsv(f, r->host, strlen(r->host));
	}
	fprintf(f, "\t%s\n", r->day ? "day" : "hour");
	fprintf(f, "#totals\tevents\trelaying_rcpt\trejected_relaying\talerts\tcritical\n");
	fprintf(f, "totals\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%zu\t%zu\n", r->events,
		r->relayed, r->denied, r->alerts.count, count_status(r, CHECK_CRITICAL));
	for (int i = 0; i < SEC_COUNT; i++) {
		const struct section *s = &r->sec[i];
		fprintf(f, "#%s", s->id);
		for (unsigned j = 0; j < s->ncols; j++) {
			fprintf(f, "\t%s", s->cols[j].name);
		}
		fprintf(f, s->flags ? "\tflag\n" : "\n");
		for (size_t k = 0; k < s->rows; k++) {
			fputs(s->id, f);
			for (unsigned j = 0; j < s->ncols; j++) {
				const struct cell *c = &s->cells[k * s->ncols + j];
				fputc('\t', f);
				if (s->cols[j].kind == COL_STR) {
					report_tsv(f, c->s ? c->s : "", c->n);
				} else {
					format_cell(FMT_TSV, s->cols[j].kind, c, buf, sizeof(buf));
					fputs(buf, f);
				}
			}
			if (s->flags) {
				fprintf(f, "\t%s", check_status_name[s->status[k]]);
			}
			fputc('\n', f);
		}
	}
}

/* -- JSON -- */

static void render_json(FILE *f, const struct report *r)
{
	char a[20], b[20], g[20], buf[64];

	logtime_format(r->since, a);
	logtime_format(r->until, b);
	logtime_format(r->now, g);
	fprintf(f,
		"{\"report\":{\"since\":\"%.10sT%sZ\",\"until\":\"%.10sT%sZ\","
		"\"generated\":\"%.10sT%sZ\",\"period\":\"%s\",\"host\":",
		a, a + 11, b, b + 11, g, g + 11, r->day ? "day" : "hour");
	if (r->host != NULL) {
		report_json(f, r->host, strlen(r->host));
	} else {
		fputs("null", f);
	}
	fprintf(f,
		",\"ledger_empty\":%s},\n\"totals\":{\"events\":%" PRIu64
		",\"relaying_rcpt\":%" PRIu64 ",\"rejected_relaying\":%" PRIu64
		",\"alerts\":%zu,\"critical\":%zu}",
		r->ledger_empty ? "true" : "false", r->events, r->relayed, r->denied,
		r->alerts.count, count_status(r, CHECK_CRITICAL));
	for (int i = 0; i < SEC_COUNT; i++) {
		const struct section *s = &r->sec[i];
		fprintf(f, ",\n\"%s\":[", s->id);
		for (size_t k = 0; k < s->rows; k++) {
			fprintf(f, "%s{", k ? ",\n " : "");
			for (unsigned j = 0; j < s->ncols; j++) {
				const struct cell *c = &s->cells[k * s->ncols + j];
				fprintf(f, "%s\"%s\":", j ? "," : "", s->cols[j].name);
				if (s->cols[j].kind == COL_STR) {
					report_json(f, c->s ? c->s : "", c->n);
				} else {
					format_cell(FMT_JSON, s->cols[j].kind, c, buf, sizeof(buf));
					fputs(buf, f);
				}
			}
			if (s->flags) {
				fprintf(f, ",\"flag\":\"%s\"", check_status_name[s->status[k]]);
			}
			fputc('}', f);
		}
		fputc(']', f);
	}
	fprintf(f, ",\n\"hourly\":[");
	for (size_t i = 0; i < r->nhourly; i++) {
		const struct bucket *bk = &r->hourly[i];
		logtime_format(bk->t, a);
		fprintf(f, "%s{\"hour\":\"%.10sT%sZ\"", i ? ",\n " : "", a, a + 11);
		for (int k = 0; k < GRP_COUNT; k++) {
			fprintf(f, ",\"%s\":%" PRIu64, s_grp_key[k], bk->v[k]);
		}
		fputc('}', f);
	}
	fputs("]}\n", f);
}

/* -- HTML -- */

static const char html_css[] =
	"body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;"
	"padding:0 12px 32px;color:#222;background:#f6f6f6}"
	"main{max-width:1100px;margin:0 auto}"
	"h1{font-size:1.4em;margin:16px 0 2px}"
	"h2{font-size:1.15em;margin:28px 0 8px;border-bottom:1px solid #ccc;padding-bottom:4px}"
	".win{color:#555;margin:0 0 12px}"
	".cards{display:flex;flex-wrap:wrap;gap:8px}"
	".card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px;"
	"min-width:120px;flex:1 1 120px}"
	".card b{display:block;font-size:1.5em;font-variant-numeric:tabular-nums}"
	".card.crit{border-color:#d9534f;background:#fdecea}"
	".card.warn{border-color:#f0ad4e;background:#fff8e1}"
	".scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}"
	"table{border-collapse:collapse;background:#fff;font-size:14px}"
	"th,td{padding:4px 8px;border-bottom:1px solid #eee;text-align:left;white-space:nowrap}"
	"th{background:#eee;font-weight:600}"
	"td.s{max-width:22em;overflow:hidden;text-overflow:ellipsis}"
	"td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}"
	"tr.crit td{background:#fdecea}tr.warn td{background:#fff8e1}"
	"tr.crit td:first-child{box-shadow:inset 4px 0 #d9534f}"
	"tr.warn td:first-child{box-shadow:inset 4px 0 #f0ad4e}"
	".chart{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;margin:8px 0;"
	"overflow-x:auto}"
	"svg{width:100%;height:auto;display:block}"
	"svg.vol{min-width:560px}svg.bars{max-width:760px}"
	"svg text{font:11px system-ui,sans-serif;fill:#333}"
	".legend{font-size:13px}.legend span{display:inline-block;margin-right:14px}"
	".legend i{display:inline-block;width:10px;height:10px;margin-right:4px}"
	".none,.note{color:#666;font-size:13px}.cap{font-size:13px;font-weight:600;margin:0 0 4px}"
	".ok{color:#2e7d32}.bad{color:#c62828;font-weight:600}";

/* Bytes as HTML, cut to about max characters (at a character boundary) with an ellipsis. */
static void html_cut(FILE *f, const char *str, size_t n, size_t max)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, chars = 0;

	while (i < n && chars < max) {
		uint32_t cp;
		size_t len = report_utf8(s + i, n - i, &cp);
		i += len ? len : 1;
		chars++;
	}
	report_html(f, str, i);
	if (i < n) {
		fputs("&#8230;", f);
	}
}

static const char *status_class(enum check_status st)
{
	return st == CHECK_CRITICAL ? "crit" : st == CHECK_WARNING ? "warn" : "";
}

static void html_volume_chart(FILE *f, const struct report *r);
static void html_bar_chart(FILE *f, const struct section *s, unsigned vcol, const char *id,
			   const char *what);

static void html_section(FILE *f, const struct report *r, int idx)
{
	const struct section *s = &r->sec[idx];
	char buf[64];

	fprintf(f, "<h2 id=\"h-%s\">", s->id);
	report_html(f, s->title, strlen(s->title));
	fprintf(f, "</h2>\n");
	if (idx == SEC_PERIOD) {
		html_volume_chart(f, r);
	} else if (idx == SEC_ACCOUNTS) {
		html_bar_chart(f, s, 1, "chart-accounts", "top relaying accounts by recipients");
	} else if (idx == SEC_DENIED) {
		html_bar_chart(f, s, 1, "chart-denied", "top sources of rejected relaying");
	}
	if (s->rows == 0) {
		fprintf(f, "<p class=\"none\" id=\"%s\">none</p>\n", s->id);
		return;
	}
	fprintf(f, "<div class=\"scroll\"><table id=\"%s\"><thead><tr>", s->id);
	for (unsigned j = 0; j < s->ncols; j++) {
		const struct col *col = &s->cols[j];
		bool num =
			col->kind == COL_NUM || col->kind == COL_PERMILLE || col->kind == COL_AGE;
		fprintf(f, "<th%s>", num ? " class=\"n\"" : "");
		report_html(f, col->head, strlen(col->head));
		fputs("</th>", f);
	}
	fputs("</tr></thead><tbody>\n", f);
	for (size_t k = 0; k < s->rows; k++) {
		const char *cls = status_class(s->status[k]);
		fprintf(f, "<tr%s%s%s>", *cls ? " class=\"" : "", cls, *cls ? "\"" : "");
		for (unsigned j = 0; j < s->ncols; j++) {
			const struct col *col = &s->cols[j];
			const struct cell *c = &s->cells[k * s->ncols + j];
			bool num = col->kind == COL_NUM || col->kind == COL_PERMILLE ||
				   col->kind == COL_AGE;
			fprintf(f, "<td class=\"%s\" data-col=\"%s\"",
				col->kind == COL_STR ? "s"
				: num                ? "n"
						     : "t",
				col->name);
			if (col->kind == COL_STR) {
				/* Long values are cut on screen; the title shows them whole. */
				fputs(" title=\"", f);
				report_html(f, c->s ? c->s : "", c->n);
				fputs("\">", f);
				report_html(f, c->s ? c->s : "", c->n);
			} else {
				fputc('>', f);
				format_cell(FMT_HTML, col->kind, c, buf, sizeof(buf));
				report_html(f, buf, strlen(buf));
			}
			fputs("</td>", f);
		}
		fputs("</tr>\n", f);
	}
	fputs("</tbody></table></div>\n", f);
	if (s->note != NULL) {
		fprintf(f, "<p class=\"note\">");
		report_html(f, s->note, strlen(s->note));
		fprintf(f, "</p>\n");
	}
}

/* 1, 2 or 5 times a power of ten, >= v. */
static uint64_t nice_max(uint64_t v)
{
	uint64_t p = 1;

	if (v <= 1) {
		return 1;
	}
	while (p <= UINT64_MAX / 10 && p * 10 < v) {
		p *= 10;
	}
	if (p >= v) {
		return p;
	}
	if (2 * p >= v) {
		return 2 * p;
	}
	if (5 * p >= v) {
		return 5 * p;
	}
	return 10 * p;
}

/* Stacked bars of the event groups per hour (per day for windows over a month). */
static void html_volume_chart(FILE *f, const struct report *r)
{
	const double W = 760, H = 240, L = 56, R = 8, T = 10, B = 36;
	struct bucket *v = NULL;
	size_t n = 0;
	bool day = r->nhourly > 24 * 31;
	uint64_t max = 0;
	char t[20];

	v = calloc(r->nhourly ? r->nhourly : 1, sizeof(*v));
	if (v == NULL) {
		return;
	}
	for (size_t i = 0; i < r->nhourly; i++) {
		int64_t p = day ? r->hourly[i].t - r->hourly[i].t % 86400 : r->hourly[i].t;
		if (n == 0 || v[n - 1].t != p) {
			v[n++].t = p;
		}
		for (int g = 0; g < GRP_COUNT; g++) {
			v[n - 1].v[g] += r->hourly[i].v[g];
		}
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t s = 0;
		for (int g = 0; g < GRP_COUNT; g++) {
			s += v[i].v[g];
		}
		max = s > max ? s : max;
	}
	max = nice_max(max);
	double pw = W - L - R, ph = H - T - B, bw = n ? pw / (double)n : pw;
	fprintf(f,
		"<div class=\"chart\"><div class=\"cap\">CHKUSER events per %s by type</div>\n"
		"<svg class=\"vol\" id=\"chart-volume\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" "
		"aria-label=\"events per %s by type\">\n",
		day ? "day" : "hour", W, H, day ? "day" : "hour");
	for (int k = 0; k <= 4; k++) {
		double y = T + ph - ph * k / 4.0;
		fprintf(f,
			"<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
			"<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%" PRIu64 "</text>\n",
			L, y, W - R, y, L - 4, y + 4,
			max / 4 * (uint64_t)k + (k == 4 ? max % 4 : 0));
	}
	for (size_t i = 0; i < n; i++) {
		double x = L + bw * (double)i, y = T + ph;
		logtime_format(v[i].t, t);
		fprintf(f, "<g><title>%.*s", day ? 10 : 16, t);
		for (int g = 0; g < GRP_COUNT; g++) {
			fprintf(f, "\n%s: %" PRIu64, grp_name[g], v[i].v[g]);
		}
		fputs("</title>", f);
		for (int g = 0; g < GRP_COUNT; g++) {
			double h = ph * (double)v[i].v[g] / (double)max;
			if (v[i].v[g] == 0) {
				continue;
			}
			y -= h;
			fprintf(f,
				"<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
				"fill=\"%s\"/>",
				x, y, bw > 2 ? bw * 0.85 : bw, h, grp_color[g]);
		}
		fputs("</g>\n", f);
	}
	size_t step = n / 8 + 1;
	for (size_t i = 0; i < n; i += step) {
		logtime_format(v[i].t, t);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\">%.5s%s%.*s</text>\n", L + bw * (double)i,
			H - B + 16, t + 5, day ? "" : " ", day ? 0 : 5, t + 11);
	}
	fputs("</svg><div class=\"legend\">", f);
	for (int g = 0; g < GRP_COUNT; g++) {
		fprintf(f, "<span><i style=\"background:%s\"></i>%s</span>", grp_color[g],
			grp_name[g]);
	}
	fprintf(f, "</div></div>\n");
	free(v);
}

/* Horizontal bars of the first rows of a section: label column 0, value column vcol. */
static void html_bar_chart(FILE *f, const struct section *s, unsigned vcol, const char *id,
			   const char *what)
{
	const double W = 520, LBL = 200, VAL = 60, RH = 22;
	size_t n = s->rows < 10 ? s->rows : 10;
	uint64_t max = 1;

	if (n == 0) {
		return;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t v = (uint64_t)s->cells[i * s->ncols + vcol].v;
		max = v > max ? v : max;
	}
	fprintf(f,
		"<div class=\"chart\"><svg class=\"bars\" id=\"%s\" viewBox=\"0 0 %.0f %.0f\" "
		"role=\"img\" "
		"aria-label=\"%s\">\n",
		id, W, RH * (double)n + 6, what);
	for (size_t i = 0; i < n; i++) {
		const struct cell *lbl = &s->cells[i * s->ncols];
		uint64_t v = (uint64_t)s->cells[i * s->ncols + vcol].v;
		double y = 3 + RH * (double)i, w = (W - LBL - VAL) * (double)v / (double)max;
		const char *color = s->status[i] == CHECK_CRITICAL  ? "#d9534f"
				    : s->status[i] == CHECK_WARNING ? "#f0ad4e"
								    : "#4a78b0";
		fprintf(f, "<g><title>");
		report_html(f, lbl->s ? lbl->s : "", lbl->n);
		fprintf(f, ": %" PRIu64 "</title><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">",
			v, LBL - 6, y + 15);
		html_cut(f, lbl->s ? lbl->s : "", lbl->n, 30);
		fprintf(f,
			"</text><rect x=\"%.1f\" y=\"%.1f\" width=\"%.2f\" height=\"%.1f\" "
			"fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\">%" PRIu64 "</text></g>\n",
			LBL, y + 2, w < 1 ? 1 : w, RH - 6, color, LBL + (w < 1 ? 1 : w) + 4, y + 15,
			v);
	}
	fputs("</svg></div>\n", f);
}

static void html_card(FILE *f, const char *cls, const char *id, uint64_t v, const char *label)
{
	fprintf(f, "<div class=\"card %s\" id=\"%s\"><b>%" PRIu64 "</b>%s</div>\n", cls, id, v,
		label);
}

static void render_html(FILE *f, const struct report *r)
{
	char w[64], g[20];
	size_t ncrit = count_status(r, CHECK_CRITICAL);

	window_text(r, w, sizeof(w));
	logtime_format(r->now, g);
	/*
	 * The page must work from a mail attachment or a file share without reaching the network:
	 * the policy forbids every fetch (scripts, images, fonts, styles from elsewhere), which
	 * also contains any markup that slipped past the escaping.
	 */
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
		   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
		   "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
		   "style-src 'unsafe-inline'\">\n"
		   "<title>relaywatch report ");
	report_html(f, w, strlen(w));
	fprintf(f, "</title>\n<style>%s</style></head><body><main>\n", html_css);
	fprintf(f, "<h1>relaywatch report</h1>\n<p class=\"win\">%s &middot; ", w);
	if (r->host != NULL) {
		fputs("host ", f);
		report_html(f, r->host, strlen(r->host));
	} else {
		fputs("all hosts", f);
	}
	fprintf(f, " &middot; generated %.16s UTC</p>\n", g);
	if (r->ledger_empty) {
		fputs("<p class=\"bad\">The ledger holds no chunk: nothing has been ingested "
		      "yet.</p>\n",
		      f);
	}
	fputs("<div class=\"cards\">\n", f);
	html_card(f,
		  ncrit             ? "crit"
		  : r->alerts.count ? "warn"
				    : "",
		  "card-alerts", r->alerts.count, "alerts");
	html_card(f, "", "card-events", r->events, "CHKUSER events");
	html_card(f, "", "card-relayed", r->relayed, "relayed recipients");
	html_card(f, "", "card-denied", r->denied, "rejected relaying");
	fputs("</div>\n", f);

	for (int i = 0; i < SEC_COUNT; i++) {
		html_section(f, r, i);
	}
	fputs("</main></body></html>\n", f);
}

/* ---- relaywatch-ingest report ---- */

static const char report_usage[] =
	"usage: relaywatch-ingest report [OPTIONS]\n"
	"\n"
	"Summarises the aggregates over a time window (default: the last 24 hours): anomalies,\n"
	"events per type, top relaying accounts, relays allowed by IP, rejected relaying, inbound\n"
	"recipients and the freshness of each host's chunks.\n"
	"\n"
	"      --since TIME         start: 24h, 7d, YYYY-MM-DD, 'YYYY-MM-DD HH:MM' (UTC; default "
	"24h)\n"
	"      --until TIME         end (default: now)\n"
	"      --host NAME          one mail server only\n"
	"      --format FMT         text (default), tsv, json or html\n"
	"  -o, --output FILE        write to FILE (replaced atomically) instead of stdout\n"
	"      --top N              rows in each top list (default 20)\n"
	"  -c, --config FILE        alert rules from FILE (default " INGEST_CONFIG_DEFAULT ")\n"
	"      --defaults-file FILE MySQL option file with the database credentials\n"
	"  -q, --quiet              only errors on stderr\n"
	"  -v, --verbose            more messages on stderr\n"
	"  -h, --help               this text\n"
	"  -V, --version            version\n";

static int report_gather(struct db *db, struct report *r)
{
	int empty = check_collect(db, r->rules, r->since, r->until, false, r->stale_ref, r->host,
				  &r->alerts);
	if (empty < 0) {
		return -1;
	}
	r->ledger_empty = empty > 0;
	if (report_anomalies(r) < 0 || query_hourly(db, r) < 0 || query_types(db, r) < 0 ||
	    query_accounts(db, r) < 0 || query_iprelay(db, r) < 0 || query_denied(db, r) < 0 ||
	    query_ddomains(db, r) < 0 || query_inbound(db, r) < 0 || query_hosts(db, r) < 0) {
		return -1;
	}
	return 0;
}

static void report_setup(struct report *r)
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

static void report_finish(struct report *r)
{
	for (int i = 0; i < SEC_COUNT; i++) {
		section_finish(&r->sec[i]);
	}
	free(r->hourly);
	check_alerts_finish(&r->alerts);
}

/* Opens FILE.XXXXXX beside out, so that readers only ever see a complete report. */
static FILE *output_open(const char *out, char **tmp)
{
	size_t n = strlen(out);
	mode_t mask;
	int fd;
	FILE *f;

	*tmp = malloc(n + 8);
	if (*tmp == NULL) {
		log_error("out of memory");
		return NULL;
	}
	memcpy(*tmp, out, n);
	memcpy(*tmp + n, ".XXXXXX", 8);
	fd = mkstemp(*tmp);
	if (fd < 0) {
		log_error("%s: %s", out, strerror(errno));
		free(*tmp);
		*tmp = NULL;
		return NULL;
	}
	mask = umask(0);
	umask(mask);
	if (fchmod(fd, 0666 & ~mask) != 0) {
		log_warn("%s: chmod: %s", *tmp, strerror(errno));
	}
	f = fdopen(fd, "w");
	if (f == NULL) {
		log_error("%s: %s", *tmp, strerror(errno));
		close(fd);
		unlink(*tmp);
		free(*tmp);
		*tmp = NULL;
	}
	return f;
}

int cmd_report(int argc, char **argv)
{
	enum { OPT_DEFAULTS = 256, OPT_SINCE, OPT_UNTIL, OPT_HOST, OPT_FORMAT, OPT_TOP };
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"defaults-file", required_argument, NULL, OPT_DEFAULTS},
		{"since", required_argument, NULL, OPT_SINCE},
		{"until", required_argument, NULL, OPT_UNTIL},
		{"host", required_argument, NULL, OPT_HOST},
		{"format", required_argument, NULL, OPT_FORMAT},
		{"output", required_argument, NULL, 'o'},
		{"top", required_argument, NULL, OPT_TOP},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	const char *config = NULL, *defaults = NULL, *since_s = NULL, *until_s = NULL;
	const char *output = NULL;
	enum fmt fmt = FMT_TEXT;
	struct ingest_config cfg;
	struct report r = {.top = 20};
	struct db *db = NULL;
	FILE *f = NULL;
	char *tmp = NULL;
	int ret = CMD_USAGE, c;

	ingest_config_init(&cfg);
	check_alerts_init(&r.alerts);
	r.rules = &cfg.rules;
	r.now = (int64_t)time(NULL);
	while ((c = getopt_long(argc, argv, ":c:o:qvhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case OPT_DEFAULTS:
			defaults = optarg;
			break;
		case OPT_SINCE:
			since_s = optarg;
			break;
		case OPT_UNTIL:
			until_s = optarg;
			break;
		case OPT_HOST:
			r.host = optarg;
			break;
		case OPT_FORMAT:
			if (strcmp(optarg, "text") == 0) {
				fmt = FMT_TEXT;
			} else if (strcmp(optarg, "tsv") == 0) {
				fmt = FMT_TSV;
			} else if (strcmp(optarg, "json") == 0) {
				fmt = FMT_JSON;
			} else if (strcmp(optarg, "html") == 0) {
				fmt = FMT_HTML;
			} else {
				log_error("--format: expected text, tsv, json or html");
				goto out;
			}
			break;
		case 'o':
			output = optarg;
			break;
		case OPT_TOP: {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*optarg == '\0' || *end != '\0' || v < 1 || v > 10000) {
				log_error("--top: expected a number from 1 to 10000");
				goto out;
			}
			r.top = (unsigned)v;
			break;
		}
		default:
			switch (cmd_option(c, argv, report_usage)) {
			case CMD_OPT_NEXT:
				continue;
			case CMD_OPT_DONE:
				ret = CMD_OK;
				goto out;
			default:
				goto out;
			}
		}
	}
	if (cmd_setup(argc, argv, config, &cfg, &defaults) != 0) {
		goto out;
	}
	r.until = r.now;
	if (until_s != NULL && check_parse_time(until_s, r.now, &r.until) < 0) {
		log_error("--until: expected 24h, 7d, YYYY-MM-DD or 'YYYY-MM-DD HH:MM'");
		goto out;
	}
	r.since = r.until - 86400;
	if (since_s != NULL && check_parse_time(since_s, r.now, &r.since) < 0) {
		log_error("--since: expected 24h, 7d, YYYY-MM-DD or 'YYYY-MM-DD HH:MM'");
		goto out;
	}
	if (r.since >= r.until) {
		log_error("--since must be before --until");
		goto out;
	}
	/* Freshness as of the end of a past window, else as of now. */
	r.stale_ref = r.until < r.now ? r.until : r.now;
	r.since = logtime_hour_floor(r.since);
	r.until = r.until + (3600 - ((r.until % 3600) + 3600) % 3600) % 3600;
	if ((r.until - r.since) / 3600 > 24 * 3660) {
		log_error("the window is longer than ten years");
		goto out;
	}
	r.day = r.until - r.since > 2 * 86400;
	report_setup(&r);

	bool bad_config;
	db = db_connect(defaults, &bad_config);
	if (db == NULL) {
		ret = bad_config ? CMD_USAGE : CMD_DB;
		goto out;
	}
	if (report_gather(db, &r) < 0) {
		ret = db_unavailable(db) ? CMD_DB : CMD_FAILED;
		goto out;
	}
	ret = CMD_FAILED;
	f = output ? output_open(output, &tmp) : stdout;
	if (f == NULL) {
		goto out;
	}
	switch (fmt) {
	case FMT_TEXT:
		render_text(f, &r);
		break;
	case FMT_TSV:
		render_tsv(f, &r);
		break;
	case FMT_JSON:
		render_json(f, &r);
		break;
	case FMT_HTML:
		render_html(f, &r);
		break;
	}
	if (fflush(f) != 0 || ferror(f)) {
		log_error("%s: write error: %s", output ? tmp : "stdout", strerror(errno));
		goto out;
	}
	if (output != NULL) {
		int e = fclose(f);
		f = NULL;
		if (e != 0) {
			log_error("%s: %s", tmp, strerror(errno));
			goto out;
		}
		if (rename(tmp, output) != 0) {
			log_error("%s: %s", output, strerror(errno));
			goto out;
		}
		free(tmp);
		tmp = NULL;
	}
	ret = CMD_OK;
out:
	if (f != NULL && f != stdout) {
		fclose(f);
	}
	if (tmp != NULL) {
		unlink(tmp);
		free(tmp);
	}
	db_destroy(db);
	report_finish(&r);
	ingest_config_finish(&cfg);
	return ret;
}
