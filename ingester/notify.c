#include "notify.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alert_command.h"
#include "check_alerts.h"
#include "crashpoint.h"
#include "db_alerts.h"
#include "ingest_config.h"
#include "log.h"
#include "logtime.h"
#include "render.h"

struct range {
	int64_t since, until;
};

struct ranges {
	struct range *v;
	size_t count, cap;
};

static int ranges_add(struct ranges *r, int64_t since, int64_t until)
{
	if (r->count == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct range *v = realloc(r->v, cap * sizeof(*v));
		if (v == NULL) {
			log_error("out of memory");
			return -1;
		}
		r->v = v;
		r->cap = cap;
	}
	r->v[r->count++] = (struct range){since, until};
	return 0;
}

static int cmp_range(const void *pa, const void *pb)
{
	const struct range *a = pa, *b = pb;
	return (a->since > b->since) - (a->since < b->since);
}

/* Sorts and joins ranges that overlap or touch, so that no hour is judged twice. */
static void ranges_merge(struct ranges *r)
{
	size_t k = 0;

	if (r->count == 0) {
		return;
	}
	qsort(r->v, r->count, sizeof(*r->v), cmp_range);
	for (size_t i = 1; i < r->count; i++) {
		if (r->v[i].since <= r->v[k].until) {
			if (r->v[i].until > r->v[k].until) {
				r->v[k].until = r->v[i].until;
			}
		} else {
			r->v[++k] = r->v[i];
		}
	}
	r->count = k + 1;
}

/*
 * The alerts of the hours of u and the current hour (hourly rules, freshness) and of the UTC
 * days they touch (the daily rule).
 */
static enum check_collect_result judge(struct db *db, const struct check_rules *rules,
				       const struct db_unjudged *u, int64_t now,
				       struct check_alerts *out)
{
	struct ranges hours = {0}, days = {0};
	struct check_rules hourly = *rules, daily;
	const struct check_level off = {0, 0};
	int64_t h = logtime_hour_floor(now), first_hour = CHECK_FIRST_HOUR_UNREAD;
	enum check_collect_result ret = CHECK_COLLECT_ERROR;

	/* The same allow-list, borrowed: neither copy is ever finished. */
	hourly.relay_ips = off;
	daily = hourly;
	daily.relay_ips = rules->relay_ips;
	daily.relay_rcpt = daily.relay_domains = daily.sender_mismatch = daily.denied = off;
	daily.baseline_factor = daily.stale = off;
	if (ranges_add(&hours, h, h + 3600) < 0) {
		goto out;
	}
	for (size_t i = 0; i < u->count; i++) {
		int64_t first = logtime_hour_floor(u->first[i]), last = u->last[i];
		if (last < first) {
			last = first;
		}
		if (ranges_add(&hours, first, logtime_hour_floor(last) + 3600) < 0) {
			goto out;
		}
	}
	ranges_merge(&hours);
	for (size_t i = 0; i < hours.count; i++) {
		if (ranges_add(&days, logtime_day_floor(hours.v[i].since),
			       logtime_day_floor(hours.v[i].until - 1) + 86400) < 0) {
			goto out;
		}
	}
	ranges_merge(&days);
	/* Freshness (and whether the ledger holds anything) once, with the first range. */
	for (size_t i = 0; i < hours.count; i++) {
		ret = check_collect(db, &hourly, hours.v[i].since, hours.v[i].until, 0,
				    i == 0 ? now : CHECK_NO_STALE, NULL, &first_hour, out);
		if (ret != CHECK_COLLECT_OK) {
			goto out;
		}
	}
	for (size_t i = 0; i < days.count; i++) {
		ret = check_collect(db, &daily, days.v[i].since, days.v[i].until, 0, CHECK_NO_STALE,
				    NULL, &first_hour, out);
		if (ret != CHECK_COLLECT_OK) {
			goto out;
		}
	}
	check_alerts_sort(out);
	ret = CHECK_COLLECT_OK;
out:
	free(hours.v);
	free(days.v);
	return ret;
}

