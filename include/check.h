#ifndef RELAYWATCH_CHECK_H
#define RELAYWATCH_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

/*
 * The alert rules of `relaywatch-ingest check` (and the anomalies that `report` highlights).
 *
 * Every threshold comes from the ingester config file as `check_<rule>_warn` / `_crit`; a
 * threshold of 0 switches that level off. A value reaches a level when it is >= the threshold.
 * Rules, with the unit each one counts:
 *
 *   relay_rcpt      relayed recipients per authenticated account per hour
 *   relay_domains   distinct recipient domains per authenticated account per hour
 *   relay_ips       distinct remote IPs per authenticated account per day
 *   sender_mismatch relayed recipients per account per hour whose envelope sender is not the
 *                   account itself (accounts in check_sender_allow are exempt)
 *   denied          `rejected relaying` recipients per remote IP per hour
 *   baseline        an account's hour above K x the 95th percentile of its own trailing 7 days
 *                   of hourly relayed recipients (quiet hours count as 0), and at least
 *                   check_baseline_min recipients
 *   stale           seconds since the newest chunk of a host (chunks.last_utc, or ingested_at
 *                   when the chunk had no stamped line): a broken shipper must not look like a
 *                   quiet server
 */

enum check_status {
	CHECK_OK = 0,
	CHECK_WARNING = 1,
	CHECK_CRITICAL = 2,
	CHECK_UNKNOWN = 3,
};

enum check_rule {
	CHECK_RELAY_RCPT = 0,
	CHECK_RELAY_DOMAINS,
	CHECK_RELAY_IPS,
	CHECK_SENDER_MISMATCH,
	CHECK_DENIED,
	CHECK_BASELINE,
	CHECK_STALE,
	CHECK_RULES,
};

/* "relay_rcpt", ... (the name used in config keys, alert lines and JSON). */
extern const char *const check_rule_name[CHECK_RULES];
/* "OK", "WARNING", "CRITICAL", "UNKNOWN". */
extern const char *const check_status_name[4];

struct check_level {
	uint64_t warn; /* 0 = off */
	uint64_t crit; /* 0 = off */
};

struct check_rules {
	struct check_level relay_rcpt;      /* default 500 / 2000 */
	struct check_level relay_domains;   /* default 50 / 200 */
	struct check_level relay_ips;       /* default 10 / 30 */
	struct check_level sender_mismatch; /* default 25 / 100 */
	struct check_level denied;          /* default 100 / 1000 */
	/* Baseline factors in hundredths (K = 3.00 -> 300): default warn 300, crit 1000. */
	struct check_level baseline_factor;
	uint64_t baseline_min;        /* default 100 recipients in the hour */
	unsigned baseline_days;       /* default 7 */
	unsigned baseline_percentile; /* default 95 */
	struct check_level stale;     /* seconds; default 7200 / 21600 */
	/* Accounts allowed to send as other addresses (application accounts); owned, may be NULL.
	 */
	char **sender_allow;
	size_t sender_allow_count;
};

/* Sets every default. */
void check_rules_init(struct check_rules *r);

/* Frees the allow-list; r can be initialised again afterwards. */
void check_rules_finish(struct check_rules *r);

/*
 * Applies one config line. Keys: check_<rule>_warn, check_<rule>_crit for relay_rcpt,
 * relay_domains, relay_ips, sender_mismatch, denied (counts), stale (durations with their unit:
 * "90m", "6h", "2d"); check_baseline_warn / check_baseline_crit (the factor K, a decimal
 * such as "3" or "2.5"), check_baseline_min, check_baseline_days (1..60),
 * check_baseline_percentile (1..100); check_sender_allow = account... (whitespace-separated,
 * repeatable: each line adds to the list). Returns 1 when the key is a rule key and was applied,
 * 0 when it is not a rule key (nothing logged), -1 on a bad value after logging file:line.
 */
int check_rules_set(struct check_rules *r, const struct config_line *cl);

/* Whether the account is in the allow-list (bytewise, ASCII case-insensitive). */
bool check_sender_allowed(const struct check_rules *r, const char *account, size_t n);

/*
 * Whether a relayed message's envelope sender belongs to the authenticated account: equal
 * (ASCII case-insensitive); or, when the account has no '@' (a system login), equal to the
 * sender's local part. An empty sender (bounce, <>) is never a mismatch.
 */
bool check_sender_matches(const char *sender, size_t sn, const char *account, size_t an);

/* WARNING/CRITICAL/OK for value against a level (0 thresholds are off). */
enum check_status check_judge(uint64_t value, const struct check_level *l);

/*
 * The p-th percentile (1..100) of n values by the nearest-rank method: the smallest value that
 * at least p% of the values are <= to. Sorts v in place. 0 when n == 0.
 */
