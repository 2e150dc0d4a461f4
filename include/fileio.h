#ifndef RELAYWATCH_FILEIO_H
#define RELAYWATCH_FILEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Reads up to n bytes of fd from offset at (pread: the file position is left alone), going on
 * after short reads and EINTR, until n bytes or the end of the file. Returns the number of bytes
 * read (less than n only at the end of the file), or -1 with errno set. Logs nothing.
 */
ssize_t fileio_read_at(int fd, void *buf, size_t n, off_t at);

/*
 * Reads the whole of fd (with pread, from offset 0; path names it in messages) into a new buffer
 * of at most max bytes, NUL terminated, so that a file that should be small (a config, a
 * manifest, a state file) can never make us read /dev/zero or a sparse giant: the size is
 * checked before reading and again by reading one byte more than max. The buffer is sized from
 * fstat's st_size plus that byte, and grows only when the file grew while being read (or fstat
 * gives no size, as for a device): reading a small file costs its size, not max. On success *out
 * (free() it) and *len are set and 0 is returned; 1 when the file is larger than max (logged
 * "path: larger than max bytes"); -1 on an I/O error or no memory (logged).
 */
int fileio_read_file(int fd, const char *path, size_t max, char **out, size_t *len);

/* What fileio_check_private() expects to find. */
enum fileio_kind {
	FILEIO_FILE, /* a regular file */
	FILEIO_DIR,  /* a directory */
};

/*
 * Checks that fd (path in messages) is a kind-file owned by root or by the effective user and
 * that neither its group nor others can write it: another local user who could rewrite a config,
 * a state directory or a drop subdirectory could point us at their own key, database or files,
 * or plant what we then follow as root. Returns 0, or -1 after logging why (what names the
 * object: "config", "state_dir", ...).
 */
int fileio_check_private(int fd, const char *path, const char *what, enum fileio_kind kind);

#endif
