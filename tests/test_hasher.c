#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "digest.h"
#include "hasher.h"
#include "log.h"

/*
 * Slices of every size, small ones hashed in the caller's thread and large ones by the hashing
 * thread, interleaved: the SHA-256 and the line count are those of the bytes in order, and a
 * final starts the next chunk anew.
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
	struct digest *d = digest_create();
	assert_non_null(d);
	digest_update(d, buf, total);
	digest_final(d, want);

	struct hasher *h = hasher_create();
	assert_non_null(h);
	for (int round = 0; round < 2; round++) {
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

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(slices_in_order),
	};
	log_init("test_hasher", LOG_ERROR);
	if (argc > 1) {
		cmocka_set_test_filter(argv[1]);
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
