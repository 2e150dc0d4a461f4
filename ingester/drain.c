#include "drain.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agg.h"
#include "commands.h"
#include "crashpoint.h"
#include "db.h"
#include "digest.h"
#include "fileio.h"
#include "ingest_config.h"
#include "log.h"
#include "manifest.h"
#include "reader.h"
#include "scan.h"

#define SUFFIX_MANIFEST ".manifest"
#define SUFFIX_GZ       ".gz"
#define SUFFIX_WHY      ".why"

/* Room for NAME + the longest suffix + NUL. */
#define NAME_BUF (MANIFEST_NAME_MAX + 16)

struct drain {
	const struct drain_opts *o;
	struct drain_stats *st;
	int in_fd, work_fd, archive_fd, quar_fd;
	struct db *db;
	struct agg *agg;
	/* The run must stop: the database failed. */
	bool db_failed;
	bool db_config_bad; /* the database's option file, not the server, failed */
	/* Chunks were moved out of work/ since the directories were last synced. */
	bool moved;
	/* TZ as the run began (ingest.conf's tz, or the environment's); NULL when unset. */
	char *run_tz;
};

/* A claimed (or, in a dry run, merely opened) chunk. */
struct chunk {
	char base[MANIFEST_NAME_MAX + 1]; /* NAME */
	char manifest[NAME_BUF];          /* NAME.manifest */
	char gz[NAME_BUF];                /* NAME.gz */
	char esc[LOG_ESCAPE_SIZE];
	int mfd;    /* the manifest, flock'ed unless dry run */
	int dir_fd; /* where manifest and gz are: work/ (incoming/ in a dry run) */
	struct manifest m;
	struct scan_stats st;
	char id[DIGEST_HEX_LEN + 1];
};

/* --- directory helpers --- */

static int fsync_dir(int fd, const char *what)
{
	if (fsync(fd) != 0) {
		log_error("%s: fsync: %s", what, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Opens (creating it when missing and allowed) a subdirectory of the drop directory. The SFTP
 * account that uploads can create, rename and delete entries in the drop directory: a symlink
 * or a directory of its own under the name work/ would let it redirect our renames, so the
 * subdirectory must be a real directory, ours, and writable by nobody else.
 */
static int subdir_open(int in_fd, const char *incoming, const char *name, bool create)
{
	struct stat sb;
	int fd;

	if (create && mkdirat(in_fd, name, 0750) != 0 && errno != EEXIST) {
		log_error("%s/%s: cannot create: %s", incoming, name, strerror(errno));
		return -1;
	}
	fd = openat(in_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && !create) {
			return -2;
		}
		log_error("%s/%s: %s", incoming, name,
			  errno == ELOOP || errno == ENOTDIR ? "not a directory (a symlink?)"
							     : strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) != 0) {
		log_error("%s/%s: %s", incoming, name, strerror(errno));
		close(fd);
		return -1;
	}
	if ((sb.st_uid != geteuid() && sb.st_uid != 0) || (sb.st_mode & (S_IWGRP | S_IWOTH))) {
		log_error("%s/%s: refusing a directory owned by uid %u or writable by others "
			  "(it must belong to the ingester's user, mode 0750)",
			  incoming, name, (unsigned)sb.st_uid);
		close(fd);
		return -1;
	}
	return fd;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i]);
	}
	free(v);
}

/*
 * The NAME.manifest entries of a directory, sorted (names carry the upload time, so oldest
 * first). Hidden entries are temporary uploads and are skipped silently; any other name that is
 * not valid is never used as a path and is reported once per run. Returns 0 or -1 (logged).
 */
static int list_manifests(int dir_fd, const char *what, char ***out, size_t *count)
{
	const size_t slen = strlen(SUFFIX_MANIFEST);
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
		    strcmp(de->d_name + len - slen, SUFFIX_MANIFEST) != 0) {
			continue;
		}
		/* Never a '/', never "..", never a control byte: the name is safe as a path. */
		if (!manifest_name_valid(de->d_name)) {
			log_warn("%s: ignoring '%s': not a valid chunk name", what,
				 log_escape(esc, sizeof(esc), de->d_name, len));
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
	names_free(v, n);
	return ret;
}