/* The alert as the command gets it: environment variables and one JSON object on stdin. */
static enum alert_command_result notify_one(const struct alert_command *cmd,
					    const struct check_alert *a)
{
	char host[1100], subject[1100], value[24], threshold[24], start[21];
	char *json = NULL, *line = NULL;
	size_t json_len = 0, line_len = 0;
	FILE *jf = NULL, *lf = NULL;
	enum alert_command_result res = ALERT_COMMAND_ERROR;

	jf = open_memstream(&json, &json_len);
	lf = open_memstream(&line, &line_len);
	if (jf == NULL || lf == NULL) {
		log_error("out of memory");
		goto out;
	}
	render_alert_json(jf, a);
	fputc('\n', jf);
	render_alert_line(lf, a);
	if (fclose(jf) != 0 || fclose(lf) != 0) {
		jf = lf = NULL;
		log_error("out of memory");
		goto out;
	}
	jf = lf = NULL;
	if (line_len > 0 && line[line_len - 1] == '\n') {
		line[--line_len] = '\0';
	}
	/* As in check's lines, uncut: the account was chosen by an SMTP client. */
	render_alert_value(host, sizeof(host) - 1, a->host, a->host_len);
	render_alert_value(subject, sizeof(subject) - 1, a->subject, a->subject_len);
	snprintf(value, sizeof(value), "%" PRIu64, a->value);
	snprintf(threshold, sizeof(threshold), "%" PRIu64, a->threshold);
	render_alert_when(a, RENDER_MINUTE, start);
	const struct alert_command_env env[] = {
		{"RELAYWATCH_STATUS", check_status_name[a->status]},
		{"RELAYWATCH_RULE", check_rule_name[a->rule]},
		{"RELAYWATCH_HOST", host},
		{"RELAYWATCH_SUBJECT", subject},
		{"RELAYWATCH_SUBJECT_KIND", render_alert_kind(a->rule)},
		{"RELAYWATCH_VALUE", value},
		{"RELAYWATCH_THRESHOLD", threshold},
		{"RELAYWATCH_PERIOD", render_alert_period(a)},
		{"RELAYWATCH_START", start},
		{"RELAYWATCH_LINE", line},
	};
	res = alert_command_exec(cmd, env, sizeof(env) / sizeof(env[0]), json, json_len);
out:
	if (jf != NULL) {
		fclose(jf);
	}
	if (lf != NULL) {
		fclose(lf);
	}
	free(json);
	free(line);
	return res;
}

/*
 * Runs the command for every alert still to send, each under its claim in the ledger, so that
 * two runs never send the same alert and an alert whose run died is sent by the next. *failed
 * counts the alerts whose command failed. 0, or -1 on a database error.
 */
static int send_pending(struct db *db, const struct alert_command *cmd, size_t *failed)
{
	struct check_alerts p;
	struct db_rows *rs = NULL;
	struct db_row row;
	uint64_t *ids = NULL;
	int ret = -1;

	check_alerts_init(&p);
	rs = db_alerts_pending(db);
	if (rs == NULL) {
		goto out;
	}
	ids = calloc(db_rows_count(rs) + 1, sizeof(*ids));
	if (ids == NULL) {
		log_error("out of memory");
		goto out;
	}
	while (db_rows_next(rs, &row)) {
		int rule = check_rule_of(row.key[0].p, row.key[0].n);
		/* A rule this version does not know, or a damaged row: not ours to send. */
		if (rule < 0 || row.n[1] < CHECK_WARNING || row.n[1] > CHECK_CRITICAL) {
			continue;
		}
		ids[p.count] = row.n[0];
		if (check_alerts_add(&p, (enum check_rule)rule, (enum check_status)row.n[1],
				     row.key[1].p, row.key[1].n, row.key[2].p, row.key[2].n,
				     row.n[3], row.n[4], row.when[0], row.n[2] != 0) < 0) {
			goto out;
		}
	}
	for (size_t i = 0; i < p.count; i++) {
		int c = db_alerts_claim(db, ids[i]);
		if (c < 0) {
			goto out;
		}
		if (c == 0) {
			continue;
		}
		enum alert_command_result res = notify_one(cmd, &p.v[i]);
		crashpoint("check-new-command");
		if (res != ALERT_COMMAND_OK) {
			(*failed)++;
		}
		if (db_alerts_release(db, ids[i], res == ALERT_COMMAND_OK) < 0) {
			goto out;
		}
	}
	ret = 0;
out:
	free(ids);
	db_rows_free(rs);
	check_alerts_finish(&p);
	return ret;
}

