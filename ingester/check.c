#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mysql.h>

#include "check.h"
#include "commands.h"
#include "db.h"
#include "ingest_config.h"
#include "log.h"
#include "logtime.h"
#include "notify.h"
#include "report.h"

const char *const check_rule_name[CHECK_RULES] = {
	[CHECK_RELAY_RCPT] = "relay_rcpt", [CHECK_RELAY_DOMAINS] = "relay_domains",
	[CHECK_RELAY_IPS] = "relay_ips",   [CHECK_SENDER_MISMATCH] = "sender_mismatch",
	[CHECK_DENIED] = "denied",         [CHECK_BASELINE] = "baseline",
	[CHECK_STALE] = "stale",
};

const char *const check_status_name[4] = {
	[CHECK_OK] = "OK",
	[CHECK_WARNING] = "WARNING",
	[CHECK_CRITICAL] = "CRITICAL",
	[CHECK_UNKNOWN] = "UNKNOWN",
};

void check_rules_init(struct check_rules *r)
{
	*r = (struct check_rules){
		.relay_rcpt = {500, 2000},
		.relay_domains = {50, 200},
		.relay_ips = {10, 30},
		.sender_mismatch = {25, 100},
		.denied = {100, 1000},
		.baseline_factor = {300, 1000},
		.baseline_min = 100,
		.baseline_days = 7,
		.baseline_percentile = 95,
		.stale = {2 * 3600, 6 * 3600},
	};
}

void check_rules_finish(struct check_rules *r)
{
	for (size_t i = 0; i < r->sender_allow_count; i++) {
		free(r->sender_allow[i]);
	}
	free(r->sender_allow);
	r->sender_allow = NULL;
	r->sender_allow_count = 0;
}

static bool is_off(const char *v)
{
	return strcmp(v, "off") == 0 || strcmp(v, "0") == 0;
}

static int bad_value(const struct config_line *cl, const char *what)
{
	char esc[LOG_ESCAPE_SIZE];

	log_error("%s:%u: %s: '%s' is not %s", cl->file, cl->line, cl->key,
		  log_escape(esc, sizeof(esc), cl->value, strlen(cl->value)), what);
	return -1;
}

/* "3", "2.5", "2.25" -> hundredths; 0 means off. */
static int parse_factor(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	unsigned frac = 0, fdigits = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p)) {
		return -1;
	}
	while (isdigit((unsigned char)*p)) {
		if (v > 1000000) {
			return -1;
		}
		v = v * 10 + (uint64_t)(*p++ - '0');
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p)) {
			return -1;
		}
		while (isdigit((unsigned char)*p)) {
			if (fdigits < 2) {
				frac = frac * 10 + (unsigned)(*p - '0');
				fdigits++;
			}
			p++;
		}
		while (fdigits < 2) {
			frac *= 10;
			fdigits++;
		}
	}
	if (*p != '\0') {
		return -1;
	}
	*out = v * 100 + frac;
	return 0;
}

static int add_allow(struct check_rules *r, const char *v)
{
	const char *p = v;

	while (*p != '\0') {
		while (*p == ' ' || *p == '\t') {
			p++;
		}
		size_t n = strcspn(p, " \t");
		if (n == 0) {
			break;
		}
		char **nv = realloc(r->sender_allow, (r->sender_allow_count + 1) * sizeof(*nv));
		if (nv == NULL) {
			log_error("out of memory");
			return -1;
		}
		r->sender_allow = nv;
		char *a = strndup(p, n);
		if (a == NULL) {
			log_error("out of memory");
			return -1;
		}
		r->sender_allow[r->sender_allow_count++] = a;
		p += n;
	}
	return 0;
}

static struct check_level *level_of(struct check_rules *r, const char *name, size_t n)
{
	static const struct {
		const char *name;
		size_t off;
	} levels[] = {
		{"relay_rcpt", offsetof(struct check_rules, relay_rcpt)},
		{"relay_domains", offsetof(struct check_rules, relay_domains)},
		{"relay_ips", offsetof(struct check_rules, relay_ips)},
		{"sender_mismatch", offsetof(struct check_rules, sender_mismatch)},
		{"denied", offsetof(struct check_rules, denied)},
		{"baseline", offsetof(struct check_rules, baseline_factor)},
		{"stale", offsetof(struct check_rules, stale)},
	};

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
		if (strlen(levels[i].name) == n && memcmp(levels[i].name, name, n) == 0) {
			return (struct check_level *)((char *)r + levels[i].off);
		}
	}
	return NULL;
}

int check_rules_set(struct check_rules *r, const struct config_line *cl)
{
	const char *k = cl->key;
	uint64_t v;

	if (strncmp(k, "check_", 6) != 0) {
		return 0;
	}
	k += 6;
	if (strcmp(k, "sender_allow") == 0) {
		return add_allow(r, cl->value) == 0 ? 1 : -1;
	}
	if (strcmp(k, "baseline_min") == 0) {
		return config_uint(cl, 0, UINT64_MAX, &r->baseline_min) == 0 ? 1 : -1;
	}
	if (strcmp(k, "baseline_days") == 0) {
		if (config_uint(cl, 1, 60, &v) < 0) {
			return -1;
		}
		r->baseline_days = (unsigned)v;
		return 1;
	}
	if (strcmp(k, "baseline_percentile") == 0) {
		if (config_uint(cl, 1, 100, &v) < 0) {
			return -1;
		}
		r->baseline_percentile = (unsigned)v;
		return 1;
	}

	size_t n = strlen(k);
	bool crit;
	if (n > 5 && strcmp(k + n - 5, "_warn") == 0) {
		crit = false;
	} else if (n > 5 && strcmp(k + n - 5, "_crit") == 0) {
		crit = true;
	} else {
		return 0;
	}
	struct check_level *l = level_of(r, k, n - 5);
	if (l == NULL) {
		return 0;
	}
	uint64_t *dst = crit ? &l->crit : &l->warn;
	if (is_off(cl->value)) {
		*dst = 0;
		return 1;
	}
	if (l == &r->baseline_factor) {
		if (parse_factor(cl->value, &v) < 0) {
			return bad_value(cl, "a factor (e.g. 3 or 2.5, or off)");
		}
	} else if (l == &r->stale) {
		int64_t s;
		if (check_parse_duration(cl->value, &s) < 0) {
			return bad_value(cl, "a duration (e.g. 90m, 6h, 2d, or off)");
		}
		v = (uint64_t)s;
	} else if (config_uint(cl, 0, UINT64_MAX, &v) < 0) {
		return -1;
	}
	*dst = v;
	return 1;
}

