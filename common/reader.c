#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "log.h"
#include "reader.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define READER_FAST_CRC 1
#endif

#define READER_IN_SIZE (256 * 1024)

enum reader_state {
	READER_START,  /* nothing read yet */
	READER_PLAIN,  /* plain file: inbuf holds its first bytes */
	READER_MEMBER, /* inside a gzip member */
	READER_GAP,    /* after a member: another one, or the end */
	READER_EOF,
	READER_FAILED,
};

struct reader {
	int fd;
	char *name;
	enum reader_state state;
	bool gzip;
	bool in_eof;
	bool zinit;
	bool local; /* the failure is this process's (I/O error, no memory), not the data's */
	off_t raw;
	z_stream z;
	unsigned char *in;
	size_t in_pos, in_len;
	/*
	 * The member's CRC-32 and length are checked here rather than by zlib (own_check): see
	 * member_begin. tail holds the last 8 input bytes inflate consumed: at the end of a
	 * member, its trailer.
	 */
	bool own_check;
	uint32_t crc, isize;
	unsigned char tail[8];
};

#ifdef READER_FAST_CRC
/*
 * CRC-32 (gzip's) of n bytes, n >= 64 and a multiple of 16, from crc (pre-inverted), folding 64
 * bytes a step with carry-less multiplies: about 2.5 times zlib 1.2's crc32_z. The algorithm and
 * constants are Intel's "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ" (as in
 * Chromium's zlib, crc32_simd.c), for the bit-reflected polynomial 0xedb88320.
 */
__attribute__((target("pclmul,sse4.1"))) static uint32_t crc_fold(const unsigned char *buf,
								  size_t n, uint32_t crc)
{
	const __m128i k1k2 = _mm_set_epi64x(0x01c6e41596, 0x0154442bd4);
	const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009e, 0x01751997d0);
	const __m128i k5k0 = _mm_set_epi64x(0, 0x0163cd6124);
	const __m128i poly = _mm_set_epi64x(0x01f7011641, 0x01db710641);
	const __m128i low32 = _mm_setr_epi32(~0, 0, ~0, 0);
	__m128i x[4], t;

	for (int i = 0; i < 4; i++) {
		x[i] = _mm_loadu_si128((const __m128i *)(const void *)(buf + 16 * i));
	}
	x[0] = _mm_xor_si128(x[0], _mm_cvtsi32_si128((int)crc));
	buf += 64;
	n -= 64;
	/* Four lanes of 128 bits, each folded 512 bits forward onto the next 64 bytes. */
	for (; n >= 64; buf += 64, n -= 64) {
		for (int i = 0; i < 4; i++) {
			t = _mm_clmulepi64_si128(x[i], k1k2, 0x00);
			x[i] = _mm_clmulepi64_si128(x[i], k1k2, 0x11);
			x[i] = _mm_xor_si128(
				_mm_xor_si128(x[i], t),
				_mm_loadu_si128((const __m128i *)(const void *)(buf + 16 * i)));
		}
	}
	/* The four lanes into one, then the remaining 16-byte blocks onto it. */
	__m128i acc = x[0];
	for (int i = 1; i < 4; i++) {
		t = _mm_clmulepi64_si128(acc, k3k4, 0x00);
		acc = _mm_clmulepi64_si128(acc, k3k4, 0x11);
		acc = _mm_xor_si128(_mm_xor_si128(acc, x[i]), t);
	}
	for (; n >= 16; buf += 16, n -= 16) {
		t = _mm_clmulepi64_si128(acc, k3k4, 0x00);
		acc = _mm_clmulepi64_si128(acc, k3k4, 0x11);
		acc = _mm_xor_si128(
			_mm_xor_si128(acc, _mm_loadu_si128((const __m128i *)(const void *)buf)), t);
	}
	/* 128 bits to 64, then Barrett reduction to 32. */
	t = _mm_clmulepi64_si128(acc, k3k4, 0x10);
	acc = _mm_xor_si128(_mm_srli_si128(acc, 8), t);
	t = _mm_srli_si128(acc, 4);
	acc = _mm_clmulepi64_si128(_mm_and_si128(acc, low32), k5k0, 0x00);
	acc = _mm_xor_si128(acc, t);
	t = _mm_clmulepi64_si128(_mm_and_si128(acc, low32), poly, 0x10);
	t = _mm_clmulepi64_si128(_mm_and_si128(t, low32), poly, 0x00);
	acc = _mm_xor_si128(acc, t);
	return (uint32_t)_mm_extract_epi32(acc, 1);
}

/* Asked at each member (a read of libgcc's CPU model, set up before main): no shared state. */
static bool crc_fast(void)
{
	return __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
}
#else
static bool crc_fast(void)
{
	return false;
}
#endif