static void chunk_names(struct chunk *c, const char *manifest_name)
{
	size_t n = strlen(manifest_name) - strlen(SUFFIX_MANIFEST);

	memcpy(c->base, manifest_name, n);
	c->base[n] = '\0';
	snprintf(c->manifest, sizeof(c->manifest), "%s%s", c->base, SUFFIX_MANIFEST);
	snprintf(c->gz, sizeof(c->gz), "%s%s", c->base, SUFFIX_GZ);
	/* Valid names are printable already; escape anyway, it costs nothing. */
	log_escape(c->esc, sizeof(c->esc), c->base, n);
}

/* Moves name from one directory to another; a missing source is fine when missing_ok. */
static int move(int from, int to, const char *name, bool missing_ok)
{
	if (renameat(from, name, to, name) != 0) {
		if (errno == ENOENT && missing_ok) {
			return 0;
		}
		return -1;
	}
	return 0;
}

/* --- quarantine and archive --- */

/* Writes NAME.why (one line) atomically: a temporary file, fsync, rename. */
static int write_why(struct drain *d, const struct chunk *c, const char *why)
{
	char tmp[NAME_BUF + 8], final[NAME_BUF];
	size_t len = strlen(why);
	int fd = -1, ret = -1;

	snprintf(tmp, sizeof(tmp), ".%s%s.tmp", c->base, SUFFIX_WHY);
	snprintf(final, sizeof(final), "%s%s", c->base, SUFFIX_WHY);
	unlinkat(d->quar_fd, tmp, 0);
	fd = openat(d->quar_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
	if (fd < 0) {
		goto out;
	}
	if (write(fd, why, len) != (ssize_t)len || write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		goto out;
	}
	fd = -1;
	if (renameat(d->quar_fd, tmp, d->quar_fd, final) != 0) {
		goto out;
	}
	ret = 0;

out:
	if (ret != 0) {
		log_error("%s: quarantine/%s: %s", d->o->incoming, final, strerror(errno));
		unlinkat(d->quar_fd, tmp, 0);
	}
	if (fd >= 0) {
		close(fd);
	}
	return ret;
}

/*
 * Moves a bad chunk to quarantine/ with its reason. The manifest moves last: until it has left
 * work/, the claim stands and a crash here is finished by the next run.
 */
static void quarantine(struct drain *d, struct chunk *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void quarantine(struct drain *d, struct chunk *c, const char *fmt, ...)
{
	char why[1024];
	va_list ap;
	bool ok;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);

	if (d->o->dry_run) {
		printf("%s: would quarantine: %s\n", c->esc, why);
		d->st->quarantined++;
		return;
	}
	log_error("%s: quarantined: %s", c->esc, why);
	d->st->quarantined++;
	ok = write_why(d, c, why) == 0;
	if (move(d->work_fd, d->quar_fd, c->gz, true) != 0) {
		log_error("%s: cannot move %s to quarantine/: %s", c->esc, c->gz, strerror(errno));
		ok = false;
	} else if (move(d->work_fd, d->quar_fd, c->manifest, false) != 0) {
		log_error("%s: cannot move %s to quarantine/: %s", c->esc, c->manifest,
			  strerror(errno));
		ok = false;
	} else if (fsync_dir(d->quar_fd, "quarantine/") != 0 ||
		   fsync_dir(d->work_fd, "work/") != 0) {
		ok = false;
	}
	if (!ok) {
		d->st->failed++;
	}
}

/* The chunk is counted (now or before): move it out of work/. */
static int finish(struct drain *d, struct chunk *c)
{
	if (d->o->archive) {
		if (move(d->work_fd, d->archive_fd, c->gz, true) != 0) {
			log_error("%s: cannot move %s to archive/: %s", c->esc, c->gz,
				  strerror(errno));
			goto fail;
		}
		/* A crash here leaves the claim without NAME.gz; the next run completes it. */
		crashpoint("run-archive");
		if (move(d->work_fd, d->archive_fd, c->manifest, false) != 0) {
			log_error("%s: cannot move %s to archive/: %s", c->esc, c->manifest,
				  strerror(errno));
			goto fail;
		}
	} else {
		if ((unlinkat(d->work_fd, c->gz, 0) != 0 && errno != ENOENT) ||
		    unlinkat(d->work_fd, c->manifest, 0) != 0) {
			log_error("%s: cannot delete from work/: %s", c->esc, strerror(errno));
			goto fail;
		}
	}
	/*
	 * The directories are synced once at the end of the run, not per chunk: a move that a
	 * crash undoes only brings back a chunk the ledger already holds, which the next run
	 * recognises as a duplicate and moves again.
	 */
	d->moved = true;
	return 0;

fail:
	/* The claim stays in work/ and is retried (as a duplicate) by the next run. */
	d->st->failed++;
	return -1;
}

/* --- checking and ingesting one chunk --- */

/*
 * Syslog dates without a UTC stamp are the mail server's local time: read them in the zone its
 * manifest names when this machine knows that zone, else in the run's zone. (manifest_parse
 * already refused any zone that could name a file outside zoneinfo.)
 */
static void zone_for(const struct drain *d, const struct chunk *c)
{
	const char *zone = d->run_tz;
	if (c->m.tz[0] != '\0') {
		if (ingest_tz_known(c->m.tz)) {
			zone = c->m.tz;
		} else {
			log_info("%s: zone %s unknown here; syslog dates read in the run's zone",
				 c->esc, c->m.tz);
		}
	}
	if (zone != NULL) {
		setenv("TZ", zone, 1);
	} else {
		unsetenv("TZ");
	}
	tzset();
}

static int ensure_db(struct drain *d)
{
	if (d->db == NULL) {
		d->db = db_connect(d->o->defaults_file, &d->db_config_bad);
		if (d->db == NULL) {
			d->db_failed = true;
			return -1;
		}
	}
	return 0;
}

/*
 * Reads the claimed manifest. 0, or 1 after quarantining the chunk or (a read error, ours) after
 * leaving the claim for the next run.
 */
static int read_manifest(struct drain *d, struct chunk *c)
{
	char buf[MANIFEST_MAX_SIZE + 1];
	ssize_t r = fileio_read_at(c->mfd, buf, sizeof(buf), 0);
	if (r < 0) {
		log_error("%s: %s: %s", c->esc, c->manifest, strerror(errno));
		d->st->failed++;
		return 1;
	}
	size_t len = (size_t)r;
	if (len > MANIFEST_MAX_SIZE) {
		quarantine(d, c, "manifest larger than %d bytes", MANIFEST_MAX_SIZE);
		return 1;
	}
	/* One line for the admin: the parser's reason goes into the quarantine line. */
	char why[512];
	log_hold();
	int bad = manifest_parse(c->manifest, buf, len, &c->m);
	if (!log_release(why, sizeof(why))) {
		snprintf(why, sizeof(why), "%s", "no reason given");
	} else if (bad == 0) {
		log_warn("%s", why);
	}
	if (bad != 0) {
		quarantine(d, c, "invalid manifest: %s", why);
		return 1;
	}
	/* The manifest may name only its own chunk: never another file, never a path. */
	if (strcmp(c->m.chunk, c->gz) != 0) {
		char esc[LOG_ESCAPE_SIZE];

		quarantine(d, c, "manifest names chunk '%s', expected '%s'",
			   log_escape(esc, sizeof(esc), c->m.chunk, strlen(c->m.chunk)), c->gz);
		return 1;
	}
	return 0;
}

/*
 * Scans the chunk into d->agg and verifies it against the manifest. 0 when it may be ingested,
 * 1 after quarantining it, 2 when NAME.gz is missing (a crash after it was archived), 3 when
 * this process failed (no memory, an I/O error; logged): the claim stays for the next run.
 */
static int check_chunk(struct drain *d, struct chunk *c)
{
	struct reader *r = NULL;
	struct scan_opts so = {0};
	struct stat sb;
	char hex[DIGEST_HEX_LEN + 1];
	char why[512];
	int fd, ret = 1;

	/* O_NOFOLLOW: a symlink planted as NAME.gz must not make us read /etc/shadow. */
	fd = openat(c->dir_fd, c->gz, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT) {
			return 2;
		}
		/* Out of descriptors or memory, a failing disk: ours, not the chunk's. */
		if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == EIO) {
			log_error("%s: %s: %s", c->esc, c->gz, strerror(errno));
			return 3;
		}
		quarantine(d, c, "cannot open %s: %s", c->gz,
			   errno == ELOOP ? "a symlink" : strerror(errno));
		return 1;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		quarantine(d, c, "%s is not a regular file", c->gz);
		return 1;
	}
	if (sb.st_size == 0) {
		close(fd);
		quarantine(d, c, "%s is empty (0 bytes; gzip data expected)", c->gz);
		return 1;
	}
	r = reader_fdopen(fd, c->gz);
	if (r == NULL) {
		return 3;
	}
	so.host = (struct span){c->m.host, strlen(c->m.host)};
	so.service = (struct span){c->m.service, strlen(c->m.service)};
	so.ref_utc = c->m.mtime;
	zone_for(d, c);
	so.progress = d->o->progress;
	so.progress_total = (uint64_t)sb.st_size;
	so.malformed_log_max = d->o->verbose ? SCAN_SAMPLES : 5;
	agg_reset(d->agg);
	/* The reader's reason ("NAME.gz: truncated gzip data ...") goes into that line. */
	log_hold();
	int scanned = scan_chunk(r, c->esc, &so, d->agg, &c->st);
	if (!log_release(why, sizeof(why))) {
		snprintf(why, sizeof(why), "%s: cannot be read", c->gz);
	} else if (scanned == 0) {
		log_warn("%s",
			 why); /* held, but no failure came of it: still the admin's to read */
	}
	if (scanned == SCAN_BAD_INPUT) {
		quarantine(d, c, "%s", why);
		goto out;
	}
	if (scanned != 0) {
		log_error("%s", why);
		ret = 3;
		goto out;
	}
	if (!reader_is_gzip(r)) {
		quarantine(d, c, "%s is not gzip data", c->gz);
		goto out;
	}
	/*
	 * The manifest is the shipper's account of the bytes it read: any difference means a
	 * damaged or forged upload, which must not be counted.
	 */
	if (c->st.bytes != c->m.length) {
		quarantine(d, c, "length: manifest says %llu bytes, the chunk has %llu",
			   (unsigned long long)c->m.length, (unsigned long long)c->st.bytes);
		goto out;
	}
	if (c->st.lines != c->m.lines) {
		quarantine(d, c, "lines: manifest says %llu, the chunk has %llu",
			   (unsigned long long)c->m.lines, (unsigned long long)c->st.lines);
		goto out;
	}
	if (memcmp(c->st.sha256, c->m.sha256, DIGEST_LEN) != 0) {
		digest_hex(c->m.sha256, hex);
		digest_hex(c->st.sha256, c->id);
		quarantine(d, c, "sha256: manifest says %s, the chunk has %s", hex, c->id);
		goto out;
	}
	digest_hex(c->st.sha256, c->id);
	ret = 0;