/* Times a run starts its ledger transaction again after a lock conflict. */
#define RECORD_ATTEMPTS 5

/* Records every alert of found in the open transaction; fresh[i]: alert i is new. See
 * db_alerts_record for the result. */
static int record(struct db *db, const struct ingest_config *cfg, const struct check_alerts *found,
		  bool *fresh)
{
	for (size_t i = 0; i < found->count; i++) {
		const struct check_alert *x = &found->v[i];
		const struct db_alert da = {
			.rule = check_rule_name[x->rule],
			.host = {x->host, x->host_len},
			.subject = {x->subject, x->subject_len},
			.period = x->when,
			.level = (unsigned)x->status,
			.daily = x->daily,
			.value = x->value,
			.threshold = x->threshold,
		};
		int r = db_alerts_record(db, &da, cfg->alert.argv != NULL, &fresh[i]);
		if (r != 0) {
			return r;
		}
	}
	return 0;
}

enum check_status notify_run(struct db *db, const struct ingest_config *cfg, bool json, int64_t now,
			     const char **why)
{
	struct db_unjudged u = {0};
	struct check_alerts found;
	bool *fresh = NULL, in_tx = false;
	enum check_status st = CHECK_UNKNOWN;
	size_t failed = 0;

	*why = "database query failed";
	check_alerts_init(&found);
	if (db_alerts_unjudged(db, &u) < 0) {
		goto out;
	}
	enum check_collect_result got = judge(db, &cfg->rules, &u, now, &found);
	if (got != CHECK_COLLECT_OK) {
		if (got == CHECK_COLLECT_EMPTY) {
			*why = "no chunk in the ledger yet";
		}
		goto out;
	}
	fresh = calloc(found.count + 1, sizeof(*fresh));
	if (fresh == NULL) {
		log_error("out of memory");
		goto out;
	}
	/*
	 * In one order in every run, so that two runs inserting the same alerts wait for each other
	 * rather than deadlock; should the server still resolve a conflict by rolling us back, the
	 * transaction starts again (nothing was printed yet).
	 */
	for (int attempt = 1;; attempt++) {
		if (db_alerts_begin(db) < 0) {
			goto out;
		}
		in_tx = true;
		int r = record(db, cfg, &found, fresh);
		if (r == 0) {
			break;
		}
		db_alerts_rollback(db);
		in_tx = false;
		if (r < 0 || attempt == RECORD_ATTEMPTS) {
			if (r > 0) {
				log_error("database: alert ledger: lock conflicts %d times over",
					  attempt);
			}
			goto out;
		}
	}
	st = CHECK_OK;
	for (size_t i = 0; i < found.count; i++) {
		if (!fresh[i]) {
			continue;
		}
		if (json) {
			render_alert_json(stdout, &found.v[i]);
			fputc('\n', stdout);
		} else {
			render_alert_line(stdout, &found.v[i]);
		}
		if (found.v[i].status > st) {
			st = found.v[i].status;
		}
	}
	/*
	 * Printed before committed: a run killed in between leaves its alerts unrecorded, and the
	 * next run reports them (cron mails both). The other order would lose them.
	 */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		log_error("stdout: write error");
		*why = "stdout: write error";
		st = CHECK_UNKNOWN;
		goto out;
	}
	crashpoint("check-new-printed");
	in_tx = false;
	if (db_alerts_commit(db) < 0) {
		*why = "database query failed";
		st = CHECK_UNKNOWN;
		goto out;
	}
	crashpoint("check-new-recorded");
	/* Only now: a run killed before this judges the same hours again, and loses nothing. */
	if (db_alerts_mark_judged(db, &u) < 0 ||
	    (cfg->alert.argv != NULL && send_pending(db, &cfg->alert, &failed) < 0)) {
		if (st == CHECK_OK) {
			*why = "database query failed";
			st = CHECK_UNKNOWN;
		}
		goto out;
	}
	if (failed > 0 && st == CHECK_OK) {
		*why = "alert_command failed (see stderr); the next run tries again";
		st = CHECK_UNKNOWN;
	}
out:
	if (in_tx) {
		db_alerts_rollback(db);
	}
	free(fresh);
	check_alerts_finish(&found);
	db_unjudged_finish(&u);
	return st;
}
