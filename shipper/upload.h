#ifndef RELAYWATCH_UPLOAD_H
#define RELAYWATCH_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sftp.h"

/*
 * The upload pipeline: the caller (the producer: read, hash, deflate) hands over compressed
 * buffers; a writer thread owns the SSH session and drives up to `lanes` chunks at once, each on
 * its own SFTP channel, through
 *
 *   create .TEMP -> write buffers -> fsync -> close -> rename to NAME.gz
 *   -> create .NAME.manifest.tmp -> write -> fsync -> close -> rename to NAME.manifest
 *
 * so compression, the network and the server's fsyncs overlap. A rename that finds its target
 * already there means an earlier run delivered the very same chunk (names are deterministic):
 * the temporary file is removed and the chunk counts as delivered.
 *
 * Memory is bounded: at most min(lanes, 2) + 2 buffers of UPLOAD_BUF_SIZE exist;
 * uploader_buf_get() blocks while all are in use.
 *
 * Failures are logged here, once per cause, and reported per chunk as UPLOAD_FAILED; errno is
 * not part of any contract.
 */

#define UPLOAD_BUF_SIZE (1024 * 1024)

struct upload_buf {
	struct upload_buf *next;
	size_t len;
	unsigned char data[UPLOAD_BUF_SIZE];
};

enum upload_status {
	UPLOAD_DELIVERED, /* renamed into place by this run */
	UPLOAD_ALREADY,   /* both names already existed: delivered by an earlier run */
	UPLOAD_FAILED,    /* logged; the chunk is retried by a later run */
};

struct upload_result {
	uint64_t cookie;
	enum upload_status status;
};

struct uploader;
struct upload_chunk;

/*
 * Opens one SFTP channel on c (blocking) and starts the writer thread, which owns c until
 * uploader_destroy() and opens up to `lanes` - 1 more (fewer when the server refuses them) while
 * the producer starts compressing. remote_dir is prepended to every name. timeout: seconds
 * without any progress on a busy connection before it is declared dead. NULL on failure (logged).
 */
struct uploader *uploader_create(struct sftp_conn *c, const char *remote_dir, unsigned lanes,
				 unsigned timeout);

/* Starts a chunk uploaded first as temp_name (a bare name). NULL when the connection is broken
 * (or out of memory, logged). */
struct upload_chunk *uploader_begin(struct uploader *up, uint64_t cookie, const char *temp_name);

/* A buffer to fill (len 0); blocks while all buffers are in flight. NULL when broken. */
struct upload_buf *uploader_buf_get(struct uploader *up);

/* Gives a buffer back unused. */
void uploader_buf_put(struct uploader *up, struct upload_buf *b);

/* Queues b (b->len bytes) as the chunk's next data; the uploader owns b from now on. */
void uploader_write(struct uploader *up, struct upload_chunk *ch, struct upload_buf *b);

/*
 * Ends the chunk: after its data, rename to name + ".gz" and upload the manifest text as
 * name + ".manifest". The chunk's result comes later from uploader_result(). Returns 0, or -1
 * when out of memory (the chunk then fails).
 */
int uploader_end(struct uploader *up, struct upload_chunk *ch, const char *name,
		 const char *manifest, size_t manifest_len);

/* Abandons the chunk (the producer could not read its source): its temporary file is removed
 * and its result is UPLOAD_FAILED. */
void uploader_abort(struct uploader *up, struct upload_chunk *ch);

/*
 * Takes the next finished chunk's result. With wait, blocks until one is there or nothing is
 * in flight. Returns true when *r was filled.
 */
bool uploader_result(struct uploader *up, struct upload_result *r, bool wait);

/* Whether the connection was lost (every chunk in flight and to come fails). */
bool uploader_broken(struct uploader *up);

/* Chunks begun and not yet reported through uploader_result(). */
size_t uploader_in_flight(struct uploader *up);

/* Stops the writer thread once every chunk is done (call after the last uploader_result()),
 * closes the channels. Accepts NULL. The sftp_conn stays the caller's. */
void uploader_destroy(struct uploader *up);

#endif