out:
	reader_destroy(r);
	return ret;
}

/* Works on a claimed chunk (c->mfd locked, both files in work/). */
static void process(struct drain *d, struct chunk *c)
{
	struct db_chunk dc = {0};
	enum db_result res;
	struct stat sb;
	int r, e;

	if (read_manifest(d, c) != 0) {
		return;
	}
	r = check_chunk(d, c);
	if (r == 1) {
		return;
	}
	if (r == 3) {
		d->st->failed++;
		return;
	}
	if (r == 2) {
		/*
		 * NAME.gz is gone but the claim stands: a run that crashed after archiving (or
		 * deleting) NAME.gz. The ledger says whether it was counted.
		 */
		digest_hex(c->m.sha256, c->id);
		if (d->o->dry_run) {
			printf("%s: %s missing\n", c->esc, c->gz);
			return;
		}
		/* A run that died half-way through quarantining it: finish that. */
		if (fstatat(d->quar_fd, c->gz, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
			log_error("%s: quarantined (by an interrupted run, see quarantine/%s%s)",
				  c->esc, c->base, SUFFIX_WHY);
			d->st->quarantined++;
			if (move(d->work_fd, d->quar_fd, c->manifest, false) != 0) {
				log_error("%s: cannot move %s to quarantine/: %s", c->esc,
					  c->manifest, strerror(errno));
				d->st->failed++;
			}
			return;
		}
		if (ensure_db(d) != 0) {
			return;
		}
		e = db_chunk_exists(d->db, c->id);
		if (e < 0) {
			d->db_failed = true;
		} else if (e == 0) {
			quarantine(d, c, "%s is missing", c->gz);
		} else {
			log_info("%s: finishing an interrupted run", c->esc);
			finish(d, c);
		}
		return;
	}
	if (d->o->dry_run) {
		scan_report_malformed(c->esc, &c->st);
		printf("%s: would ingest: %llu lines, %llu events, %llu malformed; rows: %s %zu, "
		       "%s %zu, %s %zu; chunk %s\n",
		       c->esc, (unsigned long long)c->st.lines, (unsigned long long)c->st.events,
		       (unsigned long long)c->st.malformed, agg_table_name[AGG_EVENT],
		       agg_rows(d->agg, AGG_EVENT), agg_table_name[AGG_RELAY],
		       agg_rows(d->agg, AGG_RELAY), agg_table_name[AGG_DENIED],
		       agg_rows(d->agg, AGG_DENIED), c->id);
		d->st->ingested++;
		return;
	}
	if (ensure_db(d) != 0) {
		return;
	}
	dc.id_hex = c->id;
	dc.host = (struct span){c->m.host, strlen(c->m.host)};
	dc.source = (struct span){c->m.source, strlen(c->m.source)};
	dc.st = &c->st;
	/* A pack's files go into the ledger each under its own identity as well. */
	char part_ids[MANIFEST_PARTS_MAX][DIGEST_HEX_LEN + 1];
	for (unsigned i = 0; i < c->m.nparts; i++) {
		if (manifest_part_id(&c->m, i, part_ids[i]) != 0) {
			d->st->failed++;
			return;
		}
	}
	dc.part_ids = part_ids;
	dc.nparts = c->m.nparts;
	res = db_ingest_chunk(d->db, &dc, d->agg);
	if (res == DB_ERROR || res == DB_UNAVAILABLE) {
		/*
		 * Leave the claim in work/ (unlocked once we close it): the next run retries. The
		 * database layer logged the one error line (naming the chunk's source); this is
		 * detail for --verbose, not a second line in the cron mail.
		 */
		log_info("%s: not ingested; it stays in work/ for the next run", c->esc);
		d->db_failed = true;
		return;
	}
	crashpoint("run-after-commit");
	if (res == DB_DUPLICATE) {
		log_info("%s: already ingested (chunk %.12s...)", c->esc, c->id);
		d->st->duplicates++;
	} else {
		scan_report_malformed(c->esc, &c->st);
		log_info("%s: %llu lines, %llu events, %llu malformed", c->esc,
			 (unsigned long long)c->st.lines, (unsigned long long)c->st.events,
			 (unsigned long long)c->st.malformed);
		d->st->ingested++;
	}
	finish(d, c);
}

/* --- claiming --- */

/*
 * A manifest that cannot be locked (symlink, FIFO, directory) is still a complete upload that
 * will never become valid: move it aside, once, instead of warning about it on every run.
 */
static void quarantine_unopenable(struct drain *d, int from_fd, struct chunk *c, const char *why)
{
	if (d->o->dry_run) {
		printf("%s: would quarantine: %s\n", c->esc, why);
		d->st->quarantined++;
		return;
	}
	if (move(from_fd, d->quar_fd, c->manifest, false) != 0) {
		if (errno != ENOENT) {
			log_error("%s: cannot move to quarantine/: %s", c->esc, strerror(errno));
			d->st->failed++;
		}
		return;
	}
	log_error("%s: quarantined: %s", c->esc, why);
	d->st->quarantined++;
	write_why(d, c, why);
	fsync_dir(d->quar_fd, "quarantine/");
}

/* Opens and locks a manifest. fd, or -1 when it is not ours to take (nothing to do). */
static int open_locked(struct drain *d, int dir_fd, struct chunk *c)
{
	struct stat sb, now;
	int fd;

	fd = openat(dir_fd, c->manifest, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP) {
			quarantine_unopenable(d, dir_fd, c, "the manifest is a symlink");
		} else if (errno != ENOENT) { /* ENOENT: another ingester took it */
			log_error("%s: %s", c->esc, strerror(errno));
			d->st->failed++;
		}
		return -1;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		quarantine_unopenable(d, dir_fd, c, "the manifest is not a regular file");
		return -1;
	}
	if (d->o->dry_run) {
		return fd;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		/* EWOULDBLOCK: another ingester holds it. */
		if (errno != EWOULDBLOCK) {
			log_error("%s: flock: %s", c->esc, strerror(errno));
			d->st->failed++;
		}
		close(fd);
		return -1;
	}
	/*
	 * Between our open and our lock its owner may have finished it (and moved it on): only
	 * the file that the name still denotes is the one we locked.
	 */
	if (fstatat(dir_fd, c->manifest, &now, AT_SYMLINK_NOFOLLOW) != 0 ||
	    now.st_dev != sb.st_dev || now.st_ino != sb.st_ino) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Claims incoming/NAME.manifest: lock, then rename into work/. */
static int claim(struct drain *d, struct chunk *c)
{
	struct stat sb, now;
	int fd;

	fd = open_locked(d, d->in_fd, c);
	if (fd < 0) {
		return -1;
	}
	/* A claim of the same name is in progress elsewhere: never rename over it. */
	if (fstatat(d->work_fd, c->manifest, &now, AT_SYMLINK_NOFOLLOW) == 0) {
		close(fd);
		return -1;
	}
	if (renameat(d->in_fd, c->manifest, d->work_fd, c->manifest) != 0) {
		if (errno != ENOENT) {
			log_error("%s: cannot move to work/: %s", c->esc, strerror(errno));
			d->st->failed++;
		}
		close(fd);
		return -1;
	}
	if (fstat(fd, &sb) != 0 ||
	    fstatat(d->work_fd, c->manifest, &now, AT_SYMLINK_NOFOLLOW) != 0 ||
	    now.st_dev != sb.st_dev || now.st_ino != sb.st_ino) {
		/* Someone swapped the file under us; leave it for the takeover of a later run. */
		close(fd);
		return -1;
	}
	/* The chunk follows its manifest (it may already be there after a crash). */
	crashpoint("run-claim");
	if (move(d->in_fd, d->work_fd, c->gz, true) != 0) {
		log_error("%s: cannot move %s to work/: %s", c->esc, c->gz, strerror(errno));
		d->st->failed++;
		close(fd);
		return -1;
	}
	return fd;
}

static int drain_dir(struct drain *d, bool takeover)
{
	int dir_fd = takeover ? d->work_fd : d->in_fd;
	char **names = NULL;
	size_t n = 0, i;
	struct chunk *c = NULL;
	int ret = -1;

	if (dir_fd < 0) {
		return 0; /* dry run without a work/ directory */
	}
	if (list_manifests(dir_fd, takeover ? "work/" : d->o->incoming, &names, &n) != 0) {
		goto out;
	}
	c = malloc(sizeof(*c));
	if (c == NULL) {
		log_error("out of memory");
		goto out;
	}
	for (i = 0; i < n && !d->db_failed; i++) {
		chunk_names(c, names[i]);
		if (d->o->dry_run) {
			c->mfd = open_locked(d, dir_fd, c);
			c->dir_fd = dir_fd;
		} else if (takeover) {
			c->mfd = open_locked(d, d->work_fd, c);
			c->dir_fd = d->work_fd;
			if (c->mfd >= 0) {
				log_info("%s: taking over an interrupted claim", c->esc);
				/* Its claimer may have died before NAME.gz followed the manifest.
				 */
				if (move(d->in_fd, d->work_fd, c->gz, true) != 0) {
					log_error("%s: cannot move %s to work/: %s", c->esc, c->gz,
						  strerror(errno));
					d->st->failed++;
					close(c->mfd);
					continue;
				}
			}
		} else {
			c->mfd = claim(d, c);
			c->dir_fd = d->work_fd;
		}
		if (c->mfd < 0) {
			continue;
		}
		process(d, c);
		/* Closing releases the lock, after the manifest has left work/ (or on failure). */
		close(c->mfd);
	}
	ret = 0;

out:
	free(c);
	names_free(names, n);
	return ret;
}

enum drain_result drain_run(const struct drain_opts *o, struct drain_stats *st)
{
	struct drain d = {
		.o = o, .st = st, .in_fd = -1, .work_fd = -1, .archive_fd = -1, .quar_fd = -1};
	enum drain_result ret = DRAIN_SETUP;
	bool create = !o->dry_run;

	memset(st, 0, sizeof(*st));
	const char *tz = getenv("TZ");
	if (tz != NULL && (d.run_tz = strdup(tz)) == NULL) {
		log_error("out of memory");
		goto out;
	}
	d.in_fd = open(o->incoming, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d.in_fd < 0) {
		log_error("%s: %s", o->incoming, strerror(errno));
		goto out;
	}
	/* The first failure stops: one problem (a full disk, a planted symlink), one line. */
	d.work_fd = subdir_open(d.in_fd, o->incoming, "work", create);
	if (d.work_fd != -1 && o->archive) {
		d.archive_fd = subdir_open(d.in_fd, o->incoming, "archive", create);
	}
	if (d.work_fd != -1 && (d.archive_fd != -1 || !o->archive)) {
		d.quar_fd = subdir_open(d.in_fd, o->incoming, "quarantine", create);
	}
	if (d.work_fd == -1 || (d.archive_fd == -1 && o->archive) || d.quar_fd == -1) {
		goto out;
	}
	d.agg = agg_create();
	if (d.agg == NULL) {
		log_error("out of memory");
		goto out;
	}
	ret = DRAIN_FAILED;
	/* Stale claims first: they are the oldest work, and a crash must not delay them. */
	if (drain_dir(&d, true) != 0 || (!d.db_failed && drain_dir(&d, false) != 0)) {
		goto out;
	}
	if (d.db_failed) {
		ret = DRAIN_DB;
	} else if (st->quarantined == 0 && st->failed == 0) {
		ret = DRAIN_OK;
	}

out:
	if (d.moved && ((o->archive && fsync_dir(d.archive_fd, "archive/") != 0) ||
			fsync_dir(d.work_fd, "work/") != 0)) {
		ret = ret == DRAIN_OK ? DRAIN_FAILED : ret;
	}
	if (d.db_failed) {
		ret = d.db_config_bad ? DRAIN_SETUP : DRAIN_DB;
	}
	agg_destroy(d.agg);
	db_destroy(d.db);
	free(d.run_tz);
	if (d.quar_fd >= 0) {
		close(d.quar_fd);
	}
	if (d.archive_fd >= 0) {
		close(d.archive_fd);
	}
	if (d.work_fd >= 0) {
		close(d.work_fd);
	}
	if (d.in_fd >= 0) {
		close(d.in_fd);
	}
	return ret;
}

/* --- the command --- */

static const char usage_run[] =
	"usage: relaywatch-ingest run [OPTIONS]\n"
	"\n"
	"Drains the drop directory that relaywatch-ship uploads into: verifies each complete\n"
	"chunk against its manifest, counts it exactly once, then archives (or deletes) it. Bad\n"
	"chunks go to quarantine/ with a NAME.why file. Meant for cron: silent on success.\n"
	"\n"
	"  -c, --config FILE     ingester config (default " INGEST_CONFIG_DEFAULT
	", if it exists)\n"
	"  --defaults-file=FILE  MySQL option file with the credentials ([client], [relaywatch])\n"
	"  --incoming DIR        the drop directory\n"
	"  -n, --dry-run         check the waiting chunks and print what would happen; no\n"
	"                        database, nothing moved\n"
	"  -v, --verbose         say what was done\n"
	"  -q, --quiet           only warnings and errors\n"
	"  -h, --help            this text\n"
	"  -V, --version         the program's version\n"
	"\n"
	"Exit status: 0 all done, 1 some chunks quarantined or failed, 2 usage or config error,\n"
	"3 database error (the chunk stays in work/ and is retried by the next run).\n";

enum {
	OPT_DEFAULTS_FILE = 256,
	OPT_INCOMING,
};

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"defaults-file", required_argument, NULL, OPT_DEFAULTS_FILE},
		{"incoming", required_argument, NULL, OPT_INCOMING},
		{"dry-run", no_argument, NULL, 'n'},
		{"verbose", no_argument, NULL, 'v'},
		{"quiet", no_argument, NULL, 'q'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct ingest_config cfg;
	struct drain_opts o = {0};
	struct drain_stats st;
	const char *config = NULL, *defaults_file = NULL, *incoming = NULL;
	int c, ret;

	while ((c = getopt_long(argc, argv, ":c:nvqhV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case OPT_DEFAULTS_FILE:
			defaults_file = optarg;
			break;
		case OPT_INCOMING:
			incoming = optarg;
			break;
		case 'n':
			o.dry_run = true;
			break;
		default:
			switch (cmd_option(c, argv, usage_run)) {
			case CMD_OPT_NEXT:
				continue;
			case CMD_OPT_DONE:
				return CMD_OK;
			default:
				return CMD_USAGE;
			}
		}
	}
	ingest_config_init(&cfg);
	if (cmd_setup(argc, argv, config, &cfg, &defaults_file) != 0) {
		ret = CMD_USAGE;
		goto out;
	}
	o.verbose = log_get_level() >= LOG_INFO;
	o.incoming = incoming ? incoming : cfg.incoming;
	o.defaults_file = defaults_file;
	o.archive = cfg.archive;
	o.progress = log_get_level() >= LOG_NOTICE && isatty(STDERR_FILENO);
	if (o.incoming == NULL) {
		log_error("no drop directory: give --incoming DIR or set 'incoming' in %s",
			  config ? config : INGEST_CONFIG_DEFAULT);
		ret = CMD_USAGE;
		goto out;
	}
	if (ingest_tz_set(cfg.tz) != 0) {
		ret = CMD_USAGE;
		goto out;
	}
	switch (drain_run(&o, &st)) {
	case DRAIN_OK:
		ret = CMD_OK;
		break;
	case DRAIN_FAILED:
		ret = CMD_FAILED;
		break;
	case DRAIN_SETUP:
		ret = CMD_USAGE;
		break;
	case DRAIN_DB:
	default:
		ret = CMD_DB;
		break;
	}
	log_info("%u ingested, %u already ingested, %u quarantined, %u failed", st.ingested,
		 st.duplicates, st.quarantined, st.failed);
	if (fflush(stdout) != 0 && ret == CMD_OK) {
		ret = CMD_FAILED;
	}

out:
	ingest_config_finish(&cfg);
	return ret;
}