static bool ascii_eq_nocase(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z') {
			x = (unsigned char)(x - 'A' + 'a');
		}
		if (y >= 'A' && y <= 'Z') {
			y = (unsigned char)(y - 'A' + 'a');
		}
		if (x != y) {
			return false;
		}
	}
	return true;
}

bool check_sender_allowed(const struct check_rules *r, const char *account, size_t n)
{
	for (size_t i = 0; i < r->sender_allow_count; i++) {
		const char *a = r->sender_allow[i];
		if (strlen(a) == n && ascii_eq_nocase(a, account, n)) {
			return true;
		}
	}
	return false;
}

bool check_sender_matches(const char *sender, size_t sn, const char *account, size_t an)
{
	if (sn == 0) {
		return true;
	}
	if (memchr(account, '@', an) == NULL) {
		/* A system login ("alice") sends as alice@<some domain>. */
		const char *at = memchr(sender, '@', sn);
		if (at != NULL) {
			sn = (size_t)(at - sender);
		}
	}
	return sn == an && ascii_eq_nocase(sender, account, an);
}

enum check_status check_judge(uint64_t value, const struct check_level *l)
{
	if (l->crit != 0 && value >= l->crit) {
		return CHECK_CRITICAL;
	}
	if (l->warn != 0 && value >= l->warn) {
		return CHECK_WARNING;
	}
	return CHECK_OK;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

uint64_t check_percentile(uint64_t *v, size_t n, unsigned p)
{
	if (n == 0) {
		return 0;
	}
	if (p == 0) {
		p = 1;
	}
	if (p > 100) {
		p = 100;
	}
	qsort(v, n, sizeof(*v), cmp_u64);
	/* nearest rank: ceil(p/100 * n), 1-based */
	size_t rank = (n * p + 99) / 100;
	if (rank == 0) {
		rank = 1;
	}
	return v[rank - 1];
}

/* The smallest count strictly above factor/100 x p, and at least min; 0 when factor is off. */
static uint64_t baseline_threshold(uint64_t p, uint64_t factor, uint64_t min)
{
	uint64_t prod, t;

	if (factor == 0) {
		return 0;
	}
	if (__builtin_mul_overflow(p, factor, &prod)) {
		return UINT64_MAX;
	}
	t = prod / 100 + 1;
	return t < min ? min : t;
}

enum check_status check_baseline(const struct check_rules *r, uint64_t value, uint64_t *history,
				 size_t nhist, uint64_t *threshold_warn, uint64_t *threshold_crit)
{
	uint64_t p = check_percentile(history, nhist, r->baseline_percentile);
	struct check_level l = {
		.warn = baseline_threshold(p, r->baseline_factor.warn, r->baseline_min),
		.crit = baseline_threshold(p, r->baseline_factor.crit, r->baseline_min),
	};

	*threshold_warn = l.warn;
	*threshold_crit = l.crit;
	return check_judge(value, &l);
}

int check_parse_duration(const char *s, int64_t *seconds)
{
	uint64_t v = 0, mul = 1;
	const char *p = s;

	if (!isdigit((unsigned char)*p)) {
		return -1;
	}
	while (isdigit((unsigned char)*p)) {
		if (v > UINT64_C(1) << 40) {
			return -1;
		}
		v = v * 10 + (uint64_t)(*p++ - '0');
	}
	/* A bare number is refused: "--older-than 90000" is more likely a slip than 25 hours. */
	switch (*p) {
	case 's':
		mul = 1;
		break;
	case 'm':
		mul = 60;
		break;
	case 'h':
		mul = 3600;
		break;
	case 'd':
		mul = 86400;
		break;
	case 'w':
		mul = 7 * 86400;
		break;
	default:
		return -1;
	}
	if (p[1] != '\0') {
		return -1;
	}
	if (v == 0) {
		return -1;
	}
	*seconds = (int64_t)(v * mul);
	return 0;
}

static bool leap(unsigned y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int digits(const char *p, int n, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)p[i])) {
			return -1;
		}
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	*out = v;
	return 0;
}

int check_parse_time(const char *s, int64_t now, int64_t *utc)
{
	static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	unsigned y, mo, d, h = 0, mi = 0, sec = 0;
	size_t n = strlen(s);
	int64_t dur;

	if (check_parse_duration(s, &dur) == 0) {
		*utc = now - dur;
		return 0;
	}
	if (n < 10 || digits(s, 4, &y) < 0 || s[4] != '-' || digits(s + 5, 2, &mo) < 0 ||
	    s[7] != '-' || digits(s + 8, 2, &d) < 0) {
		return -1;
	}
	if (n > 10) {
		if ((s[10] != ' ' && s[10] != 'T') || n < 16 || digits(s + 11, 2, &h) < 0 ||
		    s[13] != ':' || digits(s + 14, 2, &mi) < 0) {
			return -1;
		}
		if (n > 16 && (n != 19 || s[16] != ':' || digits(s + 17, 2, &sec) < 0)) {
			return -1;
		}
	}
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] + (mo == 2 && leap(y) ? 1u : 0u) || h > 23 || mi > 59 || sec > 59) {
		return -1;
	}
	*utc = logtime_days_from_civil(y, mo, d) * 86400 + (int64_t)(h * 3600 + mi * 60 + sec);
	return 0;
}

void check_alerts_init(struct check_alerts *a)
{
	*a = (struct check_alerts){0};
}

void check_alerts_finish(struct check_alerts *a)
{
	for (size_t i = 0; i < a->count; i++) {
		free(a->v[i].host);
		free(a->v[i].subject);
	}
	free(a->v);
	check_alerts_init(a);
}

char *check_sql_bytes_dup(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p != NULL) {
		if (n > 0) {
			memcpy(p, s, n);
		}
		p[n] = '\0';
	}
	return p;
}

