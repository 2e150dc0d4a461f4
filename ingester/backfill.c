#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agg.h"
#include "commands.h"
#include "db.h"
#include "digest.h"
#include "ingest_config.h"
#include "log.h"
#include "logtime.h"
#include "overlap.h"
#include "reader.h"
#include "scan.h"

static const char usage_backfill[] =
	"usage: relaywatch-ingest backfill [OPTIONS] FILE...\n"
	"\n"
	"Counts the CHKUSER lines of each FILE (plain or gzip, - for stdin) into the hourly "
	"tables,\n"
	"exactly once per content: a file whose bytes were ingested before is skipped.\n"
	"\n"
	"  -c, --config FILE     ingester config (default " INGEST_CONFIG_DEFAULT
	", if it exists)\n"
	"  --defaults-file=FILE  MySQL option file with the credentials ([client], [relaywatch]);\n"
	"                        default: defaults_file of the config, else the standard files\n"
	"  --host NAME           mail server name for lines without a syslog header (multilog)\n"
	"  --service NAME        service name for lines without a syslog tag (e.g. smtp-mx)\n"
	"  --tz ZONE             time zone of the syslog dates (default: tz of the config, else\n"
	"                        the system's)\n"
	"  -j, --jobs N          files ingested at once (default: the number of CPUs, at most 4)\n"
	"  -n, --dry-run         parse and count, print what would be written, touch no database\n"
	"  -v, --verbose         more detail (with --dry-run: every row, tab-separated)\n"
	"  -q, --quiet           only warnings and errors\n"
	"  -h, --help            this text\n"
	"  -V, --version         the program's version\n";

enum {
	OPT_HOST = CMD_LONG_OWN,
	OPT_SERVICE,
	OPT_TZ,
};

/* Prints the rows of one table as TSV, every string rendered with log_escape. */
static int print_rows(struct agg *agg, enum agg_table t)
{
	const struct agg_row *const *rows;
	size_t count, i;
	unsigned f;
	char hour[20];
	char esc[4 * 1024 + 8];

	rows = agg_sorted(agg, t, &count);
	if (count == SIZE_MAX) {
		log_error("out of memory");
		return -1;
	}
	for (i = 0; i < count; i++) {
		logtime_format(rows[i]->hour, hour);
		printf("%s\t%s", agg_table_name[t], hour);
		for (f = 0; f < agg_nfields(t); f++) {
			struct span v = agg_field(rows[i], f);
			log_escape(esc, sizeof(esc), v.p, v.n);
			printf("\t%s", esc);
		}
		printf("\t%llu\n", (unsigned long long)rows[i]->n);
	}
	return 0;
}

static void print_summary(const char *name, const struct scan_stats *st, struct agg *agg,
			  const char *id)
{
	printf("%s: %llu lines, %llu events, %llu malformed, %llu undated; rows: %s %zu, %s %zu, "
	       "%s %zu; chunk %s\n",
	       name, (unsigned long long)st->lines, (unsigned long long)st->events,
	       (unsigned long long)st->malformed, (unsigned long long)st->undated,
	       agg_table_name[AGG_EVENT], agg_rows(agg, AGG_EVENT), agg_table_name[AGG_RELAY],
	       agg_rows(agg, AGG_RELAY), agg_table_name[AGG_DENIED], agg_rows(agg, AGG_DENIED), id);
}

struct backfill_opts {
	const char *defaults_file;
	struct span host, service;
	bool dry_run;
	bool verbose;
	bool progress;
};

/*
 * Scans one file into agg and writes it through ov (NULL for --dry-run), the writes overlapping
 * the scan. Returns CMD_OK, CMD_FAILED (this file failed; go on) or CMD_DB (the database is
 * gone; stop).
 */
