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

int fileio_read_file(int fd, const char *path, size_t max, char **out, size_t *len)
{
	struct stat sb;
	char *buf = NULL;
	ssize_t got;
	int ret = -1;

	if (fstat(fd, &sb) != 0) {
		log_error("%s: %s", path, strerror(errno));
		goto out;
	}
	/* st_size is only a hint for a pipe or a device; the read below has the last word. */
	if (S_ISREG(sb.st_mode) && (uint64_t)sb.st_size > max) {
		log_error("%s: larger than %zu bytes", path, max);
		ret = 1;
		goto out;
	}
	buf = malloc(max + 2);
	if (buf == NULL) {
		log_error("out of memory");
		goto out;
	}
	got = fileio_read_at(fd, buf, max + 1, 0);
	if (got < 0) {
		log_error("%s: %s", path, strerror(errno));
		goto out;
	}
	if ((size_t)got > max) {
		log_error("%s: larger than %zu bytes", path, max);
		ret = 1;
		goto out;
	}
	buf[got] = '\0';
	*out = buf;
	*len = (size_t)got;
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
