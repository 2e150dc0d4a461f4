#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "reader.h"
#include "sources.h"

#define FPR_BUF_SIZE  (64 * 1024)
#define TAIL_BUF_SIZE (64 * 1024)

void source_list_init(struct source_list *l)
{
	memset(l, 0, sizeof(*l));
}

void source_list_finish(struct source_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].path);
	}
	free(l->v);
	while (l->dirs) {
		struct source_dir *d = l->dirs;
		l->dirs = d->next;
		close(d->fd);
		free(d);
	}
	for (size_t i = 0; i < l->nrefused; i++) {
		free(l->refused[i]);
	}
	free(l->refused);
	memset(l, 0, sizeof(*l));
}

bool sources_multilog_finished(const char *name)
{
	if (name[0] != '@' || strlen(name) != 27) {
		return false;
	}
	for (size_t i = 1; i < 25; i++) {
		char c = name[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
			return false;
		}
	}
	return name[25] == '.' && (name[26] == 's' || name[26] == 'u');
}

enum syslog_name sources_syslog_classify(const char *base, const char *name, uint64_t *num,
					 const char **suffix, size_t *suffix_len, bool *gz)
{
	size_t blen = strlen(base), nlen = strlen(name);
	*gz = false;
	if (strcmp(name, base) == 0) {
		return SYSLOG_NAME_LIVE;
	}
	if (nlen > 3 && strcmp(name + nlen - 3, ".gz") == 0) {
		*gz = true;
		nlen -= 3;
	}
	if (nlen < blen + 2 || strncmp(name, base, blen) != 0) {
		return SYSLOG_NAME_OTHER;
	}
	const char *rest = name + blen + 1;
	size_t rlen = nlen - blen - 1;
	if (name[blen] == '.') {
		uint64_t n = 0;
		for (size_t i = 0; i < rlen; i++) {
			if (rest[i] < '0' || rest[i] > '9' || n > UINT64_MAX / 10 - 1) {
				return SYSLOG_NAME_OTHER;
			}
			n = n * 10 + (uint64_t)(rest[i] - '0');
		}
		*num = n;
		return SYSLOG_NAME_NUMBERED;
	}
	if (name[blen] == '-') {
		if (rest[0] < '0' || rest[0] > '9') {
			return SYSLOG_NAME_OTHER;
		}
		for (size_t i = 0; i < rlen; i++) {
			char c = rest[i];
			if (!((c >= '0' && c <= '9') || c == '-' || c == '_')) {
				return SYSLOG_NAME_OTHER;
			}
		}
		*suffix = rest;
		*suffix_len = rlen;
		return SYSLOG_NAME_DATED;
	}
	return SYSLOG_NAME_OTHER;
}

/* A candidate with its sort key while a directory is listed. */
struct candidate {
	char *name;
	int group; /* 0 numbered / multilog finished, 1 dateext, 2 live */
	uint64_t num;
	const char *suffix;
	size_t suffix_len;
	bool gz;
};

static int cmp_candidate(const void *a, const void *b)
{
	const struct candidate *x = a, *y = b;
	if (x->group != y->group) {
		return x->group < y->group ? -1 : 1;
	}
	if (x->group == 0 && x->num != y->num) {
		/* Numbered rotations: the highest number is the oldest. */
		return x->num > y->num ? -1 : 1;
	}
	if (x->group == 1) {
		size_t n = x->suffix_len < y->suffix_len ? x->suffix_len : y->suffix_len;
		int c = memcmp(x->suffix, y->suffix, n);
		if (c != 0) {
			return c;
		}
		if (x->suffix_len != y->suffix_len) {
			return x->suffix_len < y->suffix_len ? -1 : 1;
		}
	}
	/* The same rotation plain and gzipped (compression under way): plain first. */
	if (x->gz != y->gz) {
		return x->gz ? 1 : -1;
	}
	return strcmp(x->name, y->name);
}

static int add_file(struct source_list *l, const struct ship_source *src,
		    const struct source_dir *sd, const char *dir, const char *name, bool live)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct source_file *v = realloc(l->v, cap * sizeof(*v));
		if (!v) {
			log_error("out of memory");
			return -1;
		}
		l->v = v;
		l->cap = cap;
	}
	size_t len = strlen(dir) + strlen(name) + 2;
	char *path = malloc(len);
	if (!path) {
		log_error("out of memory");
		return -1;
	}
	snprintf(path, len, "%s/%s", dir, name);
	l->v[l->n++] = (struct source_file){.path = path,
					    .dir = sd,
					    .name = path + len - 1 - strlen(name),
					    .source = src,
					    .live = live};
	return 0;
}

