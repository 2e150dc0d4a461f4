#include <stdio.h>

#include "cli.h"
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

int cmd_setup(int argc, char **argv, const char *config, struct ingest_config *cfg,
	      const char **defaults)
{
	if (!cli_no_operands(argc, argv) || cmd_config(cfg, config) != 0) {
		return -1;
	}
	if (*defaults == NULL) {
		*defaults = cfg->defaults_file;
	}
	return 0;
}
