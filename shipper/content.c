#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "content.h"
#include "log.h"
#include "reader.h"
#include "sources.h"

void content_close(struct content *ct)
{
	if (ct->r) {
		reader_destroy(ct->r);
	} else if (ct->fd >= 0) {
		close(ct->fd);
	}
	ct->r = NULL;
	ct->fd = -1;
}

enum content_open content_open(struct source_list *l, const struct source_file *f, uint64_t offset,
			       struct content *ct)
{
	/* As when it was listed: a link swapped in since is refused. */
	struct stat sb;
	ct->fd = sources_open_file(f, &sb);
	ct->r = NULL;
	if (ct->fd < 0) {
		if (errno == ENOENT) {
			log_info("%s: rotated away since it was listed; next run", f->path);
			return CONTENT_CHANGED;
		}
		if (sources_refused(l, f->path, errno)) {
			return CONTENT_CHANGED;
		}
		log_error("%s: %s", f->path, strerror(errno));
		return CONTENT_ERROR;
	}
	/* Another file under the planned name would be shipped under the wrong identity. */
	if ((uint64_t)sb.st_dev != f->dev || (uint64_t)sb.st_ino != f->ino) {
		log_info("%s: replaced since it was listed; next run", f->path);
		content_close(ct);
		return CONTENT_CHANGED;
	}
	ct->mtime = (int64_t)sb.st_mtime;
	if (f->gz) {
		/* A .gz is written once and never changed in place. */
		int fd = ct->fd;
		ct->fd = -1;
		if (!(ct->r = reader_fdopen(fd, f->path))) {
			return CONTENT_ERROR;
		}
		enum reader_skip_result s =
			offset > 0 ? reader_skip(ct->r, (off_t)offset) : READER_SKIP_OK;
		if (s != READER_SKIP_OK) {
			content_close(ct);
		}
		if (s == READER_SKIP_SHORT) {
			/*
			 * A compressed copy that ends before what was shipped of its original
			 * (lines logged between logrotate's copy and its truncate, shipped from the
			 * live file): it holds nothing new.
			 */
			log_info("%s: ends before the %" PRIu64 " bytes already shipped; done",
				 f->path, offset);
			return CONTENT_NOTHING_NEW;
		}
		return s == READER_SKIP_ERROR ? CONTENT_ERROR : CONTENT_OK;
	}
	/* A live file can be truncated and rewritten in place (copytruncate) between listing and
	 * reading: check it is still the same. Rotated files are only renamed. */
	uint8_t fpr[DIGEST_LEN];
	bool has = false;
	if (f->live && sources_fingerprint_plain(ct->fd, f->path, false, fpr, &has) != 0) {
		content_close(ct);
		return CONTENT_ERROR;
	}
	if (f->live && (!has || memcmp(fpr, f->fpr, DIGEST_LEN) != 0)) {
		log_info("%s: rewritten since it was listed; next run", f->path);
		content_close(ct);
		return CONTENT_CHANGED;
	}
	if (offset > 0 && lseek(ct->fd, (off_t)offset, SEEK_SET) == (off_t)-1) {
		log_error("%s: %s", f->path, strerror(errno));
		content_close(ct);
		return CONTENT_ERROR;
	}
	return CONTENT_OK;
}

ssize_t content_read(struct content *ct, unsigned char *buf, size_t cap, const char *name)
{
	if (ct->r) {
		return reader_read(ct->r, buf, cap);
	}
	for (;;) {
		ssize_t n = read(ct->fd, buf, cap);
		if (n >= 0) {
			return n;
		}
		if (errno != EINTR) {
			log_error("%s: %s", name, strerror(errno));
			return -1;
		}
	}
}
