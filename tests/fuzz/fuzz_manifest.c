/* libFuzzer target: the manifest reader (and so the key = value reader under it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	if (!init) {
		/* Rejections are the expected outcome; keep the fuzzer's output readable. */
		log_init("fuzz", LOG_ERROR);
		init = 1;
	}
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		return 0;
	}
	memcpy(buf, data, size);
	struct manifest m;
	if (manifest_parse("fuzz", buf, size, &m) == 0) {
		if (!manifest_name_valid(m.chunk) || strlen(m.host) > MANIFEST_HOST_MAX) {
			abort();
		}
		char out[MANIFEST_MAX_SIZE];
		if (manifest_format(&m, out, sizeof(out)) < 0) {
			abort();
		}
	}
	free(buf);
	return 0;
}
