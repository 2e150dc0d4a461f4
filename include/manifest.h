#ifndef RELAYWATCH_MANIFEST_H
#define RELAYWATCH_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"

/*
 * The manifest travels beside each chunk in the drop directory: NAME.gz holds the gzip-compressed
 * bytes, NAME.manifest (uploaded and renamed after it, so its presence means the chunk is
 * complete) describes them in "key = value" lines:
 *
 *   version = 1
 *   chunk = NAME.gz
 *   host = mail1.example.org         the mail server (for lines without a syslog header)
 *   service = smtp-mx                for lines without a syslog tag; may be empty
 *   kind = multilog | syslog
 *   source = /var/log/maillog.1      where the bytes came from (information only)
 *   offset = 0                       byte range of the source file's content
 *   length = 1048576                 uncompressed bytes in the chunk
 *   lines = 8123                     '\n' count plus 1 if the last byte is not '\n'
 *   sha256 = <64 hex>                of the uncompressed bytes
 *   mtime = 1390973534               reference time for syslog dates without a year
 *   tz = Europe/Rome                 optional: the mail server's zone, for syslog dates
 *                                    without a UTC stamp
 *
 * On the stats server every field is untrusted: manifest_parse bounds each string and number,
 * rejects control bytes, checks the chunk name with manifest_name_valid and the zone with
 * manifest_zone_valid.
 */

#define MANIFEST_MAX_SIZE    8192
#define MANIFEST_HOST_MAX    255
#define MANIFEST_SERVICE_MAX 64
#define MANIFEST_SOURCE_MAX  1024
#define MANIFEST_NAME_MAX    200
#define MANIFEST_TZ_MAX      63
/* Bounds of the numbers: offset, length and lines (1 PiB), mtime (9999-12-31 23:59:59 UTC). */
#define MANIFEST_BYTES_MAX ((uint64_t)1 << 50)
#define MANIFEST_MTIME_MAX ((uint64_t)253402300799)

struct manifest {
	unsigned version;
	char chunk[MANIFEST_NAME_MAX + 1];
	char host[MANIFEST_HOST_MAX + 1];
	char service[MANIFEST_SERVICE_MAX + 1];
	char kind[16];
	char source[MANIFEST_SOURCE_MAX + 1];
	uint64_t offset;
	uint64_t length;
	uint64_t lines;
	uint8_t sha256[DIGEST_LEN];
	int64_t mtime;
	char tz[MANIFEST_TZ_MAX + 1]; /* empty when the shipper did not know its zone */
};

/* Writes m as text into buf. Returns its length, or -1 when it does not fit. */
int manifest_format(const struct manifest *m, char *buf, size_t size);

/*
 * Parses the text of a manifest (name is used in messages). Every key above is required once,
 * unknown keys are errors. Returns 0, or -1 after logging "name:line: why".
 */
int manifest_parse(const char *name, const char *buf, size_t len, struct manifest *m);

/*
 * A drop-directory name is valid when it is 1..MANIFEST_NAME_MAX bytes of [A-Za-z0-9._@+-], does
 * not start with '.', and so can be neither a path ("/", "..") nor a hidden temporary upload.
 */
bool manifest_name_valid(const char *name);

/*
 * A zone is valid when it reads as a zoneinfo name ("Europe/Rome", "Etc/GMT+5", "UTC"): 1 to
 * MANIFEST_TZ_MAX bytes of [A-Za-z0-9_+-/], not starting with '/' and without "..", so that
 * it cannot name a file outside the zoneinfo directory.
 */
bool manifest_zone_valid(const char *zone);

#endif
