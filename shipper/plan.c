#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "run.h"

/*
 * Which of two files with the same content to read: the live one, and plain over gzip (cheaper;
 * a .gz may still be being written by logrotate). A rotated twin of the live file is a copy
 * (logrotate's copy or copytruncate) that may still be being written: read to its end now, it
 * could end mid-line and be marked done while the rest of its lines were still to come. The live
 * file is read only to its last complete line, and whatever the copy holds beyond that is
 * shipped from the copy once the live file has moved on.
 */
static bool better_file(const struct source_file *a, const struct source_file *b)
{
	if (a->live != b->live) {
		return a->live;
	}
	return !a->gz && b->gz;
}

/* Decides what this run ships of the job's file. Returns whether there is anything. */
static bool plan_entry(struct run *r, struct job *j)
{
	struct ship_entry *e = j->entry;
	const struct source_file *f = j->file;
	if (!e->done && !f->live && !f->gz && e->nbounds == 0 && e->offset >= f->size) {
		/* Shipped to its end while it was live: nothing left, ever. */
		ship_entry_advance(e, e->offset, true);
		r->dirty = true;
	}
	if (e->done) {
		/*
		 * A copy was shipped to its end while its original was out of sight, and the
		 * original goes on under the same first line: what it gained since is new.
		 */
		if (!f->live || f->line_end <= e->offset) {
			return false;
		}
		ship_entry_reopen(e);
	}
	ship_entry_plan_begin(e, r->cfg->max_chunk);
	if (!f->live) {
		ship_entry_plan(e, SHIP_STATE_EOF); /* unless planned already */
		return e->nbounds > 0;
	}
	if (f->gz) {
		log_warn("%s: the live file is gzip-compressed: not shipped", f->path);
		return false;
	}
	/* Live again after being seen finished cannot happen; never read a live file to EOF. */
	ship_entry_drop_eof(e);
	uint64_t last = ship_entry_planned_end(e);
	if (f->size < last) {
		log_warn("%s: %" PRIu64 " bytes, less than the %" PRIu64
			 " already shipped or planned: truncated in place; shipping it from the "
			 "start",
			 f->path, f->size, last);
		ship_entry_reset(e, 0);
		ship_entry_plan_begin(e, r->cfg->max_chunk);
	}
	ship_entry_plan(e, f->line_end);
	return e->nbounds > 0;
}

int plan_run(struct run *r)
{
	const struct ship_config *cfg = r->cfg;
	int64_t now = (int64_t)time(NULL);

	for (size_t s = 0; s < cfg->nsources; s++) {
		if (sources_discover(&cfg->sources[s], &r->files) != 0) {
			r->failed = true;
		}
	}
	r->jobs = calloc(r->files.n ? r->files.n : 1, sizeof(*r->jobs));
	if (!r->jobs) {
		log_error("out of memory");
		return -1;
	}
	for (size_t i = 0; i < r->files.n; i++) {
		struct source_file *f = &r->files.v[i];
		if (sources_fingerprint(f) != 0) {
			r->failed = true;
			continue;
		}
		if (!f->has_fpr) {
			continue;
		}
		/* The same content under several names (rotation under way, a source listed
		 * twice): one job, at the place of its first name. */
		struct job *same = NULL;
		for (size_t k = 0; k < r->njobs && !same; k++) {
			if (memcmp(r->jobs[k].file->fpr, f->fpr, DIGEST_LEN) == 0) {
				same = &r->jobs[k];
			}
		}
		if (same) {
			if (better_file(f, same->file)) {
				same->file = f;
			}
			continue;
		}
		r->jobs[r->njobs++] =
			(struct job){.file = f, .first_rec = SIZE_MAX, .last_rec = SIZE_MAX};
	}
	size_t keep = 0;
	for (size_t i = 0; i < r->njobs; i++) {
		struct job *j = &r->jobs[i];
		j->entry = ship_state_add(&r->st, j->file->fpr);
		if (!j->entry) {
			return -1;
		}
		if (ship_entry_seen(j->entry, now)) {
			r->dirty = true;
		}
		if (plan_entry(r, j)) {
			r->jobs[keep++] = *j;
		}
	}
	r->njobs = keep;
	return 0;
}
