#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_int.h"
#include "db_sql.h"
#include "log.h"
#include "logtime.h"

void db_sql_init(struct db_sql *q)
{
	*q = (struct db_sql){0};
}

void db_sql_finish(struct db_sql *q)
{
	free(q->p);
	db_sql_init(q);
}

static bool sql_reserve(struct db_sql *q, size_t more)
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

void db_sql_add(struct db_sql *q, const char *fmt, ...)
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

void db_sql_bytes(struct db_sql *q, const char *s, size_t n)
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

void db_sql_time(struct db_sql *q, int64_t utc)
{
	char buf[20];

	logtime_format(utc, buf);
	db_sql_add(q, "'%s'", buf);
}

int64_t db_sql_datetime(const char *s, size_t n)
{
	char buf[20];
	int64_t t;

	if (s == NULL || n != 19) {
		return INT64_MIN;
	}
	memcpy(buf, s, 19);
	buf[19] = '\0';
	if (logtime_parse_time(buf, 0, &t) < 0) {
		return INT64_MIN;
	}
	return t;
}

uint64_t db_sql_u64(const char *s, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; s != NULL && i < n && s[i] >= '0' && s[i] <= '9'; i++) {
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	return v;
}

void db_sql_window(struct db_sql *q, const struct db_window *w)
{
	db_sql_add(q, " WHERE hour_utc >= ");
	db_sql_time(q, w->since);
	db_sql_add(q, " AND hour_utc < ");
	db_sql_time(q, w->until);
	if (w->host != NULL) {
		db_sql_add(q, " AND host = ");
		db_sql_bytes(q, w->host, strlen(w->host));
	}
}

void db_sql_list(struct db_sql *q, const struct span *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		db_sql_add(q, "%s", i ? ", " : "");
		db_sql_bytes(q, v[i].p, v[i].n);
	}
}

/* ---- results ---- */

struct db_rows {
	MYSQL_RES *res;
	const char *layout;
};

struct db_rows *db_sql_rows(struct db *db, const struct db_sql *q, const char *layout)
{
	struct db_rows *rs;

	if (q->failed) {
		log_error("out of memory");
		return NULL;
	}
	rs = calloc(1, sizeof(*rs));
	if (rs == NULL) {
		log_error("out of memory");
		return NULL;
	}
	rs->layout = layout;
	rs->res = db_select(db, q->p, q->len);
	if (rs->res == NULL) {
		free(rs);
		return NULL;
	}
	return rs;
}

bool db_rows_next(struct db_rows *rs, struct db_row *row)
{
	MYSQL_ROW r = mysql_fetch_row(rs->res);
	unsigned long *len;
	unsigned nf = mysql_num_fields(rs->res);
	size_t k = 0, t = 0, n = 0;

	*row = (struct db_row){.when = {INT64_MIN, INT64_MIN}};
	if (r == NULL) {
		return false;
	}
	len = mysql_fetch_lengths(rs->res);
	for (unsigned i = 0; i < nf && rs->layout[i] != '\0'; i++) {
		switch (rs->layout[i]) {
		case 'k':
			row->key[k++] = (struct span){r[i] ? r[i] : "", r[i] ? len[i] : 0};
			break;
		case 't':
			row->when[t++] = db_sql_datetime(r[i], len[i]);
			break;
		default:
			row->n[n++] = db_sql_u64(r[i], len[i]);
		}
	}
	return true;
}

size_t db_rows_count(const struct db_rows *rs)
{
	return (size_t)mysql_num_rows(rs->res);
}

void db_rows_free(struct db_rows *rs)
{
	if (rs != NULL) {
		mysql_free_result(rs->res);
		free(rs);
	}
}
