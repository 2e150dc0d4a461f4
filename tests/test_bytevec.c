#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "bytevec.h"

/* Every length up to here, from every start offset below BYTEVEC_OFFSETS. */
#define BYTEVEC_LENGTHS 300
#define BYTEVEC_OFFSETS 32

static size_t naive_newlines(const unsigned char *p, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++) {
		c += p[i] == '\n';
	}
	return c;
}

/*
 * bytevec_newlines of src[0..n) from every start offset, each copy in an allocation that ends
 * with it so that ASan sees a read past the end, against the byte-by-byte count.
 */
static void check_length(const unsigned char *src, size_t n)
{
	for (size_t off = 0; off < BYTEVEC_OFFSETS; off++) {
		/* Not one byte more: ASan reports a read of b[off + n]. malloc(0) may be NULL. */
		unsigned char *b = malloc(off + n > 0 ? off + n : 1);
		assert_non_null(b);
		memset(b, '\n', off);
		memcpy(b + off, src, n);
		assert_int_equal(bytevec_newlines(b + off, n), naive_newlines(src, n));
		free(b);
	}
}

/*
 * Lengths 0..BYTEVEC_LENGTHS, then around the 255 vectors a byte lane counts before it is
 * summed (a lane of an all-newline run overflows there if the sum comes late) and far past it.
 */
static void check_lengths(unsigned char fill(size_t i))
{
	static const size_t longer[] = {
		255 * BYTEVEC_LEN - 1, 255 * BYTEVEC_LEN,         255 * BYTEVEC_LEN + 1,
		256 * BYTEVEC_LEN + 7, 2 * 255 * BYTEVEC_LEN + 3, 100003,
	};
	size_t max = longer[sizeof(longer) / sizeof(longer[0]) - 1];
	unsigned char *src = malloc(max);
	assert_non_null(src);
	for (size_t i = 0; i < max; i++) {
		src[i] = fill(i);
	}
	for (size_t n = 0; n <= BYTEVEC_LENGTHS; n++) {
		check_length(src, n);
	}
	for (size_t k = 0; k < sizeof(longer) / sizeof(longer[0]); k++) {
		check_length(src, longer[k]);
	}
	free(src);
}

/* Newlines among other bytes, '\n' - 1 and '\n' + 1 too, at no period of the vector width. */
static unsigned char fill_mixed(size_t i)
{
	static const unsigned char bytes[] = {'\n', 'a', '\n', '\n', 0x09, 0x0b, 0x8a, 0, 0xff};
	return bytes[(i * 7 + i / 13) % sizeof(bytes)];
}

static unsigned char fill_dense(size_t i)
{
	(void)i;
	return '\n';
}

static unsigned char fill_none(size_t i)
{
	return (unsigned char)(i % 256 == '\n' ? 'x' : i % 256);
}

static void mixed(void **state)
{
	(void)state;
	check_lengths(fill_mixed);
}

/* All '\n': every byte lane counts every vector. */
static void dense(void **state)
{
	(void)state;
	check_lengths(fill_dense);
}

static void none(void **state)
{
	(void)state;
	check_lengths(fill_none);
	assert_int_equal(bytevec_newlines(NULL, 0), 0);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(mixed),
	cmocka_unit_test(dense),
	cmocka_unit_test(none),
};

UNIT_MAIN("test_bytevec", tests)
