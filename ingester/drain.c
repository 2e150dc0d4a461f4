#include "drain.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agg.h"
#include "crashpoint.h"
#include "db.h"
#include "digest.h"
#include "dropdir.h"
#include "log.h"
#include "manifest.h"
#include "overlap.h"
#include "scan.h"
#include "verify.h"

/* Room for NAME + the longest suffix + NUL. */
#define NAME_BUF (MANIFEST_NAME_MAX + 16)

struct drain {
	const struct drain_opts *o;
	struct drain_stats *st;
	struct verify_opts vo;
	int in_fd, work_fd, archive_fd, quar_fd;
	struct db *db;
	/* The database writer beside the scans (overlap.c), made with the connection. */
	struct overlap *ov;
	/* Two chunks, each with its own aggregate table: one scanned while the other is written. */
	struct chunk *chunks;
	/* The chunk whose ingest the writer is finishing while the next one is read, or NULL. */
	struct chunk *pending;
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
	char takeover[NAME_BUF];          /* NAME.takeover */
	char esc[LOG_ESCAPE_SIZE];
	int mfd;      /* the manifest, flock'ed unless dry run */
	int dir_fd;   /* where manifest and gz are: work/ (incoming/ in a dry run) */
	bool reading; /* NAME.takeover stands in work/ while this takeover reads the chunk */
	struct manifest m;
	struct agg *agg;
	struct scan_stats st;
	unsigned long batches; /* written while it was scanned */
	char id[DIGEST_HEX_LEN + 1];
	/* Its ledger rows: the chunk's, and each of a pack's files under its own identity. */
	struct db_chunk dc;
	char part_ids[MANIFEST_PARTS_MAX][DIGEST_HEX_LEN + 1];
	bool counted[MANIFEST_PARTS_MAX];
};

static void chunk_names(struct chunk *c, const char *manifest_name)
{
	size_t n = strlen(manifest_name) - strlen(DROPDIR_MANIFEST);

	memcpy(c->base, manifest_name, n);
	c->base[n] = '\0';
	snprintf(c->manifest, sizeof(c->manifest), "%s%s", c->base, DROPDIR_MANIFEST);
	snprintf(c->gz, sizeof(c->gz), "%s%s", c->base, DROPDIR_GZ);
	snprintf(c->takeover, sizeof(c->takeover), "%s%s", c->base, DROPDIR_TAKEOVER);
	/* Valid names are printable already; escape anyway, it costs nothing. */
	log_escape(c->esc, sizeof(c->esc), c->base, n);
	c->reading = false;
}

/* --- quarantine and archive --- */

/* The takeover is done reading the chunk (see takeover_start). */
static void reading_done(struct drain *d, struct chunk *c)
{
	if (c->reading) {
		unlinkat(d->work_fd, c->takeover, 0);
		c->reading = false;
	}
}

