#include "dropdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "manifest.h"

/* Room for NAME + the longest suffix + NUL. */
#define NOTE_BUF (MANIFEST_NAME_MAX + 32)

static void not_ours(const char *path, const struct stat *sb)
{
	log_error("%s: refusing a directory owned by uid %u: it must belong to the ingester's user "
		  "(uid %u), mode 0700 (chown it, or remove it and let the next run create it)",
		  path, (unsigned)sb->st_uid, (unsigned)geteuid());
}

int dropdir_sub_open(int in_fd, const char *incoming, const char *name, bool create)
{
	char path[4096];
	struct stat sb;
	int fd = -1;

	snprintf(path, sizeof(path), "%s/%s", incoming, name);
	if (create && mkdirat(in_fd, name, 0700) != 0 && errno != EEXIST) {
		log_error("%s: cannot create: %s", path, strerror(errno));
		return -1;
	}
	/* O_NOFOLLOW: a symlink the drop account planted as work/ would redirect our renames. */
	fd = openat(in_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && !create) {
			return -2;
		}
		/* One the drop account made and closed: say whose it is, not just "denied". */
		if (errno == EACCES && fstatat(in_fd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
		    sb.st_uid != geteuid()) {
			not_ours(path, &sb);
			return -1;
		}
		log_error("%s: %s", path,
			  errno == ELOOP || errno == ENOTDIR ? "not a directory (a symlink?)"
							     : strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) != 0) {
		log_error("%s: %s", path, strerror(errno));
		goto fail;
	}
	/* A directory of the drop account's making would let it read and swap what we keep. */
	if (sb.st_uid != geteuid()) {
		not_ours(path, &sb);
		goto fail;
	}
	/*
	 * Under a setgid drop directory a new subdirectory inherits the drop account's group
	 * and the setgid bit: closed means mode 0700 and our own group, so that the account
	 * cannot list archive/ and read every mail server's logs, or append to a manifest.
	 */
	if ((sb.st_mode & 07777) != 0700 || sb.st_gid != getegid()) {
		if (!create) {
			log_warn("%s: mode %04o, group %u; the next run makes it 0700 and group %u",
				 path, (unsigned)(sb.st_mode & 07777), (unsigned)sb.st_gid,
				 (unsigned)getegid());
			return fd;
		}
		if ((sb.st_gid != getegid() && fchown(fd, (uid_t)-1, getegid()) != 0) ||
		    fchmod(fd, 0700) != 0) {
			log_error("%s: cannot make it mode 0700 and group %u: %s", path,
				  (unsigned)getegid(), strerror(errno));
			goto fail;
		}
		/* What a fresh mkdir inherits is fixed silently; an open one is worth a word. */
		if (sb.st_mode & 0077) {
			log_warn("%s: was mode %04o, now 0700: the drop account could read it",
				 path, (unsigned)(sb.st_mode & 07777));
		}
	}
	/* O_DIRECTORY, our uid, mode 0700: fileio_check_private would only repeat the fstat. */
	return fd;

fail:
	close(fd);
	return -1;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void dropdir_names_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++) {
		free(v[i]);
	}
	free(v);
}

static const char *kind_name(mode_t mode)
{
	if (S_ISDIR(mode)) {
		return "a directory";
	}
	if (S_ISLNK(mode)) {
		return "a symlink";
	}
	if (S_ISFIFO(mode)) {
		return "a FIFO";
	}
	return "not a regular file";
}

/* A non-regular NAME.manifest: reported once (see dropdir_list), never used. */
static void ignore_entry(int dir_fd, const char *what, int note_fd, const char *name)
{
	char note[NOTE_BUF], why[NOTE_BUF + 64];
	struct stat sb;

	if (fstatat(dir_fd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
		return; /* gone meanwhile */
	}
	snprintf(note, sizeof(note), "%s%s", name, DROPDIR_IGNORED);
	snprintf(why, sizeof(why), "%s/%s is %s, not a chunk: ignored", what, name,
		 kind_name(sb.st_mode));
	if (note_fd >= 0 && fstatat(note_fd, note, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		log_info("%s (reported before)", why);
		return;
	}
	log_warn("%s%s", why, note_fd >= 0 ? " (reported once: see quarantine/)" : "");
	if (note_fd >= 0 && dropdir_write_note(note_fd, note, why) != 0) {
		log_warn("%s: quarantine/%s: %s", what, note, strerror(errno));
	}
}

/* Whether name in dir_fd is a regular file (d_type is not POSIX; one fstatat per manifest). */
static bool entry_regular(int dir_fd, const char *name)
{
	struct stat sb;

	return fstatat(dir_fd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode);
}

int dropdir_list(int dir_fd, const char *what, int note_fd, char ***out, size_t *count)
{
	const size_t slen = strlen(DROPDIR_MANIFEST);
	char **v = NULL, **nv;
	size_t n = 0, cap = 0, len;
	struct dirent *de;
	DIR *dir = NULL;
	int fd, ret = -1;
	char esc[LOG_ESCAPE_SIZE];

	/* A descriptor of our own: readdir must not share the offset of dir_fd. */
	fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		log_error("%s: %s", what, strerror(errno));
		if (fd >= 0) {
			close(fd);
		}
		goto out;
	}
	for (;;) {
		errno = 0;
		de = readdir(dir);
		if (de == NULL) {
			if (errno != 0) {
				log_error("%s: %s", what, strerror(errno));
				goto out;
			}
			break;
		}
		len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len <= slen ||
		    strcmp(de->d_name + len - slen, DROPDIR_MANIFEST) != 0) {
			continue;
		}
		/* Never a '/', never "..", never a control byte: the name is safe as a path. */
		if (!manifest_name_valid(de->d_name)) {
			log_warn("%s: ignoring '%s': not a valid chunk name", what,
				 log_escape(esc, sizeof(esc), de->d_name, len));
			continue;
		}
		/* A directory named X.manifest would otherwise fail every run, forever. */
		if (!entry_regular(dir_fd, de->d_name)) {
			ignore_entry(dir_fd, what, note_fd, de->d_name);
			continue;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL) {
				log_error("out of memory");
				goto out;
			}
			v = nv;
		}
		v[n] = strdup(de->d_name);
		if (v[n] == NULL) {
			log_error("out of memory");
			goto out;
		}
		n++;
	}
	if (n > 0) {
		qsort(v, n, sizeof(*v), name_cmp);
	}
	*out = v;
	*count = n;
	v = NULL;
	n = 0;
	ret = 0;

out:
	if (dir != NULL) {
		closedir(dir);
	}
	dropdir_names_free(v, n);
	return ret;
}

int dropdir_move(int from, int to, const char *name, bool missing_ok)
{
	if (renameat(from, name, to, name) != 0) {
		if (errno == ENOENT && missing_ok) {
			return 0;
		}
		return -1;
	}
	return 0;
}

int dropdir_fsync(int fd, const char *what)
{
	if (fsync(fd) != 0) {
		log_error("%s: fsync: %s", what, strerror(errno));
		return -1;
	}
	return 0;
}

int dropdir_write_note(int dir_fd, const char *name, const char *text)
{
	char tmp[NOTE_BUF + 8];
	size_t len = strlen(text);
	int fd = -1, ret = -1, err;

	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	unlinkat(dir_fd, tmp, 0);
	fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		goto out;
	}
	if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (renameat(dir_fd, tmp, dir_fd, name) != 0) {
		goto out;
	}
	ret = 0;

out:
	err = errno;
	if (fd >= 0) {
		close(fd);
	}
	if (ret != 0) {
		unlinkat(dir_fd, tmp, 0);
		errno = err;
	}
	return ret;
}