/* The flags every log file is opened with: never through a symbolic link, never as a terminal. */
#define FILE_FLAGS (O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)

/* Fills *sb and refuses a regular file with more than one link (see sources_open_file). Returns
 * fd, or -1 with errno set (fd closed). */
static int check_links(int fd, struct stat *sb)
{
	int err = EMLINK;
	if (fstat(fd, sb) != 0) {
		err = errno;
	} else if (!S_ISREG(sb->st_mode) || sb->st_nlink <= 1) {
		return fd;
	}
	close(fd);
	errno = err;
	return -1;
}

int sources_open_dir(const char *path)
{
	const int dir_flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	const char *p = path, *slash;
	char comp[NAME_MAX + 1];
	int fd, next, err;

	if (path[0] != '/') {
		errno = EINVAL;
		return -1;
	}
	fd = open("/", dir_flags);
	while (fd >= 0) {
		while (*p == '/') {
			p++;
		}
		slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0) { /* past the last component (or "/" itself) */
			break;
		}
		if (n > NAME_MAX) {
			close(fd);
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(comp, p, n);
		comp[n] = '\0';
		p += n;
		next = openat(fd, comp, dir_flags);
		err = errno;
		close(fd);
		fd = next;
		if (fd < 0) {
			/* O_DIRECTORY | O_NOFOLLOW on a symlink gives ENOTDIR on some kernels. */
			errno = err == ENOTDIR ? ELOOP : err;
			return -1;
		}
	}
	return fd;
}

int sources_open_file(const struct source_file *f, struct stat *sb)
{
	/* f->name is a directory entry's name: one component, no '/' to follow. */
	int fd = openat(f->dir->fd, f->name, FILE_FLAGS);
	return fd < 0 ? -1 : check_links(fd, sb);
}

bool sources_refused(struct source_list *l, const char *path, int err)
{
	char esc[LOG_ESCAPE_SIZE];

	if (err != ELOOP && err != EMLINK) {
		return false;
	}
	/* A handful at most (it is an attack or a typo): a linear search is enough. */
	for (size_t i = 0; i < l->nrefused; i++) {
		if (strcmp(l->refused[i], path) == 0) {
			return true;
		}
	}
	log_escape(esc, sizeof(esc), path, strlen(path));
	if (err == ELOOP) {
		log_warn("%s: a symbolic link, not followed (it or a directory above it; name the "
			 "real path)",
			 esc);
	} else {
		log_warn("%s: a file with more than one hard link, not shipped", esc);
	}
	/* Out of memory: the path is only warned about again. */
	char **v = realloc(l->refused, (l->nrefused + 1) * sizeof(*v));
	if (v != NULL) {
		l->refused = v;
		if ((l->refused[l->nrefused] = strdup(path)) != NULL) {
			l->nrefused++;
		}
	}
	return true;
}

