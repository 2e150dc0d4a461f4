#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "check_alerts.h"
#include "commands.h"
#include "db.h"
#include "log.h"
#include "logtime.h"
#include "notify.h"
#include "render.h"

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

enum { OPT_FORMAT = CMD_LONG_OWN, OPT_NEW };

struct check_opts {
	bool json, quiet, new_only;
};

static enum cmd_opt check_option(int c, void *data)
{
	struct check_opts *o = data;

	switch (c) {
	case OPT_FORMAT:
		if (strcmp(optarg, "json") == 0) {
			o->json = true;
		} else if (strcmp(optarg, "text") != 0) {
			log_error("--format: expected text or json");
			return CMD_OPT_BAD;
		}
		return CMD_OPT_NEXT;
	case OPT_NEW:
		o->new_only = true;
		return CMD_OPT_NEXT;
	case 'q':
		/* A plugin's quiet: nothing printed when OK; the log level stays. */
		o->quiet = true;
		return CMD_OPT_NEXT;
	default:
		return CMD_OPT_OWN;
	}
}

int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		CMD_OPTIONS_COMMON,
		CMD_OPTIONS_WINDOW,
		{"format", required_argument, NULL, OPT_FORMAT},
		{"new", no_argument, NULL, OPT_NEW},
		{0},
	};
	const char *why = NULL;
	struct check_opts o = {0};
	struct cmd cmd;
	struct check_alerts alerts;
	struct db *db = NULL;
	enum check_status st = CHECK_UNKNOWN;
	int64_t now = (int64_t)time(NULL);
	struct cmd_window w = {.until = logtime_hour_floor(now)};

	w.since = w.until - 3600;
	cmd_init(&cmd, check_usage);
	check_alerts_init(&alerts);
	switch (cmd_getopt(&cmd, argc, argv, ":c:qvhV", opts, check_option, &o)) {
	case CMD_OPT_NEXT:
		break;
	case CMD_OPT_DONE:
		st = CHECK_OK;
		goto out;
	default:
		goto bad;
	}
	if (cmd_load(&cmd, argc, argv) != 0) {
		goto bad;
	}
	/*
	 * Without a window the hourly rules judge the current hour so far and the last complete
	 * one, the daily rule the 24 hourly rows that end with the current one: a burst shows at
	 * the first check after its lines are ingested, not at the next hour's.
	 */
	bool recent = cmd.since == NULL && cmd.until == NULL;
	int64_t h = logtime_hour_floor(now);
	if (cmd_window(&cmd, now, recent ? now : h, recent ? now - (h - 3600) : 3600, &w) != 0) {
		goto bad;
	}
	/* --new keeps its own record of what it judged: of every host, up to now. */
	if (o.new_only && (!recent || cmd.host != NULL)) {
		log_error("--new judges what arrived since the last --new run, for every host: "
			  "it takes no --since, --until or --host");
		goto bad;
	}
	switch (cmd_connect(&cmd, &db)) {
	case CMD_OK:
		break;
	case CMD_USAGE:
		why = "configuration error (see stderr)";
		goto print;
	default:
		why = "database unreachable";
		goto print;
	}
	if (o.new_only) {
		st = notify_run(db, &cmd.cfg, o.json, now, &why);
		if (st != CHECK_UNKNOWN) {
			goto out;
		}
		goto print;
	}
	/* A past window is judged as of its end, the default one as of now. */
	enum check_collect_result got =
		check_collect(db, &cmd.cfg.rules, w.since, w.until,
			      CHECK_PERF | (cmd.since == NULL ? CHECK_DAILY_WINDOW : 0),
			      cmd.until != NULL ? w.end : now, cmd.host, NULL, &alerts);
	/* Sorted whatever the result: an empty ledger's UNKNOWN still prints what was found. */
	check_alerts_sort(&alerts);
	struct db_window dw = {w.since, w.until, cmd.host};
	struct db_totals t;
	if (got == CHECK_COLLECT_OK) {
		if (db_window_totals(db, &dw, &t) < 0) {
			got = CHECK_COLLECT_ERROR;
		} else {
			alerts.relayed = t.relayed;
			alerts.denied = t.denied;
			alerts.events = t.events;
			alerts.max_ip_denied = t.max_ip_denied;
		}
	}
	if (got == CHECK_COLLECT_ERROR) {
		why = "database query failed";
		goto print;
	}
	if (got == CHECK_COLLECT_EMPTY) {
		why = cmd.host ? "no chunk from this host in the ledger"
			       : "no chunk in the ledger yet";
		goto print;
	}
	st = check_worst(&alerts);
	goto print;
bad:
	why = "usage or configuration error (see stderr)";
print:
	if (o.quiet && st == CHECK_OK) {
		/* nothing: cron mails whatever is printed */
	} else if (o.json) {
		render_alerts_json(stdout, &alerts, st, why, w.since, w.until);
	} else {
		render_alerts_text(stdout, &cmd.cfg.rules, &alerts, st, why);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		log_error("stdout: write error");
		st = CHECK_UNKNOWN;
	}
out:
	db_destroy(db);
	check_alerts_finish(&alerts);
	cmd_finish(&cmd);
	return (int)st;
}
