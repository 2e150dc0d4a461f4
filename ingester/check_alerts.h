#ifndef RELAYWATCH_CHECK_ALERTS_H
#define RELAYWATCH_CHECK_ALERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "check_rules.h"

/*
 * The alerts: what the rules (check_rules.h) find when they judge the hours of the database. A
 * typed list that `check` prints and `report` shows as its anomalies.
 */

/* One alert line. */
struct check_alert {
	enum check_rule rule;
	enum check_status status;
	char *host; /* may hold any bytes (from logs); owned */
	size_t host_len;
	char *subject; /* account, remote IP or host; owned */
	size_t subject_len;
	uint64_t value;
	uint64_t threshold; /* the threshold that was reached (seconds for stale) */
	int64_t when;       /* start of the hour (hourly rules) or day (daily rules), UTC seconds */
	bool daily;
};

/* Whether the alert's period is a whole UTC day, written as a date without a time. */
static inline bool check_alert_is_day(const struct check_alert *a)
{
	return a->daily && a->when % 86400 == 0;
}

struct check_alerts {
	struct check_alert *v;
	size_t count, cap;
	/* Performance data over the judged window. */
	uint64_t relayed, denied, events;
	uint64_t max_account_rcpt, max_ip_denied;
	unsigned stale_hosts, hosts;
};

void check_alerts_init(struct check_alerts *a);
void check_alerts_finish(struct check_alerts *a);
/* Copies host and subject. 0, or -1 on no memory. */
int check_alerts_add(struct check_alerts *a, enum check_rule rule, enum check_status status,
		     const char *host, size_t host_len, const char *subject, size_t subject_len,
		     uint64_t value, uint64_t threshold, int64_t when, bool daily);
/* Orders alerts: CRITICAL first, then by rule, time, host, subject. */
void check_alerts_sort(struct check_alerts *a);

/* The worst status among the alerts (CHECK_OK when there are none). */
enum check_status check_worst(const struct check_alerts *a);

struct db;

/*
 * Evaluates every rule over the hours [since, until) (whole hours: cmd_window rounds, once) for
 * one host when host is not NULL, and appends the alerts to out, with hosts and stale_hosts, and
 * max_account_rcpt when an account rule is on or flags hold CHECK_PERF (the window's totals and
 * max_ip_denied are check's own query). Daily rules (relay_ips) judge each UTC day that the
 * window touches, or, with CHECK_DAILY_WINDOW, the 24 hours before until as one day (the default
 * of `check`: the current hour so far and the last complete one, and the 24 hourly rows that end
 * with the current one). Stale is judged against stale_ref (now, or the end of a past window);
 * with CHECK_NO_STALE it is not judged, nor the ledger looked at (one query over all of it). A
 * rule that is off reads nothing. The alerts come in no order: a caller that collects several
 * windows sorts once, at the end (check_alerts_sort). See enum check_collect_result.
 *
 * first_hour is the first hour of data in the database (db_first_hour), which the baseline rule
 * needs: one per run, the caller's, set to CHECK_FIRST_HOUR_UNREAD before its first
 * check_collect and passed to each; the first that needs it reads it into *first_hour. NULL for
 * a run of one window: that call reads it if it needs it, and keeps it nowhere.
 */
#define CHECK_NO_STALE          INT64_MIN
#define CHECK_FIRST_HOUR_UNREAD INT64_MIN
enum check_collect_flags {
	CHECK_DAILY_WINDOW = 1 << 0,
	/* max_account_rcpt (the plugin's performance data) even when no account rule needs the
	 * scan of the window's account hours that yields it. */
	CHECK_PERF = 1 << 1,
};
enum check_collect_result {
	CHECK_COLLECT_ERROR = -1, /* a database error (logged), or no memory */
	CHECK_COLLECT_OK = 0,
	CHECK_COLLECT_EMPTY = 1, /* the ledger holds no chunk at all: nothing could be judged */
};
enum check_collect_result check_collect(struct db *db, const struct check_rules *r, int64_t since,
					int64_t until, unsigned flags, int64_t stale_ref,
					const char *host, int64_t *first_hour,
					struct check_alerts *out);

/* A copy of n bytes, NUL-terminated (NUL bytes inside are kept); NULL on no memory (nothing
 * logged). */
char *check_bytes_dup(const char *s, size_t n);

#endif
