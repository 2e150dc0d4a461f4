/*
 * common/logtime.c's zone check, which ingest.conf's tz, the --tz options and the zone of a
 * manifest all go through.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "log.h"
#include "logtime.h"

static void zone(void **state)
{
	log_init("test", LOG_ERROR);
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

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(zone),
	};

	if (argc > 1) {
		cmocka_set_test_filter(argv[1]);
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
