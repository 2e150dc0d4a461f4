/*
 * common/logtime.c's zone check, which ingest.conf's tz, the --tz options and the zone of a
 * manifest all go through; its reading of multilog's TAI64N labels.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "logtime.h"

static void zone(void **state)
{
	assert_int_equal(logtime_zone_set("UTC"), 0);
	assert_string_equal(getenv("TZ"), "UTC");
	assert_int_equal(logtime_zone_set("CET-1CEST,M3.5.0,M10.5.0/3"), 0);
	assert_int_equal(logtime_zone_set(":America/New_York"), 0);
	assert_int_equal(logtime_zone_set("Nowhere/Special"), -1);
	/* A refused zone leaves TZ as it was. */
	assert_string_equal(getenv("TZ"), ":America/New_York");
	/* A typo with a digit is no POSIX rule: glibc would read it as UTC without a word. */
	assert_int_equal(logtime_zone_set("Europe/Rome1"), -1);
	assert_int_equal(logtime_zone_set("X1"), -1);
	assert_int_equal(logtime_zone_set("UTC0"), 0);
	assert_int_equal(logtime_zone_set("<+03>-3"), 0);
	assert_int_equal(logtime_zone_set("Etc/GMT+5"), 0);
	assert_int_equal(logtime_zone_set(""), -1);
	assert_int_equal(logtime_zone_set(NULL), 0);
	/* Only regular files under the zone directory, and nothing outside it. */
	assert_false(logtime_zone_known("Europe"));
	assert_false(logtime_zone_known("../../etc/passwd"));
	assert_false(logtime_zone_known(":"));
	assert_true(logtime_zone_known("/usr/share/zoneinfo/Europe/Rome"));
	assert_true(logtime_zone_known("Europe/Rome"));
}

/*
 * The time of a label read another way, its 16 digits of seconds by strtoull: LOGTIME_NONE before
 * 1970 and beyond 2^62 seconds, as logtime_tai64n promises.
 */
static int64_t label_seconds(const char *l)
{
	const uint64_t base = (UINT64_C(1) << 62) + 10;
	char d[17];

	memcpy(d, l + 1, 16);
	d[16] = '\0';
	uint64_t v = strtoull(d, NULL, 16);
	return v < base || v - base > (uint64_t)INT64_MAX / 2 ? LOGTIME_NONE : (int64_t)(v - base);
}

/* multilog's labels: @, 16 hex digits of TAI64 seconds, 8 of nanoseconds; lower case only. */
static void tai64n(void **state)
{
	static const char ok[] = "@4000000052e892682a4b434c";
	char l[sizeof(ok)];

	assert_int_equal(logtime_tai64n(ok, 25), 1390973534);
	assert_int_equal(logtime_tai64n("@400000000000000a00000000", 25), 0);
	assert_int_equal(logtime_tai64n(ok, 24), LOGTIME_NONE);
	assert_int_equal(logtime_tai64n("#4000000052e892682a4b434c", 25), LOGTIME_NONE);
	/* Before 1970 (2^62 + 10 less one) and beyond any real time. */
	assert_int_equal(logtime_tai64n("@400000000000000900000000", 25), LOGTIME_NONE);
	assert_int_equal(logtime_tai64n("@c000000000000000000000000", 25), LOGTIME_NONE);
	/*
	 * Each position, seconds and nanoseconds alike, refuses every byte but a hex digit; each
	 * hex digit of the seconds counts at its value and place, those of the nanoseconds not at
	 * all.
	 */
	for (size_t i = 1; i < 25; i++) {
		for (int c = 0; c < 256; c++) {
			memcpy(l, ok, sizeof(ok));
			l[i] = (char)c;
			bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
			int64_t t = logtime_tai64n(l, 25);
			if (!hex) {
				assert_int_equal(t, LOGTIME_NONE);
			} else {
				assert_int_equal(t, label_seconds(l));
			}
		}
	}
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(zone),
	cmocka_unit_test(tai64n),
};

UNIT_MAIN("test_logtime", tests)
