#ifndef RELAYWATCH_LOGTIME_H
#define RELAYWATCH_LOGTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOGTIME_NONE INT64_MIN

/*
 * Converts the stamps found in mail logs to UTC seconds.
 *
 * Syslog dates carry no year and are in local time. The year is inferred against a reference
 * time (the file's mtime, or now for stdin): a date is put in the year that places it in the
 * twelve months before ref + 1 day, so a log that spans New Year reads right as long as it covers
 * less than a year. Local time is read in the zone of the TZ environment variable (set it before
 * logtime_init); offsets are cached per local hour, so mktime() runs about once an hour of log.
 */
struct logtime {
	int64_t ref;
	int ref_year, ref_mon, ref_mday; /* local date of ref + 1 day */
	/*
	 * The hour of the last date read, "Mon DD HH" (its first 9 bytes; zeroed: none yet, which
	 * no date matches), and its start in UTC (mktime's, run once per hour of a log).
	 */
	char hour[9];
	int64_t hour_utc;
};

void logtime_init(struct logtime *lt, int64_t ref_utc);

/*
 * A syslog date "Mon DD HH:MM:SS" (15 bytes at p; day may be space-padded). Returns UTC seconds
 * or LOGTIME_NONE when the bytes are not such a date.
 */
int64_t logtime_syslog(struct logtime *lt, const char *p, size_t n);

/*
 * An RFC 3339 stamp "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)" at the start of p[0..n).
 * Returns UTC seconds and stores its length in *used, or LOGTIME_NONE.
 */
int64_t logtime_rfc3339(const char *p, size_t n, size_t *used);

/*
 * multilog's "@" + 24 lowercase hex digits (25 bytes at p). Returns UTC seconds (TAI64 label
 * minus 2^62 + 10, the fixed convention without a leap-second table) or LOGTIME_NONE.
 */
int64_t logtime_tai64n(const char *p, size_t n);

/*
 * splogger's "SECONDS.MICROS" followed by a space at the start of p[0..n): 9 to 12 digits, a dot,
 * 6 digits. Returns UTC seconds and stores the length without the space in *used, or LOGTIME_NONE.
 */
int64_t logtime_epoch(const char *p, size_t n, size_t *used);

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1-12). */
int64_t logtime_days_from_civil(int64_t y, unsigned m, unsigned d);

/* The start of the hour, or of the UTC day, that holds t (also for t before 1970). */
static inline int64_t logtime_hour_floor(int64_t t)
{
	return t - ((t % 3600) + 3600) % 3600;
}

static inline int64_t logtime_day_floor(int64_t t)
{
	return t - ((t % 86400) + 86400) % 86400;
}

/* Formats UTC seconds as "YYYY-MM-DD HH:MM:SS" (20 bytes with the NUL). */
void logtime_format(int64_t utc, char out[static 20]);

/*
 * Durations and times of the command line and the config (--since, --until, --older-than,
 * check_stale_*), all UTC:
 * logtime_parse_duration: "45s", "90m", "24h", "7d", "2w"; > 0, and the unit is required.
 * logtime_parse_time: a duration means now minus it; "YYYY-MM-DD", "YYYY-MM-DD HH:MM",
 * "YYYY-MM-DD HH:MM:SS" or with a 'T' between date and time, in UTC.
 * Both return 0 or -1 (nothing logged, errno untouched).
 */
int logtime_parse_duration(const char *s, int64_t *seconds);
int logtime_parse_time(const char *s, int64_t now, int64_t *utc);

/*
 * The zone of syslog dates: one check for every place that takes a zone (ingest.conf's tz, the
 * --tz options, a manifest's zone). glibc silently falls back to UTC for a zone it cannot find,
 * which would shift every syslog-stamped hour without a word: a name must exist under TZDIR
 * (/usr/share/zoneinfo) as a regular file, a POSIX rule ("CET-1CEST,M3.5.0,M10.5.0/3",
 * "<+03>-3") must carry its offset.
 * logtime_zone_known: whether zone passes that check (nothing logged).
 * logtime_zone_set: sets TZ to zone (NULL: leaves the system zone) and calls tzset(), so that
 * logtime_init and logtime_syslog read local dates in it. 0, or -1 after logging.
 */
bool logtime_zone_known(const char *zone);
int logtime_zone_set(const char *zone);

#endif
