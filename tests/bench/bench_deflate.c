/*
 * The floor of the shipper: a bare zlib deflate (gzip wrapper) of each FILE at LEVEL, output
 * thrown away. usage: bench-deflate LEVEL FILE...  (FILE - reads a list of paths from stdin)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#define BENCH_BUF (1024 * 1024)

static unsigned long long total_in, total_out;
/* One stream for all files (deflateReset between them), as a long-running shipper would. */
static z_stream z;
static int z_ready;

static int deflate_file(const char *path, int level)
{
	static unsigned char in[BENCH_BUF], out[BENCH_BUF];
	FILE *f = fopen(path, "rb");
	int ret = -1;

	if (f == NULL) {
		fprintf(stderr, "bench-deflate: %s: cannot open\n", path);
		return -1;
	}
	if (!z_ready) {
		if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
			fclose(f);
			return -1;
		}
		z_ready = 1;
	} else if (deflateReset(&z) != Z_OK) {
		fclose(f);
		return -1;
	}
	int flush;
	do {
		size_t n = fread(in, 1, sizeof(in), f);
		if (ferror(f)) {
			fprintf(stderr, "bench-deflate: %s: read error\n", path);
			goto out;
		}
		flush = feof(f) ? Z_FINISH : Z_NO_FLUSH;
		z.next_in = in;
		z.avail_in = (uInt)n;
		total_in += n;
		do {
			z.next_out = out;
			z.avail_out = sizeof(out);
			deflate(&z, flush);
			total_out += sizeof(out) - z.avail_out;
		} while (z.avail_out == 0);
	} while (flush != Z_FINISH);
	ret = 0;
out:
	fclose(f);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fputs("usage: bench-deflate LEVEL FILE...  (- reads paths from stdin)\n", stderr);
		return 2;
	}
	int level = atoi(argv[1]);
	int ret = 0;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "-") == 0) {
			char *line = NULL;
			size_t cap = 0;
			ssize_t len;
			while ((len = getline(&line, &cap, stdin)) > 0) {
				if (line[len - 1] == '\n') {
					line[len - 1] = '\0';
				}
				if (deflate_file(line, level) != 0) {
					ret = 1;
				}
			}
			free(line);
		} else if (deflate_file(argv[i], level) != 0) {
			ret = 1;
		}
	}
	if (z_ready) {
		deflateEnd(&z);
	}
	if (getenv("BENCH_VERBOSE")) {
		fprintf(stderr, "bench-deflate: %llu -> %llu bytes\n", total_in, total_out);
	}
	return ret;
}