int check_alerts_add(struct check_alerts *a, enum check_rule rule, enum check_status status,
		     const char *host, size_t host_len, const char *subject, size_t subject_len,
		     uint64_t value, uint64_t threshold, int64_t when, bool daily)
{
	if (a->count == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		struct check_alert *v = realloc(a->v, cap * sizeof(*v));
		if (v == NULL) {
			log_error("out of memory");
			return -1;
		}
		a->v = v;
		a->cap = cap;
	}
	struct check_alert *x = &a->v[a->count];
	*x = (struct check_alert){
		.rule = rule,
		.status = status,
		.host = check_sql_bytes_dup(host, host_len),
		.host_len = host_len,
		.subject = check_sql_bytes_dup(subject, subject_len),
		.subject_len = subject_len,
		.value = value,
		.threshold = threshold,
		.when = when,
		.daily = daily,
	};
	if (x->host == NULL || x->subject == NULL) {
		free(x->host);
		free(x->subject);
		log_error("out of memory");
		return -1;
	}
	a->count++;
	return 0;
}

static int cmp_bytes(const char *a, size_t an, const char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	if (c != 0) {
		return c;
	}
	return (an > bn) - (an < bn);
}

static int cmp_alert(const void *pa, const void *pb)
{
	const struct check_alert *a = pa, *b = pb;
	int c;

	if (a->status != b->status) {
		return a->status > b->status ? -1 : 1;
	}
	if (a->rule != b->rule) {
		return a->rule < b->rule ? -1 : 1;
	}
	if (a->when != b->when) {
		return a->when < b->when ? -1 : 1;
	}
	c = cmp_bytes(a->host, a->host_len, b->host, b->host_len);
	if (c != 0) {
		return c;
	}
	return cmp_bytes(a->subject, a->subject_len, b->subject, b->subject_len);
}

void check_alerts_sort(struct check_alerts *a)
{
	if (a->count > 1) {
		qsort(a->v, a->count, sizeof(*a->v), cmp_alert);
	}
}

enum check_status check_worst(const struct check_alerts *a)
{
	enum check_status w = CHECK_OK;
	for (size_t i = 0; i < a->count; i++) {
		if (a->v[i].status > w) {
			w = a->v[i].status;
		}
	}
	return w;
}

/* ---- SQL text ---- */

void check_sql_init(struct check_sql *q)
{
	*q = (struct check_sql){0};
}

void check_sql_finish(struct check_sql *q)
{
	free(q->p);
	check_sql_init(q);
}

static bool sql_reserve(struct check_sql *q, size_t more)
{
	if (q->failed) {
		return false;
	}
	if (q->len + more + 1 > q->cap) {
		size_t cap = q->cap ? q->cap : 256;
		while (cap < q->len + more + 1) {
			cap *= 2;
		}
		char *p = realloc(q->p, cap);
		if (p == NULL) {
			q->failed = true;
			return false;
		}
		q->p = p;
		q->cap = cap;
	}
	return true;
}

void check_sql_add(struct check_sql *q, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !sql_reserve(q, (size_t)n)) {
		q->failed = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(q->p + q->len, q->cap - q->len, fmt, ap);
	va_end(ap);
	q->len += (size_t)n;
}

void check_sql_bytes(struct check_sql *q, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";

	if (!sql_reserve(q, 3 + 2 * n)) {
		return;
	}
	char *p = q->p + q->len;
	*p++ = 'X';
	*p++ = '\'';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		*p++ = hex[c >> 4];
		*p++ = hex[c & 15];
	}
	*p++ = '\'';
	*p = '\0';
	q->len = (size_t)(p - q->p);
}

void check_sql_time(struct check_sql *q, int64_t utc)
{
	char buf[20];

	logtime_format(utc, buf);
	check_sql_add(q, "'%s'", buf);
}

struct st_mysql_res *check_sql_query(struct db *db, struct check_sql *q)
{
	if (q->failed) {
		log_error("out of memory");
		return NULL;
	}
	return db_select(db, q->p, q->len);
}

int64_t check_sql_datetime(const char *s, size_t n)
{
	char buf[20];
	int64_t t;

	if (s == NULL || n != 19) {
		return INT64_MIN;
	}
	memcpy(buf, s, 19);
	buf[19] = '\0';
	if (check_parse_time(buf, 0, &t) < 0) {
		return INT64_MIN;
	}
	return t;
}

uint64_t check_sql_u64(const char *s, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; s != NULL && i < n && isdigit((unsigned char)s[i]); i++) {
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	return v;
}

/* ---- rule evaluation against the database ---- */

static void sql_window(struct check_sql *q, int64_t since, int64_t until, const char *host)
{
	check_sql_add(q, " WHERE hour_utc >= ");
	check_sql_time(q, since);
	check_sql_add(q, " AND hour_utc < ");
	check_sql_time(q, until);
	if (host != NULL) {
		check_sql_add(q, " AND host = ");
		check_sql_bytes(q, host, strlen(host));
	}
}

/* The lowest threshold that raises anything (for HAVING), or 0 when the rule is off. */
static uint64_t level_min(const struct check_level *l)
{
	if (l->warn == 0) {
		return l->crit;
	}
	if (l->crit == 0) {
		return l->warn;
	}
	return l->warn < l->crit ? l->warn : l->crit;
}

static uint64_t level_reached(const struct check_level *l, enum check_status st)
{
	return st == CHECK_CRITICAL ? l->crit : l->warn;
}

/*
 * The plugin's performance data beyond what judging yields (max_account_rcpt): the window's
 * totals and the busiest remote IP's hour, in one statement. Only `check` prints them.
 */
static int collect_perf(struct db *db, int64_t since, int64_t until, const char *host,
			struct check_alerts *out)
{
	static const char *const tables[3] = {"relay_hourly", "denied_hourly", "event_hourly"};
	uint64_t *dst[4] = {&out->relayed, &out->denied, &out->events, &out->max_ip_denied};
	struct check_sql q;
	MYSQL_RES *res = NULL;
	int ret = -1;

	check_sql_init(&q);
	check_sql_add(&q, "SELECT");
	for (int i = 0; i < 3; i++) {
		check_sql_add(&q, "%s (SELECT COALESCE(SUM(n), 0) FROM %s", i ? "," : "",
			      tables[i]);
		sql_window(&q, since, until, host);
		check_sql_add(&q, ")");
	}
	check_sql_add(&q,
		      ", (SELECT COALESCE(MAX(s), 0) FROM (SELECT SUM(n) AS s FROM denied_hourly");
	sql_window(&q, since, until, host);
	check_sql_add(&q, " GROUP BY hour_utc, host, remote_ip) AS t)");
	res = check_sql_query(db, &q);
	if (res == NULL) {
		goto out;
	}
	MYSQL_ROW row = mysql_fetch_row(res);
	unsigned long *len = mysql_fetch_lengths(res);
	if (row == NULL) {
		goto out;
	}
	for (int i = 0; i < 4; i++) {
		*dst[i] = check_sql_u64(row[i], len[i]);
	}
	ret = 0;
out:
	mysql_free_result(res);
	check_sql_finish(&q);
	return ret;
}

