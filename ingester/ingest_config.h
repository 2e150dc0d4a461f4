#ifndef RELAYWATCH_INGEST_CONFIG_H
#define RELAYWATCH_INGEST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alert_command.h"
#include "check_rules.h"

/*
 * The ingester's config file (`key = value`, see config.h), shared by `run`, `report`, `check`
 * and `purge`. It names the database option file, so it must pass CONFIG_SECURE. Keys:
 *
 *   defaults_file = /etc/relaywatch/my.cnf   MySQL option file ([client], [relaywatch])
 *   incoming = /srv/relaywatch/incoming      the drop directory relaywatch-ship uploads into;
 *   incoming = DIR host=NAME                 repeatable: one per mail server, whose chunks must
 *                                            name that host (the SFTP account proves who
 *                                            uploaded, not the manifest)
 *   archive = yes                            keep ingested chunks in incoming/archive/ (no:
 *                                            delete them once they are counted)
 *   tz = Europe/Rome                         zone of syslog dates in chunks whose lines carry
 *                                            no epoch stamp (default: the system zone)
 *   max_chunk = 1G                           uncompressed bytes of one chunk, at most
 *   max_keys = 500000                        distinct aggregate rows of one chunk, at most
 *   check_...                                alert rules, see check_rules.h
 *   alert_command = /path/prog arg...        run per new alert by check --new, and
 *   alert_timeout = 30s                      its bound; see alert_command.h
 *
 * Command-line options override the file.
 */

#define INGEST_CONFIG_DEFAULT "/etc/relaywatch/ingest.conf"

/* A drop directory, bound to one mail server or (host NULL) shared by all. */
struct ingest_incoming {
	char *dir;
	char *host;
};

/* Defaults of max_chunk and max_keys: the absolute caps of one chunk that verify.c applies. */
#define INGEST_MAX_CHUNK_DEFAULT ((uint64_t)1 << 30)
#define INGEST_MAX_KEYS_DEFAULT  500000

struct ingest_config {
	char *defaults_file; /* NULL: the standard MySQL option-file locations */
	struct ingest_incoming *incoming;
	size_t nincoming;
	uint64_t max_chunk;
	uint64_t max_keys;
	bool archive;
	char *tz; /* NULL: the system zone */
	struct check_rules rules;
	struct alert_command alert;
};

/* Sets every default. */
void ingest_config_init(struct ingest_config *c);

/* Frees what c owns; c can be initialised again afterwards. */
void ingest_config_finish(struct ingest_config *c);

/*
 * Reads path into c (over the defaults). When missing_ok and the file does not exist, c is left
 * as it was and 0 is returned: the default path is optional, a named one is not. Returns 0, or
 * -1 after logging "file:line: why".
 */
int ingest_config_load(struct ingest_config *c, const char *path, bool missing_ok);

#endif