/* The CRC-32 of p[0..n) continued from crc (as zlib's crc32 counts it). */
static uint32_t crc_update(uint32_t crc, const unsigned char *p, size_t n)
{
#ifdef READER_FAST_CRC
	if (n >= 64) {
		size_t m = n & ~(size_t)15;
		crc = ~crc_fold(p, m, ~crc);
		p += m;
		n -= m;
	}
#endif
	return (uint32_t)crc32_z(crc, p, n);
}

struct reader *reader_fdopen(int fd, const char *name)
{
	struct reader *r = calloc(1, sizeof(*r));
	if (!r || !(r->name = strdup(name)) || !(r->in = malloc(READER_IN_SIZE))) {
		log_error("out of memory");
		reader_destroy(r);
		close(fd);
		return NULL;
	}
	r->fd = fd;
	return r;
}

struct reader *reader_open(const char *path)
{
	if (strcmp(path, "-") == 0) {
		int fd = dup(STDIN_FILENO);
		if (fd < 0) {
			log_error("stdin: %s", strerror(errno));
			return NULL;
		}
		return reader_fdopen(fd, "-");
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		log_error("%s: %s", path, strerror(errno));
		return NULL;
	}
	return reader_fdopen(fd, path);
}

void reader_destroy(struct reader *r)
{
	if (!r) {
		return;
	}
	if (r->zinit) {
		inflateEnd(&r->z);
	}
	if (r->fd >= 0) {
		close(r->fd);
	}
	free(r->in);
	free(r->name);
	free(r);
}

bool reader_failed_locally(const struct reader *r)
{
	return r->local;
}

bool reader_is_gzip(const struct reader *r)
{
	return r->gzip;
}

off_t reader_raw_offset(const struct reader *r)
{
	return r->raw;
}

int reader_fd(const struct reader *r)
{
	return r->fd;
}

static ssize_t read_full(struct reader *r, void *buf, size_t cap)
{
	for (;;) {
		ssize_t n = read(r->fd, buf, cap);
		if (n >= 0) {
			r->raw += n;
			return n;
		}
		if (errno != EINTR) {
			log_error("%s: %s", r->name, strerror(errno));
			r->local = true;
			return -1;
		}
	}
}

/* Makes at least one more input byte available in r->in. 1 yes, 0 at end of file, -1 error. */
static int fill(struct reader *r)
{
	if (r->in_pos < r->in_len) {
		return 1;
	}
	if (r->in_eof) {
		return 0;
	}
	ssize_t n = read_full(r, r->in, READER_IN_SIZE);
	if (n < 0) {
		return -1;
	}
	r->in_pos = 0;
	r->in_len = (size_t)n;
	if (n == 0) {
		r->in_eof = true;
	}
	return n > 0;
}

static int fail(struct reader *r, const char *why)
{
	log_error("%s: %s", r->name, why);
	r->state = READER_FAILED;
	return -1;
}

/*
 * At the start of a gzip member (r->in[r->in_pos] is its first byte): zlib's crc32 was a twentieth
 * of the scan's time, so the member's CRC-32 and length are checked here, with the faster CRC,
 * unless that is not available, or the header carries its own CRC (FHCRC), which only zlib
 * checks, or the header's flags are not in the buffer yet: then zlib checks it all, as before.
 */
static void member_begin(struct reader *r)
{
	r->own_check = crc_fast() && r->in_len - r->in_pos >= 4 && !(r->in[r->in_pos + 3] & 0x02);
	inflateValidate(&r->z, !r->own_check);
	r->crc = 0;
	r->isize = 0;
}