/* The first hour of data in the database, or INT64_MAX when there is none. */
static int first_hour(struct db *db, int64_t *first)
{
	struct check_sql q;
	MYSQL_RES *res = NULL;
	int ret = -1;

	check_sql_init(&q);
	check_sql_add(&q, "SELECT MIN(hour_utc) FROM event_hourly");
	res = check_sql_query(db, &q);
	if (res == NULL) {
		goto out;
	}
	MYSQL_ROW row = mysql_fetch_row(res);
	unsigned long *len = mysql_fetch_lengths(res);
	*first = INT64_MAX;
	if (row != NULL && row[0] != NULL) {
		int64_t t = check_sql_datetime(row[0], len[0]);
		if (t != INT64_MIN) {
			*first = t;
		}
	}
	ret = 0;
out:
	mysql_free_result(res);
	check_sql_finish(&q);
	return ret;
}

struct acct_hour {
	int64_t hour;
	uint64_t n;
	uint64_t domains;
};

/* The accounts whose baseline is worth judging: some hour of the window reached baseline_min. */
struct candidates {
	char **v;
	size_t *len;
	size_t count, cap;
};

static void candidates_finish(struct candidates *c)
{
	for (size_t i = 0; i < c->count; i++) {
		free(c->v[i]);
	}
	free(c->v);
	free(c->len);
}

static int candidates_add(struct candidates *c, const char *s, size_t n)
{
	for (size_t i = 0; i < c->count; i++) {
		if (c->len[i] == n && memcmp(c->v[i], s, n) == 0) {
			return 0;
		}
	}
	if (c->count == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		char **v = realloc(c->v, cap * sizeof(*v));
		if (v == NULL) {
			goto nomem;
		}
		c->v = v;
		size_t *len = realloc(c->len, cap * sizeof(*len));
		if (len == NULL) {
			goto nomem;
		}
		c->len = len;
		c->cap = cap;
	}
	c->v[c->count] = check_sql_bytes_dup(s, n);
	if (c->v[c->count] == NULL) {
		goto nomem;
	}
	c->len[c->count++] = n;
	return 0;
nomem:
	log_error("out of memory");
	return -1;
}

struct acct_ctx {
	const struct check_rules *r;
	int64_t since, first;
	bool baseline;           /* second pass: judge the baseline rule only */
	struct candidates *cand; /* first pass: collects the accounts for the second */
	uint64_t *hist;
	struct check_alerts *out;
};

/*
 * Judges the hours of one (host, account) group. First pass (the window's rows): relay_rcpt and
 * relay_domains. Second pass (the same accounts' rows with their trailing history): baseline.
 */
static int judge_account(struct acct_ctx *x, const char *host, size_t hn, const char *acct,
			 size_t an, const struct acct_hour *v, size_t count)
{
	const struct check_rules *r = x->r;
	size_t nhist = (size_t)r->baseline_days * 24;
	int64_t span = (int64_t)r->baseline_days * 86400;
	size_t lo = 0; /* the first row inside the current hour's history (rows come by hour) */

	for (size_t i = 0; i < count; i++) {
		const struct acct_hour *h = &v[i];
		enum check_status st;

		if (h->hour < x->since) {
			continue;
		}
		if (!x->baseline) {
			if (h->n > x->out->max_account_rcpt) {
				x->out->max_account_rcpt = h->n;
			}
			st = check_judge(h->n, &r->relay_rcpt);
			if (st != CHECK_OK &&
			    check_alerts_add(x->out, CHECK_RELAY_RCPT, st, host, hn, acct, an, h->n,
					     level_reached(&r->relay_rcpt, st), h->hour,
					     false) < 0) {
				return -1;
			}
			st = check_judge(h->domains, &r->relay_domains);
			if (st != CHECK_OK &&
			    check_alerts_add(x->out, CHECK_RELAY_DOMAINS, st, host, hn, acct, an,
					     h->domains, level_reached(&r->relay_domains, st),
					     h->hour, false) < 0) {
				return -1;
			}
			if (x->cand != NULL && h->n >= r->baseline_min && h->n > 0 &&
			    candidates_add(x->cand, acct, an) < 0) {
				return -1;
			}
			continue;
		}
		/*
		 * The baseline needs a full history: on a database that holds less than that, every
		 * busy account would look like it jumped from nothing.
		 */
		if (h->n < r->baseline_min || h->n == 0 || x->first > h->hour - span) {
			continue;
		}
		memset(x->hist, 0, nhist * sizeof(*x->hist));
		while (v[lo].hour < h->hour - span) {
			lo++;
		}
		for (size_t j = lo; j < i; j++) {
			x->hist[(size_t)(v[j].hour - (h->hour - span)) / 3600] = v[j].n;
		}
		uint64_t tw, tc;
		st = check_baseline(r, h->n, x->hist, nhist, &tw, &tc);
		if (st != CHECK_OK &&
		    check_alerts_add(x->out, CHECK_BASELINE, st, host, hn, acct, an, h->n,
				     st == CHECK_CRITICAL ? tc : tw, h->hour, false) < 0) {
			return -1;
		}
	}
	return 0;
}

