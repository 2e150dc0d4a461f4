#ifndef RELAYWATCH_RENDER_H
#define RELAYWATCH_RENDER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "check_alerts.h"
#include "report.h"

/*
 * The output formats of `report` and `check`. Renderers only read what the layers below built
 * (the report's sections, the alert list) and write every string from the database through
 * exactly one escaper of escape.h. Nothing here fails: the caller checks the stream afterwards.
 */

enum render_fmt { FMT_TEXT, FMT_TSV, FMT_JSON, FMT_HTML };

/* The report in fmt. */
void render_report(FILE *f, enum render_fmt fmt, const struct report *r);

/* The check's status line with performance data, then one line per alert; why replaces the
 * summary when the check could not judge (st is then CHECK_UNKNOWN). */
void render_alerts_text(FILE *f, const struct check_rules *r, const struct check_alerts *a,
			enum check_status st, const char *why);
/* The same as one JSON object, with the judged window [since, until). */
void render_alerts_json(FILE *f, const struct check_alerts *a, enum check_status st,
			const char *why, int64_t since, int64_t until);

/* How much of a time render_time writes. */
enum render_unit {
	RENDER_DAY,    /* "2024-03-10": a whole day, in every output */
	RENDER_MINUTE, /* "2024-03-10T13:00Z": check's lines and alert_command's variables */
	RENDER_SECOND, /* "2024-03-10T13:00:00Z": every JSON output, report's and check's */
};

/* utc as ISO 8601 UTC to the unit, without quotes. */
void render_time(int64_t utc, enum render_unit unit, char out[static 21]);

/* One alert as check's text line ("CRITICAL relay_rcpt host=... value=..."), with '\n'. */
void render_alert_line(FILE *f, const struct check_alert *x);
/* One alert as the JSON object of check's "alerts" array, without a newline. */
void render_alert_json(FILE *f, const struct check_alert *x);
/*
 * The alert's time: the date alone for a whole day ("2024-03-10"), else (an hour, a stale host's
 * newest line) to unit: RENDER_MINUTE in check's lines and alert_command's variables,
 * RENDER_SECOND in JSON.
 */
void render_alert_when(const struct check_alert *a, enum render_unit unit, char out[static 21]);
/* "account", "ip" or "host": what an alert of the rule is about. */
const char *render_alert_kind(enum check_rule rule);
/* "hour", "day" or "newest": what the alert's time is. */
const char *render_alert_period(const struct check_alert *a);

/*
 * A value from the logs as check's lines show it: escape_text() with the space and the '|' as
 * \x20 and \x7c too, so that each line splits on spaces and Nagios or Icinga, which read a '|'
 * as the start of performance data, see the whole line. out holds width + 1 bytes.
 */
size_t render_alert_value(char *out, size_t width, const char *s, size_t n);

/* For the report's renderers: a non-string cell as text for fmt (JSON: a complete value). */
void render_cell(enum render_fmt fmt, enum col_kind kind, const struct cell *c, char *out,
		 size_t size);
/* "YYYY-MM-DD HH:MM to YYYY-MM-DD HH:MM UTC" of the report's window. */
void render_window(const struct report *r, char *out, size_t size);
/* How many of the report's alerts have status st. */
size_t render_count_status(const struct report *r, enum check_status st);
/* The HTML page (render_html.c). */
void render_html(FILE *f, const struct report *r);

#endif
