#ifndef RELAYWATCH_CONTENT_H
#define RELAYWATCH_CONTENT_H

#include <stdint.h>
#include <sys/types.h>

#include "sources.h"

/*
 * The content of a source file the run planned to ship, read from a given offset: plain files
 * as they are, gzip files inflated. Opening checks that the file is still the one that was
 * fingerprinted when the run listed it. Errors are logged with the path; errno is not part of
 * the contract.
 */

struct content {
	int fd;           /* plain files; -1 when closed */
	struct reader *r; /* gzip files only */
	int64_t mtime;
};

enum content_open {
	CONTENT_OK,          /* positioned at the offset */
	CONTENT_CHANGED,     /* no longer the file that was planned (rotated or rewritten since
			      * it was listed, logged with --verbose): the next run sees it as it is */
	CONTENT_NOTHING_NEW, /* a .gz that ends at or before the offset: nothing in it is new */
	CONTENT_ERROR,       /* logged */
};

/* Opens f (never through a symbolic link; a refusal is warned about through l, see
 * sources_refused) positioned at offset. ct is closed unless CONTENT_OK. */
enum content_open content_open(struct source_list *l, const struct source_file *f, uint64_t offset,
			       struct content *ct);

/* Reads up to cap bytes of content. Returns the count (0 at the end), or -1 after logging a
 * read error (name is used in the message). */
ssize_t content_read(struct content *ct, unsigned char *buf, size_t cap, const char *name);

/* Closes ct; harmless when it is closed already. */
void content_close(struct content *ct);

#endif