/* Runs q (rows: host, auth_user, hour_utc, SUM(n)[, domains] ordered so) group by group. */
static int scan_accounts(struct db *db, struct check_sql *q, struct acct_ctx *x)
{
	MYSQL_RES *res = NULL;
	struct acct_hour *v = NULL;
	size_t count = 0, cap = 0;
	char *ghost = NULL, *gacct = NULL;
	size_t ghn = 0, gan = 0;
	int ret = -1;

	res = check_sql_query(db, q);
	if (res == NULL) {
		goto out;
	}
	unsigned nf = mysql_num_fields(res);
	for (;;) {
		MYSQL_ROW row = mysql_fetch_row(res);
		unsigned long *len = row ? mysql_fetch_lengths(res) : NULL;
		bool same = row != NULL && ghost != NULL && len[0] == ghn && len[1] == gan &&
			    memcmp(row[0], ghost, ghn) == 0 && memcmp(row[1], gacct, gan) == 0;
		if (!same && ghost != NULL) {
			if (judge_account(x, ghost, ghn, gacct, gan, v, count) < 0) {
				goto out;
			}
			free(ghost);
			free(gacct);
			ghost = gacct = NULL;
			count = 0;
		}
		if (row == NULL) {
			break;
		}
		if (ghost == NULL) {
			ghost = check_sql_bytes_dup(row[0], len[0]);
			gacct = check_sql_bytes_dup(row[1], len[1]);
			ghn = len[0];
			gan = len[1];
			if (ghost == NULL || gacct == NULL) {
				log_error("out of memory");
				goto out;
			}
		}
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct acct_hour *nv = realloc(v, ncap * sizeof(*nv));
			if (nv == NULL) {
				log_error("out of memory");
				goto out;
			}
			v = nv;
			cap = ncap;
		}
		v[count++] = (struct acct_hour){
			.hour = check_sql_datetime(row[2], len[2]),
			.n = check_sql_u64(row[3], len[3]),
			.domains = nf > 4 ? check_sql_u64(row[4], len[4]) : 0,
		};
	}
	ret = 0;
out:
	free(ghost);
	free(gacct);
	free(v);
	mysql_free_result(res);
	return ret;
}

/* Accounts per IN (...) list of the baseline pass. */
#define CANDIDATES_PER_QUERY 200

/*
 * relay_rcpt and relay_domains over the window's rows; then the baseline, for the few accounts
 * that reached baseline_min in some hour, over their trailing history read through the
 * (auth_user, hour_utc) index, so an hourly check does not scan a week of every account.
 */
static int collect_accounts(struct db *db, const struct check_rules *r, int64_t since,
			    int64_t until, const char *host, struct check_alerts *out)
{
	struct check_sql q;
	struct candidates cand = {0};
	struct acct_ctx x = {.r = r, .since = since, .first = INT64_MAX, .out = out};
	bool baseline = r->baseline_factor.warn != 0 || r->baseline_factor.crit != 0;
	int ret = -1;

	check_sql_init(&q);
	x.cand = baseline ? &cand : NULL;
	check_sql_add(&q, "SELECT host, auth_user, hour_utc, SUM(n), COUNT(DISTINCT rcpt_domain)"
			  " FROM relay_hourly");
	sql_window(&q, since, until, host);
	check_sql_add(&q, " AND auth_user <> '' GROUP BY host, auth_user, hour_utc"
			  " ORDER BY host, auth_user, hour_utc");
	if (scan_accounts(db, &q, &x) < 0) {
		goto out;
	}
	if (cand.count == 0) {
		ret = 0;
		goto out;
	}
	if (first_hour(db, &x.first) < 0) {
		goto out;
	}
	x.hist = calloc((size_t)r->baseline_days * 24, sizeof(*x.hist));
	if (x.hist == NULL) {
		log_error("out of memory");
		goto out;
	}
	x.baseline = true;
	x.cand = NULL;
	for (size_t i = 0; i < cand.count; i += CANDIDATES_PER_QUERY) {
		check_sql_finish(&q);
		check_sql_add(&q, "SELECT host, auth_user, hour_utc, SUM(n) FROM relay_hourly");
		sql_window(&q, since - (int64_t)r->baseline_days * 86400, until, host);
		check_sql_add(&q, " AND auth_user IN (");
		for (size_t j = i; j < cand.count && j < i + CANDIDATES_PER_QUERY; j++) {
			check_sql_add(&q, "%s", j > i ? ", " : "");
			check_sql_bytes(&q, cand.v[j], cand.len[j]);
		}
		check_sql_add(&q, ") GROUP BY host, auth_user, hour_utc"
				  " ORDER BY host, auth_user, hour_utc");
		if (scan_accounts(db, &q, &x) < 0) {
			goto out;
		}
	}
	ret = 0;
out:
	free(x.hist);
	candidates_finish(&cand);
	check_sql_finish(&q);
	return ret;
}

/*
 * Judges rows of (host, account or IP, time, value) from q against level, adding an alert for
 * each one that reaches it. 0, or -1 on a database error (logged) or no memory.
 */
static int judge_rows(struct db *db, struct check_sql *q, enum check_rule rule,
		      const struct check_level *level, bool daily, struct check_alerts *out)
{
	MYSQL_RES *res = check_sql_query(db, q);
	if (res == NULL) {
		return -1;
	}
	int ret = 0;
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(res)) != NULL) {
		unsigned long *len = mysql_fetch_lengths(res);
		uint64_t n = check_sql_u64(row[3], len[3]);
		enum check_status st = check_judge(n, level);
		if (st != CHECK_OK &&
		    check_alerts_add(out, rule, st, row[0], len[0], row[1], len[1], n,
				     level_reached(level, st), check_sql_datetime(row[2], len[2]),
				     daily) < 0) {
			ret = -1;
			break;
		}
	}
	mysql_free_result(res);
	return ret;
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

static int collect_ips(struct db *db, const struct check_rules *r, int64_t since, int64_t until,
		       bool daily_window, const char *host, struct check_alerts *out)
{
	struct check_sql q;
	uint64_t min = level_min(&r->relay_ips);
	int ret;

	if (min == 0) {
		return 0;
	}
	check_sql_init(&q);
	if (daily_window) {
		check_sql_add(&q, "SELECT host, auth_user, ");
		check_sql_time(&q, until - 86400);
		check_sql_add(&q, ", COUNT(DISTINCT " SQL_NETWORK ") FROM relay_hourly");
		sql_window(&q, until - 86400, until, host);
		check_sql_add(&q, " AND auth_user <> '' GROUP BY host, auth_user");
	} else {
		check_sql_add(&q, "SELECT host, auth_user, CAST(DATE(hour_utc) AS DATETIME) AS d,"
				  " COUNT(DISTINCT " SQL_NETWORK ") FROM relay_hourly");
		sql_window(&q, since, until, host);
		check_sql_add(&q, " AND auth_user <> '' GROUP BY d, host, auth_user");
	}
	check_sql_add(&q, " HAVING COUNT(DISTINCT " SQL_NETWORK ") >= %" PRIu64, min);
	ret = judge_rows(db, &q, CHECK_RELAY_IPS, &r->relay_ips, true, out);
	check_sql_finish(&q);
	return ret;
}

