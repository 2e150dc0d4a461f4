#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "monoclock.h"
#include "run.h"
#include "sftp.h"
#include "upload.h"

/* How often the state file is rewritten while chunks are being delivered. */
#define SAVE_INTERVAL 1.0

size_t delivery_rec_add(struct run *r, size_t ji, uint64_t start)
{
	if (r->nrecs == r->caprecs) {
		size_t cap = r->caprecs ? 2 * r->caprecs : 256;
		struct chunk_rec *v = realloc(r->recs, cap * sizeof(*v));
		if (!v) {
			log_error("out of memory");
			return SIZE_MAX;
		}
		r->recs = v;
		r->caprecs = cap;
	}
	size_t i = r->nrecs++;
	r->recs[i] = (struct chunk_rec){.job = ji, .start = start, .end = start, .next = SIZE_MAX};
	struct job *j = &r->jobs[ji];
	if (j->last_rec != SIZE_MAX) {
		r->recs[j->last_rec].next = i;
	} else {
		j->first_rec = i;
	}
	j->last_rec = i;
	return i;
}

void delivery_advance(struct run *r, size_t ji)
{
	struct job *j = &r->jobs[ji];
	while (j->first_rec != SIZE_MAX && r->recs[j->first_rec].status == CHUNK_DELIVERED) {
		const struct chunk_rec *c = &r->recs[j->first_rec];
		if (c->pack_files > 0) {
			/* Every member is done by the same state save, as they were counted by
			 * the same chunk. */
			for (size_t k = ji; k != SIZE_MAX; k = r->jobs[k].pack_next) {
				ship_entry_advance(r->jobs[k].entry, r->jobs[k].pack_end, true);
			}
		} else {
			ship_entry_advance(j->entry, c->end, c->at_eof);
		}
		r->dirty = true;
		j->first_rec = c->next;
	}
	if (j->first_rec == SIZE_MAX) {
		j->last_rec = SIZE_MAX;
	}
}

void delivery_save(struct run *r, bool force)
{
	double now = monoclock_now();
	if (!r->dirty || (!force && now - r->last_save < SAVE_INTERVAL)) {
		return;
	}
	if (ship_state_save(&r->st, r->state_path) != 0) {
		r->failed = true;
	} else {
		r->dirty = false;
	}
	r->last_save = now;
}

void delivery_take(struct run *r, bool wait)
{
	struct upload_result res;
	if (!r->up) {
		return;
	}
	while (uploader_result(r->up, &res, wait)) {
		struct chunk_rec *c = &r->recs[res.cookie];
		const struct source_file *f = r->jobs[c->job].file;
		if (res.status == UPLOAD_FAILED) {
			c->status = CHUNK_FAILED;
			/* A file that could not be read was reported where it failed; the other
			 * files still go. */
			if (c->aborted) {
				continue;
			}
			r->failed_chunks++;
			/* Whatever failed it (permissions, a full disk, the connection) would
			 * fail the next chunks too: finish what is in flight, start nothing. */
			r->stop = true;
			continue;
		}
		c->status = CHUNK_DELIVERED;
		r->bytes += c->end - c->start;
		/* A pack is named by its first file and its size. */
		char more[48] = "";
		if (c->pack_files > 0) {
			snprintf(more, sizeof(more), " and %u more file(s), packed",
				 c->pack_files - 1);
		}
		if (res.status == UPLOAD_ALREADY) {
			r->already++;
			log_info("%s%s: bytes %" PRIu64 "-%" PRIu64
				 " were delivered to %s by an earlier run",
				 f->path, more, c->start, c->end, sftp_conn_label(r->conn));
		} else {
			r->delivered++;
			log_info("%s%s: shipped bytes %" PRIu64 "-%" PRIu64 " to %s", f->path, more,
				 c->start, c->end, sftp_conn_label(r->conn));
		}
		delivery_advance(r, c->job);
	}
	if (uploader_broken(r->up)) {
		r->stop = true;
	}
	delivery_save(r, false);
}