/* Writes quarantine/NAME.why; false after logging why it could not. */
static bool write_why(struct drain *d, const struct chunk *c, const char *why)
{
	char name[NAME_BUF];

	snprintf(name, sizeof(name), "%s%s", c->base, DROPDIR_WHY);
	if (dropdir_write_note(d->quar_fd, name, why) != 0) {
		log_error("%s: quarantine/%s: %s", d->o->incoming, name, strerror(errno));
		return false;
	}
	return true;
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
	ok = write_why(d, c, why);
	reading_done(d, c);
	if (dropdir_move(d->work_fd, d->quar_fd, c->gz, true) != 0) {
		log_error("%s: cannot move %s to quarantine/: %s", c->esc, c->gz, strerror(errno));
		ok = false;
	} else if (dropdir_move(d->work_fd, d->quar_fd, c->manifest, false) != 0) {
		log_error("%s: cannot move %s to quarantine/: %s", c->esc, c->manifest,
			  strerror(errno));
		ok = false;
	} else if (dropdir_fsync(d->quar_fd, "quarantine/") != 0 ||
		   dropdir_fsync(d->work_fd, "work/") != 0) {
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
		if (dropdir_move(d->work_fd, d->archive_fd, c->gz, true) != 0) {
			log_error("%s: cannot move %s to archive/: %s", c->esc, c->gz,
				  strerror(errno));
			goto fail;
		}
		/* A crash here leaves the claim without NAME.gz; the next run completes it. */
		crashpoint("run-archive");
		if (dropdir_move(d->work_fd, d->archive_fd, c->manifest, false) != 0) {
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

/* --- ingesting one chunk --- */

/*
 * Connects when the first chunk needs the database, and starts its writer. -1 when it cannot:
 * the run stops (db_failed), or, out of memory, the chunk fails.
 */
static int ensure_db(struct drain *d)
{
	int r;

	if (d->db == NULL) {
		r = d->o->connect(d->o->connect_arg, &d->db);
		if (r != DRAIN_OK) {
			d->db = NULL;
			d->db_failed = true;
			d->db_config_bad = r == DRAIN_SETUP;
			return -1;
		}
	}
	if (d->ov == NULL && (d->ov = overlap_create(d->db)) == NULL) {
		d->st->failed++;
		return -1;
	}
	return 0;
}

/*
 * A pack some of whose files another chunk counted (a pack rebuilt without a file deleted
 * since, ingested first): reads it again, still verified whole, but counts only the others.
 * false after counting the failure (the claim stays in work/ for the next run).
 */
static bool rescan_partial(struct drain *d, struct chunk *c)
{
	char why[1024] = "";
	unsigned skipped = 0;

	for (unsigned i = 0; i < c->m.nparts; i++) {
		skipped += c->counted[i];
	}
	log_info("%s: %u of its %u files were counted by another chunk: counting the other %u",
		 c->esc, skipped, c->m.nparts, c->m.nparts - skipped);
	if (verify_chunk(c->dir_fd, c->gz, c->esc, &c->m, c->counted, &d->vo, d->ov, c->agg, &c->st,
			 why, sizeof(why)) != VERIFY_OK) {
		/* The same bytes verified a moment ago: whatever changed, let the next run judge.
		 */
		log_error("%s: reading it again failed%s%s", c->esc, why[0] ? ": " : "", why);
		d->st->failed++;
		return false;
	}
	return true;
}

/*
 * Collects the ingest of the pending chunk, which the writer finished while the next chunk was
 * being read, and moves the chunk out of work/ once it is counted. Then its lock goes. next is
 * that next chunk, read and not yet handed over (NULL when none is): the rows its scan streamed
 * may be rolled back here.
 */
static void settle(struct drain *d, struct chunk *next)
{
	struct chunk *c = d->pending;
	enum db_result res;

	if (c == NULL) {
		return;
	}
	d->pending = NULL;
	res = overlap_ingest_wait(d->ov);
	if (res == DB_PARTIAL) {
		/*
		 * This chunk needs the connection again: what the next chunk's scan streamed
		 * meanwhile is rolled back, and that chunk is written whole after this one.
		 */
		overlap_abort(d->ov);
		/* --verbose must not report its batches as written: none of them is now. */
		if (next != NULL) {
			log_info("%s: %lu batches written while scanning, rolled back: it is "
				 "written whole after %s",
				 next->esc, next->batches, c->esc);
			next->batches = 0;
		}
	}
	/* Each round finds more files counted, so this ends (at most nparts rounds). */
	while (res == DB_PARTIAL) {
		if (!rescan_partial(d, c)) {
			goto out;
		}
		/* The batches of its first scan went with the rollback: this scan's are written. */
		c->batches = overlap_batches(d->ov);
		res = overlap_ingest(d->ov, &c->dc, c->agg);
	}
	if (res == DB_ERROR || res == DB_UNAVAILABLE) {
		/*
		 * Leave the claim in work/ (unlocked once we close it): the next run retries. The
		 * database layer logged the one error line (naming the chunk's source); this is
		 * detail for --verbose, not a second line in the cron mail.
		 */
		log_info("%s: not ingested; it stays in work/ for the next run", c->esc);
		d->db_failed = true;
		goto out;
	}
	crashpoint("run-after-commit");
	if (res == DB_DUPLICATE) {
		log_info(
			"%s: already ingested (chunk %.12s...; %lu batches written while scanning, "
			"rolled back)",
			c->esc, c->id, c->batches);
		d->st->duplicates++;
	} else {
		scan_report_malformed(c->esc, &c->st);
		log_info("%s: %llu lines, %llu events, %llu malformed (%lu batches written while "
			 "scanning)",
			 c->esc, (unsigned long long)c->st.lines, (unsigned long long)c->st.events,
			 (unsigned long long)c->st.malformed, c->batches);
		d->st->ingested++;
	}
	finish(d, c);

out:
	/* Its table may be large: give the memory back before the next chunk grows the other. */
	agg_reset(c->agg);
	/* Closing releases the lock, after the manifest has left work/ (or on failure). */
	close(c->mfd);
	c->mfd = -1;
}

/*
 * NAME.gz is gone but the claim stands: a run that crashed after archiving (or deleting)
 * NAME.gz, or half-way through quarantining it. The ledger says whether it was counted.
 */
static void process_missing(struct drain *d, struct chunk *c)
{
	struct stat sb;
	int e;

	digest_hex(c->m.sha256, c->id);
	if (d->o->dry_run) {
		printf("%s: %s missing\n", c->esc, c->gz);
		return;
	}
	if (fstatat(d->quar_fd, c->gz, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		log_error("%s: quarantined (by an interrupted run, see quarantine/%s%s)", c->esc,
			  c->base, DROPDIR_WHY);
		d->st->quarantined++;
		if (dropdir_move(d->work_fd, d->quar_fd, c->manifest, false) != 0) {
			log_error("%s: cannot move %s to quarantine/: %s", c->esc, c->manifest,
				  strerror(errno));
			d->st->failed++;
		}
		return;
	}
	/* The connection is the writer's while it finishes the previous chunk. */
	settle(d, NULL);
	if (d->db_failed || ensure_db(d) != 0) {
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
}

/*
 * Works on a claimed chunk (c->mfd locked, both files in work/). A chunk that is to be counted is
 * left pending (d->pending): the writer commits it while the caller claims and reads the next
 * one, and settle() moves it on.
 */
static void process(struct drain *d, struct chunk *c, bool takeover)
{
	enum verify_result v;
	char why[1024];

	memset(c->counted, 0, sizeof(c->counted));
	v = verify_manifest(c->mfd, c->manifest, c->gz, &d->vo, &c->m, why, sizeof(why));
	for (unsigned i = 0; v == VERIFY_OK && i < c->m.nparts; i++) {
		/* Distinct: verify_manifest refused a repeated part. */
		if (manifest_part_id(&c->m, i, c->part_ids[i]) != 0) {
			v = VERIFY_LOCAL;
		}
	}
	/* The rows go to the database while the chunk is read: connect first. */
	if (v == VERIFY_OK && !d->o->dry_run && ensure_db(d) != 0) {
		reading_done(d, c);
		return;
	}
	if (v == VERIFY_OK) {
		/* A dry run writes nothing: its scan only counts, streaming no rows. */
		struct overlap *stream_to = d->o->dry_run ? NULL : d->ov;
		v = verify_chunk(c->dir_fd, c->gz, c->esc, &c->m, NULL, &d->vo, stream_to, c->agg,
				 &c->st, why, sizeof(why));
	}
	/* Whatever came of it, reading did not kill us. */
	reading_done(d, c);
	switch (v) {
	case VERIFY_OK:
		break;
	case VERIFY_BAD:
		quarantine(d, c, "%s", why);
		return;
	case VERIFY_MISSING:
		process_missing(d, c);
		return;
	case VERIFY_LOCAL:
	default:
		d->st->failed++;
		return;
	}
	digest_hex(c->st.sha256, c->id);
	if (d->o->dry_run) {
		scan_report_malformed(c->esc, &c->st);
		printf("%s: would ingest: %llu lines, %llu events, %llu malformed; rows: %s %zu, "
		       "%s %zu, %s %zu; chunk %s\n",
		       c->esc, (unsigned long long)c->st.lines, (unsigned long long)c->st.events,
		       (unsigned long long)c->st.malformed, agg_table_name[AGG_EVENT],
		       agg_rows(c->agg, AGG_EVENT), agg_table_name[AGG_RELAY],
		       agg_rows(c->agg, AGG_RELAY), agg_table_name[AGG_DENIED],
		       agg_rows(c->agg, AGG_DENIED), c->id);
		d->st->ingested++;
		return;
	}
	c->batches = overlap_batches(d->ov);
	c->dc = (struct db_chunk){
		.id_hex = c->id,
		.host = {c->m.host, strlen(c->m.host)},
		.source = {c->m.source, strlen(c->m.source)},
		.st = &c->st,
		.part_ids = c->part_ids,
		.nparts = c->m.nparts,
		.counted = c->counted,
	};
	/*
	 * NAME.takeover must stand only while its own chunk is read, so that a kill is blamed on
	 * the chunk being read: a takeover is committed before the next claim is read. A big table
	 * is committed before the next one grows beside it: memory stays about max_keys rows.
	 */
	bool alone = takeover || agg_rows_total(c->agg) > d->vo.max_keys / 8;
	/* The previous chunk is committed (and moved on) before this one. */
	settle(d, c);
	if (d->db_failed) {
		/* The run stops; this claim stays too, what it streamed rolled back. */
		overlap_abort(d->ov);
		log_info("%s: not ingested; it stays in work/ for the next run", c->esc);
		return;
	}
	overlap_ingest_start(d->ov, &c->dc, c->agg);
	d->pending = c;
	if (alone) {
		settle(d, NULL);
	}
}

/* --- claiming --- */

/* Opens and locks a manifest. fd, or -1 when it is not ours to take (nothing to do). */
static int open_locked(struct drain *d, int dir_fd, struct chunk *c)
{
	struct stat sb, now;
	int fd;

	fd = openat(dir_fd, c->manifest, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		/* ENOENT: another ingester took it; ELOOP: swapped for a symlink since listed. */
		if (errno != ENOENT && errno != ELOOP) {
			log_error("%s: %s", c->esc, strerror(errno));
			d->st->failed++;
		}
		return -1;
	}
	/* Swapped for a directory or a FIFO since it was listed: the next listing reports it. */
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
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
	if (dropdir_move(d->in_fd, d->work_fd, c->gz, true) != 0) {
		log_error("%s: cannot move %s to work/: %s", c->esc, c->gz, strerror(errno));
		d->st->failed++;
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Takes over a stale claim (c->mfd locked in work/). A chunk that gets its ingester killed (by
 * the OOM killer, a crash) would otherwise be taken over first by every later run and kill it
 * again, and ingestion would stop for good. So a takeover leaves NAME.takeover beside the claim
 * while it reads the chunk: finding it, the next takeover knows that this claim was taken over
 * once already and its reader died again, and quarantines the chunk instead. 0 to go on
 * processing, -1 when the chunk was dealt with (quarantined, or not movable).
 */
static int takeover_start(struct drain *d, struct chunk *c)
{
	struct stat sb;
	char text[64];

	log_info("%s: taking over an interrupted claim", c->esc);
	/* Its claimer may have died before NAME.gz followed the manifest. */
	if (dropdir_move(d->in_fd, d->work_fd, c->gz, true) != 0) {
		log_error("%s: cannot move %s to work/: %s", c->esc, c->gz, strerror(errno));
		d->st->failed++;
		return -1;
	}
	if (fstatat(d->work_fd, c->takeover, &sb, AT_SYMLINK_NOFOLLOW) == 0) {
		c->reading = true; /* so that quarantine removes it */
		quarantine(d, c,
			   "the ingester died while reading this chunk twice (its claim was taken "
			   "over once and failed again: killed, out of memory?); not tried again");
		return -1;
	}
	snprintf(text, sizeof(text), "taken over by pid %ld", (long)getpid());
	if (dropdir_write_note(d->work_fd, c->takeover, text) != 0) {
		log_error("%s: work/%s: %s", c->esc, c->takeover, strerror(errno));
		d->st->failed++;
		return -1;
	}
	c->reading = true;
	return 0;
}

static int drain_dir(struct drain *d, bool takeover)
{
	int dir_fd = takeover ? d->work_fd : d->in_fd;
	char **names = NULL;
	size_t n = 0, i;
	struct chunk *c;
	int ret = -1;

	if (dir_fd < 0) {
		return 0; /* dry run without a work/ directory */
	}
	if (dropdir_list(dir_fd, takeover ? "work/" : d->o->incoming,
			 takeover || d->o->dry_run ? -1 : d->quar_fd, &names, &n) != 0) {
		goto out;
	}
	for (i = 0; i < n && !d->db_failed; i++) {
		/* The other one may be pending: its claim stands until it is settled. */
		c = d->pending == &d->chunks[0] ? &d->chunks[1] : &d->chunks[0];
		chunk_names(c, names[i]);
		if (d->o->dry_run) {
			c->mfd = open_locked(d, dir_fd, c);
			c->dir_fd = dir_fd;
		} else if (takeover) {
			c->mfd = open_locked(d, d->work_fd, c);
			c->dir_fd = d->work_fd;
			if (c->mfd >= 0 && takeover_start(d, c) != 0) {
				close(c->mfd);
				continue;
			}
		} else {
			c->mfd = claim(d, c);
			c->dir_fd = d->work_fd;
		}
		if (c->mfd < 0) {
			continue;
		}
		process(d, c, takeover);
		/* A pending claim is closed by settle(); this one releases its lock now. */
		if (d->pending != c) {
			close(c->mfd);
		}
	}
	ret = 0;

out:
	settle(d, NULL);
	dropdir_names_free(names, n);
	return ret;
}

/* Opens work/, archive/ (with archive) and quarantine/; 0, or -1 after logging. */
static int open_subdirs(struct drain *d)
{
	bool create = !d->o->dry_run;

	d->in_fd = open(d->o->incoming, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->in_fd < 0) {
		log_error("%s: %s", d->o->incoming, strerror(errno));
		return -1;
	}
	/* The first failure stops: one problem (a full disk, a planted symlink), one line. */
	d->work_fd = dropdir_sub_open(d->in_fd, d->o->incoming, "work", create);
	if (d->work_fd != -1 && d->o->archive) {
		d->archive_fd = dropdir_sub_open(d->in_fd, d->o->incoming, "archive", create);
	}
	if (d->work_fd != -1 && (d->archive_fd != -1 || !d->o->archive)) {
		d->quar_fd = dropdir_sub_open(d->in_fd, d->o->incoming, "quarantine", create);
	}
	if (d->work_fd == -1 || (d->archive_fd == -1 && d->o->archive) || d->quar_fd == -1) {
		return -1;
	}
	return 0;
}

void drain_close(struct drain_conn *conn)
{
	overlap_destroy(conn->ov);
	db_destroy(conn->db);
	*conn = (struct drain_conn){0};
}

enum drain_result drain_run(const struct drain_opts *o, struct drain_conn *conn,
			    struct drain_stats *st)
{
	struct drain d = {.o = o,
			  .st = st,
			  .in_fd = -1,
			  .work_fd = -1,
			  .archive_fd = -1,
			  .quar_fd = -1,
			  .db = conn->db,
			  .ov = conn->ov};
	enum drain_result ret = DRAIN_SETUP;

	memset(st, 0, sizeof(*st));
	const char *tz = getenv("TZ");
	if (tz != NULL && (d.run_tz = strdup(tz)) == NULL) {
		log_error("out of memory");
		goto out;
	}
	d.vo = (struct verify_opts){
		.bound_host = o->host,
		.max_chunk = o->max_chunk,
		.max_keys = o->max_keys,
		.run_tz = d.run_tz,
		.progress = o->progress,
		.malformed_log_max = o->verbose ? SCAN_SAMPLES : 5,
	};
	if (open_subdirs(&d) != 0) {
		goto out;
	}
	d.chunks = calloc(2, sizeof(*d.chunks));
	if (d.chunks == NULL || (d.chunks[0].agg = agg_create()) == NULL ||
	    (d.chunks[1].agg = agg_create()) == NULL) {
		log_error("out of memory");
		goto out;
	}
	ret = DRAIN_FAILED;
	/* Stale claims first: they are the oldest work, and a crash must not delay them. */
	if (drain_dir(&d, true) != 0 || (!d.db_failed && drain_dir(&d, false) != 0)) {
		goto out;
	}
	/* A database failure sets the result below, with the other ways out. */
	if (!d.db_failed && st->quarantined == 0 && st->failed == 0) {
		ret = DRAIN_OK;
	}

out:
	if (d.moved && ((o->archive && dropdir_fsync(d.archive_fd, "archive/") != 0) ||
			dropdir_fsync(d.work_fd, "work/") != 0)) {
		ret = ret == DRAIN_OK ? DRAIN_FAILED : ret;
	}
	if (d.db_failed) {
		ret = d.db_config_bad ? DRAIN_SETUP : DRAIN_DB;
	}
	/* The next drop directory goes on with the connection, unless it failed. */
	*conn = (struct drain_conn){d.db, d.ov};
	if (d.db_failed) {
		drain_close(conn);
	}
	/*
	 * zone_for left TZ at the last chunk's zone: the next drop directory's run (run.c drains
	 * them in turn) must start from this run's zone, not read another server's dates in it.
	 */
	verify_zone_set(d.run_tz, conn->ov);
	for (int i = 0; d.chunks != NULL && i < 2; i++) {
		agg_destroy(d.chunks[i].agg);
	}
	free(d.chunks);
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