static int collect_mismatch(struct db *db, const struct check_rules *r, int64_t since,
			    int64_t until, const char *host, struct check_alerts *out)
{
	struct check_sql q;
	MYSQL_RES *res = NULL;
	int ret = -1;
	/* the current (hour, host, account) group */
	int64_t ghour = INT64_MIN;
	char *ghost = NULL, *gacct = NULL;
	size_t ghn = 0, gan = 0;
	uint64_t gsum = 0;

	if (level_min(&r->sender_mismatch) == 0) {
		return 0;
	}
	check_sql_init(&q);
	check_sql_add(&q, "SELECT hour_utc, host, auth_user, sender, SUM(n) FROM relay_hourly");
	sql_window(&q, since, until, host);
	check_sql_add(&q, " AND auth_user <> '' GROUP BY hour_utc, host, auth_user, sender"
			  " ORDER BY hour_utc, host, auth_user");
	res = check_sql_query(db, &q);
	if (res == NULL) {
		goto out;
	}
	for (;;) {
		MYSQL_ROW row = mysql_fetch_row(res);
		unsigned long *len = row ? mysql_fetch_lengths(res) : NULL;
		int64_t hour = row ? check_sql_datetime(row[0], len[0]) : INT64_MIN;
		bool same = row != NULL && ghost != NULL && hour == ghour && len[1] == ghn &&
			    len[2] == gan && memcmp(row[1], ghost, ghn) == 0 &&
			    memcmp(row[2], gacct, gan) == 0;
		if (!same && ghost != NULL) {
			enum check_status st = check_judge(gsum, &r->sender_mismatch);
			if (st != CHECK_OK &&
			    check_alerts_add(out, CHECK_SENDER_MISMATCH, st, ghost, ghn, gacct, gan,
					     gsum, level_reached(&r->sender_mismatch, st), ghour,
					     false) < 0) {
				goto out;
			}
			free(ghost);
			free(gacct);
			ghost = gacct = NULL;
		}
		if (row == NULL) {
			break;
		}
		if (ghost == NULL) {
			ghour = hour;
			ghn = len[1];
			gan = len[2];
			ghost = check_sql_bytes_dup(row[1], ghn);
			gacct = check_sql_bytes_dup(row[2], gan);
			gsum = 0;
			if (ghost == NULL || gacct == NULL) {
				log_error("out of memory");
				goto out;
			}
		}
		if (!check_sender_allowed(r, gacct, gan) &&
		    !check_sender_matches(row[3], len[3], gacct, gan)) {
			gsum += check_sql_u64(row[4], len[4]);
		}
	}
	ret = 0;
out:
	free(ghost);
	free(gacct);
	mysql_free_result(res);
	check_sql_finish(&q);
	return ret;
}

static int collect_denied(struct db *db, const struct check_rules *r, int64_t since, int64_t until,
			  const char *host, struct check_alerts *out)
{
	struct check_sql q;
	uint64_t min = level_min(&r->denied);
	int ret;

	if (min == 0) {
		return 0;
	}
	check_sql_init(&q);
	check_sql_add(&q, "SELECT host, remote_ip, hour_utc, SUM(n) FROM denied_hourly");
	sql_window(&q, since, until, host);
	check_sql_add(&q, " GROUP BY hour_utc, host, remote_ip HAVING SUM(n) >= %" PRIu64, min);
	ret = judge_rows(db, &q, CHECK_DENIED, &r->denied, false, out);
	check_sql_finish(&q);
	return ret;
}

/* 1 when the ledger is empty. */
static int collect_stale(struct db *db, const struct check_rules *r, int64_t ref, const char *host,
			 struct check_alerts *out)
{
	struct check_sql q;
	MYSQL_RES *res = NULL;
	int ret = -1;

	check_sql_init(&q);
	check_sql_add(&q, "SELECT host, MAX(COALESCE(last_utc, ingested_at)),"
			  " MIN(COALESCE(first_utc, ingested_at)) FROM chunks");
	if (host != NULL) {
		check_sql_add(&q, " WHERE host = ");
		check_sql_bytes(&q, host, strlen(host));
	}
	check_sql_add(&q, " GROUP BY host");
	res = check_sql_query(db, &q);
	if (res == NULL) {
		goto out;
	}
	ret = mysql_num_rows(res) == 0 ? 1 : 0;
	MYSQL_ROW row;
	while ((row = mysql_fetch_row(res)) != NULL) {
		unsigned long *len = mysql_fetch_lengths(res);
		/* Files backfilled without a host name belong to no shipper to watch. */
		if (len[0] == 0) {
			continue;
		}
		int64_t newest = check_sql_datetime(row[1], len[1]);
		int64_t oldest = check_sql_datetime(row[2], len[2]);
		/* A host that only appears after a past window did not exist yet. */
		if (newest == INT64_MIN || oldest > ref) {
			continue;
		}
		out->hosts++;
		uint64_t age = newest < ref ? (uint64_t)(ref - newest) : 0;
		enum check_status st = check_judge(age, &r->stale);
		if (st == CHECK_OK) {
			continue;
		}
		out->stale_hosts++;
		if (check_alerts_add(out, CHECK_STALE, st, row[0], len[0], row[0], len[0], age,
				     level_reached(&r->stale, st), newest, false) < 0) {
			ret = -1;
			goto out;
		}
	}
out:
	mysql_free_result(res);
	check_sql_finish(&q);
	return ret;
}

int check_collect(struct db *db, const struct check_rules *r, int64_t since, int64_t until,
		  bool daily_window, int64_t stale_ref, const char *host, struct check_alerts *out)
{
	int empty;

	since = logtime_hour_floor(since);
	until = logtime_hour_floor(until + 3599);
	if (collect_accounts(db, r, since, until, host, out) < 0 ||
	    collect_ips(db, r, since, until, daily_window, host, out) < 0 ||
	    collect_mismatch(db, r, since, until, host, out) < 0 ||
	    collect_denied(db, r, since, until, host, out) < 0) {
		return -1;
	}
	empty = collect_stale(db, r, stale_ref, host, out);
	if (empty < 0) {
		return -1;
	}
	check_alerts_sort(out);
	return empty;
}

/* ---- relaywatch-ingest check ---- */

