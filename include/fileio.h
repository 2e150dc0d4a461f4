#ifndef RELAYWATCH_FILEIO_H
#define RELAYWATCH_FILEIO_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Reads up to n bytes of fd from offset at (pread: the file position is left alone), going on
 * after short reads and EINTR, until n bytes or the end of the file. Returns the number of bytes
 * read (less than n only at the end of the file), or -1 with errno set. Logs nothing.
 */
ssize_t fileio_read_at(int fd, void *buf, size_t n, off_t at);

#endif
