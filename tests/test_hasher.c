#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "digest.h"
#include "hasher.h"
#include "log.h"

/*
 * Slices of every size, small ones hashed in the caller's thread and large ones by the hashing
 * thread, interleaved: the SHA-256 and the line count are those of the bytes in order, and a
 * final starts the next chunk anew. The same without the thread (a dry run's hasher).
 */
static void slices_in_order(void **unused)
{
	static const size_t sizes[] = {1, 100, 16 * 1024 - 1, 16 * 1024, 200000, 3, 70000, 0, 5};
	size_t total = 0;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		total += sizes[i];
	}
	unsigned char *buf = malloc(total);
	assert_non_null(buf);
	uint64_t want_lines = 0;
	for (size_t i = 0; i < total; i++) {
		buf[i] = (unsigned char)(i * 7919 % 251);
		want_lines += buf[i] == '\n';
	}
	uint8_t want[DIGEST_LEN], got[DIGEST_LEN];
	struct hasher *h = NULL;
	struct digest *d = digest_create();
	assert_non_null(d);
	digest_update(d, buf, total);
	digest_final(d, want);

	for (int round = 0; round < 4; round++) {
		/* Each hasher for two chunks: threaded, then not. */
		if (round % 2 == 0) {
			hasher_destroy(h);
			assert_non_null(h = hasher_create(round == 0));
		}
		uint64_t lines = 0;
		size_t at = 0;
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			hasher_post(h, buf + at, sizes[i]);
			lines += hasher_wait(h);
			at += sizes[i];
		}
		assert_int_equal(hasher_wait(h), 0); /* nothing in flight */
		hasher_final(h, got);
		assert_memory_equal(got, want, DIGEST_LEN);
		assert_int_equal(lines, want_lines);
	}
	hasher_destroy(h);
	hasher_destroy(NULL);
	digest_destroy(d);
	free(buf);
}

/*
 * Two slices in flight at the same moment, one in each of two hashers (one hasher takes one
 * slice at a time), while the caller hashes the same bytes itself: each hasher's SHA-256 and line
 * count are those of its own bytes, so the hashing threads share no state with each other or the
 * caller.
 */
static void two_slices_in_flight(void **unused)
{
	enum { SLICE = 1 << 20, SLICES = 3 };
	unsigned char *buf = malloc(2 * SLICE);
	assert_non_null(buf);
	uint64_t want_lines[2] = {0, 0};
	for (size_t i = 0; i < 2 * SLICE; i++) {
		/* Different bytes in each half: a crossed slice changes both digests. */
		buf[i] = (unsigned char)(i < SLICE ? i * 7919 % 251 : i * 31 % 257);
		want_lines[i >= SLICE] += buf[i] == '\n';
	}
	struct hasher *h[2];
	struct digest *d[2];
	for (int k = 0; k < 2; k++) {
		assert_non_null(h[k] = hasher_create(true));
		assert_non_null(d[k] = digest_create());
	}
	uint64_t lines[2] = {0, 0};
	for (int s = 0; s < SLICES; s++) {
		hasher_post(h[0], buf, SLICE);
		hasher_post(h[1], buf + SLICE, SLICE);
		/* The caller's own work meanwhile (where the producer deflates): the expected
		 * digests. */
		digest_update(d[0], buf, SLICE);
		digest_update(d[1], buf + SLICE, SLICE);
		/* Waited for in the other order than posted. */
		lines[1] += hasher_wait(h[1]);
		lines[0] += hasher_wait(h[0]);
	}
	for (int k = 0; k < 2; k++) {
		uint8_t want[DIGEST_LEN], got[DIGEST_LEN];
		digest_final(d[k], want);
		hasher_final(h[k], got);
		assert_memory_equal(got, want, DIGEST_LEN);
		assert_int_equal(lines[k], SLICES * want_lines[k]);
		hasher_destroy(h[k]);
		digest_destroy(d[k]);
	}
	free(buf);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(slices_in_order),
	cmocka_unit_test(two_slices_in_flight),
};

UNIT_MAIN("test_hasher", tests)
