#define _GNU_SOURCE /* memmem */
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "unit.h"

#include "log.h"
#include "naive_scan.h"
#include "scan.h"

static const char relay[] = "Jan 28 21:32:14 mx1 smtp: 1390973534.709575 CHKUSER relaying rcpt: "
			    "from <a@b.example:a@b.example:> remote <h:unknown:192.0.2.1> rcpt "
			    "<x@Y.example> : client allowed to relay\n";
static const char noise[] = "Jan 28 21:32:14 mx1 smtp: 1390973534.709575 tcpserver: status: 3/40\n";
static const char broken[] = "@4000000052e892682a4b434c CHKUSER relaying rcpt: from <a@b\n";

struct buf {
	char *p;
	size_t n, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2;
		b->p = realloc(b->p, b->cap);
		assert_non_null(b->p);
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
}

/*
 * Scans b's bytes from a file with o, whose host and reference time are filled in here. The reader
 * is named by the file's path (/tmp/rw-scan-XXXXXX), the scan "scanned".
 */
static int scan_with(const struct buf *b, struct scan_opts o, struct agg *agg,
		     struct scan_stats *st)
{
	char path[] = "/tmp/rw-scan-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, b->p, b->n), (ssize_t)b->n);
	close(fd);
	struct reader *r = reader_open(path);
	o.host = SPAN_LIT("fallback");
	o.ref_utc = 1393632000;
	agg_reset(agg);
	int ret = scan_chunk(r, "scanned", &o, agg, st);
	reader_destroy(r);
	unlink(path);
	return ret;
}

static int scan_bytes(const struct buf *b, struct agg *agg, struct scan_stats *st)
{
	return scan_with(b, (struct scan_opts){0}, agg, st);
}

static void counts(void **state)
{
	struct buf b = {0};
	/* Enough lines to cross several 2 MB blocks at varying offsets. */
	for (int i = 0; i < 60000; i++) {
		put(&b, relay, sizeof(relay) - 1);
		put(&b, noise, sizeof(noise) - 1);
		if (i % 1000 == 0) {
			put(&b, broken, sizeof(broken) - 1);
		}
	}
	struct agg *agg = agg_create();
	struct scan_stats st;
	assert_int_equal(scan_bytes(&b, agg, &st), 0);
	assert_int_equal(st.lines, 120060);
	assert_int_equal(st.events, 60000);
	assert_int_equal(st.malformed, 60);
	assert_int_equal(st.bytes, b.n);
	assert_int_equal(st.first_utc, 1390973534);
	uint8_t md[32];
	SHA256((const unsigned char *)b.p, b.n, md);
	assert_memory_equal(st.sha256, md, 32);

	size_t n;
	const struct agg_row *const *rows = agg_sorted(agg, AGG_RELAY, &n);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0]->n, 60000);
	assert_int_equal(rows[0]->hour, 1390971600);
	assert_int_equal(agg_field(rows[0], 5).n, 9);
	assert_memory_equal(agg_field(rows[0], 5).p, "y.example", 9);
	assert_memory_equal(agg_field(rows[0], 0).p, "mx1", 3);
	rows = agg_sorted(agg, AGG_EVENT, &n);
	assert_int_equal(n, 1);
	agg_destroy(agg);
	free(b.p);
}

/*
 * A pack's files counted already by another chunk: their bytes are hashed and their lines
 * counted, but not parsed, across the scan's block edges; a skipped range ends a line.
 */
static void skip_ranges(void **state)
{
	struct buf b = {0};
	const size_t pair = sizeof(relay) - 1 + sizeof(noise) - 1;
	for (int i = 0; i < 60000; i++) {
		put(&b, relay, sizeof(relay) - 1);
		put(&b, noise, sizeof(noise) - 1);
	}
	/* A line cut by the start of a skipped range: its head is a line of its own. */
	const struct scan_range skip[] = {
		{10000 * pair, 30000 * pair},
		{50000 * pair - 20, 55000 * pair},
	};
	struct agg *agg = agg_create();
	struct scan_stats st;
	assert_int_equal(scan_with(&b, (struct scan_opts){.skip = skip, .nskip = 2}, agg, &st), 0);
	assert_int_equal(st.lines, 120000);
	assert_int_equal(st.skipped_lines, 50001);
	assert_int_equal(st.skipped_bytes, 25000 * pair + 20);
	assert_int_equal(st.bytes, b.n);
	assert_int_equal(st.events, 60000 - 25000);
	assert_int_equal(st.malformed, 0);
	uint8_t md[32];
	SHA256((const unsigned char *)b.p, b.n, md);
	assert_memory_equal(st.sha256, md, 32);
	agg_destroy(agg);
	free(b.p);
}