int sources_discover(const struct ship_source *src, struct source_list *l)
{
	char *dir = NULL;
	const char *base = NULL;
	struct source_dir *sd = NULL;
	DIR *d = NULL;
	struct candidate *c = NULL;
	size_t n = 0, cap = 0;
	int ret = -1;

	if (src->kind == SHIP_KIND_MULTILOG) {
		dir = strdup(src->path);
	} else {
		const char *slash = strrchr(src->path, '/');
		base = slash + 1; /* shipconf allows absolute paths only */
		size_t dlen = (size_t)(slash - src->path);
		dir = strndup(src->path, dlen ? dlen : 1);
	}
	if (!dir) {
		log_error("out of memory");
		goto out;
	}
	int dfd = sources_open_dir(dir);
	if (dfd < 0 && sources_refused(l, dir, errno)) {
		ret = 0; /* nothing of this source is shipped; the warning says why */
		goto out;
	}
	if (dfd < 0) {
		log_error("%s: %s", dir, strerror(errno));
		goto out;
	}
	/* The files are opened in this very directory later, even if a name on its path leads
	 * elsewhere by then. */
	if (!(sd = calloc(1, sizeof(*sd)))) {
		log_error("out of memory");
		close(dfd);
		goto out;
	}
	if ((sd->fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0)) < 0 || !(d = fdopendir(dfd))) {
		log_error("%s: %s", dir, strerror(errno));
		close(dfd);
		goto out;
	}
	sd->next = l->dirs;
	l->dirs = sd;
	sd = NULL; /* l's now */
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno != 0) {
				log_error("%s: %s", dir, strerror(errno));
				goto out;
			}
			break;
		}
		struct candidate k = {0};
		if (src->kind == SHIP_KIND_MULTILOG) {
			if (strcmp(de->d_name, "current") == 0) {
				k.group = 2;
			} else if (sources_multilog_finished(de->d_name)) {
				k.group = 1;
				k.suffix = de->d_name;
				k.suffix_len = strlen(de->d_name);
			} else {
				continue;
			}
		} else {
			enum syslog_name r = sources_syslog_classify(
				base, de->d_name, &k.num, &k.suffix, &k.suffix_len, &k.gz);
			if (r == SYSLOG_NAME_OTHER) {
				continue;
			}
			k.group = r == SYSLOG_NAME_LIVE ? 2 : r == SYSLOG_NAME_NUMBERED ? 0 : 1;
		}
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 32;
			struct candidate *v = realloc(c, ncap * sizeof(*v));
			if (!v) {
				log_error("out of memory");
				goto out;
			}
			c = v;
			cap = ncap;
		}
		if (!(k.name = strdup(de->d_name))) {
			log_error("out of memory");
			goto out;
		}
		/* suffix pointed into the dirent, which readdir may reuse. */
		if (k.suffix) {
			k.suffix = k.name + (k.suffix - de->d_name);
		}
		c[n++] = k;
	}
	/* qsort(NULL, 0, ...) is undefined behaviour (UBSan stops on it): an empty directory. */
	if (n > 0) {
		qsort(c, n, sizeof(*c), cmp_candidate);
	}
	for (size_t i = 0; i < n; i++) {
		if (add_file(l, src, l->dirs, dir, c[i].name, c[i].group == 2) != 0) {
			goto out;
		}
	}
	ret = 0;
out:
	for (size_t i = 0; i < n; i++) {
		free(c[i].name);
	}
	free(c);
	if (d) {
		closedir(d);
	}
	if (sd) {
		if (sd->fd >= 0) {
			close(sd->fd);
		}
		free(sd);
	}
	free(dir);
	return ret;
}