static int backfill_file(const struct backfill_opts *bo, struct overlap *ov, struct agg *agg,
			 const char *path)
{
	struct reader *r = NULL;
	struct scan_opts so = {0};
	struct scan_stats st;
	struct stat sb;
	struct db_chunk chunk = {0};
	char id[DIGEST_HEX_LEN + 1];
	char name[LOG_ESCAPE_SIZE];
	enum db_result res;
	int ret = CMD_FAILED;
	bool is_stdin = strcmp(path, "-") == 0;

	log_escape(name, sizeof(name), path, strlen(path));
	r = reader_open(path);
	if (r == NULL) {
		goto out;
	}
	so.host = bo->host;
	so.service = bo->service;
	so.ref_utc = time(NULL);
	so.progress = bo->progress;
	so.malformed_log_max = bo->verbose ? SCAN_SAMPLES : 5;
	if (fstat(reader_fd(r), &sb) == 0 && S_ISREG(sb.st_mode)) {
		/* Syslog dates have no year: the file's mtime says which twelve months they mean.
		 */
		if (!is_stdin) {
			so.ref_utc = sb.st_mtime;
		}
		so.progress_total = (uint64_t)sb.st_size;
	}
	agg_reset(agg);
	if (overlap_scan(ov, r, name, &so, agg, &st) != 0) {
		goto out;
	}
	digest_hex(st.sha256, id);
	if (bo->dry_run) {
		scan_report_malformed(name, &st);
		print_summary(name, &st, agg, id);
		if (bo->verbose) {
			for (int t = 0; t < AGG_TABLES; t++) {
				if (print_rows(agg, (enum agg_table)t) != 0) {
					goto out;
				}
			}
		}
		ret = CMD_OK;
		goto out;
	}
	chunk.id_hex = id;
	chunk.host = bo->host;
	if (chunk.host.n == 0) {
		/* A syslog file names its host in every line: the ledger row takes the first. */
		chunk.host = (struct span){st.first_host, st.first_host_len};
	}
	chunk.source = (struct span){path, strlen(path)};
	chunk.st = &st;
	res = overlap_ingest(ov, &chunk, agg);
	switch (res) {
	case DB_OK:
		scan_report_malformed(name, &st);
		log_info("%s: %llu lines, %llu events, %llu malformed (chunk %.12s...; %lu batches "
			 "written while scanning)",
			 name, (unsigned long long)st.lines, (unsigned long long)st.events,
			 (unsigned long long)st.malformed, id, overlap_batches(ov));
		ret = CMD_OK;
		break;
	case DB_DUPLICATE:
		log_notice("%s: already ingested (chunk %.12s...), skipped", name, id);
		log_info("%s: %lu batches written while scanning, rolled back", name,
			 overlap_batches(ov));
		ret = CMD_OK;
		break;
	case DB_UNAVAILABLE: /* db.c has said why, naming the file */
		ret = CMD_DB;
		break;
	case DB_PARTIAL: /* only a pack's files can be counted apart: a file has no parts */
	case DB_ERROR:
		ret = CMD_FAILED;
		break;
	}

out:
	reader_destroy(r);
	return ret;
}

/*
 * Files are ingested by up to --jobs workers at once, each with its own aggregate table and
 * database connection: while one worker's chunk is being written (the database's CPU), another
 * inflates and parses the next file. Each file is still one transaction of its own.
 */
struct backfill_pool {
	const struct backfill_opts *bo;
	char **files;
	int nfiles;
	pthread_mutex_t mu;
	int next;
	int ret;
};

struct backfill_worker {
	struct backfill_pool *pool;
	struct db *db;
	struct overlap *ov;
	struct agg *agg;
	pthread_t tid;
	bool started;
};

static void *backfill_work(void *arg)
{
	struct backfill_worker *w = arg;
	struct backfill_pool *p = w->pool;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		/* A lost database stops every worker: the next file would fail the same way. */
		const char *path =
			p->ret == CMD_DB || p->next >= p->nfiles ? NULL : p->files[p->next++];
		pthread_mutex_unlock(&p->mu);
		if (path == NULL) {
			break;
		}
		int r = backfill_file(p->bo, w->ov, w->agg, path);
		pthread_mutex_lock(&p->mu);
		if (r == CMD_DB || (r != CMD_OK && p->ret == CMD_OK)) {
			p->ret = r == CMD_DB ? CMD_DB : CMD_FAILED;
		}
		pthread_mutex_unlock(&p->mu);
	}
	return NULL;
}

