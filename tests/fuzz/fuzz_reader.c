/*
 * libFuzzer target: the plain/gzip reader on arbitrary (often corrupt) compressed input, read
 * twice: as zlib checks it, and with the CRCs deferred and checked here as the scan checks them.
 * Both must yield the same content, the same verdict and the same error message.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "log.h"
#include "reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A compression bomb costs time but not the run: reading stops past this much content. */
#define FUZZ_MAX_CONTENT (64u << 20)

struct outcome {
	bool ok;        /* read to the end without an error */
	uint32_t crc;   /* of all the content read */
	size_t total;   /* bytes of content read */
	char said[512]; /* the first error logged, "" when none */
};

static struct outcome read_all(const uint8_t *data, size_t size, bool defer)
{
	struct outcome o = {.crc = (uint32_t)crc32_z(0, Z_NULL, 0)};
	int p[2];
	if (pipe(p) != 0) {
		abort();
	}
	if (write(p[1], data, size) != (ssize_t)size) {
		abort();
	}
	close(p[1]);
	struct reader *r = reader_fdopen(p[0], "fuzz");
	if (!r) {
		abort();
	}
	if (defer) {
		reader_defer_crc(r);
	}
	log_hold();
	char out[4096];
	uLong member = crc32_z(0, Z_NULL, 0);
	ssize_t n;
	uint32_t crc;
	bool bad = false;
	for (;;) {
		n = reader_read(r, out, sizeof(out));
		bool end = n >= 0 && reader_member_end(r, &crc);
		if (n < 0 || (n == 0 && !end) || o.total >= FUZZ_MAX_CONTENT) {
			break;
		}
		o.total += (size_t)n;
		o.crc = (uint32_t)crc32_z(o.crc, (const Bytef *)out, (size_t)n);
		member = crc32_z(member, (const Bytef *)out, (size_t)n);
		if (end && !reader_crc_ok(r, crc, (uint32_t)member)) {
			bad = true;
			break;
		}
		if (end) {
			member = crc32_z(0, Z_NULL, 0);
		}
	}
	if (n < 0) {
		reader_log_failure(r);
	}
	o.ok = n == 0 && !bad;
	reader_destroy(r);
	if (!log_release(o.said, sizeof(o.said))) {
		o.said[0] = '\0';
	}
	return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	if (!init) {
		log_init("fuzz", LOG_ERROR);
		init = 1;
	}
	/* The pipe holds 64 kB; larger inputs are not needed to reach every state. */
	if (size > 65536) {
		return 0;
	}
	struct outcome a = read_all(data, size, false), b = read_all(data, size, true);
	if (a.total < FUZZ_MAX_CONTENT && b.total < FUZZ_MAX_CONTENT &&
	    (a.ok != b.ok || strcmp(a.said, b.said) != 0 ||
	     (a.ok && (a.crc != b.crc || a.total != b.total)))) {
		abort();
	}
	return 0;
}
