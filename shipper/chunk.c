#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "chunk.h"

void ship_host_label(const char *hostname, char out[static SHIP_HOST_LABEL_MAX + 1])
{
	size_t n = 0;
	for (; hostname[n] && n < SHIP_HOST_LABEL_MAX; n++) {
		char c = hostname[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '-';
		out[n] = ok ? c : '-';
	}
	out[n] = '\0';
	if (n == 0) {
		snprintf(out, SHIP_HOST_LABEL_MAX + 1, "unknown");
	} else if (out[0] == '.' || out[0] == '-') {
		/* A leading dot would hide the chunk from the ingester (and "." / ".." are paths).
		 */
		out[0] = 'x';
	}
}

void ship_chunk_name(const char *host_label, const uint8_t fpr[DIGEST_LEN], uint64_t start,
		     uint64_t end, char out[static SHIP_NAME_MAX])
{
	char hex[DIGEST_HEX_LEN + 1];
	digest_hex(fpr, hex);
	snprintf(out, SHIP_NAME_MAX, "%s_%.16s_%" PRIu64 "-%" PRIu64, host_label, hex, start, end);
}

void ship_pack_name(const char *host_label, const uint8_t fpr[DIGEST_LEN], uint64_t start,
		    uint64_t end, unsigned files, char out[static SHIP_NAME_MAX])
{
	/* A chunk's name and the number of files. */
	ship_chunk_name(host_label, fpr, start, end, out);
	size_t n = strlen(out);
	snprintf(out + n, SHIP_NAME_MAX - n, "p%u", files);
}

void ship_temp_name(const char *host_label, const uint8_t fpr[DIGEST_LEN], uint64_t start,
		    char out[static SHIP_NAME_MAX])
{
	char hex[DIGEST_HEX_LEN + 1];
	digest_hex(fpr, hex);
	snprintf(out, SHIP_NAME_MAX, ".%s_%.16s_%" PRIu64 ".gz.tmp", host_label, hex, start);
}

size_t ship_cut(const unsigned char *buf, size_t n, uint64_t pos, uint64_t chunk_start,
		uint64_t max_chunk)
{
	uint64_t from = chunk_start + max_chunk - 1;
	if (pos + n <= from) {
		return SIZE_MAX;
	}
	size_t skip = from > pos ? (size_t)(from - pos) : 0;
	const unsigned char *nl = memchr(buf + skip, '\n', n - skip);
	return nl ? (size_t)(nl - buf) + 1 : SIZE_MAX;
}
