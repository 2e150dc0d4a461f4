#ifndef RELAYWATCH_NOTIFY_H
#define RELAYWATCH_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "check_rules.h"

struct db;
struct ingest_config;

/*
 * `relaywatch-ingest check --new`, for cron and for whatever sends a message: judges every hour
 * that received data since the previous --new run (the hours spanned by the chunks that no run
 * has judged yet, whatever their age) and the current hour with the hourly rules, the UTC days
 * of those hours with the daily rule, and freshness as of now; records the alerts in the ledger
 * (db_alerts.h) and prints on stdout only those never reported before, one line each as `check`
 * prints them (json: one JSON object per line). Then, when cfg names an alert_command, runs it
 * once for each alert whose command has not yet succeeded (the new ones, and those whose command
 * failed in an earlier run).
 *
 * Returns CHECK_CRITICAL when a new critical alert was printed, CHECK_WARNING when a new warning
 * was, CHECK_OK when nothing is new (and nothing was printed), CHECK_UNKNOWN with *why set
 * (a static message) when the database failed, the ledger holds no chunk at all, or nothing
 * new came but an alert_command failed (it is retried by the next run).
 */
enum check_status notify_run(struct db *db, const struct ingest_config *cfg, bool json, int64_t now,
			     const char **why);

#endif