/* Runs the files through jobs workers. Returns the worst exit status of the files. */
static int backfill_files(const struct backfill_opts *bo, char **files, int nfiles, int jobs)
{
	struct backfill_pool pool = {.bo = bo, .files = files, .nfiles = nfiles, .ret = CMD_OK};
	struct backfill_worker *w = calloc((size_t)jobs, sizeof(*w));
	int ret = CMD_FAILED;

	pthread_mutex_init(&pool.mu, NULL);
	if (w == NULL) {
		log_error("out of memory");
		goto out;
	}
	/* Connections are made here, before any thread: the client library's setup is not. */
	for (int i = 0; i < jobs; i++) {
		bool bad_config;
		w[i].pool = &pool;
		if ((w[i].agg = agg_create()) == NULL) {
			log_error("out of memory");
			goto out;
		}
		if (!bo->dry_run &&
		    (w[i].db = db_connect(bo->defaults_file, &bad_config)) == NULL) {
			ret = bad_config ? CMD_USAGE : CMD_DB;
			goto out;
		}
		if (!bo->dry_run && (w[i].ov = overlap_create(w[i].db)) == NULL) {
			goto out;
		}
	}
	for (int i = 1; i < jobs; i++) {
		if (pthread_create(&w[i].tid, NULL, backfill_work, &w[i]) != 0) {
			log_error("cannot start a thread; going on with %d", i);
			break;
		}
		w[i].started = true;
	}
	backfill_work(&w[0]);
	for (int i = 1; i < jobs; i++) {
		if (w[i].started) {
			pthread_join(w[i].tid, NULL);
		}
	}
	ret = pool.ret;
out:
	for (int i = 0; w && i < jobs; i++) {
		agg_destroy(w[i].agg);
		overlap_destroy(w[i].ov);
		db_destroy(w[i].db);
	}
	free(w);
	pthread_mutex_destroy(&pool.mu);
	return ret;
}

/* The command line of backfill beyond the shared options. */
struct backfill_args {
	struct backfill_opts bo;
	const char *tz;
	unsigned jobs;
};

static enum cmd_opt backfill_option(int c, void *data)
{
	struct backfill_args *a = data;

	switch (c) {
	case OPT_HOST:
		a->bo.host = (struct span){optarg, strlen(optarg)};
		return CMD_OPT_NEXT;
	case OPT_SERVICE:
		a->bo.service = (struct span){optarg, strlen(optarg)};
		return CMD_OPT_NEXT;
	case OPT_TZ:
		a->tz = optarg;
		return CMD_OPT_NEXT;
	case 'n':
		a->bo.dry_run = true;
		return CMD_OPT_NEXT;
	case 'j':
		return cmd_number("--jobs", optarg, 1, 64, &a->jobs) == 0 ? CMD_OPT_NEXT
									  : CMD_OPT_BAD;
	default:
		return CMD_OPT_OWN;
	}
}

int cmd_backfill(int argc, char **argv)
{
	static const struct option opts[] = {
		CMD_OPTIONS_COMMON,
		{"host", required_argument, NULL, OPT_HOST},
		{"service", required_argument, NULL, OPT_SERVICE},
		{"tz", required_argument, NULL, OPT_TZ},
		{"dry-run", no_argument, NULL, 'n'},
		{"jobs", required_argument, NULL, 'j'},
		{NULL, 0, NULL, 0},
	};
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct backfill_args a = {.jobs = cpus < 1 ? 1 : cpus > 4 ? 4 : (unsigned)cpus};
	struct backfill_opts *bo = &a.bo;
	struct cmd cmd;
	int ret = CMD_USAGE;

	cmd_init(&cmd, usage_backfill);
	if (cmd_getopt_exits(&cmd, argc, argv, ":c:j:nvqhV", opts, backfill_option, &a, &ret)) {
		goto out;
	}
	if (optind >= argc) {
		log_error("no file to backfill (try --help)");
		goto out;
	}
	bo->verbose = log_get_level() >= LOG_INFO;
	if (cmd_config(&cmd.cfg, cmd.config) != 0 ||
	    logtime_zone_set(a.tz ? a.tz : cmd.cfg.tz) != 0) {
		ret = CMD_USAGE;
		goto out;
	}
	bo->defaults_file = cmd.defaults ? cmd.defaults : cmd.cfg.defaults_file;
	if (a.jobs > (unsigned)(argc - optind)) {
		a.jobs = (unsigned)(argc - optind);
	}
	/* Rows printed by --dry-run --verbose, and a progress bar, want one file at a time. */
	if (bo->dry_run && bo->verbose) {
		a.jobs = 1;
	}
	bo->progress = a.jobs == 1 && log_get_level() >= LOG_NOTICE && isatty(STDERR_FILENO);
	ret = backfill_files(bo, argv + optind, argc - optind, (int)a.jobs);
	if (fflush(stdout) != 0 && ret == CMD_OK) {
		log_error("stdout: %s", strerror(errno));
		ret = CMD_FAILED;
	}

out:
	cmd_finish(&cmd);
	return ret;
}