int sources_is_gzip(int fd, const char *name, bool *gz)
{
	unsigned char magic[2];
	ssize_t n;
	do {
		n = pread(fd, magic, 2, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		log_error("%s: %s", name, strerror(errno));
		return -1;
	}
	*gz = n == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
	return 0;
}

/* Hashes through the first '\n' of what next() yields; see sources_fingerprint(). */
struct fpr_walk {
	struct digest *dg;
	uint64_t total;
	bool found;
};

static bool fpr_feed(struct fpr_walk *w, const unsigned char *buf, size_t n)
{
	const unsigned char *nl = memchr(buf, '\n', n);
	size_t take = nl ? (size_t)(nl - buf) + 1 : n;
	digest_update(w->dg, buf, take);
	w->total += take;
	w->found = nl != NULL;
	return w->found;
}

static void fpr_end(struct fpr_walk *w, bool finished, uint8_t fpr[DIGEST_LEN], bool *has)
{
	/* No '\n' anywhere: only a finished file's content is final and can be named by it. */
	*has = w->found || (finished && w->total > 0);
	if (*has) {
		digest_final(w->dg, fpr);
	}
}

int sources_fingerprint_plain(int fd, const char *name, bool finished, uint8_t fpr[DIGEST_LEN],
			      bool *has)
{
	struct fpr_walk w = {0};
	unsigned char *buf = malloc(FPR_BUF_SIZE);
	int ret = -1;
	if (!buf) {
		log_error("out of memory");
		goto out;
	}
	if (!(w.dg = digest_create())) {
		goto out;
	}
	/* Lines are short: read a little first, more only for a long first line. */
	size_t want = 4096;
	for (;; want = want < FPR_BUF_SIZE ? 2 * want : want) {
		ssize_t got = pread(fd, buf, want, (off_t)w.total);
		if (got < 0 && errno == EINTR) {
			continue;
		}
		if (got < 0) {
			log_error("%s: %s", name, strerror(errno));
			goto out;
		}
		if (got == 0 || fpr_feed(&w, buf, (size_t)got)) {
			break;
		}
	}
	fpr_end(&w, finished, fpr, has);
	ret = 0;
out:
	digest_destroy(w.dg);
	free(buf);
	return ret;
}

static int fingerprint_gzip(struct source_file *f, int fd)
{
	struct fpr_walk w = {0};
	struct reader *r = NULL;
	unsigned char *buf = NULL;
	int ret = -1;
	if (!(r = reader_fdopen(fd, f->path))) {
		return -1;
	}
	if (!(buf = malloc(FPR_BUF_SIZE))) {
		log_error("out of memory");
		goto out;
	}
	if (!(w.dg = digest_create())) {
		goto out;
	}
	for (;;) {
		ssize_t got = reader_read(r, buf, FPR_BUF_SIZE);
		if (got < 0) {
			goto out;
		}
		if (got == 0 || fpr_feed(&w, buf, (size_t)got)) {
			break;
		}
	}
	fpr_end(&w, !f->live, f->fpr, &f->has_fpr);
	ret = 0;
out:
	digest_destroy(w.dg);
	free(buf);
	reader_destroy(r);
	return ret;
}

int sources_fingerprint(struct source_list *l, struct source_file *f)
{
	f->has_fpr = false;
	/*
	 * No symlink anywhere in the path, no hard link: whoever may write the log directory (the
	 * log user) must not make us, as root, ship /etc/shadow under the name of a rotated log.
	 */
	struct stat sb;
	int fd = sources_open_file(f, &sb);
	int ret = -1;
	if (fd < 0) {
		/* Rotated away or deleted between listing and opening: next run sees it anew. */
		if (errno == ENOENT || sources_refused(l, f->path, errno)) {
			return 0;
		}
		log_error("%s: %s", f->path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(sb.st_mode)) {
		log_debug("%s: not a regular file, ignored", f->path);
		ret = 0;
		goto out;
	}
	f->size = (uint64_t)sb.st_size;
	f->mtime = (int64_t)sb.st_mtime;
	f->dev = (uint64_t)sb.st_dev;
	f->ino = (uint64_t)sb.st_ino;
	if (sources_is_gzip(fd, f->path, &f->gz) != 0) {
		goto out;
	}
	if (f->gz) {
		ret = fingerprint_gzip(f, fd);
		fd = -1; /* the reader closed it */
		goto out;
	}
	if (sources_fingerprint_plain(fd, f->path, !f->live, f->fpr, &f->has_fpr) != 0) {
		goto out;
	}
	/* From the same open file as the fingerprint, so a rotation in between cannot pair one
	 * file's identity with another's length. */
	if (f->live && f->has_fpr &&
	    sources_last_line_end(fd, f->size, f->path, &f->line_end) != 0) {
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0) {
		close(fd);
	}
	if (ret != 0) {
		f->has_fpr = false; /* nothing of a file that failed is shipped this run */
	}
	return ret;
}

bool sources_ends_nl(const struct source_file *f)
{
	struct stat sb;
	unsigned char c;

	if (f->live || f->gz || f->size == 0) {
		return false;
	}
	int fd = sources_open_file(f, &sb);
	if (fd < 0) {
		return false;
	}
	/* Another file under its name since: not the one planned for; never packed. */
	bool nl = (uint64_t)sb.st_dev == f->dev && (uint64_t)sb.st_ino == f->ino &&
		  fileio_read_at(fd, &c, 1, (off_t)(f->size - 1)) == 1 && c == '\n';
	close(fd);
	return nl;
}

int sources_last_line_end(int fd, uint64_t size, const char *name, uint64_t *end)
{
	unsigned char buf[TAIL_BUF_SIZE];
	uint64_t pos = size;
	while (pos > 0) {
		size_t n = pos < sizeof(buf) ? (size_t)pos : sizeof(buf);
		uint64_t at = pos - n;
		/* A file that shrank while we looked gives less: the caller sees it by the offsets.
		 */
		ssize_t got = fileio_read_at(fd, buf, n, (off_t)at);
		if (got < 0) {
			log_error("%s: %s", name, strerror(errno));
			return -1;
		}
		for (size_t i = (size_t)got; i > 0; i--) {
			if (buf[i - 1] == '\n') {
				*end = at + i;
				return 0;
			}
		}
		pos = at;
	}
	*end = 0;
	return 0;
}
