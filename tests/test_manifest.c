#include <limits.h>
#include <stdint.h>
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

/* A pack's parts survive a round trip; parts that do not tile the chunk are refused. */
static void pack_parts(void **state)
{
	struct manifest m = sample(), back;
	char text[MANIFEST_MAX_SIZE], t2[MANIFEST_MAX_SIZE + 128];
	m.nparts = 2;
	m.parts[0] =
		(struct manifest_part){.fpr = "0123456789abcdef", .offset = 100, .length = 150};
	m.parts[1] = (struct manifest_part){.fpr = "fedcba9876543210", .offset = 0, .length = 50};
	assert_true(manifest_format(&m, text, sizeof(text)) > 0);
	assert_non_null(strstr(text, "part = fedcba9876543210 0 50\n"));
	assert_int_equal(parse(text, &back), 0);
	assert_memory_equal(&m, &back, sizeof(m));

	/* The largest pack fits the manifest's size with every other field at its longest. */
	memset(m.source, 'x', MANIFEST_SOURCE_MAX);
	memset(m.host, 'h', MANIFEST_HOST_MAX);
	m.nparts = MANIFEST_PARTS_MAX;
	for (unsigned i = 0; i < m.nparts; i++) {
		m.parts[i] = (struct manifest_part){
			.fpr = "0123456789abcdef", .offset = 999999999999999, .length = 1};
	}
	m.parts[0].offset = m.offset = 999999999999999;
	m.length = MANIFEST_PARTS_MAX;
	assert_true(manifest_format(&m, text, sizeof(text)) > 0);
	assert_int_equal(parse(text, &back), 0);
	assert_int_equal(back.nparts, MANIFEST_PARTS_MAX);

	static const char *const bad[] = {
		"part = 0123456789abcdef 100 149\n", /* shorter than the chunk */
		"part = 0123456789abcdef 100 150\npart = 0123456789abcdef 0 49\n", /* short */
		"part = 0123456789abcdef 101 150\npart = 0123456789abcdef 0 50\n", /* offset */
		"part = 0123456789ABCDEF 100 150\npart = 0123456789abcdef 0 50\n",
		"part = 0123456789abcdef 100 150\npart = 0123456789abcdef 0 50 x\n",
		"part = 0123456789abcdef 100 150\npart = 0123456789abcdef -0 50\n",
		"part = 0123456789abcdef 100 150\npart = 0123456789abcdef 0 9999999999999999\n",
		"part = ../../etc/passwd 100 150\npart = 0123456789abcdef 0 50\n",
	};
	m = sample();
	assert_true(manifest_format(&m, text, sizeof(text)) > 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(t2, sizeof(t2), "%s%s", text, bad[i]);
		assert_int_equal(parse(t2, &back), -1);
	}
	/* More parts than a manifest may hold. */
	m.nparts = 0;
	m.length = MANIFEST_PARTS_MAX + 1;
	assert_true(manifest_format(&m, text, sizeof(text)) > 0);
	char *big = malloc(MANIFEST_MAX_SIZE);
	assert_non_null(big);
	size_t n = (size_t)snprintf(big, MANIFEST_MAX_SIZE, "%s", text);
	for (unsigned i = 0; i <= MANIFEST_PARTS_MAX; i++) {
		n += (size_t)snprintf(big + n, MANIFEST_MAX_SIZE - n,
				      "part = 0123456789abcdef %u 1\n", i ? 0 : 100);
	}
	assert_true(n < MANIFEST_MAX_SIZE);
	assert_int_equal(manifest_parse("test", big, n, &back), -1);
	free(big);
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

/*
 * The largest manifest struct manifest can hold fits MANIFEST_MAX_SIZE: every string at the
 * longest its array takes, every number at its longest decimal, every part there. The shipper
 * formats its manifests from this struct (a longer path is cut to it), so no chunk of any file
 * can have a manifest that does not fit; one byte less than its text is refused, not cut.
 */
static void worst_case(void **state)
{
	struct manifest m = {.version = UINT_MAX,
			     .offset = UINT64_MAX,
			     .length = UINT64_MAX,
			     .lines = UINT64_MAX,
			     .mtime = INT64_MIN,
			     .nparts = MANIFEST_PARTS_MAX};
	char text[MANIFEST_MAX_SIZE];
	memset(m.chunk, 'c', sizeof(m.chunk) - 1);
	memset(m.host, 'h', sizeof(m.host) - 1);
	memset(m.service, 's', sizeof(m.service) - 1);
	memset(m.kind, 'k', sizeof(m.kind) - 1);
	memset(m.source, 'p', sizeof(m.source) - 1);
	memset(m.tz, 'z', sizeof(m.tz) - 1);
	for (unsigned i = 0; i < m.nparts; i++) {
		m.parts[i] = (struct manifest_part){
			.fpr = "0123456789abcdef", .offset = UINT64_MAX, .length = UINT64_MAX};
	}
	int len = manifest_format(&m, text, sizeof(text));
	assert_true(len > 0);
	assert_int_equal(strlen(text), len);
	assert_non_null(strstr(text, "mtime = -9223372036854775808\n"));
	assert_int_equal(manifest_format(&m, text, (size_t)len), -1);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(bounds), cmocka_unit_test(round_trip), cmocka_unit_test(hostile_zone),
	cmocka_unit_test(strict), cmocka_unit_test(pack_parts), cmocka_unit_test(worst_case),
};

UNIT_MAIN("test_manifest", tests)
