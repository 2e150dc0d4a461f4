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
	 * reader_defer_crc: each member's CRC-32 is the caller's to check. own_check: zlib checks
	 * neither this member's CRC nor its length (the reader checks the length); tail: the last
	 * 8 input bytes inflate consumed, at the end of a member its trailer. member_ended and
	 * member_crc: what reader_member_end reports once. failure: the failure's reason, kept for
	 * reader_log_failure.
	 */
	bool defer_crc, own_check, member_ended;
	uint32_t member_crc;
	unsigned char tail[8];
	char failure[256];
};

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

/* Logs "name: why", or with CRCs deferred keeps why for reader_log_failure. */
static void say(struct reader *r, const char *why)
{
	if (r->defer_crc) {
		snprintf(r->failure, sizeof(r->failure), "%s", why);
	} else {
		log_error("%s: %s", r->name, why);
	}
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
			say(r, strerror(errno));
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
	say(r, why);
	r->state = READER_FAILED;
	return -1;
}

/*
 * At the start of a gzip member, r->in[r->in_pos] its first byte. With its CRC deferred, zlib
 * checks neither the CRC nor the length: the length is checked here and the CRC by the caller.
 * A header with its own CRC (FHCRC), which zlib checks only together with the data's, or whose
 * flags are not in the buffer yet, is left to zlib whole: its CRC is then reported as zlib
 * computed it (and checked).
 */
static void member_begin(struct reader *r)
{
	r->own_check =
		r->defer_crc && r->in_len - r->in_pos >= 4 && (r->in[r->in_pos + 3] & 0x02) == 0;
	inflateValidate(&r->z, !r->own_check);
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

/*
 * A member has ended (its CRC deferred): keeps its CRC to report and checks its length. zlib
 * checks the CRC first: a wrong length fails the next read, after the caller's check of the CRC.
 */
static void member_end(struct reader *r)
{
	if (r->own_check) {
		/* The trailer: CRC-32 and length (mod 2^32), little-endian. */
		r->member_crc = le32(r->tail);
		if (le32(r->tail + 4) != (uint32_t)r->z.total_out) {
			fail(r, "corrupt gzip data (incorrect length check)");
		}
	} else {
		r->member_crc = (uint32_t)r->z.adler;
	}
	r->member_ended = true;
}

/*
 * The input ends inside a member, whose CRC is deferred. zlib, checking the CRC, would have
 * refused a wrong one as soon as the trailer's CRC was in, whatever of the length is missing. A
 * copy of the stream tells whether that is so: then the length's 4 bytes at most end the member
 * (the CRC's own need 5 or more, deflate data 9 or more). If so, reports the member's end with
 * the CRC, so that the caller checks it before the truncation is logged, and returns true.
 */
static bool cut_in_length(struct reader *r)
{
	unsigned char pad[4] = {0}, out[64];
	z_stream c;

	if (!r->own_check || inflateCopy(&c, &r->z) != Z_OK) {
		return false;
	}
	c.next_in = pad;
	c.avail_in = sizeof(pad);
	c.next_out = out;
	c.avail_out = sizeof(out);
	bool in_length = inflate(&c, Z_NO_FLUSH) == Z_STREAM_END;
	if (in_length) {
		/* The last bytes consumed: the CRC, then c.avail_in bytes of the length. */
		r->member_crc = le32(r->tail + 4 - c.avail_in);
		r->member_ended = true;
	}
	inflateEnd(&c);
	return in_length;
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
		/*
		 * 15 + 16: gzip wrapper only, with its CRC-32 and length checked by zlib, unless
		 * they are deferred (member_begin).
		 */
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
			bool crc_first = cut_in_length(r);
			fail(r, "truncated gzip data (unexpected end of file)");
			if (!crc_first) {
				return -1;
			}
			/* The content so far ends with its member: the next read fails. */
			break;
		}
		r->z.next_in = r->in + r->in_pos;
		r->z.avail_in = (uInt)(r->in_len - r->in_pos);
		int z = inflate(&r->z, Z_NO_FLUSH);
		size_t used = r->in_len - r->z.avail_in - r->in_pos;
		if (r->own_check) {
			tail_keep(r, r->in + r->in_pos, used);
		}
		r->in_pos += used;
		if (z == Z_STREAM_END) {
			r->state = READER_GAP;
			if (r->defer_crc) {
				/* A read ends with its member, so that the caller knows where. */
				member_end(r);
				break;
			}
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

void reader_defer_crc(struct reader *r)
{
	if (r->state == READER_START) {
		r->defer_crc = true;
	}
}

bool reader_member_end(struct reader *r, uint32_t *crc)
{
	if (!r->member_ended) {
		return false;
	}
	r->member_ended = false;
	*crc = r->member_crc;
	return true;
}

bool reader_crc_ok(const struct reader *r, uint32_t want, uint32_t crc)
{
	if (crc != want) {
		/* As zlib says it. */
		log_error("%s: corrupt gzip data (incorrect data check)", r->name);
	}
	return crc == want;
}

void reader_log_failure(const struct reader *r)
{
	if (r->failure[0] != '\0') {
		log_error("%s: %s", r->name, r->failure);
	}
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
	if (r->defer_crc) {
		/* Nobody would check the skipped members' CRCs. */
		log_error("%s: cannot skip content whose CRC the caller checks", r->name);
		return READER_SKIP_ERROR;
	}
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
