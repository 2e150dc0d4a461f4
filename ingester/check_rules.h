#ifndef RELAYWATCH_CHECK_RULES_H
#define RELAYWATCH_CHECK_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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
 *   relay_ips       distinct remote networks (IPv4 /24, IPv6 /48) per authenticated account
 *                   per day
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
/* The rule whose check_rule_name is the n bytes at name (any bytes), or -1. */
int check_rule_of(const char *name, size_t n);
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
 * check_baseline_percentile (1..100); check_sender_allow = account... (separated by blanks,
 * repeatable: each line adds to the list).
 */
enum config_set_result check_rules_set(struct check_rules *r, const struct config_line *cl);

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

#endif
