#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "logtime.h"

/* H. Hinnant's algorithm. */
int64_t logtime_days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

void logtime_init(struct logtime *lt, int64_t ref_utc)
{
	struct tm tm;
	time_t t = (time_t)(ref_utc + 86400);
	memset(lt, 0, sizeof(*lt));
	lt->ref = ref_utc;
	tzset();
	if (localtime_r(&t, &tm)) {
		lt->ref_year = tm.tm_year + 1900;
		lt->ref_mon = tm.tm_mon + 1;
		lt->ref_mday = tm.tm_mday;
	} else {
		lt->ref_year = 1970;
		lt->ref_mon = 1;
		lt->ref_mday = 1;
	}
}

static int digits(const char *p, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9') {
			return -1;
		}
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

static int month_of(const char *p)
{
	static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	for (int i = 0; i < 12; i++) {
		if (memcmp(p, names + 3 * i, 3) == 0) {
			return i + 1;
		}
	}
	return 0;
}

/*
 * Reads the hour of a syslog date, "Mon DD HH" (p[0..9)), into lt->hour_utc, the UTC start of
 * that local hour, and keeps its bytes in lt->hour. 0, or -1 when it is no date.
 */
static int syslog_hour(struct logtime *lt, const char *p)
{
	int mon = month_of(p);
	int day = p[4] == ' ' ? digits(p + 5, 1) : digits(p + 4, 2);
	int hour = digits(p + 7, 2);
	if (mon == 0 || day < 1 || day > 31 || hour < 0 || hour > 23) {
		return -1;
	}
	int year = lt->ref_year;
	if (mon > lt->ref_mon || (mon == lt->ref_mon && day > lt->ref_mday)) {
		year--;
	}
	struct tm tm = {
		.tm_year = year - 1900,
		.tm_mon = mon - 1,
		.tm_mday = day,
		.tm_hour = hour,
		.tm_isdst = -1,
	};
	time_t t = mktime(&tm);
	if (t == (time_t)-1) {
		return -1;
	}
	lt->hour_utc = (int64_t)t;
	memcpy(lt->hour, p, sizeof(lt->hour));
	return 0;
}

int64_t logtime_syslog(struct logtime *lt, const char *p, size_t n)
{
	if (n < 15 || p[3] != ' ' || p[6] != ' ' || p[9] != ':' || p[12] != ':') {
		return LOGTIME_NONE;
	}
	int min = digits(p + 10, 2), sec = digits(p + 13, 2);
	if (min < 0 || min > 59 || sec < 0 || sec > 60) {
		return LOGTIME_NONE;
	}
	/* The lines of one hour share its bytes: only minutes and seconds are read again. */
	if (memcmp(p, lt->hour, sizeof(lt->hour)) != 0 && syslog_hour(lt, p) != 0) {
		return LOGTIME_NONE;
	}
	return lt->hour_utc + min * 60 + sec;
}

int64_t logtime_rfc3339(const char *p, size_t n, size_t *used)
{
	if (n < 20 || p[4] != '-' || p[7] != '-' || (p[10] != 'T' && p[10] != ' ') ||
	    p[13] != ':' || p[16] != ':') {
		return LOGTIME_NONE;
	}
	int y = digits(p, 4), mo = digits(p + 5, 2), d = digits(p + 8, 2);
	int h = digits(p + 11, 2), mi = digits(p + 14, 2), s = digits(p + 17, 2);
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 ||
	    mi > 59 || s < 0 || s > 60) {
		return LOGTIME_NONE;
	}
	size_t i = 19;
	if (i < n && p[i] == '.') {
		i++;
		while (i < n && p[i] >= '0' && p[i] <= '9') {
			i++;
		}
	}
	int64_t off = 0;
	if (i < n && p[i] == 'Z') {
		i++;
	} else if (i + 6 <= n && (p[i] == '+' || p[i] == '-') && p[i + 3] == ':') {
		int oh = digits(p + i + 1, 2), om = digits(p + i + 4, 2);
		if (oh < 0 || oh > 23 || om < 0 || om > 59) {
			return LOGTIME_NONE;
		}
		off = (oh * 3600 + om * 60) * (p[i] == '-' ? -1 : 1);
		i += 6;
	} else {
		return LOGTIME_NONE;
	}
	*used = i;
	return logtime_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 +
	       s - off;
}

