#include "verify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "logtime.h"
#include "overlap.h"
#include "reader.h"

/* The smallest gzip file: a 10-byte header, an empty deflate block, an 8-byte trailer. */
#define GZIP_MIN_SIZE 20

/*
 * The largest gzip file that deflate can make of len bytes: stored blocks cost 5 bytes per
 * 64 KiB (zlib's deflateBound is tighter), plus a generous allowance for headers, file names
 * and a few concatenated members. Anything larger holds more than it claims, or padding.
 */
static uint64_t gzip_bound(uint64_t len)
{
	return len + (len >> 10) + 4096;
}

enum verify_result verify_manifest(int mfd, const char *name, const char *gz,
				   const struct verify_opts *o, struct manifest *m, char *why,
				   size_t n)
{
	char esc[LOG_ESCAPE_SIZE], held[512];
	char *buf = NULL;
	size_t len;
	int r, bad;
	enum verify_result ret = VERIFY_BAD;

	log_hold();
	r = fileio_read_file(mfd, name, MANIFEST_MAX_SIZE, &buf, &len);
	if (r < 0) {
		/* A read error is ours, not the chunk's: the claim stays for the next run. */
		if (log_release(held, sizeof(held))) {
			log_error("%s", held);
		}
		return VERIFY_LOCAL;
	}
	if (r > 0) {
		log_release(held, sizeof(held));
		snprintf(why, n, "manifest larger than %d bytes", MANIFEST_MAX_SIZE);
		return VERIFY_BAD;
	}
	/* One line for the admin: the parser's reason goes into the quarantine line. */
	bad = manifest_parse(name, buf, len, m);
	if (!log_release(held, sizeof(held))) {
		snprintf(held, sizeof(held), "%s", "no reason given");
	} else if (bad == 0) {
		log_warn("%s", held);
	}
	if (bad != 0) {
		snprintf(why, n, "invalid manifest: %s", held);
		goto out;
	}
	/* The manifest may name only its own chunk: never another file, never a path. */
	if (strcmp(m->chunk, gz) != 0) {
		snprintf(why, n, "manifest names chunk '%s', expected '%s'",
			 log_escape(esc, sizeof(esc), m->chunk, strlen(m->chunk)), gz);
		goto out;
	}
	/*
	 * A drop directory bound to one mail server takes the host from where the chunk was
	 * uploaded: one stolen key must not speak for another server, nor keep a dead one fresh.
	 */
	if (o->bound_host != NULL && strcmp(m->host, o->bound_host) != 0) {
		snprintf(why, n, "manifest names host '%s', but this drop directory is %s's",
			 log_escape(esc, sizeof(esc), m->host, strlen(m->host)), o->bound_host);
		goto out;
	}
	/*
	 * The shipper packs a file once; a second ledger row of it would fail the ingest. Equal
	 * fingerprint digits and range mean equal part ids (manifest_part_id).
	 */
	for (unsigned i = 0; i < m->nparts; i++) {
		for (unsigned j = 0; j < i; j++) {
			const struct manifest_part *a = &m->parts[i], *b = &m->parts[j];
			if (strcmp(a->fpr, b->fpr) == 0 && a->offset == b->offset &&
			    a->length == b->length) {
				snprintf(why, n, "part %u repeats part %u", i + 1, j + 1);
				goto out;
			}
		}
	}
	ret = VERIFY_OK;

out:
	free(buf);
	return ret;
}

void verify_zone_set(const char *zone, struct overlap *ov)
{
	const char *now = getenv("TZ");

	if (zone == NULL ? now != NULL : now == NULL || strcmp(zone, now) != 0) {
		/*
		 * setenv may move the environment while another thread reads it: the database
		 * writer, which may be reconnecting for the previous chunk (the client library
		 * finds its option files through the environment). The zone seldom changes.
		 */
		if (ov != NULL) {
			overlap_wait_idle(ov);
		}
		if (zone != NULL) {
			setenv("TZ", zone, 1);
		} else {
			unsetenv("TZ");
		}
	}
	tzset();
}

