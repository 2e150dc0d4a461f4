#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "db.h"
#include "ingest_config.h"
#include "log.h"
#include "logtime.h"

/* The options every subcommand shares; see cmd_parse. */
static enum cmd_opt cmd_option(int c, char **argv, const char *usage)
{
	switch (c) {
	case 'v':
		log_set_level(log_get_level() < LOG_DEBUG ? log_get_level() + 1 : LOG_DEBUG);
		return CMD_OPT_NEXT;
	case 'q':
		log_set_level(LOG_WARN);
		return CMD_OPT_NEXT;
	case 'h':
		fputs(usage, stdout);
		return CMD_OPT_DONE;
	case 'V':
		printf("relaywatch-ingest %s\n", RELAYWATCH_VERSION);
		return CMD_OPT_DONE;
	case ':':
	case '?':
		cli_bad_option(c, argv);
		return CMD_OPT_BAD;
	default:
		return CMD_OPT_OWN;
	}
}

int cmd_config(struct ingest_config *cfg, const char *path)
{
	return ingest_config_load(cfg, path ? path : INGEST_CONFIG_DEFAULT, path == NULL);
}

void cmd_init(struct cmd *cmd, const char *usage)
{
	*cmd = (struct cmd){.usage = usage};
	ingest_config_init(&cmd->cfg);
}

void cmd_finish(struct cmd *cmd)
{
	ingest_config_finish(&cmd->cfg);
}

enum cmd_opt cmd_parse(struct cmd *cmd, int c, char **argv)
{
	switch (c) {
	case 'c':
		cmd->config = optarg;
		return CMD_OPT_NEXT;
	case CMD_LONG_DEFAULTS:
		cmd->defaults = optarg;
		return CMD_OPT_NEXT;
	case CMD_LONG_SINCE:
		cmd->since = optarg;
		return CMD_OPT_NEXT;
	case CMD_LONG_UNTIL:
		cmd->until = optarg;
		return CMD_OPT_NEXT;
	case CMD_LONG_HOST:
		cmd->host = optarg;
		return CMD_OPT_NEXT;
	default:
		return cmd_option(c, argv, cmd->usage);
	}
}

enum cmd_opt cmd_getopt(struct cmd *cmd, int argc, char **argv, const char *optstring,
			const struct option *opts, cmd_own_fn own, void *data)
{
	int c;

	while ((c = getopt_long(argc, argv, optstring, opts, NULL)) != -1) {
		enum cmd_opt r = own != NULL ? own(c, data) : CMD_OPT_OWN;
		if (r == CMD_OPT_OWN) {
			r = cmd_parse(cmd, c, argv);
		}
		if (r != CMD_OPT_NEXT) {
			/* CMD_OPT_OWN here: an option of the table that nobody handles. */
			return r == CMD_OPT_DONE ? CMD_OPT_DONE : CMD_OPT_BAD;
		}
	}
	return CMD_OPT_NEXT;
}

bool cmd_getopt_exits(struct cmd *cmd, int argc, char **argv, const char *optstring,
		      const struct option *opts, cmd_own_fn own, void *data, int *status)
{
	enum cmd_opt got = cmd_getopt(cmd, argc, argv, optstring, opts, own, data);

	if (got == CMD_OPT_NEXT) {
		return false;
	}
	*status = got == CMD_OPT_DONE ? CMD_OK : CMD_USAGE;
	return true;
}

int cmd_number(const char *name, const char *arg, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (*arg == '\0' || *end != '\0' || errno != 0 || v < min || v > max) {
		log_error("%s: expected a number from %u to %u", name, min, max);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

int cmd_load(struct cmd *cmd, int argc, char **argv)
{
	if (!cli_no_operands(argc, argv) || cmd_config(&cmd->cfg, cmd->config) != 0) {
		return -1;
	}
	if (cmd->defaults == NULL) {
		cmd->defaults = cmd->cfg.defaults_file;
	}
	return 0;
}

int cmd_window(const struct cmd *cmd, int64_t now, int64_t default_until, int64_t length,
	       struct cmd_window *w)
{
	static const char expected[] = "expected 24h, 7d, YYYY-MM-DD or 'YYYY-MM-DD HH:MM'";
	int64_t since, until = default_until;
	int ret = -1;

	/* On an error too, w is the window as far as it was read: `check` prints it. */
	if (cmd->until != NULL && logtime_parse_time(cmd->until, now, &until) < 0) {
		log_error("--until: %s", expected);
		since = until - length;
		goto out;
	}
	since = until - length;
	if (cmd->since != NULL && logtime_parse_time(cmd->since, now, &since) < 0) {
		log_error("--since: %s", expected);
		goto out;
	}
	if (since >= until) {
		log_error("--since must be before --until");
		goto out;
	}
	ret = 0;
out:
	w->since = logtime_hour_floor(since);
	w->until = logtime_hour_floor(until + 3599);
	w->end = until;
	return ret;
}

enum cmd_exit cmd_connect(const struct cmd *cmd, struct db **db)
{
	bool bad_config;

	*db = db_connect(cmd->defaults, &bad_config);
	if (*db == NULL) {
		return bad_config ? CMD_USAGE : CMD_DB;
	}
	return CMD_OK;
}

enum cmd_exit cmd_db_failed(const struct db *db)
{
	return db != NULL && db_unavailable(db) ? CMD_DB : CMD_FAILED;
}

FILE *cmd_output_open(struct cmd_output *o, const char *path)
{
	size_t n;
	mode_t mask;
	int fd;

	*o = (struct cmd_output){.path = path};
	if (path == NULL) {
		o->f = stdout;
		return o->f;
	}
	n = strlen(path);
	o->tmp = malloc(n + 8);
	if (o->tmp == NULL) {
		log_error("out of memory");
		return NULL;
	}
	memcpy(o->tmp, path, n);
	memcpy(o->tmp + n, ".XXXXXX", 8);
	fd = mkstemp(o->tmp);
	if (fd < 0) {
		log_error("%s: %s", path, strerror(errno));
		free(o->tmp);
		o->tmp = NULL;
		return NULL;
	}
	mask = umask(0);
	umask(mask);
	if (fchmod(fd, 0666 & ~mask) != 0) {
		log_warn("%s: chmod: %s", o->tmp, strerror(errno));
	}
	o->f = fdopen(fd, "w");
	if (o->f == NULL) {
		log_error("%s: %s", o->tmp, strerror(errno));
		close(fd);
		unlink(o->tmp);
		free(o->tmp);
		o->tmp = NULL;
	}
	return o->f;
}

int cmd_output_commit(struct cmd_output *o)
{
	if (fflush(o->f) != 0 || ferror(o->f)) {
		log_error("%s: write error: %s", o->path ? o->tmp : "stdout", strerror(errno));
		return -1;
	}
	if (o->path == NULL) {
		return 0;
	}
	int e = fclose(o->f);
	o->f = NULL;
	if (e != 0) {
		log_error("%s: %s", o->tmp, strerror(errno));
		return -1;
	}
	if (rename(o->tmp, o->path) != 0) {
		log_error("%s: %s", o->path, strerror(errno));
		return -1;
	}
	free(o->tmp);
	o->tmp = NULL;
	return 0;
}

void cmd_output_abort(struct cmd_output *o)
{
	if (o->f != NULL && o->f != stdout) {
		fclose(o->f);
	}
	o->f = NULL;
	if (o->tmp != NULL) {
		unlink(o->tmp);
		free(o->tmp);
		o->tmp = NULL;
	}
}
