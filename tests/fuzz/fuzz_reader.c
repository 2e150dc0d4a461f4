/* libFuzzer target: the plain/gzip reader on arbitrary (often corrupt) compressed input. */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	if (!init) {
		log_init("fuzz", LOG_ERROR);
		init = 1;
	}
	int p[2];
	/* The pipe holds 64 kB; larger inputs are not needed to reach every state. */
	if (size > 65536 || pipe(p) != 0) {
		return 0;
	}
	if (write(p[1], data, size) != (ssize_t)size) {
		close(p[0]);
		close(p[1]);
		return 0;
	}
	close(p[1]);
	struct reader *r = reader_fdopen(p[0], "fuzz");
	if (!r) {
		return 0;
	}
	char out[4096];
	size_t total = 0;
	ssize_t n;
	/* Bounded, so a compression bomb costs time but not the run. */
	while ((n = reader_read(r, out, sizeof(out))) > 0 && total < (64u << 20)) {
		total += (size_t)n;
	}
	reader_destroy(r);
	return 0;
}
