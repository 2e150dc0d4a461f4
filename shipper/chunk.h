#ifndef RELAYWATCH_CHUNK_H
#define RELAYWATCH_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "digest.h"

/*
 * What makes a chunk the same chunk on every run: where it ends and what it is called, both pure
 * functions of the content and the state, so that a rerun after a crash (or the next server after
 * a failover) rebuilds it byte for byte under the same name.
 */

/*
 * The hostname as it appears in chunk names: bytes outside [A-Za-z0-9.-] become '-', a leading
 * '.' or '-' becomes 'x', at most SHIP_HOST_LABEL_MAX bytes, "unknown" when empty.
 */
#define SHIP_HOST_LABEL_MAX 64
void ship_host_label(const char *hostname, char out[static SHIP_HOST_LABEL_MAX + 1]);

/*
 * Chunk names in the drop directory, from (host label, fingerprint, byte range) only, so a rerun
 * produces the same names: NAME = HOST_FPR16_START-END (data NAME.gz, manifest NAME.manifest);
 * the data is uploaded first as .HOST_FPR16_START.gz.tmp (the end is known only once the chunk
 * has been read). Both fit in SHIP_NAME_MAX bytes.
 */
#define SHIP_NAME_MAX 160
void ship_chunk_name(const char *host_label, const uint8_t fpr[DIGEST_LEN], uint64_t start,
		     uint64_t end, char out[static SHIP_NAME_MAX]);
/*
 * A pack's name: NAME = HOST_FPR16_START-ENDpFILES from its first member's fingerprint and
 * offset, the pack's total content bytes (END = START + length) and its number of files.
 */
void ship_pack_name(const char *host_label, const uint8_t fpr[DIGEST_LEN], uint64_t start,
		    uint64_t end, unsigned files, char out[static SHIP_NAME_MAX]);
void ship_temp_name(const char *host_label, const uint8_t fpr[DIGEST_LEN], uint64_t start,
		    char out[static SHIP_NAME_MAX]);

/*
 * Where a chunk that started at chunk_start must end within buf (n bytes of content starting
 * at position pos): just past the first '\n' at or after chunk_start + max_chunk - 1. Returns
 * the number of bytes of buf that still belong to the chunk, or SIZE_MAX when the chunk goes on
 * past buf. A pure function of the content, so a rerun cuts the same chunks.
 */
size_t ship_cut(const unsigned char *buf, size_t n, uint64_t pos, uint64_t chunk_start,
		uint64_t max_chunk);

#endif
