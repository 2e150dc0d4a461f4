#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"
#include "ship.h"
#include "shipconf.h"

static const char usage[] =
	"Usage: relaywatch-ship [OPTIONS]\n"
	"Ships the new lines of the mail logs, gzip-compressed, over SFTP to the relaywatch stats\n"
	"server. Meant for cron: silent when all is well.\n"
	"\n"
	"  -c, --config FILE          configuration (default " SHIPCONF_DEFAULT_PATH ")\n"
	"  -n, --dry-run              list what would be shipped; connect to nothing, change "
	"nothing\n"
	"  -v, --verbose              say what is shipped (twice: debug)\n"
	"  -q, --quiet                only warnings and errors\n"
	"      --accept-new-host-key  first contact: trust the server's host key and add it to\n"
	"                             known_hosts (a changed key is always refused)\n"
	"  -h, --help                 this text\n"
	"  -V, --version              print the version\n"
	"\n"
	"Exit status: 0 ok (also when another run holds the lock), 1 some chunks or files failed\n"
	"(the next run retries them), 2 usage, config or state file error, 3 could not connect,\n"
	"log in or verify the host key of any server.\n";

enum { OPT_ACCEPT_NEW = 256 };

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"dry-run", no_argument, NULL, 'n'},
		{"verbose", no_argument, NULL, 'v'},
		{"quiet", no_argument, NULL, 'q'},
		{"accept-new-host-key", no_argument, NULL, OPT_ACCEPT_NEW},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *config = SHIPCONF_DEFAULT_PATH;
	struct ship_options opt = {0};
	int verbose = 0;
	bool quiet = false;
	int c;

	log_init("relaywatch-ship", LOG_NOTICE);
	while ((c = getopt_long(argc, argv, ":c:nvqhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'n':
			opt.dry_run = true;
			break;
		case 'v':
			verbose++;
			break;
		case 'q':
			quiet = true;
			break;
		case OPT_ACCEPT_NEW:
			opt.accept_new_host_key = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return SHIP_EXIT_OK;
		case 'V':
			printf("relaywatch-ship %s\n", RELAYWATCH_VERSION);
			return SHIP_EXIT_OK;
		default:
			cli_bad_option(c, argv);
			return SHIP_EXIT_USAGE;
		}
	}
	if (!cli_no_operands(argc, argv)) {
		return SHIP_EXIT_USAGE;
	}
	if (quiet) {
		log_set_level(LOG_WARN);
	} else if (verbose > 0) {
		log_set_level(verbose > 1 ? LOG_DEBUG : LOG_INFO);
	}
	opt.progress = !quiet && isatty(STDERR_FILENO);
	/* A server that drops the connection must give us an error, not kill us. */
	signal(SIGPIPE, SIG_IGN);

	struct ship_config cfg;
	if (shipconf_init(&cfg) != 0) {
		return SHIP_EXIT_USAGE;
	}
	if (shipconf_load(&cfg, config) != 0) {
		shipconf_finish(&cfg);
		return SHIP_EXIT_USAGE;
	}
	int ret = ship_run(&cfg, &opt);
	shipconf_finish(&cfg);
	return ret;
}
