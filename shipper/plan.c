#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "run.h"
#include "ship.h"

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

/*
 * Whether the job's file may join a new pack: finished, plain, with a small rest to ship and no
 * plan from an earlier run (whose chunks may have been delivered already), and ending with '\n':
 * the first line of the next member would otherwise continue its last line, and the pack would
 * be read differently from the files shipped alone. That byte is read (sources_ends_nl) only for
 * a file that passes every other test.
 */
static bool packable(const struct run *r, const struct job *j)
{
	const struct ship_entry *e = j->entry;
	const struct source_file *f = j->file;
	return j->fresh && !f->live && !f->gz && !e->packed && e->nbounds == 1 &&
	       e->bounds[0] == SHIP_STATE_EOF && f->size > e->offset &&
	       f->size - e->offset < r->cfg->coalesce_below && sources_ends_nl(f);
}

/* Makes the files of v[0..n) one pack, in that order (a single file stays a plain chunk). */
static void pack_make(struct run *r, const size_t *v, size_t n)
{
	if (n < 2) {
		return;
	}
	uint8_t id[DIGEST_LEN];
	memcpy(id, r->jobs[v[0]].entry->fpr, DIGEST_LEN);
	for (size_t k = 0; k < n; k++) {
		struct ship_entry *e = r->jobs[v[k]].entry;
		ship_entry_reset(e, e->offset);
		ship_entry_plan_begin(e, r->cfg->max_chunk);
		ship_entry_pack(e, id, (unsigned)k);
	}
}

/*
 * New packs from the files that may join one: in file order, within one source, each up to
 * max_chunk bytes and PACK_FILES_MAX files.
 */
static void plan_new_packs(struct run *r)
{
	size_t v[PACK_FILES_MAX];
	size_t n = 0;
	uint64_t total = 0;
	const struct ship_source *src = NULL;
	if (r->cfg->coalesce_below == 0) {
		return;
	}
	for (size_t i = 0; i < r->njobs; i++) {
		const struct job *j = &r->jobs[i];
		if (!packable(r, j)) {
			continue;
		}
		uint64_t rest = j->file->size - j->entry->offset;
		if (n > 0 && (j->file->source != src || total + rest > r->cfg->max_chunk ||
			      n == PACK_FILES_MAX)) {
			pack_make(r, v, n);
			n = 0;
			total = 0;
		}
		src = j->file->source;
		v[n++] = i;
		total += rest;
	}
	pack_make(r, v, n);
}

/* An item (a file, a job) under a digest (a fingerprint, a pack), for grouping by sorting. */
struct by_digest {
	const uint8_t *key;
	size_t order; /* within the group */
	size_t item;
};

static int cmp_by_digest(const void *a, const void *b)
{
	const struct by_digest *x = a;
	const struct by_digest *y = b;
	int c = memcmp(x->key, y->key, DIGEST_LEN);
	if (c != 0) {
		return c;
	}
	return x->order < y->order ? -1 : x->order > y->order;
}

/* Sorts v[0..n) by key, then order (qsort(NULL, 0, ...) is undefined). */
static void by_digest_sort(struct by_digest *v, size_t n)
{
	if (n > 0) {
		qsort(v, n, sizeof(*v), cmp_by_digest);
	}
}

static bool same_key(const struct by_digest *v, size_t k)
{
	return k > 0 && memcmp(v[k - 1].key, v[k].key, DIGEST_LEN) == 0;
}

/*
 * Chains the members of each pack, planned now or by an earlier run, in pack order; the first
 * one present ships the pack. A member whose file is gone is left out: the pack it makes then
 * is never counted with the one it was planned as (see README, "Exactly once").
 */
static int plan_chain_packs(struct run *r)
{
	struct by_digest *m = malloc((r->njobs ? r->njobs : 1) * sizeof(*m));
	size_t n = 0;
	if (!m) {
		log_error("out of memory");
		return -1;
	}
	for (size_t i = 0; i < r->njobs; i++) {
		struct job *j = &r->jobs[i];
		j->pack_next = SIZE_MAX;
		if (j->entry->packed) {
			m[n++] = (struct by_digest){j->entry->pack, j->entry->pack_index, i};
		}
	}
	by_digest_sort(m, n);
	for (size_t k = 0; k < n; k++) {
		struct job *j = &r->jobs[m[k].item];
		bool first = !same_key(m, k);
		j->in_pack = true;
		j->pack_head = first;
		if (!first) {
			r->jobs[m[k - 1].item].pack_next = m[k].item;
		}
	}
	free(m);
	return 0;
}

/*
 * Makes r->jobs of the fingerprinted files: the same content under several names (rotation under
 * way, a source listed twice) is one job, at the place of its first name, reading the
 * better_file() of them. Grouped by sorting, not by comparing each file with the jobs so far: a
 * backlog of thousands of multilog files stays n log n.
 */
static int plan_jobs(struct run *r)
{
	size_t nf = r->files.n ? r->files.n : 1, n = 0;
	struct by_digest *v = malloc(nf * sizeof(*v));
	struct source_file **pick = calloc(nf, sizeof(*pick));
	int ret = -1;
	if (!v || !pick) {
		log_error("out of memory");
		goto out;
	}
	for (size_t i = 0; i < r->files.n; i++) {
		if (r->files.v[i].has_fpr) {
			v[n++] = (struct by_digest){r->files.v[i].fpr, i, i};
		}
	}
	by_digest_sort(v, n);
	for (size_t k = 0, first = 0; k < n; k++) {
		struct source_file *f = &r->files.v[v[k].item];
		if (!same_key(v, k)) {
			first = v[k].item;
			pick[first] = f;
		} else if (better_file(f, pick[first])) {
			pick[first] = f;
		}
	}
	for (size_t i = 0; i < r->files.n; i++) {
		if (pick[i]) {
			r->jobs[r->njobs++] = (struct job){
				.file = pick[i], .first_rec = SIZE_MAX, .last_rec = SIZE_MAX};
		}
	}
	ret = 0;
out:
	free(v);
	free(pick);
	return ret;
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
		if (sources_fingerprint(&r->files, &r->files.v[i]) != 0) {
			r->failed = true;
		}
	}
	if (plan_jobs(r) != 0) {
		return -1;
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
		j->fresh = j->entry->nbounds == 0 && !j->entry->done;
		if (plan_entry(r, j)) {
			r->jobs[keep++] = *j;
		}
	}
	r->njobs = keep;
	plan_new_packs(r);
	return plan_chain_packs(r);
}
