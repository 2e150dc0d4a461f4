#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "db.h"
#include "log.h"
#include "render.h"
#include "report.h"

/* ---- relaywatch-ingest report ---- */

static const char report_usage[] =
	"usage: relaywatch-ingest report [OPTIONS]\n"
	"\n"
	"Summarises the aggregates over a time window (default: the last 24 hours): anomalies,\n"
	"events per type, top relaying accounts, relays allowed by IP, rejected relaying, inbound\n"
	"recipients and the freshness of each host's chunks.\n"
	"\n"
	"      --since TIME         start: 24h, 7d, YYYY-MM-DD, 'YYYY-MM-DD HH:MM' (UTC; default "
	"24h)\n"
	"      --until TIME         end (default: now)\n"
	"      --host NAME          one mail server only\n"
	"      --format FMT         text (default), tsv, json or html\n"
	"  -o, --output FILE        write to FILE (replaced atomically) instead of stdout\n"
	"      --top N              rows in each top list (default 20)\n"
	"  -c, --config FILE        alert rules from FILE (default " INGEST_CONFIG_DEFAULT ")\n"
	"      --defaults-file FILE MySQL option file with the database credentials\n"
	"  -q, --quiet              only errors on stderr\n"
	"  -v, --verbose            more messages on stderr\n"
	"  -h, --help               this text\n"
	"  -V, --version            version\n";

enum { OPT_FORMAT = CMD_LONG_OWN, OPT_TOP };

struct report_opts {
	enum render_fmt fmt;
	const char *output;
	unsigned top;
};

static enum cmd_opt report_option(int c, void *data)
{
	static const char *const formats[] = {
		[FMT_TEXT] = "text", [FMT_TSV] = "tsv", [FMT_JSON] = "json", [FMT_HTML] = "html"};
	struct report_opts *o = data;
	size_t i = 0;

	switch (c) {
	case OPT_FORMAT:
		while (i < sizeof(formats) / sizeof(formats[0]) &&
		       strcmp(optarg, formats[i]) != 0) {
			i++;
		}
		if (i == sizeof(formats) / sizeof(formats[0])) {
			log_error("--format: expected text, tsv, json or html");
			return CMD_OPT_BAD;
		}
		o->fmt = (enum render_fmt)i;
		return CMD_OPT_NEXT;
	case 'o':
		o->output = optarg;
		return CMD_OPT_NEXT;
	case OPT_TOP:
		return cmd_number("--top", optarg, 1, 10000, &o->top) == 0 ? CMD_OPT_NEXT
									   : CMD_OPT_BAD;
	default:
		return CMD_OPT_OWN;
	}
}

int cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {
		CMD_OPTIONS_COMMON,
		CMD_OPTIONS_WINDOW,
		{"format", required_argument, NULL, OPT_FORMAT},
		{"output", required_argument, NULL, 'o'},
		{"top", required_argument, NULL, OPT_TOP},
		{0},
	};
	struct report_opts o = {.fmt = FMT_TEXT, .top = 20};
	struct cmd cmd;
	struct cmd_window w;
	struct report r = {0};
	struct cmd_output out = {0};
	struct db *db = NULL;
	int ret = CMD_USAGE;

	cmd_init(&cmd, report_usage);
	check_alerts_init(&r.alerts);
	r.rules = &cmd.cfg.rules;
	r.now = (int64_t)time(NULL);
	if (cmd_getopt_exits(&cmd, argc, argv, ":c:o:qvhV", opts, report_option, &o, &ret)) {
		goto out;
	}
	if (cmd_load(&cmd, argc, argv) != 0 || cmd_window(&cmd, r.now, r.now, 86400, &w) != 0) {
		goto out;
	}
	r.host = cmd.host;
	r.top = o.top;
	/* Freshness as of the end of a past window, else as of now. */
	r.stale_ref = w.end < r.now ? w.end : r.now;
	r.since = w.since;
	r.until = w.until;
	if ((r.until - r.since) / 3600 > 24 * 3660) {
		log_error("the window is longer than ten years");
		goto out;
	}
	r.day = r.until - r.since > 2 * 86400;
	report_setup(&r);

	ret = cmd_connect(&cmd, &db);
	if (ret != CMD_OK) {
		goto out;
	}
	if (report_gather(db, &r) < 0) {
		ret = cmd_db_failed(db);
		goto out;
	}
	ret = CMD_FAILED;
	FILE *f = cmd_output_open(&out, o.output);
	if (f == NULL) {
		goto out;
	}
	render_report(f, o.fmt, &r);
	if (cmd_output_commit(&out) != 0) {
		goto out;
	}
	ret = CMD_OK;
out:
	cmd_output_abort(&out);
	db_destroy(db);
	report_finish(&r);
	cmd_finish(&cmd);
	return ret;
}
