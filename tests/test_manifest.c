#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "log.h"
#include "manifest.h"

static struct manifest sample(void)
{
	struct manifest m = {.version = 1, .offset = 100, .length = 200, .lines = 3, .mtime = 7};
	strcpy(m.chunk, "mail1_0123456789abcdef_100-300.gz");
	strcpy(m.host, "mail1.example.org");
	strcpy(m.service, "smtp-mx");
	strcpy(m.kind, "multilog");
	strcpy(m.source, "/var/log/qmail/smtpd/current");
	memset(m.sha256, 0xab, sizeof(m.sha256));
	return m;
}

static int parse(const char *text, struct manifest *m)
{
	return manifest_parse("test", text, strlen(text), m);
}

static void round_trip(void **state)
{
	struct manifest m = sample(), back;
	char text[MANIFEST_MAX_SIZE];
	assert_true(manifest_format(&m, text, sizeof(text)) > 0);
	/* Without a zone the key is left out, and parsing does not require it. */
	assert_null(strstr(text, "tz ="));
	assert_int_equal(parse(text, &back), 0);
	assert_memory_equal(&m, &back, sizeof(m));
	strcpy(m.tz, "Europe/Rome");
	assert_true(manifest_format(&m, text, sizeof(text)) > 0);
	assert_int_equal(parse(text, &back), 0);
	assert_string_equal(back.tz, "Europe/Rome");
}

static void hostile_zone(void **state)
{
	static const char *const bad[] = {
		"../../etc/passwd", "/etc/passwd", "Europe/../../x", "a b", ":UTC", "", "UTC;rm",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_false(manifest_zone_valid(bad[i]));
	}
	assert_true(manifest_zone_valid("Etc/GMT+5"));
	assert_true(manifest_zone_valid("America/Argentina/Buenos_Aires"));

	struct manifest m = sample(), back;
	char text[MANIFEST_MAX_SIZE];
	assert_true(manifest_format(&m, text, sizeof(text)) > 0);
	strcat(text, "tz = ../../etc/passwd\n");
	assert_int_equal(parse(text, &back), -1);
}

static void strict(void **state)
{
	struct manifest m = sample(), back;
	char text[MANIFEST_MAX_SIZE], t2[MANIFEST_MAX_SIZE + 64];
	assert_true(manifest_format(&m, text, sizeof(text)) > 0);

	/* A required key missing. */
	char *p = strstr(text, "lines = ");
	strcpy(t2, text);
	memcpy(t2 + (p - text), "#", 1);
	assert_int_equal(parse(t2, &back), -1);
	/* A key twice, an unknown key, a chunk name that is a path. */
	snprintf(t2, sizeof(t2), "%slines = 4\n", text);
	assert_int_equal(parse(t2, &back), -1);
	snprintf(t2, sizeof(t2), "%sevil = 1\n", text);
	assert_int_equal(parse(t2, &back), -1);
	strcpy(m.chunk, "../x.gz");
	assert_true(manifest_format(&m, text, sizeof(text)) > 0);
	assert_int_equal(parse(text, &back), -1);
	assert_false(manifest_name_valid(".hidden.gz"));
	assert_false(manifest_name_valid("a/b.gz"));
}

/* Numbers far beyond any real chunk are refused before arithmetic can overflow on them. */
static void bounds(void **state)
{
	struct manifest m = sample(), back;
	char text[MANIFEST_MAX_SIZE];

	m.mtime = (int64_t)MANIFEST_MTIME_MAX;
	m.length = m.lines = m.offset = MANIFEST_BYTES_MAX;
	assert_true(manifest_format(&m, text, sizeof(text)) > 0);
	assert_int_equal(parse(text, &back), 0);
	assert_int_equal(back.mtime, (int64_t)MANIFEST_MTIME_MAX);

	m = sample();
	m.mtime = INT64_MAX;
	assert_true(manifest_format(&m, text, sizeof(text)) > 0);
	assert_int_equal(parse(text, &back), -1);
	m = sample();
	m.length = MANIFEST_BYTES_MAX + 1;
	assert_true(manifest_format(&m, text, sizeof(text)) > 0);
	assert_int_equal(parse(text, &back), -1);
	m = sample();
	m.lines = UINT64_MAX;
	assert_true(manifest_format(&m, text, sizeof(text)) > 0);
	assert_int_equal(parse(text, &back), -1);
	m = sample();
	m.offset = MANIFEST_BYTES_MAX + 1;
	assert_true(manifest_format(&m, text, sizeof(text)) > 0);
	assert_int_equal(parse(text, &back), -1);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(bounds),
	cmocka_unit_test(round_trip),
	cmocka_unit_test(hostile_zone),
	cmocka_unit_test(strict),
};

int main(int argc, char **argv)
{
	/* Rejections are logged on purpose. */
	log_init("test_manifest", LOG_ERROR);
	if (argc > 1) {
		cmocka_set_test_filter(argv[1]);
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
