#ifndef RELAYWATCH_SCAN_H
#define RELAYWATCH_SCAN_H

#include <stdbool.h>
#include <stdint.h>

#include "agg.h"
#include "chkuser.h"
#include "digest.h"
#include "reader.h"

/*
 * One pass over a chunk's uncompressed bytes: counts lines, hashes them, finds the CHKUSER
 * messages, parses and aggregates them. Lines without "CHKUSER " cost the vector compares that
 * count their newline.
 */

/* Longest line kept whole; a longer CHKUSER line is malformed, a longer other line is noise. */
#define SCAN_LINE_MAX (64 * 1024)

/* Malformed lines kept per chunk, escaped and cut, to be reported once the chunk counts. */
#define SCAN_SAMPLES     8
#define SCAN_SAMPLE_SIZE 320

struct scan_stats;

/* A byte range [start, end) of a chunk's uncompressed content. */
struct scan_range {
	uint64_t start, end;
};

struct scan_opts {
	/* Used for lines without a syslog header (multilog); may be empty. */
	struct span host;
	struct span service;
	/* Reference time for syslog dates without a year (see logtime.h). */
	int64_t ref_utc;
	/* Show a progress bar on stderr (the caller checks isatty). */
	bool progress;
	/* Total compressed size for the progress bar, 0 when unknown. */
	uint64_t progress_total;
	/* How many malformed lines to keep as samples (more than SCAN_SAMPLES are cut to it). */
	unsigned malformed_log_max;
	/* host is every row's host, also for lines whose syslog header names another. */
	bool host_fixed;
	/*
	 * Bounds on the work one chunk may cause. With limit_bytes, more content than max_bytes
	 * stops the inflate one byte past it (a gzip bomb costs no more than its declared length);
	 * more distinct aggregate rows than max_keys (0: no bound) stops the scan (memory stays
	 * bounded).
	 */
	bool limit_bytes;
	uint64_t max_bytes;
	size_t max_keys;
	/*
	 * Ranges (nskip of them, ascending, disjoint) that are hashed and counted as lines but not
	 * parsed: a pack's files that another chunk counted already. A range's start ends the line
	 * before it, so no line joins bytes from both sides; a range that ends the content without
	 * a '\n' is one line short in st->lines (a pack's files all end with one).
	 */
	const struct scan_range *skip;
	size_t nskip;
	/*
	 * Called in the scanning thread after each block but one known to be the last, with the
	 * counts so far (overlap.c takes the finished rows there: after the last block the caller
	 * writes what is left at once, without waiting for a batch); non-zero fails the scan with
	 * SCAN_FAILED. NULL: none.
	 */
	int (*block_done)(void *arg, struct agg *agg, const struct scan_stats *st);
	void *block_arg;
};

struct scan_stats {
	uint64_t bytes;     /* uncompressed bytes */
	uint64_t lines;     /* '\n' count, plus one for a last line without '\n' */
	uint64_t events;    /* well-formed CHKUSER lines (each counted in event_hourly) */
	uint64_t malformed; /* CHKUSER lines without all markers, or too long */
	uint64_t undated;   /* events without a usable stamp: counted at the previous stamp, or
			       ref_utc */
	uint64_t skipped_bytes, skipped_lines; /* of o->skip's ranges, counted in bytes and lines */
	int64_t first_utc;                     /* LOGTIME_NONE when no event */
	int64_t last_utc;
	uint8_t sha256[DIGEST_LEN];
	/* The syslog host of the first event that had one (cut), for a ledger row without one. */
	char first_host[256];
	size_t first_host_len;
	unsigned samples;
	char sample[SCAN_SAMPLES][SCAN_SAMPLE_SIZE];
};

/*
 * scan_chunk's failures: the input cannot be read, or this process failed; or (nothing logged,
 * the caller says why) the content is longer than max_bytes, or makes more than max_keys rows.
 */
enum { SCAN_BAD_INPUT = -1, SCAN_FAILED = -2, SCAN_TOO_LONG = -3, SCAN_TOO_MANY_KEYS = -4 };

/*
 * Reads r to its end into agg (which the caller has reset) and fills st. name is used in
 * messages. Returns 0; or, after logging why, SCAN_BAD_INPUT (corrupt or truncated gzip) or
 * SCAN_FAILED (read error, no memory, no thread); or SCAN_TOO_LONG or SCAN_TOO_MANY_KEYS (not
 * logged) when a bound of o was passed. After a failure agg holds a partial result that
 * the caller must discard.
 */
int scan_chunk(struct reader *r, const char *name, const struct scan_opts *o, struct agg *agg,
	       struct scan_stats *st);

/*
 * Logs the malformed-line samples of a scanned chunk (a warning each, and how many more there
 * were). Callers report them only for a chunk that is counted, so that feeding a chunk again
 * says "already ingested" and nothing else.
 */
void scan_report_malformed(const char *name, const struct scan_stats *st);

#endif
