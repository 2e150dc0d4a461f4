#ifndef RELAYWATCH_BYTEVEC_H
#define RELAYWATCH_BYTEVEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/*
 * Bytes BYTEVEC_LEN at a time, for the loops that read every byte of a log: the ingester's scan
 * (which counts newlines and looks for "CHKUSER " in one pass) and the newline counts of both
 * programs. GCC's vector extensions compile to SSE2 on any x86-64 (and to NEON on arm64); a lane of
 * a comparison is all ones where it holds. The helpers are inline: they sit in the innermost loops.
 */
#define BYTEVEC_LEN 16
typedef unsigned char bytevec __attribute__((vector_size(BYTEVEC_LEN)));
typedef uint64_t bytevec64 __attribute__((vector_size(BYTEVEC_LEN)));

/* By pointer: were BYTEVEC_LEN 32, passing a vector by value without AVX would change the ABI. */
static inline void bytevec_load(bytevec *v, const void *p)
{
	memcpy(v, p, sizeof(*v));
}

/* Bit j set where byte j of *v is all ones (byte j of a comparison that holds). */
static inline unsigned bytevec_mask(const bytevec *v)
{
#ifdef __SSE2__
	return (unsigned)_mm_movemask_epi8((__m128i)*v);
#else
	unsigned m = 0;
	for (unsigned j = 0; j < BYTEVEC_LEN; j++) {
		m |= (unsigned)((*v)[j] >> 7) << j;
	}
	return m;
#endif
}

/* The sum of the bytes of *v (each up to 255). */
static inline size_t bytevec_sum(const bytevec *v)
{
	const uint64_t m16 = 0x00ff00ff00ff00ffULL;
	bytevec64 w = (bytevec64)*v;
	size_t c = 0;
	for (unsigned k = 0; k < BYTEVEC_LEN / 8; k++) {
		/* Pairs of bytes into 16-bit lanes (each at most 510), then their sum. */
		uint64_t x = (w[k] & m16) + ((w[k] >> 8) & m16);
		c += (size_t)((x * 0x0001000100010001ULL) >> 48);
	}
	return c;
}

/* The number of '\n' in p[0..n) (p may be NULL when n is 0). */
size_t bytevec_newlines(const void *p, size_t n);

#endif