static void last_line_without_newline(void **state)
{
	struct buf b = {0};
	put(&b, noise, sizeof(noise) - 1);
	put(&b, relay, sizeof(relay) - 2);
	struct agg *agg = agg_create();
	struct scan_stats st;
	assert_int_equal(scan_bytes(&b, agg, &st), 0);
	assert_int_equal(st.lines, 2);
	assert_int_equal(st.events, 1);
	agg_destroy(agg);
	free(b.p);
}

static void overlong_lines(void **state)
{
	struct buf b = {0};
	put(&b, relay, sizeof(relay) - 1);
	/* A 3 MB CHKUSER line (malformed) and a 3 MB noise line, each crossing blocks. */
	put(&b, "1390973534.709575 CHKUSER relaying rcpt: from <", 47);
	char *big = malloc(3 << 20);
	memset(big, 'x', 3 << 20);
	put(&b, big, 3 << 20);
	put(&b, "\n", 1);
	put(&b, big, 3 << 20);
	put(&b, "\n", 1);
	put(&b, relay, sizeof(relay) - 1);
	struct agg *agg = agg_create();
	struct scan_stats st;
	assert_int_equal(scan_bytes(&b, agg, &st), 0);
	assert_int_equal(st.lines, 4);
	assert_int_equal(st.events, 2);
	assert_int_equal(st.malformed, 1);
	agg_destroy(agg);
	free(big);
	free(b.p);
}

static void crlf_and_multilog_host(void **state)
{
	struct buf b = {0};
	const char *l = "@4000000052e892682a4b434c CHKUSER rejected relaying: from <s@x.example::> "
			"remote <h:unknown:198.51.100.7> rcpt <v@z.example> : client not allowed "
			"to relay\r\n";
	put(&b, l, strlen(l));
	struct agg *agg = agg_create();
	struct scan_stats st;
	assert_int_equal(scan_bytes(&b, agg, &st), 0);
	size_t n;
	const struct agg_row *const *rows = agg_sorted(agg, AGG_DENIED, &n);
	assert_int_equal(n, 1);
	/* Without a syslog header the chunk's host is used. */
	assert_int_equal(agg_field(rows[0], 0).n, 8);
	assert_memory_equal(agg_field(rows[0], 0).p, "fallback", 8);
	rows = agg_sorted(agg, AGG_EVENT, &n);
	assert_int_equal(agg_field(rows[0], 3).n, strlen("client not allowed to relay"));
	agg_destroy(agg);
	free(b.p);
}

static void only_newlines(void **state)
{
	/*
	 * Dense newlines exercise the vector counters' lane sums (a lane counts up to 255): the
	 * scan's, and bytevec_newlines over a skipped range.
	 */
	struct buf b = {0};
	char nl[4096];
	memset(nl, '\n', sizeof(nl));
	for (int i = 0; i < 1000; i++) {
		put(&b, nl, sizeof(nl) - (size_t)(i % 7));
	}
	struct agg *agg = agg_create();
	struct scan_stats st;
	assert_int_equal(scan_bytes(&b, agg, &st), 0);
	assert_int_equal(st.lines, b.n);
	assert_int_equal(st.events, 0);
	const struct scan_range skip[] = {{3, b.n - 5}};
	assert_int_equal(scan_with(&b, (struct scan_opts){.skip = skip, .nskip = 1}, agg, &st), 0);
	assert_int_equal(st.lines, b.n);
	assert_int_equal(st.skipped_lines, b.n - 8);
	assert_int_equal(st.skipped_bytes, b.n - 8);
	agg_destroy(agg);
	free(b.p);
}

