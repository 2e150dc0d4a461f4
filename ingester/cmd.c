#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "ingest_config.h"
#include "log.h"

enum cmd_opt cmd_option(int c, char **argv, const char *usage)
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
		log_error("option %s needs a value (try --help)", argv[optind - 1]);
		return CMD_OPT_BAD;
	case '?':
		log_error("unknown option %s (try --help)", argv[optind - 1]);
		return CMD_OPT_BAD;
	default:
		return CMD_OPT_OWN;
	}
}

bool cmd_no_operands(int argc, char **argv)
{
	if (optind >= argc) {
		return true;
	}
	char esc[LOG_ESCAPE_SIZE];
	log_error("unexpected argument '%s' (try --help)",
		  log_escape(esc, sizeof(esc), argv[optind], strlen(argv[optind])));
	return false;
}

int cmd_config(struct ingest_config *cfg, const char *path)
{
	return ingest_config_load(cfg, path ? path : INGEST_CONFIG_DEFAULT, path == NULL);
}