/* A hex digit's value plus one; 0 for any other byte (multilog writes lower case). */
static const unsigned char hex1[256] = {
	['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,
	['6'] = 7,  ['7'] = 8,  ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12,
	['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
};

int64_t logtime_tai64n(const char *p, size_t n)
{
	if (n < 25 || p[0] != '@') {
		return LOGTIME_NONE;
	}
	/* Every CHKUSER line of a multilog log comes here: a table, and no branch per digit. */
	const unsigned char *u = (const unsigned char *)p + 1;
	uint64_t v = 0;
	unsigned bad = 0;
	for (size_t i = 0; i < 16; i++) {
		unsigned x = hex1[u[i]];
		bad |= x == 0;
		v = v << 4 | ((x - 1) & 0xf);
	}
	/* The nanoseconds are checked, not used. */
	for (size_t i = 16; i < 24; i++) {
		bad |= hex1[u[i]] == 0;
	}
	/* TAI64 labels of real times are 2^62 + 10 + unix seconds; anything else is not one. */
	const uint64_t base = (UINT64_C(1) << 62) + 10;
	if (bad || v < base || v - base > (uint64_t)INT64_MAX / 2) {
		return LOGTIME_NONE;
	}
	return (int64_t)(v - base);
}

int64_t logtime_epoch(const char *p, size_t n, size_t *used)
{
	size_t i = 0;
	int64_t v = 0;
	while (i < n && i < 12 && p[i] >= '0' && p[i] <= '9') {
		v = v * 10 + (p[i] - '0');
		i++;
	}
	if (i < 9 || i >= n || p[i] != '.' || i + 7 >= n || p[i + 7] != ' ') {
		return LOGTIME_NONE;
	}
	if (digits(p + i + 1, 6) < 0) {
		return LOGTIME_NONE;
	}
	*used = i + 7;
	return v;
}

void logtime_format(int64_t utc, char out[static 20])
{
	int64_t days = utc >= 0 ? utc / 86400 : (utc - 86399) / 86400;
	int64_t rem = utc - days * 86400;
	int64_t y;
	unsigned m, d;
	civil_from_days(days, &y, &m, &d);
	int h = (int)(rem / 3600), mi = (int)(rem / 60 % 60), s = (int)(rem % 60);
	/* Years outside 0..9999 cannot come from a parsed stamp; clamp for the fixed width. */
	if (y < 0) {
		y = 0;
	} else if (y > 9999) {
		y = 9999;
	}
	out[0] = (char)('0' + y / 1000);
	out[1] = (char)('0' + y / 100 % 10);
	out[2] = (char)('0' + y / 10 % 10);
	out[3] = (char)('0' + y % 10);
	out[4] = '-';
	out[5] = (char)('0' + m / 10);
	out[6] = (char)('0' + m % 10);
	out[7] = '-';
	out[8] = (char)('0' + d / 10);
	out[9] = (char)('0' + d % 10);
	out[10] = ' ';
	out[11] = (char)('0' + h / 10);
	out[12] = (char)('0' + h % 10);
	out[13] = ':';
	out[14] = (char)('0' + mi / 10);
	out[15] = (char)('0' + mi % 10);
	out[16] = ':';
	out[17] = (char)('0' + s / 10);
	out[18] = (char)('0' + s % 10);
	out[19] = '\0';
}

int logtime_parse_duration(const char *s, int64_t *seconds)
{
	uint64_t v = 0, mul = 1;
	const char *p = s;

	if (!(*p >= '0' && *p <= '9')) {
		return -1;
	}
	while ((*p >= '0' && *p <= '9')) {
		if (v > UINT64_C(1) << 40) {
			return -1;
		}
		v = v * 10 + (uint64_t)(*p++ - '0');
	}
	/* A bare number is refused: "--older-than 90000" is more likely a slip than 25 hours. */
	switch (*p) {
	case 's':
		mul = 1;
		break;
	case 'm':
		mul = 60;
		break;
	case 'h':
		mul = 3600;
		break;
	case 'd':
		mul = 86400;
		break;
	case 'w':
		mul = 7 * 86400;
		break;
	default:
		return -1;
	}
	if (p[1] != '\0') {
		return -1;
	}
	if (v == 0) {
		return -1;
	}
	*seconds = (int64_t)(v * mul);
	return 0;
}

static bool leap(unsigned y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* n decimal digits at p into *out; 0, or -1 when one is not a digit. */
static int digits_u(const char *p, size_t n, unsigned *out)
{
	int v = digits(p, n);

	if (v < 0) {
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

int logtime_parse_time(const char *s, int64_t now, int64_t *utc)
{
	static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	unsigned y, mo, d, h = 0, mi = 0, sec = 0;
	size_t n = strlen(s);
	int64_t dur;

	if (logtime_parse_duration(s, &dur) == 0) {
		*utc = now - dur;
		return 0;
	}
	if (n < 10 || digits_u(s, 4, &y) < 0 || s[4] != '-' || digits_u(s + 5, 2, &mo) < 0 ||
	    s[7] != '-' || digits_u(s + 8, 2, &d) < 0) {
		return -1;
	}
	if (n > 10) {
		if ((s[10] != ' ' && s[10] != 'T') || n < 16 || digits_u(s + 11, 2, &h) < 0 ||
		    s[13] != ':' || digits_u(s + 14, 2, &mi) < 0) {
			return -1;
		}
		if (n > 16 && (n != 19 || s[16] != ':' || digits_u(s + 17, 2, &sec) < 0)) {
			return -1;
		}
	}
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] + (mo == 2 && leap(y) ? 1u : 0u) || h > 23 || mi > 59 || sec > 59) {
		return -1;
	}
	*utc = logtime_days_from_civil(y, mo, d) * 86400 + (int64_t)(h * 3600 + mi * 60 + sec);
	return 0;
}

/*
 * A POSIX TZ rule such as "CET-1CEST,M3.5.0,M10.5.0/3" or "<+03>-3": a name of three or more
 * letters (or one in <>), then an offset; glibc parses the rest. A zone name with a typo
 * ("Europe/Rome1") is none: glibc would fall back to UTC without a word.
 */
static bool posix_rule(const char *p)
{
	size_t n = 0;
	if (*p == '<') {
		const char *e = strchr(p, '>');
		if (e == NULL || e - p < 4) {
			return false;
		}
		p = e + 1;
	} else {
		while (isalpha((unsigned char)*p)) {
			p++;
			n++;
		}
		if (n < 3) {
			return false;
		}
	}
	if (*p == '+' || *p == '-') {
		p++;
	}
	if (!isdigit((unsigned char)*p)) {
		return false;
	}
	const char *slash = strchr(p, '/'), *comma = strchr(p, ',');
	return slash == NULL || (comma != NULL && slash > comma);
}

bool logtime_zone_known(const char *zone)
{
	const char *dir = getenv("TZDIR");
	char path[4096];
	const char *p;
	struct stat sb;

	p = zone[0] == ':' ? zone + 1 : zone;
	if (*p == '\0' || strstr(p, "..") != NULL) {
		return false;
	}
	if (p[0] == '/') {
		return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir ? dir : "/usr/share/zoneinfo", p) <
		    sizeof(path) &&
	    stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
		return true;
	}
	return zone[0] != ':' && posix_rule(p);
}

int logtime_zone_set(const char *zone)
{
	char esc[LOG_ESCAPE_SIZE];

	if (zone != NULL) {
		if (!logtime_zone_known(zone)) {
			log_error("unknown time zone '%s'",
				  log_escape(esc, sizeof(esc), zone, strlen(zone)));
			return -1;
		}
		if (setenv("TZ", zone, 1) != 0) {
			log_error("TZ: %s", strerror(errno));
			return -1;
		}
	}
	tzset();
	return 0;
}
