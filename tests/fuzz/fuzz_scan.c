/*
 * libFuzzer target: the scan's one-pass finder (ingester/scan.c), which counts newlines and
 * finds "CHKUSER " a vector at a time, against a line-by-line reading of the same bytes. The
 * input is repeated to a little over 256 kB, so that the scan's 128 kB pieces cut its lines at
 * offsets that depend on its length.
 */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "naive_scan.h"
#include "scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CONTENT_MIN (256 * 1024 + 1000)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[] = "/tmp/rw-fuzz-scan-XXXXXX";
	static int fd = -1;
	static struct agg *agg;
	static char *buf;
	if (fd < 0) {
		log_init("fuzz", LOG_ERROR);
		if ((fd = mkstemp(path)) < 0 || !(agg = agg_create()) ||
		    !(buf = malloc(CONTENT_MIN + 8192))) {
			abort();
		}
		unlink(path);
	}
	if (size == 0 || size > 8192) {
		return 0;
	}
	size_t n = 0;
	while (n < CONTENT_MIN) {
		memcpy(buf + n, data, size);
		n += size;
	}
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, n, 0) != (ssize_t)n) {
		abort();
	}
	/* The reader takes its own descriptor, reading from the start. */
	int rfd = dup(fd);
	if (rfd < 0 || lseek(rfd, 0, SEEK_SET) != 0) {
		abort();
	}
	struct reader *r = reader_fdopen(rfd, "fuzz");
	struct scan_opts o = {.host = SPAN_LIT("h"), .ref_utc = 1393632000};
	struct scan_stats st;
	agg_reset(agg);
	if (!r || scan_chunk(r, "fuzz", &o, agg, &st) != 0) {
		abort();
	}
	reader_destroy(r);
	uint64_t lines, events, malformed;
	naive_scan_count(buf, n, &lines, &events, &malformed);
	if (st.bytes != n || st.lines != lines || st.events != events ||
	    st.malformed != malformed) {
		abort();
	}
	return 0;
}
