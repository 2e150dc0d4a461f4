/*
 * The floor of the ingester: a bare zlib inflate of each FILE (gzread, large buffer), bytes
 * thrown away. scripts/bench times relaywatch-ingest against it.
 */
#include <stdio.h>
#include <stdlib.h>

#include <zlib.h>

#define BENCH_BUF (2 * 1024 * 1024)

int main(int argc, char **argv)
{
	static char buf[BENCH_BUF];
	unsigned long long total = 0;
	int ret = 0;

	for (int i = 1; i < argc; i++) {
		gzFile f = gzopen(argv[i], "rb");
		if (f == NULL) {
			fprintf(stderr, "bench-inflate: %s: cannot open\n", argv[i]);
			return 1;
		}
		gzbuffer(f, 256 * 1024);
		int n;
		while ((n = gzread(f, buf, sizeof(buf))) > 0) {
			total += (unsigned)n;
		}
		int err;
		if (n < 0) {
			fprintf(stderr, "bench-inflate: %s: %s\n", argv[i], gzerror(f, &err));
			ret = 1;
		}
		gzclose(f);
	}
	if (getenv("BENCH_VERBOSE")) {
		fprintf(stderr, "bench-inflate: %llu bytes\n", total);
	}
	return ret;
}