static const char check_usage[] =
	"usage: relaywatch-ingest check [OPTIONS]\n"
	"\n"
	"Judges the alert rules over the current hour so far and the last complete one (the daily\n"
	"rule over the 24 hours that end now, freshness as of now), or over a past window, and\n"
	"prints one status line with performance data, then one line per alert.\n"
	"Exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.\n"
	"With --new (for cron): judges every hour that received data since the last --new run and\n"
	"the current hour, prints only alerts never reported before (nothing when none is new),\n"
	"runs alert_command for each, and exits 2 (new critical), 1 (new warning), 0 or 3.\n"
	"\n"
	"  -c, --config FILE        rules from FILE (default " INGEST_CONFIG_DEFAULT ")\n"
	"      --defaults-file FILE MySQL option file with the database credentials\n"
	"      --new                only new alerts, recorded in the database's alert ledger\n"
	"      --since TIME         24h, 7d, YYYY-MM-DD or 'YYYY-MM-DD HH:MM' (UTC)\n"
	"      --until TIME         end of the window (default: now, or the start of this hour\n"
	"                           when --since is given)\n"
	"      --host NAME          judge one mail server only\n"
	"      --format text|json   output format (default text)\n"
	"  -q, --quiet              print nothing when everything is OK (for cron)\n"
	"  -v, --verbose            more messages on stderr\n"
	"  -h, --help               this text\n"
	"  -V, --version            version\n"
	"\n"
	"Rules (ingest.conf keys check_RULE_warn and check_RULE_crit, off to disable; per host):\n"
	"  relay_rcpt       recipients relayed per account per hour          500 / 2000\n"
	"  relay_domains    distinct recipient domains per account per hour   50 / 200\n"
	"  relay_ips        distinct remote networks (IPv4 /24, IPv6 /48) per\n"
	"                   account per day                                    10 / 30\n"
	"  sender_mismatch  recipients per account per hour sent as another\n"
	"                   sender (check_sender_allow = ACCOUNT... exempts)  25 / 100\n"
	"  denied           rejected relaying per remote IP per hour         100 / 1000\n"
	"  baseline         an account's hour above K x its 7-day hourly p95\n"
	"                   and >= check_baseline_min (100)                  K 3 / 10\n"
	"  stale            age of a host's newest chunk                      2h / 6h\n";

void check_format_when(const struct check_alert *a, char out[static 24])
{
	char t[20];

	logtime_format(a->when, t);
	if (a->daily && a->when % 86400 == 0) {
		snprintf(out, 24, "%.10s", t);
	} else {
		snprintf(out, 24, "%.10sT%.5sZ", t, t + 11);
	}
}

const char *check_subject_kind(enum check_rule rule)
{
	switch (rule) {
	case CHECK_DENIED:
		return "ip";
	case CHECK_STALE:
		return "host";
	default:
		return "account";
	}
}

const char *check_period_name(const struct check_alert *a)
{
	return a->rule == CHECK_STALE ? "newest" : (a->daily ? "day" : "hour");
}

void check_text(char out[static CHECK_TEXT_SIZE], const char *s, size_t n, size_t width)
{
	char tmp[CHECK_TEXT_SIZE / 4];
	size_t k = 0;

	report_text(tmp, width < sizeof(tmp) - 1 ? width : sizeof(tmp) - 1, s, n, true);
	/* A monitoring plugin's line ends where a '|' starts its performance data. */
	for (const char *p = tmp; *p != '\0'; p++) {
		if (*p == '|') {
			memcpy(out + k, "\\x7c", 4);
			k += 4;
		} else {
			out[k++] = *p;
		}
	}
	out[k] = '\0';
}

void check_print_alert(FILE *f, const struct check_alert *x)
{
	char host[CHECK_TEXT_SIZE], subj[CHECK_TEXT_SIZE], when[24];

	check_text(host, x->host, x->host_len, 99);
	check_text(subj, x->subject, x->subject_len, 199);
	check_format_when(x, when);
	fprintf(f, "%s %s host=%s", check_status_name[x->status], check_rule_name[x->rule], host);
	if (x->rule != CHECK_STALE) {
		fprintf(f, " %s=%s", check_subject_kind(x->rule), subj);
	}
	fprintf(f, " value=%" PRIu64 " threshold=%" PRIu64 " %s=%s\n", x->value, x->threshold,
		check_period_name(x), when);
}

void check_print_alert_json(FILE *f, const struct check_alert *x)
{
	char when[24];

	check_format_when(x, when);
	fprintf(f, "{\"status\":\"%s\",\"rule\":\"%s\",\"host\":", check_status_name[x->status],
		check_rule_name[x->rule]);
	report_json(f, x->host, x->host_len);
	if (x->rule != CHECK_STALE) {
		fprintf(f, ",\"%s\":", check_subject_kind(x->rule));
		report_json(f, x->subject, x->subject_len);
	}
	fprintf(f,
		",\"value\":%" PRIu64 ",\"threshold\":%" PRIu64
		",\"period\":\"%s\",\"start\":\"%s\"}",
		x->value, x->threshold, check_period_name(x), when);
}

static void print_perf(FILE *f, const struct check_rules *r, const struct check_alerts *a)
{
	fprintf(f,
		"relayed=%" PRIu64 " denied=%" PRIu64 " events=%" PRIu64
		" max_account_rcpt=%" PRIu64 ";%" PRIu64 ";%" PRIu64 " max_ip_denied=%" PRIu64
		";%" PRIu64 ";%" PRIu64 " stale_hosts=%u hosts=%u alerts=%zu",
		a->relayed, a->denied, a->events, a->max_account_rcpt, r->relay_rcpt.warn,
		r->relay_rcpt.crit, a->max_ip_denied, r->denied.warn, r->denied.crit,
		a->stale_hosts, a->hosts, a->count);
}

static void print_text(FILE *f, const struct check_rules *r, const struct check_alerts *a,
		       enum check_status st, const char *why)
{
	size_t ncrit = 0;

	for (size_t i = 0; i < a->count; i++) {
		ncrit += a->v[i].status == CHECK_CRITICAL;
	}
	fprintf(f, "RELAYWATCH %s - ", check_status_name[st]);
	if (why != NULL) {
		fprintf(f, "%s", why);
	} else if (a->count == 0) {
		fprintf(f, "no alerts, %u host%s fresh", a->hosts, a->hosts == 1 ? "" : "s");
	} else {
		fprintf(f, "%zu alert%s (%zu critical, %zu warning)", a->count,
			a->count == 1 ? "" : "s", ncrit, a->count - ncrit);
	}
	fprintf(f, " | ");
	print_perf(f, r, a);
	fputc('\n', f);
	for (size_t i = 0; i < a->count; i++) {
		check_print_alert(f, &a->v[i]);
	}
}

