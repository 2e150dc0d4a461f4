#ifndef RELAYWATCH_READER_H
#define RELAYWATCH_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * A byte source that yields the uncompressed content of a plain or gzip file. gzip is detected
 * by its magic bytes, not the name; concatenated gzip members are read as one stream (what
 * `cat a.gz b.gz` and `gzip -c >>` produce). Trailing garbage after a member, a truncated member
 * or a bad CRC is an error, never silently ignored.
 */
struct reader;

/* Opens path ("-" is stdin). Returns NULL after logging why. */
struct reader *reader_open(const char *path);

/* Takes ownership of fd; name is used in messages. Returns NULL after logging why. */
struct reader *reader_fdopen(int fd, const char *name);

/*
 * Fills buf with up to cap bytes of content. Returns the number of bytes (> 0), 0 at the end of
 * the stream, or -1 after logging "name: why" (I/O error, corrupt or truncated gzip).
 */
ssize_t reader_read(struct reader *r, void *buf, size_t cap);

/*
 * Leaves each gzip member's CRC-32 to the caller, who may compute it on another thread than the
 * one that inflates (zlib still checks everything else, the reader the member's length). A read
 * then ends at the end of each member, which reader_member_end reports; such a read may return
 * 0 bytes, and the end of the stream is a 0 without a member end. A failure (-1) is then not
 * logged but kept for reader_log_failure: a thread that reads ahead of the CRC checks would
 * otherwise report damage that zlib, stopping at an earlier member's wrong CRC, never reached.
 * Does nothing once reading has started (zlib then checks the CRCs). Not to be combined with
 * reader_skip.
 */
void reader_defer_crc(struct reader *r);

/*
 * After a reader_read, with CRCs deferred: true (once) when that read ended a gzip member, with
 * the CRC-32 its content must have (zlib's crc32 of all of it) in *crc. Check it with
 * reader_crc_ok before reader_log_failure. Also true when the input ended in the trailer's
 * length, after its CRC (zlib checks that CRC first): the next read then fails.
 */
bool reader_member_end(struct reader *r, uint32_t *crc);

/*
 * With CRCs deferred: whether crc, the caller's CRC-32 of a member's content, is want, the one
 * reader_member_end reported; if not, logs "name: corrupt gzip data (incorrect data check)", as
 * zlib says it. Reads only the name: callable from another thread than the reading one.
 */
bool reader_crc_ok(const struct reader *r, uint32_t want, uint32_t crc);

/*
 * With CRCs deferred, after reader_read failed and the CRCs of the members before the failure
 * were found right: logs the failure ("name: why") as reader_read would have.
 */
void reader_log_failure(const struct reader *r);

/*
 * After a failure: true when it was this process's (an I/O error, no memory), which a later
 * attempt may not meet; false when the data itself is bad (corrupt or truncated gzip).
 */
bool reader_failed_locally(const struct reader *r);

/* Skips n bytes of content (inflating as needed). */
enum reader_skip_result {
	READER_SKIP_ERROR = -1, /* logged */
	READER_SKIP_OK = 0,
	READER_SKIP_SHORT = 1, /* the content ends first (nothing logged: the caller knows why) */
};
enum reader_skip_result reader_skip(struct reader *r, off_t n);

/* Whether the source is gzip; valid after the first reader_read(). */
bool reader_is_gzip(const struct reader *r);

/* Compressed bytes consumed so far (equal to the content read for plain files). */
off_t reader_raw_offset(const struct reader *r);

/* The file descriptor, for fstat(); stays owned by the reader. */
int reader_fd(const struct reader *r);

/* Closes the file. Accepts NULL. */
void reader_destroy(struct reader *r);

#endif
