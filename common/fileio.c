#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"

ssize_t fileio_read_at(int fd, void *buf, size_t n, off_t at)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, (char *)buf + got, n - got, at + (off_t)got);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r < 0) {
			return -1;
		}
		if (r == 0) {
			break;
		}
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* Where a buffer starts growing from when the file is larger than fstat said (or says nothing,
 * as for /proc files and devices). */
#define READ_FILE_GROW_MIN 4096

int fileio_read_file(int fd, const char *path, size_t max, char **out, size_t *len)
{
	struct stat sb;
	char *buf = NULL;
	size_t got = 0, cap;
	int ret = -1;

	if (fstat(fd, &sb) != 0) {
		log_error("%s: %s", path, strerror(errno));
		goto out;
	}
	/* st_size is only a hint for a device or a /proc file; the read below has the last word. */
	if (S_ISREG(sb.st_mode) && (uint64_t)sb.st_size > max) {
		log_error("%s: larger than %zu bytes", path, max);
		ret = 1;
		goto out;
	}
	/*
	 * The size fstat gives and one byte more, whose read finds a file that grew since: only
	 * then does the buffer grow, up to max + 1 bytes (one past max means too large). Never the
	 * maximum up front: known_hosts may have 4 MiB and has a few hundred bytes.
	 */
	cap = S_ISREG(sb.st_mode) ? (size_t)sb.st_size + 1 : 0;
	for (;;) {
		if (got == cap) {
			cap = cap < READ_FILE_GROW_MIN / 2 ? READ_FILE_GROW_MIN : 2 * cap;
			cap = cap > max ? max + 1 : cap;
		}
		char *grown = realloc(buf, cap + 1); /* + the NUL */
		if (grown == NULL) {
			log_error("out of memory");
			goto out;
		}
		buf = grown;
		ssize_t n = fileio_read_at(fd, buf + got, cap - got, (off_t)got);
		if (n < 0) {
			log_error("%s: %s", path, strerror(errno));
			goto out;
		}
		got += (size_t)n;
		if (got > max) {
			log_error("%s: larger than %zu bytes", path, max);
			ret = 1;
			goto out;
		}
		if (got < cap) {
			break; /* the end of the file */
		}
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	buf = NULL;
	ret = 0;

out:
	free(buf);
	return ret;
}

int fileio_check_private(int fd, const char *path, const char *what, enum fileio_kind kind)
{
	const char *kind_name = kind == FILEIO_DIR ? "directory" : "regular file";
	struct stat sb;

	if (fstat(fd, &sb) != 0) {
		log_error("%s: %s", path, strerror(errno));
		return -1;
	}
	if (kind == FILEIO_DIR ? !S_ISDIR(sb.st_mode) : !S_ISREG(sb.st_mode)) {
		log_error("%s: %s must be a %s", path, what, kind_name);
		return -1;
	}
	if (sb.st_uid != 0 && sb.st_uid != geteuid()) {
		log_error("%s: refusing a %s owned by another user (uid %u; it must belong to root "
			  "or uid %u)",
			  path, what, (unsigned)sb.st_uid, (unsigned)geteuid());
		return -1;
	}
	if (sb.st_mode & (S_IWGRP | S_IWOTH)) {
		log_error("%s: refusing a %s that group or others can write (chmod go-w)", path,
			  what);
		return -1;
	}
	return 0;
}
