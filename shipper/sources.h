#ifndef RELAYWATCH_SOURCES_H
#define RELAYWATCH_SOURCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "digest.h"
#include "shipconf.h"

/*
 * Finding the files of a log source and telling who they are.
 *
 * multilog directory: the finished files "@" + 24 hex digits + ".s" or ".u" (complete, or
 * written during an outage) in name order, which is time order, then "current" (live).
 *
 * syslog file PATH: its rotated siblings in the same directory, oldest first: numbered ones
 * "NAME.N" / "NAME.N.gz" by falling N, then dateext ones "NAME-DATE" / "NAME-DATE.gz" (DATE made
 * of digits, '-' and '_') by rising DATE, then PATH itself (live). Other names (other
 * compressors' ".bz2", ".xz", editor backups) are ignored.
 *
 * Functions that fail log why (with the path) and return -1; errno is not part of their contract.
 */

/* A directory a source's files were listed in, held open for the run (see sources_open_file). */
struct source_dir {
	struct source_dir *next;
	int fd;
};

struct source_file {
	char *path;
	const struct source_dir *dir; /* where it was listed */
	const char *name;             /* its name in dir: the last component of path */
	const struct ship_source *source;
	bool live;     /* current / the live syslog file: it may still grow */
	bool gz;       /* content is gzip (from the magic bytes, valid after fingerprinting) */
	bool has_fpr;  /* false: no complete line yet, nothing to ship */
	uint64_t size; /* st_size when fingerprinted (raw bytes; for gzip not the content size) */
	int64_t mtime;
	uint64_t dev, ino; /* the file fingerprinted: a later open must find the same one */
	uint64_t line_end; /* live plain file: offset just past its last '\n' */
	uint8_t fpr[DIGEST_LEN];
};

/* The files of a run's sources, and what the run found out about their paths. */
struct source_list {
	struct source_file *v;
	size_t n, cap;
	struct source_dir *dirs; /* the listed directories, open */
	char **refused;          /* paths warned about as refused (sources_refused) */
	size_t nrefused;
};

void source_list_init(struct source_list *l);
/* Frees the files and the refused paths, and closes the directories. */
void source_list_finish(struct source_list *l);

/*
 * Appends the files of src to l in the order above (no content is read), and keeps the directory
 * they were listed in open in l, so that each file is later opened by its name in it: one
 * openat() instead of one per component of its path. A source whose directory cannot be read is
 * an error: returns -1 after logging it. A missing live file is not an error (a rotation may be
 * under way).
 */
int sources_discover(const struct ship_source *src, struct source_list *l);

/*
 * Fills f's fingerprint, gz, size, mtime, dev, ino and (live plain files) line_end from one open
 * of the file (a refusal is warned about through l, whose file f usually is: see
 * sources_refused): the SHA-256 of the first complete line including its '\n', read as content
 * through reader (gzip or plain). A finished (not live) file with content but no '\n' at all is
 * fingerprinted over all of its content instead, which can never equal a line fingerprint since
 * it lacks the '\n'. Returns 0 (with has_fpr false when there is nothing to ship yet, also when
 * the file vanished since discovery), or -1 after logging why (has_fpr false).
 */
int sources_fingerprint(struct source_list *l, struct source_file *f);

/*
 * The fingerprint of the plain file open as fd, read with pread from offset 0 (the file position
 * is not used), as sources_fingerprint() computes it; finished tells whether a file without '\n'
 * is named by its whole content. Returns 0 with *has telling whether *fpr was filled, or -1
 * after logging a read error.
 */
int sources_fingerprint_plain(int fd, const char *name, bool finished, uint8_t fpr[DIGEST_LEN],
			      bool *has);

/* Whether the file open as fd starts with the gzip magic bytes (what reader goes by). */
int sources_is_gzip(int fd, const char *name, bool *gz);

/*
 * Whether f, a finished plain file that sources_fingerprint() filled, ends with '\n' (its byte at
 * size - 1), as a file must to join a pack (see plan.c). Read when asked, for the few files that
 * may join one, not for every file of every run: the file is opened again as sources_open_file()
 * does. A file that is no longer the one fingerprinted (dev, ino), cannot be opened or read, is
 * live, gzip or empty answers false: it is then shipped alone, and reading it reports what is
 * wrong. Logs nothing.
 */
bool sources_ends_nl(const struct source_file *f);

/*
 * For a plain file of size bytes: *end = the offset just past its last '\n' (0 when there is
 * none). Returns 0, or -1 after logging (name is used in messages).
 */
int sources_last_line_end(int fd, uint64_t size, const char *name, uint64_t *end);

/* What a directory entry's name is, next to the syslog file it belongs to. */
enum syslog_name {
	SYSLOG_NAME_OTHER = -1,   /* not this log's */
	SYSLOG_NAME_LIVE = 0,     /* the live file itself */
	SYSLOG_NAME_NUMBERED = 1, /* NAME.N[.gz]: *num = N */
	SYSLOG_NAME_DATED = 2,    /* NAME-DATE[.gz]: *suffix points into name, *suffix_len bytes */
};

/* Classifies a directory entry name against the syslog file name base; *gz tells whether it
 * ends in ".gz". */
enum syslog_name sources_syslog_classify(const char *base, const char *name, uint64_t *num,
					 const char **suffix, size_t *suffix_len, bool *gz);

/*
 * Opens the directory path (absolute) without following a symbolic link in any of its
 * components: each is opened with openat(O_NOFOLLOW | O_DIRECTORY) from the one before. The log
 * directories often belong to the log user (qmaill), who could otherwise replace a directory
 * with a symlink to a root-only one and make the shipper (root) send what is in it. Returns the
 * descriptor; or -1 with errno set: ELOOP for a symlink (or a non-directory) in the path, others
 * as open(2). Logs nothing; see sources_refused().
 */
int sources_open_dir(const char *path);

/*
 * Warns that path was refused (err, errno from sources_open_dir or sources_open_file: ELOOP or
 * EMLINK), once per path for the list l of a run (which keeps the paths warned about), so that a
 * planted link is reported without flooding. Returns whether err was such a refusal.
 */
bool sources_refused(struct source_list *l, const char *path, int err);

/*
 * Opens f for reading: by its name in the directory it was listed in (which sources_open_dir()
 * opened) with O_NOFOLLOW, never by its path (f->dir must be set). A regular file with more
 * than one link is refused too: the log user could otherwise hard-link a secret file under a
 * rotated log's name. Fills *sb (fstat) for the caller's identity checks. Returns the
 * descriptor; or -1 with errno set: ELOOP for a symlink, EMLINK for a hard-linked file, others as
 * open(2). Logs nothing; see sources_refused().
 */
int sources_open_file(const struct source_file *f, struct stat *sb);

/* Whether name is a finished multilog file ("@" + 24 lowercase hex + ".s" or ".u"). */
bool sources_multilog_finished(const char *name);

#endif
