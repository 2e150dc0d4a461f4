#ifndef RELAYWATCH_DROPDIR_H
#define RELAYWATCH_DROPDIR_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The drop directory that relaywatch-ship uploads into, as `run` sees it: its subdirectories
 * and the names it holds. The SFTP account that uploads can create, rename and delete entries
 * in the drop directory itself (often through a group and a setgid bit), so nothing there is
 * believed: subdirectories must be real directories of ours, closed to everybody else, and an
 * entry is a chunk only if its name is a valid chunk name and it is a regular file.
 */

#define DROPDIR_MANIFEST ".manifest"
#define DROPDIR_GZ       ".gz"
#define DROPDIR_WHY      ".why"
/* Beside a claim in work/: that claim was taken over and is being read (see drain.c). */
#define DROPDIR_TAKEOVER ".takeover"
/* In quarantine/: a non-regular entry of the drop directory was reported (once). */
#define DROPDIR_IGNORED ".ignored"

/*
 * Opens the subdirectory name of the drop directory in_fd (incoming in messages), creating it
 * when it is missing and create is set. It must be a directory (not a symlink) owned by the
 * effective user; it is made mode 0700 with the user's own group whatever the drop directory's
 * group and setgid bit (so the drop account can neither list nor read what was archived or
 * quarantined): an existing one that is more open is tightened (with a warning) when create is
 * set, and only reported otherwise (a dry run changes nothing). Returns the descriptor; -2 when
 * it is missing and create is not set; or -1 after logging why.
 */
int dropdir_sub_open(int in_fd, const char *incoming, const char *name, bool create);

/*
 * The NAME.manifest entries of dir_fd (what in messages), sorted (names carry the upload time,
 * so oldest first), in *out (free with dropdir_names_free). Hidden entries are temporary uploads
 * and are skipped silently; an invalid name is never used as a path and is reported (a warning
 * per run). An entry that is not a regular file (a directory, a symlink, a FIFO) is skipped:
 * when note_fd >= 0 it is reported once, the first time, by leaving NAME.ignored in note_fd
 * (quarantine/), so that it does not mail cron every five minutes. Returns 0 or -1 (logged).
 */
int dropdir_list(int dir_fd, const char *what, int note_fd, char ***out, size_t *count);

/* Frees a list from dropdir_list. Accepts NULL. */
void dropdir_names_free(char **v, size_t n);

/* Moves name from one directory to another. 0; or -1 with errno (ENOENT is 0 when missing_ok). */
int dropdir_move(int from, int to, const char *name, bool missing_ok);

/* fsync(fd); 0, or -1 after logging "what: fsync: why". */
int dropdir_fsync(int fd, const char *what);

/*
 * Writes name in dir_fd with text and a newline, atomically (a hidden temporary file, fsync,
 * rename), mode 0600. 0, or -1 with errno set (nothing logged, nothing left behind).
 */
int dropdir_write_note(int dir_fd, const char *name, const char *text);

#endif