static void print_json(FILE *f, const struct check_alerts *a, enum check_status st, const char *why,
		       int64_t since, int64_t until)
{
	char t1[20], t2[20];

	logtime_format(since, t1);
	logtime_format(until, t2);
	fprintf(f, "{\"status\":\"%s\",\"code\":%d,", check_status_name[st], (int)st);
	if (why != NULL) {
		fprintf(f, "\"message\":");
		report_json(f, why, strlen(why));
		fputc(',', f);
	}
	fprintf(f, "\"since\":\"%.10sT%sZ\",\"until\":\"%.10sT%sZ\",\"alerts\":[", t1, t1 + 11, t2,
		t2 + 11);
	for (size_t i = 0; i < a->count; i++) {
		fputs(i ? "," : "", f);
		check_print_alert_json(f, &a->v[i]);
	}
	fprintf(f,
		"],\"perf\":{\"relayed\":%" PRIu64 ",\"denied\":%" PRIu64 ",\"events\":%" PRIu64
		",\"max_account_rcpt\":%" PRIu64 ",\"max_ip_denied\":%" PRIu64
		",\"stale_hosts\":%u,\"hosts\":%u,\"alerts\":%zu}}\n",
		a->relayed, a->denied, a->events, a->max_account_rcpt, a->max_ip_denied,
		a->stale_hosts, a->hosts, a->count);
}

int cmd_check(int argc, char **argv)
{
	enum { OPT_DEFAULTS = 256, OPT_SINCE, OPT_UNTIL, OPT_HOST, OPT_FORMAT, OPT_NEW };
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"defaults-file", required_argument, NULL, OPT_DEFAULTS},
		{"since", required_argument, NULL, OPT_SINCE},
		{"until", required_argument, NULL, OPT_UNTIL},
		{"host", required_argument, NULL, OPT_HOST},
		{"format", required_argument, NULL, OPT_FORMAT},
		{"new", no_argument, NULL, OPT_NEW},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{0},
	};
	const char *config = NULL, *defaults = NULL, *since_s = NULL, *until_s = NULL;
	const char *host = NULL, *why = NULL;
	bool json = false, quiet = false, new_only = false;
	struct ingest_config cfg;
	struct check_alerts alerts;
	struct db *db = NULL;
	enum check_status st = CHECK_UNKNOWN;
	int64_t now = (int64_t)time(NULL), until = logtime_hour_floor(now), since = until - 3600;
	int c;

	ingest_config_init(&cfg);
	check_alerts_init(&alerts);
	while ((c = getopt_long(argc, argv, ":c:qvhV", opts, NULL)) != -1) {
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
			host = optarg;
			break;
		case OPT_FORMAT:
			if (strcmp(optarg, "json") == 0) {
				json = true;
			} else if (strcmp(optarg, "text") != 0) {
				log_error("--format: expected text or json");
				goto bad;
			}
			break;
		case OPT_NEW:
			new_only = true;
			break;
		case 'q':
			quiet = true;
			break;
		default:
			switch (cmd_option(c, argv, check_usage)) {
			case CMD_OPT_NEXT:
				continue;
			case CMD_OPT_DONE:
				st = CHECK_OK;
				goto out;
			default:
				goto bad;
			}
		}
	}
	if (cmd_setup(argc, argv, config, &cfg, &defaults) != 0) {
		goto bad;
	}
	/*
	 * By default the hourly rules judge the current hour so far and the last complete one,
	 * the daily rule the 24 hourly rows that end with the current one: a burst shows at the
	 * first check after its lines are ingested, not at the next hour's.
	 */
	until = until_s == NULL && since_s == NULL ? now : logtime_hour_floor(now);
	if (until_s != NULL && check_parse_time(until_s, now, &until) < 0) {
		log_error("--until: expected 24h, 7d, YYYY-MM-DD or 'YYYY-MM-DD HH:MM'");
		goto bad;
	}
	since = logtime_hour_floor(until) - 3600;
	if (since_s != NULL && check_parse_time(since_s, now, &since) < 0) {
		log_error("--since: expected 24h, 7d, YYYY-MM-DD or 'YYYY-MM-DD HH:MM'");
		goto bad;
	}
	if (since >= until) {
		log_error("--since must be before --until");
		goto bad;
	}
	/* --new keeps its own record of what it judged: of every host, up to now. */
	if (new_only && (since_s != NULL || until_s != NULL || host != NULL)) {
		log_error("--new judges what arrived since the last --new run, for every host: "
			  "it takes no --since, --until or --host");
		goto bad;
	}
	bool bad_config;
	db = db_connect(defaults, &bad_config);
	if (db == NULL) {
		why = bad_config ? "configuration error (see stderr)" : "database unreachable";
		goto print;
	}
	if (new_only) {
		st = notify_run(db, &cfg, json, now, &why);
		if (st != CHECK_UNKNOWN) {
			goto out;
		}
		goto print;
	}
	/* A past window is judged as of its end, the default one as of now. */
	int empty = check_collect(db, &cfg.rules, since, until, since_s == NULL,
				  until_s != NULL ? until : now, host, &alerts);
	if (empty == 0 && collect_perf(db, logtime_hour_floor(since),
				       logtime_hour_floor(until + 3599), host, &alerts) < 0) {
		empty = -1;
	}
	if (empty < 0) {
		why = "database query failed";
		goto print;
	}
	if (empty > 0) {
		why = host ? "no chunk from this host in the ledger" : "no chunk in the ledger yet";
		goto print;
	}
	st = check_worst(&alerts);
	goto print;
bad:
	why = "usage or configuration error (see stderr)";
print:
	since = logtime_hour_floor(since);
	until = logtime_hour_floor(until + 3599);
	if (quiet && st == CHECK_OK) {
		/* nothing: cron mails whatever is printed */
	} else if (json) {
		print_json(stdout, &alerts, st, why, since, until);
	} else {
		print_text(stdout, &cfg.rules, &alerts, st, why);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		log_error("stdout: write error");
		st = CHECK_UNKNOWN;
	}
out:
	db_destroy(db);
	check_alerts_finish(&alerts);
	ingest_config_finish(&cfg);
	return (int)st;
}
