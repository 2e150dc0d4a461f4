#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "log.h"

/* Whether a is a cluster of short options ("-xn") holding c. */
static bool in_cluster(const char *a, int c)
{
	return c != 0 && a != NULL && a[0] == '-' && a[1] != '-' && strchr(a + 1, c) != NULL;
}

void cli_bad_option(int c, char **argv)
{
	char esc[LOG_ESCAPE_SIZE];
	const char *prev = argv[optind - 1];

	/*
	 * A long option has been stepped over: it is argv[optind - 1] (glibc also puts a long
	 * option's letter into optopt). A short one is optopt, in a cluster that optind may still
	 * point at ("-xn").
	 */
	bool is_long = prev[0] == '-' && prev[1] == '-' && !in_cluster(argv[optind], optopt);
	if (!is_long && optopt > 0 && optopt < 256) {
		char opt[2] = {'-', (char)optopt};
		log_escape(esc, sizeof(esc), opt, sizeof(opt));
	} else {
		log_escape(esc, sizeof(esc), prev, strlen(prev));
	}
	if (c == ':') {
		log_error("option %s needs a value (try --help)", esc);
	} else {
		log_error("unknown option %s (try --help)", esc);
	}
}

bool cli_no_operands(int argc, char **argv)
{
	if (optind >= argc) {
		return true;
	}
	char esc[LOG_ESCAPE_SIZE];
	log_error("unexpected argument '%s' (try --help)",
		  log_escape(esc, sizeof(esc), argv[optind], strlen(argv[optind])));
	return false;
}