/*
 * Syslog dates without a UTC stamp are the mail server's local time: read them in the zone its
 * manifest names when this machine knows that zone, else in the run's zone. (manifest_parse
 * already refused any zone that could name a file outside zoneinfo.)
 */
static void zone_for(const char *esc, const struct manifest *m, const char *run_tz,
		     struct overlap *ov)
{
	const char *zone = run_tz;
	if (m->tz[0] != '\0') {
		if (logtime_zone_known(m->tz)) {
			zone = m->tz;
		} else {
			log_info("%s: zone %s unknown here; syslog dates read in the run's zone",
				 esc, m->tz);
		}
	}
	verify_zone_set(zone, ov);
}

/*
 * What can be known without reading the chunk: its declared length within max_chunk, its file
 * size within what a gzip of that length can be, its first bytes gzip's. A bomb declared small,
 * or a sparse giant that costs its uploader no disk, is refused here without being read.
 */
static enum verify_result check_before_reading(int fd, const char *gz, const struct stat *sb,
					       const struct manifest *m,
					       const struct verify_opts *o, char *why, size_t n)
{
	unsigned char magic[3];
	ssize_t got;

	if (sb->st_size == 0) {
		snprintf(why, n, "%s is empty (0 bytes; gzip data expected)", gz);
		return VERIFY_BAD;
	}
	if (m->length > o->max_chunk) {
		snprintf(why, n, "length: manifest says %llu bytes, more than max_chunk (%llu)",
			 (unsigned long long)m->length, (unsigned long long)o->max_chunk);
		return VERIFY_BAD;
	}
	if ((uint64_t)sb->st_size > gzip_bound(m->length)) {
		snprintf(why, n,
			 "length: manifest says %llu bytes, but %s is %llu bytes: more than any "
			 "gzip of that length (not read)",
			 (unsigned long long)m->length, gz, (unsigned long long)sb->st_size);
		return VERIFY_BAD;
	}
	got = fileio_read_at(fd, magic, sizeof(magic), 0);
	if (got < 0) {
		log_error("%s: %s", gz, strerror(errno));
		return VERIFY_LOCAL;
	}
	/* 1f 8b, then deflate (8): the only method gzip has. */
	if (sb->st_size < GZIP_MIN_SIZE || got < 3 || magic[0] != 0x1f || magic[1] != 0x8b ||
	    magic[2] != 8) {
		snprintf(why, n, "%s is not gzip data", gz);
		return VERIFY_BAD;
	}
	return VERIFY_OK;
}

enum verify_result verify_chunk(int dir_fd, const char *gz, const char *esc,
				const struct manifest *m, const bool *counted,
				const struct verify_opts *o, struct overlap *ov, struct agg *agg,
				struct scan_stats *st, char *why, size_t n)
{
	struct reader *r = NULL;
	struct scan_opts so = {0};
	struct scan_range skip[MANIFEST_PARTS_MAX];
	uint64_t pos = 0;
	struct stat sb;
	char hex[DIGEST_HEX_LEN + 1], id[DIGEST_HEX_LEN + 1];
	char held[512];
	enum verify_result ret = VERIFY_BAD;
	int fd;