/* Appends a gzip member of in[0..n) to b. */
static void put_gzip(struct buf *b, const char *in, size_t n)
{
	z_stream z = {0};
	size_t cap = n + n / 2 + 1024;
	char *out = malloc(cap);
	assert_non_null(out);
	assert_int_equal(deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	put(b, out, z.total_out);
	deflateEnd(&z);
	free(out);
}

/*
 * max_keys is checked after each piece rather than each event: the verdict must stay exact,
 * one row over the bound is too many, the bound itself is not.
 */
static void max_keys_exact(void **state)
{
	struct buf b = {0};
	char line[512];
	for (int i = 0; i < 5000; i++) {
		int n = snprintf(
			line, sizeof(line),
			"Jan 28 21:32:14 mx1 smtp: 1390973534.709575 CHKUSER relaying rcpt: "
			"from <a@b.example:a@b.example:> remote <h:unknown:192.0.2.1> rcpt "
			"<x@d%d.example> : client allowed to relay\n",
			i);
		put(&b, line, (size_t)n);
	}
	struct agg *agg = agg_create();
	struct scan_stats st;
	/* 5000 relay rows and one event row. */
	const size_t bounds[] = {5001, 5000, 100};
	const int want[] = {0, SCAN_TOO_MANY_KEYS, SCAN_TOO_MANY_KEYS};
	for (int k = 0; k < 3; k++) {
		assert_int_equal(scan_with(&b, (struct scan_opts){.max_keys = bounds[k]}, agg, &st),
				 want[k]);
		if (want[k] == 0) {
			/* The premise the bounds are chosen by: any other count, and they test
			 * less. */
			assert_int_equal(agg_rows_total(agg), 5001);
		}
	}
	/*
	 * As one gzip member (one block) with a wrong CRC: refused for the CRC, as when zlib
	 * checked it while inflating and the block never reached the scan.
	 */
	struct buf g = {0};
	char held[256];
	put_gzip(&g, b.p, b.n);
	const struct scan_opts few = {.max_keys = 100};
	assert_int_equal(scan_with(&g, few, agg, &st), SCAN_TOO_MANY_KEYS);
	g.p[g.n - 8] ^= 0x01;
	log_hold();
	assert_int_equal(scan_with(&g, few, agg, &st), SCAN_BAD_INPUT);
	assert_true(log_release(held, sizeof(held)));
	assert_non_null(strstr(held, ": corrupt gzip data (incorrect data check)"));
	agg_destroy(agg);
	free(b.p);
	free(g.p);
}

/*
 * The scan finds "CHKUSER " and counts newlines in one vector pass over pieces of each block: a
 * marker cut by a piece's or a block's edge, one in a line's last bytes, two in one line, and
 * near-misses ('C' with ' ' seven bytes on) must all come out as a line-by-line reading says.
 */
static void finds_like_line_by_line(void **state)
{
	static const char *const parts[] = {
		"CHKUSER ",
		"CHKUSER",
		"C      ",
		"CHKUSEr ",
		"C",
		" ",
		"x",
		"\n",
		"\r\n",
		"1390973534.709575 ",
		relay,
		noise,
		broken,
		"CHKUSER relaying rcpt: from <a::> remote <h:u:192.0.2.9> rcpt <b@c> : client "
		"allowed to relay CHKUSER \n",
	};
	const size_t nparts = sizeof(parts) / sizeof(parts[0]);
	struct agg *agg = agg_create();
	unsigned seed = 12;
	for (int round = 0; round < 4; round++) {
		struct buf b = {0};
		/*
		 * At the first piece's edge, then at the first block's: a short CHKUSER line
		 * whose '\n' is the edge's last byte (it lies in the few bytes after the last
		 * whole vector), or a relay line cut by the edge.
		 */
		size_t edge = round < 2 ? 128 * 1024 : 2 * 1024 * 1024;
		const char *at_edge = round % 2 ? relay : "CHKUSER a\n";
		size_t before = round % 2 ? 50 : strlen(at_edge);
		while (b.n < edge - 200) {
			put(&b, noise, sizeof(noise) - 1);
		}
		put(&b, "\n", 1);
		while (b.n < edge - before - 1) {
			put(&b, "x", 1);
		}
		put(&b, "\n", 1);
		put(&b, at_edge, strlen(at_edge));
		/* Then a random mix, to a bit past the second block. */
		while (b.n < 4 * 1024 * 1024 + 300000) {
			seed = seed * 1103515245 + 12345;
			const char *part = parts[(seed >> 16) % nparts];
			put(&b, part, strlen(part));
		}
		if (round % 2) {
			/* The content ends in a marker, without a '\n'. */
			put(&b, "CHKUSER ", 8);
		}
		uint64_t lines, events, malformed;
		naive_scan_count(b.p, b.n, &lines, &events, &malformed);
		struct scan_stats st;
		assert_int_equal(scan_bytes(&b, agg, &st), 0);
		assert_true(events > 1000);
		assert_int_equal(st.lines, lines);
		assert_int_equal(st.events, events);
		assert_int_equal(st.malformed, malformed);
		free(b.p);
	}
	agg_destroy(agg);
}

/*
 * A gzip stream cut short is bad input, told apart from a failure of the process; held, the
 * reader's reason is the caller's to print (drain puts it into its one quarantine line).
 */
static void truncated_gzip(void **state)
{
	static const char head[] = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03";
	struct buf b = {0};
	put(&b, head, sizeof(head) - 1);
	struct agg *agg = agg_create();
	struct scan_stats st;
	char why[256];
	log_hold();
	assert_int_equal(scan_bytes(&b, agg, &st), SCAN_BAD_INPUT);
	assert_true(log_release(why, sizeof(why)));
	assert_non_null(strstr(why, "truncated gzip data"));
	assert_false(log_release(why, sizeof(why)));
	agg_destroy(agg);
	free(b.p);
}

/* b is bad input, and the first thing said of it is the reader's "/tmp/rw-scan-XXXXXX: why". */
static void refused_as(const struct buf *b, struct agg *agg, const char *why)
{
	char held[256], want[256];
	struct scan_stats st;
	log_hold();
	assert_int_equal(scan_bytes(b, agg, &st), SCAN_BAD_INPUT);
	assert_true(log_release(held, sizeof(held)));
	snprintf(want, sizeof(want), "/tmp/rw-scan-%.6s: %s", held + 13, why);
	assert_string_equal(held, want);
}

/*
 * The scan checks each gzip member's CRC-32 itself (zlib only inflates): members of 2 MiB (a
 * scan block: it ends at a block's edge), of a few lines and empty are counted, and a wrong CRC
 * in any of their trailers is bad input, said as zlib says it, in the reader's name. Whatever
 * else is wrong after a wrong CRC (the reading thread is ahead of the checking one), or in the
 * same trailer's length (wrong or cut short), zlib stops at the CRC; a wrong or cut length alone
 * is said as zlib says it.
 */
static void gzip_member_crc(void **state)
{
	const size_t big = 2 * 1024 * 1024;
	struct buf text = {0}, one = {0};
	while (text.n + sizeof(relay) - 1 <= big - 64) {
		put(&text, relay, sizeof(relay) - 1);
	}
	unsigned long events = text.n / (sizeof(relay) - 1);
	while (text.n < big - 1) {
		put(&text, "x", 1);
	}
	put(&text, "\n", 1);
	put(&one, relay, sizeof(relay) - 1);
	put(&one, relay, sizeof(relay) - 1);
	struct buf b = {0};
	size_t ends[3];
	put_gzip(&b, text.p, text.n);
	ends[0] = b.n;
	put_gzip(&b, one.p, one.n);
	ends[1] = b.n;
	put_gzip(&b, "", 0);
	ends[2] = b.n;
	struct agg *agg = agg_create();
	struct scan_stats st;
	assert_int_equal(scan_bytes(&b, agg, &st), 0);
	assert_int_equal(st.events, events + 2);
	assert_int_equal(st.bytes, big + one.n);
	for (int i = 0; i < 3; i++) {
		b.p[ends[i] - 8] ^= 0x01; /* the CRC's first byte */
		refused_as(&b, agg, "corrupt gzip data (incorrect data check)");
		b.p[ends[i] - 4] ^= 0x01; /* and the length's */
		refused_as(&b, agg, "corrupt gzip data (incorrect data check)");
		b.p[ends[i] - 8] ^= 0x01;
		refused_as(&b, agg, "corrupt gzip data (incorrect length check)");
		b.p[ends[i] - 4] ^= 0x01;
	}
	/* The second member's length cut short: truncated; with its CRC wrong too, the CRC. */
	struct buf cut = b;
	cut.n = ends[1] - 2;
	refused_as(&cut, agg, "truncated gzip data (unexpected end of file)");
	b.p[ends[1] - 8] ^= 0x01;
	refused_as(&cut, agg, "corrupt gzip data (incorrect data check)");
	b.p[ends[1] - 8] ^= 0x01;
	/* A wrong CRC in the 2 MiB member, then garbage after the last one. */
	b.p[ends[0] - 8] ^= 0x01;
	put(&b, "garbage", 7);
	refused_as(&b, agg, "corrupt gzip data (incorrect data check)");
	b.p[ends[0] - 8] ^= 0x01;
	refused_as(&b, agg, "trailing garbage after gzip data");
	agg_destroy(agg);
	free(text.p);
	free(one.p);
	free(b.p);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(only_newlines),  cmocka_unit_test(counts),
	cmocka_unit_test(skip_ranges),    cmocka_unit_test(last_line_without_newline),
	cmocka_unit_test(overlong_lines), cmocka_unit_test(crlf_and_multilog_host),
	cmocka_unit_test(truncated_gzip), cmocka_unit_test(finds_like_line_by_line),
	cmocka_unit_test(max_keys_exact), cmocka_unit_test(gzip_member_crc),
};

UNIT_MAIN("test_scan", tests)