uint64_t check_percentile(uint64_t *v, size_t n, unsigned p);

/*
 * The baseline rule for one account-hour: value against factor x p95 of history (nhist hourly
 * counts, zeros included; sorted in place). Sets *threshold_warn / *threshold_crit to the
 * effective thresholds (rounded up, never below baseline_min; 0 when that level is off).
 */
enum check_status check_baseline(const struct check_rules *r, uint64_t value, uint64_t *history,
				 size_t nhist, uint64_t *threshold_warn, uint64_t *threshold_crit);

/*
 * Durations and times for --since/--until/--older-than and config values, all UTC:
 * check_parse_duration: "45s", "90m", "24h", "7d", "2w"; > 0, and the unit is required.
 * check_parse_time: a duration means now minus it; "YYYY-MM-DD", "YYYY-MM-DD HH:MM",
 * "YYYY-MM-DD HH:MM:SS" or with a 'T' between date and time, in UTC.
 * Both return 0 or -1 (nothing logged).
 */
int check_parse_duration(const char *s, int64_t *seconds);
int check_parse_time(const char *s, int64_t now, int64_t *utc);

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

/* "2024-03-10T13:00Z" for an hour or a stale host's newest line, "2024-03-10" for a day. */
void check_format_when(const struct check_alert *a, char out[static 24]);
/* "account", "ip" or "host": what an alert of the rule is about. */
const char *check_subject_kind(enum check_rule rule);
/* "hour", "day" or "newest": what the alert's time is. */
const char *check_period_name(const struct check_alert *a);

/* Size of a check_text() buffer. */
#define CHECK_TEXT_SIZE 4400

/*
 * A value from the logs as check prints it: report_text() without spaces (ASCII, \xNN for every
 * other byte, the backslash and the space, cut to width columns with "..."; width < 1100), and
 * '|' as \x7c as well, since Nagios and Icinga read a '|' as the start of performance data.
 */
void check_text(char out[static CHECK_TEXT_SIZE], const char *s, size_t n, size_t width);

/* One alert as check's text line ("CRITICAL relay_rcpt host=... value=..."), with '\n'. */
void check_print_alert(FILE *f, const struct check_alert *x);
/* One alert as the JSON object of check's "alerts" array, without a newline. */
void check_print_alert_json(FILE *f, const struct check_alert *x);

struct db;

/*
 * Evaluates every rule over the hours [since, until) for one host when host is not NULL, and
 * appends the alerts to out, with max_account_rcpt, hosts and stale_hosts (the window's totals
 * and max_ip_denied are check's own query). Daily rules (relay_ips) judge each UTC day
 * that the window touches, or, when daily_window is true, the 24 hours before until as one day
 * (the default of `check`: the last complete hour and the day that ends with it). Stale is judged
 * against stale_ref (now, or the end of a past window). Returns 0; 1 when the ledger holds no
 * chunk at all (nothing can be judged); -1 on a database error (logged).
 */
int check_collect(struct db *db, const struct check_rules *r, int64_t since, int64_t until,
		  bool daily_window, int64_t stale_ref, const char *host, struct check_alerts *out);

/*
 * SQL text for the read-side commands. Only trusted pieces go in through check_sql_add (keywords,
 * numbers); every byte string (a --host argument, an account read back from the database) goes in
 * as a hex literal X'..' through check_sql_bytes, so no byte of it can end the literal: the
 * account names are attacker-chosen (SMTP AUTH user names, envelope senders).
 */
struct check_sql {
	char *p;
	size_t len, cap;
	bool failed; /* no memory: the query is not run */
};

void check_sql_init(struct check_sql *q);
void check_sql_finish(struct check_sql *q);
void check_sql_add(struct check_sql *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void check_sql_bytes(struct check_sql *q, const char *s, size_t n);
/* 'YYYY-MM-DD HH:MM:SS' in UTC. */
void check_sql_time(struct check_sql *q, int64_t utc);

struct st_mysql_res;
/* Runs q and stores the whole result; NULL after logging the server's message. */
struct st_mysql_res *check_sql_query(struct db *db, struct check_sql *q);

/* A DATETIME value as the server prints it ("YYYY-MM-DD HH:MM:SS"); INT64_MIN for NULL/bad. */
int64_t check_sql_datetime(const char *s, size_t n);
/* An unsigned integer column (SUM() comes back as DECIMAL text); 0 for NULL. */
uint64_t check_sql_u64(const char *s, size_t n);
/* A column's n bytes, NUL-terminated (NUL bytes inside are kept); NULL on no memory. */
char *check_sql_bytes_dup(const char *s, size_t n);

#endif
