#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "escape.h"
#include "logtime.h"
#include "render.h"

/* The report as text (a terminal, a cron mail), TSV and JSON; the HTML page is render_html.c. */

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

void render_time(int64_t utc, enum render_unit unit, char out[static 21])
{
	char t[20]; /* "2024-03-10 13:00:00" */

	logtime_format(utc, t);
	if (unit == RENDER_DAY) {
		snprintf(out, 21, "%.10s", t);
	} else {
		snprintf(out, 21, "%.10sT%.*sZ", t, unit == RENDER_MINUTE ? 5 : 8, t + 11);
	}
}

/* A non-string cell as text for fmt (JSON: a complete JSON value). */
void render_cell(enum render_fmt fmt, enum col_kind kind, const struct cell *c, char *out,
		 size_t size)
{
	static const char *const short_status[4] = {"OK", "WARN", "CRIT", "UNKN"};
	char t[20], j[21];

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
		if (fmt == FMT_JSON) {
			render_time(c->v, c->n ? RENDER_DAY : RENDER_SECOND, j);
			snprintf(out, size, "\"%s\"", j);
		} else {
			logtime_format(c->v, t);
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

/* "YYYY-MM-DD HH:MM" of UTC seconds. */
static void minute_text(int64_t utc, char out[static 17])
{
	char t[20];

	logtime_format(utc, t);
	snprintf(out, 17, "%.16s", t);
}

void render_window(const struct report *r, char *out, size_t size)
{
	char a[17], b[17];

	minute_text(r->since, a);
	minute_text(r->until, b);
	snprintf(out, size, "%s to %s UTC", a, b);
}

size_t render_count_status(const struct report *r, enum check_status st)
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
				escape_text(buf, col->width, c->s ? c->s : "", c->n, 0);
			} else {
				render_cell(FMT_TEXT, col->kind, c, buf, sizeof(buf));
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

	render_window(r, w, sizeof(w));
	if (r->host != NULL) {
		escape_text(h, 40, r->host, strlen(r->host), 0);
	}
	fprintf(f, "relaywatch report, %s, %s%s\n", w, r->host ? "host " : "all hosts",
		r->host ? h : "");
	fprintf(f,
		"events %" PRIu64 ", relayed %" PRIu64 ", rejected relaying %" PRIu64
		", alerts %zu (%zu critical)\n",
		r->events, r->relayed, r->denied, r->alerts.count,
		render_count_status(r, CHECK_CRITICAL));
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

	minute_text(r->since, a);
	minute_text(r->until, b);
	fprintf(f, "#report\tsince\tuntil\thost\tperiod\n");
	fprintf(f, "report\t%s\t%s\t", a, b);
	if (r->host != NULL) {
		escape_tsv(f, r->host, strlen(r->host));
	}
	fprintf(f, "\t%s\n", r->day ? "day" : "hour");
	fprintf(f, "#totals\tevents\trelaying_rcpt\trejected_relaying\talerts\tcritical\n");
	fprintf(f, "totals\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\t%zu\t%zu\n", r->events,
		r->relayed, r->denied, r->alerts.count, render_count_status(r, CHECK_CRITICAL));
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
					escape_tsv(f, c->s ? c->s : "", c->n);
				} else {
					render_cell(FMT_TSV, s->cols[j].kind, c, buf, sizeof(buf));
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
	char a[21], b[21], g[21], buf[64];

	render_time(r->since, RENDER_SECOND, a);
	render_time(r->until, RENDER_SECOND, b);
	render_time(r->now, RENDER_SECOND, g);
	fprintf(f,
		"{\"report\":{\"since\":\"%s\",\"until\":\"%s\",\"generated\":\"%s\","
		"\"period\":\"%s\",\"host\":",
		a, b, g, r->day ? "day" : "hour");
	if (r->host != NULL) {
		escape_json(f, r->host, strlen(r->host));
	} else {
		fputs("null", f);
	}
	fprintf(f,
		",\"ledger_empty\":%s},\n\"totals\":{\"events\":%" PRIu64
		",\"relaying_rcpt\":%" PRIu64 ",\"rejected_relaying\":%" PRIu64
		",\"alerts\":%zu,\"critical\":%zu}",
		r->ledger_empty ? "true" : "false", r->events, r->relayed, r->denied,
		r->alerts.count, render_count_status(r, CHECK_CRITICAL));
	for (int i = 0; i < SEC_COUNT; i++) {
		const struct section *s = &r->sec[i];
		fprintf(f, ",\n\"%s\":[", s->id);
		for (size_t k = 0; k < s->rows; k++) {
			fprintf(f, "%s{", k ? ",\n " : "");
			for (unsigned j = 0; j < s->ncols; j++) {
				const struct cell *c = &s->cells[k * s->ncols + j];
				fprintf(f, "%s\"%s\":", j ? "," : "", s->cols[j].name);
				if (s->cols[j].kind == COL_STR) {
					escape_json(f, c->s ? c->s : "", c->n);
				} else {
					render_cell(FMT_JSON, s->cols[j].kind, c, buf, sizeof(buf));
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
		render_time(bk->t, RENDER_SECOND, a);
		fprintf(f, "%s{\"hour\":\"%s\"", i ? ",\n " : "", a);
		for (int k = 0; k < GRP_COUNT; k++) {
			fprintf(f, ",\"%s\":%" PRIu64, report_group_key[k], bk->v[k]);
		}
		fputc('}', f);
	}
	fputs("]}\n", f);
}

void render_report(FILE *f, enum render_fmt fmt, const struct report *r)
{
	switch (fmt) {
	case FMT_TEXT:
		render_text(f, r);
		break;
	case FMT_TSV:
		render_tsv(f, r);
		break;
	case FMT_JSON:
		render_json(f, r);
		break;
	case FMT_HTML:
		render_html(f, r);
		break;
	}
}
