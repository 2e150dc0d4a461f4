#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "commands.h"
#include "drain.h"
#include "ingest_config.h"
#include "log.h"
#include "logtime.h"

/* `relaywatch-ingest run`: options and config, then one drain_run per drop directory. */

static const char usage_run[] =
	"usage: relaywatch-ingest run [OPTIONS]\n"
	"\n"
	"Drains the drop directories that relaywatch-ship uploads into: verifies each complete\n"
	"chunk against its manifest, counts it exactly once, then archives (or deletes) it. Bad\n"
	"chunks go to quarantine/ with a NAME.why file. Meant for cron: silent on success.\n"
	"\n"
	"  -c, --config FILE     ingester config (default " INGEST_CONFIG_DEFAULT
	", if it exists)\n"
	"  --defaults-file=FILE  MySQL option file with the credentials ([client], [relaywatch])\n"
	"  --incoming DIR        the drop directory (instead of the config's 'incoming' lines)\n"
	"  --host NAME           with --incoming: only this mail server uploads into DIR; a\n"
	"                        manifest naming another host is quarantined\n"
	"  -n, --dry-run         check the waiting chunks and print what would happen; no\n"
	"                        database, nothing moved\n"
	"  -v, --verbose         say what was done\n"
	"  -q, --quiet           only warnings and errors\n"
	"  -h, --help            this text\n"
	"  -V, --version         the program's version\n"
	"\n"
	"Exit status: 0 all done, 1 some chunks quarantined or failed, 2 usage or config error,\n"
	"3 database error (the chunk stays in work/ and is retried by the next run).\n";

/* The command front-end's connection, in drain's terms (see drain_opts.connect). */
static int run_connect(void *arg, struct db **db)
{
	switch (cmd_connect(arg, db)) {
	case CMD_OK:
		return DRAIN_OK;
	case CMD_USAGE:
		return DRAIN_SETUP;
	default:
		return DRAIN_DB;
	}
}

/* The worse of two results: a database failure stops, setup errors next, then failures. */
static enum drain_result worse(enum drain_result a, enum drain_result b)
{
	static const int rank[] = {
		[DRAIN_OK] = 0, [DRAIN_FAILED] = 1, [DRAIN_SETUP] = 2, [DRAIN_DB] = 3};
	return rank[b] > rank[a] ? b : a;
}

/* Drains each drop directory in turn; stops at a database failure (the next ones would too). */
static enum drain_result drain_all(const struct ingest_incoming *in, size_t n, struct drain_opts *o,
				   struct drain_stats *total)
{
	enum drain_result ret = DRAIN_OK;
	struct drain_conn conn = {0};
	struct drain_stats st;

	for (size_t i = 0; i < n && ret != DRAIN_DB; i++) {
		o->incoming = in[i].dir;
		o->host = in[i].host;
		ret = worse(ret, drain_run(o, &conn, &st));
		total->ingested += st.ingested;
		total->duplicates += st.duplicates;
		total->quarantined += st.quarantined;
		total->failed += st.failed;
	}
	drain_close(&conn);
	return ret;
}

/* The command line of run beyond the shared options. */
struct run_args {
	struct ingest_incoming cli; /* --incoming DIR and --host NAME */
	bool dry_run;
};

static enum cmd_opt run_option(int c, void *data)
{
	struct run_args *a = data;

	switch (c) {
	case CMD_LONG_OWN:
		a->cli.dir = optarg;
		return CMD_OPT_NEXT;
	case CMD_LONG_HOST:
		a->cli.host = optarg;
		return CMD_OPT_NEXT;
	case 'n':
		a->dry_run = true;
		return CMD_OPT_NEXT;
	default:
		return CMD_OPT_OWN;
	}
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		CMD_OPTIONS_COMMON,
		{"incoming", required_argument, NULL, CMD_LONG_OWN},
		{"host", required_argument, NULL, CMD_LONG_HOST},
		{"dry-run", no_argument, NULL, 'n'},
		{NULL, 0, NULL, 0},
	};
	struct cmd cmd;
	struct run_args a = {0};
	struct drain_opts o = {.connect = run_connect, .connect_arg = &cmd};
	struct drain_stats st = {0};
	const struct ingest_incoming *in;
	size_t nin;
	int ret = CMD_USAGE;

	cmd_init(&cmd, usage_run);
	if (cmd_getopt_exits(&cmd, argc, argv, ":c:nvqhV", opts, run_option, &a, &ret)) {
		goto out;
	}
	o.dry_run = a.dry_run;
	if (cmd_load(&cmd, argc, argv) != 0) {
		goto out;
	}
	if (a.cli.host != NULL && a.cli.dir == NULL) {
		log_error("--host NAME binds the drop directory of --incoming DIR: give both");
		goto out;
	}
	in = a.cli.dir != NULL ? &a.cli : cmd.cfg.incoming;
	nin = a.cli.dir != NULL ? 1 : cmd.cfg.nincoming;
	if (nin == 0) {
		log_error("no drop directory: give --incoming DIR or set 'incoming' in %s",
			  cmd.config ? cmd.config : INGEST_CONFIG_DEFAULT);
		goto out;
	}
	o.verbose = log_get_level() >= LOG_INFO;
	o.archive = cmd.cfg.archive;
	o.max_chunk = cmd.cfg.max_chunk;
	o.max_keys = (size_t)cmd.cfg.max_keys;
	o.progress = log_get_level() >= LOG_NOTICE && isatty(STDERR_FILENO);
	if (logtime_zone_set(cmd.cfg.tz) != 0) {
		goto out;
	}
	switch (drain_all(in, nin, &o, &st)) {
	case DRAIN_OK:
		ret = CMD_OK;
		break;
	case DRAIN_FAILED:
		ret = CMD_FAILED;
		break;
	case DRAIN_SETUP:
		ret = CMD_USAGE;
		break;
	case DRAIN_DB:
	default:
		ret = CMD_DB;
		break;
	}
	log_info("%u ingested, %u already ingested, %u quarantined, %u failed", st.ingested,
		 st.duplicates, st.quarantined, st.failed);
	if (fflush(stdout) != 0 && ret == CMD_OK) {
		ret = CMD_FAILED;
	}

out:
	cmd_finish(&cmd);
	return ret;
}
