#include <getopt.h>
#include <string.h>

#include "cli.h"
#include "log.h"

void cli_bad_option(int c, char **argv)
{
	char esc[LOG_ESCAPE_SIZE];

	/* A short option is in optopt (optind may still point at its cluster, "-xn"); a long
	 * one is argv[optind - 1]. */
	if (optopt > 0 && optopt < 256) {
		char opt[2] = {'-', (char)optopt};
		log_escape(esc, sizeof(esc), opt, sizeof(opt));
	} else {
		log_escape(esc, sizeof(esc), argv[optind - 1], strlen(argv[optind - 1]));
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
