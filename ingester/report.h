#ifndef RELAYWATCH_REPORT_H
#define RELAYWATCH_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "check_alerts.h"

/*
 * The data of `relaywatch-ingest report`: sections of rows, the same for every format, read from
 * the database (db.h) and judged by the alert rules (check_alerts.h). The renderers (render.h)
 * only read it. Cell strings are the database's bytes: a renderer escapes each one (escape.h).
 */

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

/* Chart buckets: the hourly (or daily) volume of the five event groups. */
enum { GRP_RELAYED, GRP_DENIED, GRP_ACCEPTED, GRP_REJECTED, GRP_OTHER, GRP_COUNT };
/* "relaying rcpt", ... (the event names), and "relaying_rcpt", ... (the JSON keys). */
extern const char *const report_group_name[GRP_COUNT];
extern const char *const report_group_key[GRP_COUNT];

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

/*
 * Sets up the sections of r, whose since, until (whole hours), now, stale_ref, host, top, day
 * and rules the caller has set, and whose alerts are initialised.
 */
void report_setup(struct report *r);

struct db;

/* Reads and judges everything. 0, or -1 after logging (see db_unavailable). */
int report_gather(struct db *db, struct report *r);

/* Frees what r owns, its alerts too. */
void report_finish(struct report *r);

#endif