/* Remembers the last 8 input bytes inflate consumed, p[0..n). */
static void tail_keep(struct reader *r, const unsigned char *p, size_t n)
{
	if (n >= sizeof(r->tail)) {
		memcpy(r->tail, p + n - sizeof(r->tail), sizeof(r->tail));
	} else if (n > 0) {
		memmove(r->tail, r->tail + n, sizeof(r->tail) - n);
		memcpy(r->tail + sizeof(r->tail) - n, p, n);
	}
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int start(struct reader *r)
{
	/* Two bytes decide: a one-byte file is plain. */
	while (r->in_len < 2 && !r->in_eof) {
		ssize_t n = read_full(r, r->in + r->in_len, READER_IN_SIZE - r->in_len);
		if (n < 0) {
			r->state = READER_FAILED;
			return -1;
		}
		if (n == 0) {
			r->in_eof = true;
		}
		r->in_len += (size_t)n;
	}
	if (r->in_len >= 2 && r->in[0] == 0x1f && r->in[1] == 0x8b) {
		/* 15 + 16: gzip wrapper only, with its CRC-32 and length checked by zlib. */
		if (inflateInit2(&r->z, 15 + 16) != Z_OK) {
			r->local = true;
			return fail(r, "cannot initialise zlib");
		}
		r->zinit = true;
		r->gzip = true;
		r->state = READER_MEMBER;
		member_begin(r);
	} else {
		r->state = READER_PLAIN;
	}
	return 0;
}

static ssize_t read_gzip(struct reader *r, unsigned char *out, size_t cap)
{
	r->z.next_out = out;
	r->z.avail_out = (uInt)(cap > UINT32_MAX ? UINT32_MAX : cap);
	while (r->z.avail_out > 0) {
		int f = fill(r);
		if (f < 0) {
			r->state = READER_FAILED;
			return -1;
		}
		if (r->state == READER_GAP) {
			if (f == 0) {
				r->state = READER_EOF;
				break;
			}
			/* Concatenated members are one stream; anything else is damage. */
			if (r->in[r->in_pos] != 0x1f) {
				return fail(r, "trailing garbage after gzip data");
			}
			inflateReset(&r->z);
			r->state = READER_MEMBER;
			member_begin(r);
		}
		if (f == 0) {
			return fail(r, "truncated gzip data (unexpected end of file)");
		}
		unsigned char *from = r->z.next_out;
		r->z.next_in = r->in + r->in_pos;
		r->z.avail_in = (uInt)(r->in_len - r->in_pos);
		int z = inflate(&r->z, Z_NO_FLUSH);
		size_t used = r->in_len - r->z.avail_in - r->in_pos;
		tail_keep(r, r->in + r->in_pos, used);
		r->in_pos += used;
		if (r->own_check) {
			size_t made = (size_t)(r->z.next_out - from);
			r->crc = crc_update(r->crc, from, made);
			r->isize += (uint32_t)made;
		}
		if (z == Z_STREAM_END) {
			/* The trailer: CRC-32 and length (mod 2^32), little-endian. */
			if (r->own_check && le32(r->tail) != r->crc) {
				return fail(r, "corrupt gzip data (incorrect data check)");
			}
			if (r->own_check && le32(r->tail + 4) != r->isize) {
				return fail(r, "corrupt gzip data (incorrect length check)");
			}
			r->state = READER_GAP;
		} else if (z == Z_DATA_ERROR || z == Z_NEED_DICT) {
			char why[256];
			snprintf(why, sizeof(why), "corrupt gzip data (%s)",
				 r->z.msg ? r->z.msg : "data error");
			return fail(r, why);
		} else if (z == Z_MEM_ERROR) {
			r->local = true;
			return fail(r, "out of memory in zlib");
		} else if (z == Z_BUF_ERROR && r->z.avail_out > 0 && r->z.avail_in > 0) {
			return fail(r, "zlib made no progress");
		}
	}
	return (ssize_t)((size_t)(r->z.next_out - out));
}

ssize_t reader_read(struct reader *r, void *buf, size_t cap)
{
	if (r->state == READER_START && start(r) != 0) {
		return -1;
	}
	switch (r->state) {
	case READER_PLAIN:
		if (r->in_pos < r->in_len) {
			size_t n = r->in_len - r->in_pos;
			n = n < cap ? n : cap;
			memcpy(buf, r->in + r->in_pos, n);
			r->in_pos += n;
			return (ssize_t)n;
		}
		return read_full(r, buf, cap);
	case READER_MEMBER:
	case READER_GAP:
		return read_gzip(r, buf, cap);
	case READER_EOF:
		return 0;
	default:
		return -1;
	}
}

enum reader_skip_result reader_skip(struct reader *r, off_t n)
{
	if (r->state == READER_START && start(r) != 0) {
		return READER_SKIP_ERROR;
	}
	if (r->state == READER_PLAIN && r->in_pos == r->in_len && n > 0) {
		if (lseek(r->fd, n, SEEK_CUR) != (off_t)-1) {
			r->raw += n;
			return READER_SKIP_OK;
		}
	}
	char *scratch = malloc(READER_IN_SIZE);
	if (!scratch) {
		log_error("out of memory");
		return READER_SKIP_ERROR;
	}
	enum reader_skip_result ret = READER_SKIP_OK;
	while (n > 0) {
		size_t want = (off_t)READER_IN_SIZE < n ? READER_IN_SIZE : (size_t)n;
		ssize_t got = reader_read(r, scratch, want);
		if (got <= 0) {
			ret = got == 0 ? READER_SKIP_SHORT : READER_SKIP_ERROR;
			break;
		}
		n -= got;
	}
	free(scratch);
	return ret;
}
