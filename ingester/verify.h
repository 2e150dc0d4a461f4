#ifndef RELAYWATCH_VERIFY_H
#define RELAYWATCH_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agg.h"
#include "manifest.h"
#include "scan.h"

struct overlap;

/*
 * Checking one claimed chunk of the drop directory against its manifest, with bounded work:
 * everything in NAME.manifest and NAME.gz comes from the SFTP account, which may be a stolen
 * mail-server key. The manifest is read through a size bound; the chunk's size and gzip magic
 * are checked before a byte of it is inflated; inflating stops one byte past the manifest's
 * length; the content and the distinct aggregate rows have absolute caps.
 */

struct verify_opts {
	const char *bound_host; /* the drop directory's host; NULL: believe the manifest */
	uint64_t max_chunk;     /* uncompressed bytes of one chunk */
	size_t max_keys;        /* distinct aggregate rows of one chunk */
	const char *run_tz;     /* TZ as the run began; NULL when unset */
	bool progress;
	unsigned malformed_log_max;
};

enum verify_result {
	VERIFY_OK = 0,      /* may be ingested */
	VERIFY_BAD = 1,     /* must be quarantined: why says why (nothing logged) */
	VERIFY_MISSING = 2, /* NAME.gz is not there (a crash after it was archived) */
	VERIFY_LOCAL = 3,   /* this process failed (no memory, an I/O error; logged) */
};

/*
 * Sets TZ to zone (NULL: unsets it) and calls tzset(). When TZ changes and ov is not NULL, first
 * waits for ov's writer to idle: it may be reading the environment.
 */
void verify_zone_set(const char *zone, struct overlap *ov);

/*
 * Reads the manifest open as mfd (name: NAME.manifest) into m and checks that it names its own
 * chunk gz and, when o->bound_host is set, that host. why (size n) receives the reason of a
 * VERIFY_BAD. Returns VERIFY_OK, VERIFY_BAD or VERIFY_LOCAL.
 */
enum verify_result verify_manifest(int mfd, const char *name, const char *gz,
				   const struct verify_opts *o, struct manifest *m, char *why,
				   size_t n);

/*
 * Scans dir_fd/gz (esc: the chunk's escaped name, for messages) into agg (reset here) and st,
 * and compares it with m: length, line count, SHA-256. Sets TZ to the manifest's zone when this
 * machine knows it (else to o->run_tz) for syslog dates. counted is NULL, or m->nparts flags:
 * the pack's files counted already, whose bytes are verified but whose lines are not parsed
 * (st's counts, bytes and lines leave them out). ov is NULL, or the database writer that
 * streams the rows while the chunk is scanned (overlap_scan): on VERIFY_OK the chunk's
 * transaction may be open for overlap_ingest; on any other result it is rolled back. why (size
 * n) receives the reason of a VERIFY_BAD. Returns any verify_result.
 */
enum verify_result verify_chunk(int dir_fd, const char *gz, const char *esc,
				const struct manifest *m, const bool *counted,
				const struct verify_opts *o, struct overlap *ov, struct agg *agg,
				struct scan_stats *st, char *why, size_t n);

#endif