	/* O_NOFOLLOW: a symlink planted as NAME.gz must not make us read /etc/shadow. */
	fd = openat(dir_fd, gz, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			return VERIFY_MISSING;
		}
		/* Out of descriptors or memory, a failing disk: ours, not the chunk's. */
		if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == EIO) {
			log_error("%s: %s: %s", esc, gz, strerror(errno));
			return VERIFY_LOCAL;
		}
		snprintf(why, n, "cannot open %s: %s", gz,
			 errno == ELOOP ? "a symlink" : strerror(errno));
		return VERIFY_BAD;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		snprintf(why, n, "%s is not a regular file", gz);
		return VERIFY_BAD;
	}
	ret = check_before_reading(fd, gz, &sb, m, o, why, n);
	if (ret != VERIFY_OK) {
		close(fd);
		return ret;
	}
	r = reader_fdopen(fd, gz);
	if (r == NULL) {
		return VERIFY_LOCAL;
	}
	ret = VERIFY_BAD;
	so.host = (struct span){m->host, strlen(m->host)};
	so.host_fixed = o->bound_host != NULL;
	so.service = (struct span){m->service, strlen(m->service)};
	so.ref_utc = m->mtime;
	so.progress = o->progress;
	so.progress_total = (uint64_t)sb.st_size;
	so.malformed_log_max = o->malformed_log_max;
	so.limit_bytes = true;
	so.max_bytes = m->length;
	so.max_keys = o->max_keys;
	/* The parts tile the content in order (manifest_parse checked their lengths' sum). */
	for (unsigned i = 0; counted != NULL && i < m->nparts; i++) {
		if (counted[i]) {
			skip[so.nskip++] = (struct scan_range){pos, pos + m->parts[i].length};
		}
		pos += m->parts[i].length;
	}
	so.skip = skip;
	zone_for(esc, m, o->run_tz, ov);
	agg_reset(agg);
	/* The reader's reason ("NAME.gz: truncated gzip data ...") goes into that line. */
	log_hold();
	int scanned = overlap_scan(ov, r, esc, &so, agg, st);
	if (!log_release(held, sizeof(held))) {
		snprintf(held, sizeof(held), "%s: cannot be read", gz);
	} else if (scanned == 0 || scanned < SCAN_FAILED) {
		/* held, but no failure came of it: still the admin's to read */
		log_warn("%s", held);
	}
	switch (scanned) {
	case 0:
		break;
	case SCAN_BAD_INPUT:
		snprintf(why, n, "%s", held);
		goto out;
	case SCAN_TOO_LONG:
		/* Stopped one byte past the length: the rest was never inflated. */
		snprintf(why, n, "length: manifest says %llu bytes, the chunk has more",
			 (unsigned long long)m->length);
		goto out;
	case SCAN_TOO_MANY_KEYS:
		snprintf(why, n,
			 "more than %zu distinct aggregate rows (max_keys): not read further",
			 o->max_keys);
		goto out;
	default:
		log_error("%s", held);
		ret = VERIFY_LOCAL;
		goto out;
	}
	if (!reader_is_gzip(r)) {
		snprintf(why, n, "%s is not gzip data", gz);
		goto out;
	}
	/*
	 * The manifest is the shipper's account of the bytes it read: any difference means a
	 * damaged or forged upload, which must not be counted.
	 */
	if (st->bytes != m->length) {
		snprintf(why, n, "length: manifest says %llu bytes, the chunk has %llu",
			 (unsigned long long)m->length, (unsigned long long)st->bytes);
		goto out;
	}
	if (st->lines != m->lines) {
		snprintf(why, n, "lines: manifest says %llu, the chunk has %llu",
			 (unsigned long long)m->lines, (unsigned long long)st->lines);
		goto out;
	}
	if (memcmp(st->sha256, m->sha256, DIGEST_LEN) != 0) {
		digest_hex(m->sha256, hex);
		digest_hex(st->sha256, id);
		snprintf(why, n, "sha256: manifest says %s, the chunk has %s", hex, id);
		goto out;
	}
	/* The ledger row counts what this chunk counted: another chunk's row has the rest. */
	st->bytes -= st->skipped_bytes;
	st->lines -= st->skipped_lines;
	ret = VERIFY_OK;

out:
	/* Rows of a chunk that is not counted may have gone ahead: they must never commit. */
	if (ret != VERIFY_OK && ov != NULL) {
		if (overlap_batches(ov) > 0) {
			log_info("%s: %lu batches written while scanning, rolled back", esc,
				 overlap_batches(ov));
		}
		/* (A failed scan rolled itself back: then this finds nothing to roll back.) */
		overlap_abort(ov);
	}
	reader_destroy(r);
	return ret;
}
