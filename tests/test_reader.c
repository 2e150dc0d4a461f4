#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "unit.h"

#include "log.h"
#include "reader.h"

/* Writes data to a fresh temporary file and returns its path (static buffer). */
static const char *tmpfile_with(const void *data, size_t n)
{
	static char path[64];
	strcpy(path, "/tmp/rw-reader-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
	return path;
}

/* gzip of in[0..n) with a header of extra_len bytes of FEXTRA (0: none) and FHCRC or not. */
static size_t gzip_header_buf(const void *in, size_t n, unsigned char *out, size_t cap,
			      unsigned extra_len, bool hcrc)
{
	static unsigned char extra[65535];
	gz_header head = {.extra = extra, .extra_len = extra_len, .hcrc = hcrc, .os = 3};
	z_stream z = {0};
	assert_int_equal(deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
	if (extra_len > 0 || hcrc) {
		if (extra_len == 0) {
			head.extra = NULL;
		}
		assert_int_equal(deflateSetHeader(&z, &head), Z_OK);
	}
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	size_t len = z.total_out;
	deflateEnd(&z);
	return len;
}

static size_t gzip_buf(const void *in, size_t n, unsigned char *out, size_t cap)
{
	return gzip_header_buf(in, n, out, cap, 0, false);
}

/*
 * Reads path to its end, at most step bytes a read (0: as many as fit), and removes it; the
 * content's length, or -1 on a reader error.
 */
static ssize_t slurp_by(const char *path, char *out, size_t cap, size_t step)
{
	struct reader *r = reader_open(path);
	assert_non_null(r);
	size_t len = 0;
	ssize_t n;
	while ((n = reader_read(r, out + len, step && cap - len > step ? step : cap - len)) > 0) {
		len += (size_t)n;
	}
	reader_destroy(r);
	unlink(path);
	return n < 0 ? -1 : (ssize_t)len;
}

/*
 * As slurp_by, with the CRCs deferred and checked here as the scan checks them: a member's end
 * must end a read and bring zlib's CRC-32 of that member's content; reading stops at a wrong
 * one, and a failure of the reader is logged only when no CRC before it was wrong. The content's
 * length, or -1 on a reader error or a wrong CRC; *members counts the member ends.
 */
static ssize_t slurp_deferred(const char *path, char *out, size_t cap, size_t step,
			      unsigned *members)
{
	struct reader *r = reader_open(path);
	assert_non_null(r);
	reader_defer_crc(r);
	size_t len = 0, from = 0;
	ssize_t n;
	uint32_t crc;
	bool bad = false;
	*members = 0;
	for (;;) {
		n = reader_read(r, out + len, step && cap - len > step ? step : cap - len);
		bool end = n >= 0 && reader_member_end(r, &crc);
		if (n < 0 || (n == 0 && !end)) {
			break;
		}
		len += (size_t)n;
		if (end) {
			bad = !reader_crc_ok(
				r, crc,
				(uint32_t)crc32_z(0, (const Bytef *)out + from, len - from));
			if (bad) {
				break;
			}
			from = len;
			++*members;
		}
	}
	if (n < 0) {
		reader_log_failure(r);
	}
	reader_destroy(r);
	unlink(path);
	return n < 0 || bad ? -1 : (ssize_t)len;
}

/* The first error logged since log_hold(), after the reader's name (a temporary path). */
static void said_since_hold(char *said, size_t size)
{
	char held[512];
	const size_t name = strlen("/tmp/rw-reader-XXXXXX");
	said[0] = '\0';
	if (log_release(held, sizeof(held))) {
		assert_true(strlen(held) > name);
		snprintf(said, size, "%s", held + name);
	}
}

/*
 * gz[0..n) read as zlib checks it (slurp_by) and with the CRCs deferred (slurp_deferred): both
 * must give the same length or -1, the same content and the same error. The length, or -1.
 */
static ssize_t slurp_both(const void *gz, size_t n, char *out, size_t cap, size_t step,
			  unsigned *members)
{
	char *again = malloc(cap);
	char said[2][512];
	assert_non_null(again);
	log_hold();
	ssize_t a = slurp_by(tmpfile_with(gz, n), out, cap, step);
	said_since_hold(said[0], sizeof(said[0]));
	log_hold();
	ssize_t b = slurp_deferred(tmpfile_with(gz, n), again, cap, step, members);
	said_since_hold(said[1], sizeof(said[1]));
	assert_int_equal(a, b);
	if (a > 0) {
		assert_memory_equal(out, again, (size_t)a);
	}
	assert_string_equal(said[0], said[1]);
	assert_true(a < 0 ? said[0][0] != '\0' : said[0][0] == '\0');
	free(again);
	return a;
}

static void plain(void **state)
{
	char out[64];
	assert_int_equal(slurp_by(tmpfile_with("hello\nworld", 11), out, sizeof(out), 7), 11);
	assert_memory_equal(out, "hello\nworld", 11);
	assert_int_equal(slurp_by(tmpfile_with("", 0), out, sizeof(out), 7), 0);
	/* One byte that starts like gzip is still a plain file. */
	assert_int_equal(slurp_by(tmpfile_with("\x1f", 1), out, sizeof(out), 7), 1);
}

static void gzip_multi_member(void **state)
{
	unsigned char gz[512];
	size_t a = gzip_buf("first\n", 6, gz, sizeof(gz));
	size_t b = gzip_buf("second\n", 7, gz + a, sizeof(gz) - a);
	char out[64];
	assert_int_equal(slurp_by(tmpfile_with(gz, a + b), out, sizeof(out), 7), 13);
	assert_memory_equal(out, "first\nsecond\n", 13);
}

/* With CRCs deferred: a read never crosses a member's end, empty members included. */
static void deferred_members(void **state)
{
	unsigned char gz[512];
	size_t a = gzip_buf("first\n", 6, gz, sizeof(gz));
	a += gzip_buf("", 0, gz + a, sizeof(gz) - a);
	a += gzip_buf("second\n", 7, gz + a, sizeof(gz) - a);
	char out[64];
	unsigned members;
	for (size_t step = 0; step < 9; step += 4) {
		assert_int_equal(
			slurp_deferred(tmpfile_with(gz, a), out, sizeof(out), step, &members), 13);
		assert_memory_equal(out, "first\nsecond\n", 13);
		assert_int_equal(members, 3);
	}
	/* A plain file has no members; and skipping would leave CRCs unchecked. */
	assert_int_equal(slurp_deferred(tmpfile_with("plain\n", 6), out, sizeof(out), 0, &members),
			 6);
	assert_int_equal(members, 0);
	struct reader *r = reader_open(tmpfile_with(gz, a));
	reader_defer_crc(r);
	assert_int_equal(reader_skip(r, 2), READER_SKIP_ERROR);
	reader_destroy(r);
}

static void gzip_corrupt(void **state)
{
	char text[4096];
	for (size_t i = 0; i < sizeof(text); i++) {
		text[i] = (char)('a' + (i * 7919) % 26);
	}
	unsigned char gz[8192];
	size_t n = gzip_buf(text, sizeof(text), gz, sizeof(gz));
	char out[8192];
	unsigned members;
	gz[n / 2] ^= 0x55;
	assert_int_equal(slurp_both(gz, n, out, sizeof(out), 7, &members), -1);
}

static void gzip_truncated(void **state)
{
	unsigned char gz[512];
	size_t n = gzip_buf("some text that will be cut\n", 27, gz, sizeof(gz));
	char out[64];
	unsigned members;
	for (size_t cut = 2; cut < n; cut++) {
		assert_int_equal(slurp_both(gz, cut, out, sizeof(out), 7, &members), -1);
	}
	/* With a wrong CRC: once it is in, zlib says it is wrong, not that the length is cut. */
	assert_in_range(n, 18, sizeof(gz));
	if (n >= 18) {
		gz[n - 8] ^= 0x01;
	}
	for (size_t cut = 2; cut < n; cut++) {
		assert_int_equal(slurp_both(gz, cut, out, sizeof(out), 7, &members), -1);
	}
}

static void gzip_trailing_garbage(void **state)
{
	unsigned char gz[512];
	size_t n = gzip_buf("text\n", 5, gz, sizeof(gz));
	memcpy(gz + n, "junk", 4);
	char out[64];
	unsigned members;
	assert_int_equal(slurp_both(gz, n + 4, out, sizeof(out), 7, &members), -1);
	assert_int_equal(members, 1);
}

static void skip_ahead(void **state)
{
	unsigned char gz[512];
	size_t n = gzip_buf("0123456789\n", 11, gz, sizeof(gz));
	const char *path = tmpfile_with(gz, n);
	struct reader *r = reader_open(path);
	char out[16];
	assert_int_equal(reader_skip(r, 4), READER_SKIP_OK);
	assert_int_equal(reader_read(r, out, sizeof(out)), 7);
	assert_memory_equal(out, "456789\n", 7);
	assert_true(reader_is_gzip(r));
	reader_destroy(r);
	/* Content that ends before the skip is a result, not an error. */
	r = reader_open(path);
	assert_int_equal(reader_skip(r, 12), READER_SKIP_SHORT);
	reader_destroy(r);
	unlink(path);
}

/*
 * With CRCs deferred the reader checks a member's length and reports its CRC-32 itself, from
 * the trailer bytes inflate consumed: a trailer cut by the edge of the reader's 256 kB input
 * buffer at every byte, a member after it, a wrong CRC or length, and a header with its own CRC
 * (which zlib checks) must all read as zlib alone reads them.
 */
static void gzip_checks(void **state)
{
	const size_t n = 200 * 1024, in_size = 256 * 1024;
	unsigned members;
	char *text = malloc(n), *out = malloc(2 * n);
	unsigned char *gz = malloc(2 * in_size);
	assert_non_null(text);
	assert_non_null(out);
	assert_non_null(gz);
	unsigned seed = 5;
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245 + 12345;
		text[i] = (char)(seed >> 16);
	}
	/* The FEXTRA field moves the member's end byte by byte: its trailer ends at edge + k. */
	size_t bare = gzip_header_buf(text, n, gz, 2 * in_size, 1, false) - 1;
	for (size_t k = 1; k <= 8; k++) {
		size_t a = gzip_header_buf(text, n, gz, 2 * in_size, (unsigned)(in_size + k - bare),
					   false);
		assert_int_equal(a, in_size + k);
		size_t b = gzip_buf("after\n", 6, gz + a, 2 * in_size - a);
		assert_int_equal(slurp_both(gz, a + b, out, 2 * n, 0, &members), n + 6);
		assert_memory_equal(out, text, n);
		assert_memory_equal(out + n, "after\n", 6);
		assert_int_equal(members, 2);
		/* A byte of the CRC, then of the length, flipped; then both. */
		gz[a - 8 + k - 1] ^= 0x01;
		assert_int_equal(slurp_both(gz, a + b, out, 2 * n, 0, &members), -1);
		gz[a - 8 + (k + 3) % 8] ^= 0x01;
		assert_int_equal(slurp_both(gz, a + b, out, 2 * n, 0, &members), -1);
		gz[a - 8 + (k + 3) % 8] ^= 0x01;
		gz[a - 8 + k - 1] ^= 0x01;
	}
	/* A header with its own CRC (left to zlib whole): right, then wrong, in data or header. */
	size_t h = gzip_header_buf(text, 1000, gz, 2 * in_size, 0, true);
	assert_int_equal(slurp_both(gz, h, out, 2 * n, 0, &members), 1000);
	assert_int_equal(members, 1);
	assert_true(gz[3] & 0x02);
	gz[h - 8] ^= 0x01;
	assert_int_equal(slurp_both(gz, h, out, 2 * n, 0, &members), -1);
	gz[h - 8] ^= 0x01;
	gz[10] ^= 0x01;
	assert_int_equal(slurp_both(gz, h, out, 2 * n, 0, &members), -1);
	free(text);
	free(out);
	free(gz);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(plain),
	cmocka_unit_test(gzip_multi_member),
	cmocka_unit_test(deferred_members),
	cmocka_unit_test(gzip_corrupt),
	cmocka_unit_test(gzip_truncated),
	cmocka_unit_test(gzip_trailing_garbage),
	cmocka_unit_test(skip_ahead),
	cmocka_unit_test(gzip_checks),
};

UNIT_MAIN("test_reader", tests)
