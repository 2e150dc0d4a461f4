#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "content.h"
#include "crashpoint.h"
#include "hasher.h"
#include "log.h"
#include "manifest.h"
#include "monoclock.h"
#include "run.h"
#include "ship.h"
#include "upload.h"

/* Read size: big enough for few syscalls, small next to the upload buffers. */
#define IN_BUF_SIZE (256 * 1024)

/* The chunk being produced. */
struct chunk_out {
	struct upload_chunk *uc;
	struct upload_buf *ob;
	size_t job; /* whose chunk it is (a pack's: its head's) */
	bool pack;  /* a pack: its files are read whole, never cut */
	size_t rec;
	uint64_t start;
	uint64_t lines;
	unsigned char last;
	bool active;
};

static void show_progress(struct run *r, const char *path, bool force)
{
	if (!r->opt->progress) {
		return;
	}
	double now = monoclock_now();
	if (!force && now - r->last_progress < 0.5) {
		return;
	}
	r->last_progress = now;
	fprintf(stderr, "\r\033[Krelaywatch-ship: %.1f MB read, %" PRIu64 " chunks done; %s",
		(double)r->progress_bytes / 1e6, r->delivered + r->already, path);
	r->progress_shown = true;
}

/* Deflates n bytes (or finishes the stream) into upload buffers, handing full ones over. */
static int chunk_deflate(struct run *r, struct chunk_out *co, const unsigned char *p, size_t n,
			 int flush)
{
	r->z.next_in = (Bytef *)(uintptr_t)p;
	r->z.avail_in = (uInt)n;
	for (;;) {
		if (!co->ob) {
			double t0 = monoclock_now();
			co->ob = uploader_buf_get(r->up);
			r->t_bufwait += monoclock_now() - t0;
			if (!co->ob) {
				r->stop = true; /* the connection broke */
				return -1;
			}
		}
		size_t room = UPLOAD_BUF_SIZE - co->ob->len;
		r->z.next_out = co->ob->data + co->ob->len;
		r->z.avail_out = (uInt)room;
		int zr = deflate(&r->z, flush);
		co->ob->len = UPLOAD_BUF_SIZE - r->z.avail_out;
		if (zr == Z_STREAM_ERROR) {
			log_error("zlib: deflate failed");
			r->failed = true;
			return -1;
		}
		bool full = r->z.avail_out == 0;
		if (full) {
			uploader_write(r->up, co->uc, co->ob);
			co->ob = NULL;
		}
		if (flush == Z_FINISH ? zr == Z_STREAM_END : (r->z.avail_in == 0 && !full)) {
			return 0;
		}
	}
}

static int chunk_begin(struct run *r, size_t ji, struct chunk_out *co)
{
	co->rec = delivery_rec_add(r, ji, co->start);
	if (co->rec == SIZE_MAX) {
		r->failed = true;
		return -1;
	}
	co->active = true;
	if (co->pack) {
		unsigned files = 0;
		for (size_t m = ji; m != SIZE_MAX; m = r->jobs[m].pack_next) {
			files++;
		}
		r->recs[co->rec].pack_files = files;
	}
	if (r->opt->dry_run) {
		return 0;
	}
	char tmp[SHIP_NAME_MAX];
	ship_temp_name(r->host, r->jobs[ji].entry->fpr, co->start, tmp);
	deflateReset(&r->z);
	co->uc = uploader_begin(r->up, co->rec, tmp);
	if (!co->uc) {
		r->recs[co->rec].status = CHUNK_FAILED;
		r->failed_chunks++;
		r->stop = true;
		return -1;
	}
	return 0;
}

/*
 * Gives up the chunk being produced. local: because of its file (reported there, the file is
 * skipped this run); else because the server failed, and the chunk counts as not shipped.
 */
static void chunk_abort(struct run *r, struct chunk_out *co, bool local)
{
	uint8_t dummy[DIGEST_LEN];
	hasher_final(r->hs, dummy); /* resets it for the next chunk */
	if (!co->active) {
		return;
	}
	if (co->ob) {
		uploader_buf_put(r->up, co->ob);
		co->ob = NULL;
	}
	if (co->uc) {
		r->recs[co->rec].aborted = local;
		uploader_abort(r->up, co->uc);
		co->uc = NULL;
	} else {
		r->recs[co->rec].status = CHUNK_FAILED;
	}
}

/*
 * This machine's zone name, sent in each manifest so that the stats server reads syslog dates
 * without a UTC stamp in the mail server's zone, not its own: TZ when it names a zone, else the
 * zoneinfo file /etc/localtime links to. Empty when neither says.
 */
static void local_zone(char zone[MANIFEST_TZ_MAX + 1])
{
	const char *tz = getenv("TZ");
	char link[4096];

	zone[0] = '\0';
	if (tz != NULL && *tz != '\0') {
		tz += *tz == ':';
	} else {
		ssize_t n = readlink("/etc/localtime", link, sizeof(link) - 1);
		link[n > 0 ? n : 0] = '\0';
		tz = strstr(link, "zoneinfo/");
		tz = tz ? tz + 9 : "";
	}
	if (manifest_zone_valid(tz)) {
		snprintf(zone, MANIFEST_TZ_MAX + 1, "%s", tz);
	}
}

/* The byte range of each file of the pack headed by ji, for its manifest. */
static void pack_parts(const struct run *r, size_t ji, struct manifest *m)
{
	m->nparts = 0;
	for (size_t k = ji; k != SIZE_MAX && m->nparts < MANIFEST_PARTS_MAX;
	     k = r->jobs[k].pack_next) {
		const struct job *j = &r->jobs[k];
		struct manifest_part *p = &m->parts[m->nparts++];
		char hex[DIGEST_HEX_LEN + 1];
		digest_hex(j->entry->fpr, hex);
		snprintf(p->fpr, sizeof(p->fpr), "%.16s", hex);
		p->offset = j->entry->offset;
		p->length = j->pack_end - j->entry->offset;
	}
}

static int chunk_end(struct run *r, size_t ji, struct chunk_out *co, uint64_t end, bool at_eof,
		     int64_t mtime)
{
	struct job *j = &r->jobs[ji];
	struct chunk_rec *c = &r->recs[co->rec];
	struct manifest m = {.version = 1};
	char name[SHIP_NAME_MAX];
	char text[MANIFEST_MAX_SIZE];

	hasher_final(r->hs, m.sha256);
	m.lines = co->lines + (co->last != '\n');
	if (co->pack) {
		ship_pack_name(r->host, j->entry->fpr, co->start, end, c->pack_files, name);
	} else {
		ship_chunk_name(r->host, j->entry->fpr, co->start, end, name);
	}
	c->end = end;
	c->at_eof = at_eof;
	snprintf(m.chunk, sizeof(m.chunk), "%s.gz", name);
	snprintf(m.host, sizeof(m.host), "%s", r->cfg->hostname);
	snprintf(m.service, sizeof(m.service), "%s", j->file->source->service);
	snprintf(m.kind, sizeof(m.kind), "%s", ship_kind_name(j->file->source->kind));
	snprintf(m.source, sizeof(m.source), "%s", j->file->path);
	m.offset = co->start;
	m.length = end - co->start;
	m.mtime = mtime;
	snprintf(m.tz, sizeof(m.tz), "%s", r->zone);
	if (co->pack) {
		pack_parts(r, ji, &m);
	}
	/*
	 * Every field is held to its bound in struct manifest (a longer path is cut), and the
	 * largest manifest those bounds allow fits (manifest@worst_case), so this cannot fail. Were
	 * it to, it would be this file's failure, before any of the chunk is finished: given up as
	 * an unreadable file is, so that the server is not blamed and the other files still go.
	 */
	int len = manifest_format(&m, text, sizeof(text));
	if (len < 0) {
		log_error("%s: bytes %" PRIu64 "-%" PRIu64
			  ": the manifest does not fit in %d bytes; not shipped",
			  j->file->path, co->start, end, MANIFEST_MAX_SIZE);
		chunk_abort(r, co, true);
		return -1;
	}
	r->planned++;
	if (r->opt->dry_run) {
		printf("%s %" PRIu64 "-%" PRIu64 " %" PRIu64 " bytes %" PRIu64
		       " lines -> %s.gz%s\n",
		       j->file->path, co->start, end, end - co->start, m.lines, name,
		       co->pack ? " (pack)"
		       : at_eof ? " (end of file)"
				: "");
		c->status = CHUNK_DELIVERED;
		return 0;
	}
	if (chunk_deflate(r, co, NULL, 0, Z_FINISH) != 0) {
		chunk_abort(r, co, !r->stop);
		return -1;
	}
	if (co->ob) {
		if (co->ob->len > 0) {
			uploader_write(r->up, co->uc, co->ob);
		} else {
			uploader_buf_put(r->up, co->ob);
		}
		co->ob = NULL;
	}
	int ret = uploader_end(r->up, co->uc, name, text, (size_t)len);
	co->uc = NULL;
	return ret;
}

/*
 * Ends co's file (or pack) at co->start without a chunk, nothing being left to read: an empty
 * record at the end of the file, delivered, so that the file (every member of the pack) is
 * done once the chunks before it are.
 */
static void chunk_none(struct run *r, const struct chunk_out *co)
{
	size_t rec = delivery_rec_add(r, co->job, co->start);
	if (rec == SIZE_MAX) {
		r->failed = true;
		return;
	}
	r->recs[rec].pack_files = co->pack ? 1 : 0;
	r->recs[rec].at_eof = true;
	r->recs[rec].status = CHUNK_DELIVERED;
	delivery_advance(r, co->job);
}

/* Where the producer is in the job's file: r->in holds bytes [at, have) of what was read. */
struct job_input {
	struct content ct;
	uint64_t pos; /* content offset of r->in + at */
	size_t at, have;
	bool eof;
};

/* How chunk_fill() ended. */
enum chunk_fill {
	FILL_CUT,     /* at the chunk size's cut or at the bound */
	FILL_EOF,     /* at the end of the file: the last chunk of a finished file */
	FILL_FAILED,  /* the file could not be read or compressed (logged): skip it this run */
	FILL_STOPPED, /* the server failed: stop, the next server (or run) takes over */
};

/*
 * Reads, hashes and deflates the job's bytes into co from in->pos up to the chunk's cut, the
 * bound, or the end of the file.
 */
static enum chunk_fill chunk_fill(struct run *r, size_t ji, struct job_input *in,
				  struct chunk_out *co, uint64_t bound)
{
	const struct source_file *f = r->jobs[ji].file;
	for (;;) {
		if (in->at == in->have && !in->eof) {
			ssize_t n = content_read(&in->ct, r->in, IN_BUF_SIZE, f->path);
			if (n < 0) {
				r->failed = true;
				return FILL_FAILED;
			}
			in->at = 0;
			in->have = (size_t)n;
			in->eof = n == 0;
		}
		if (in->at == in->have) {
			if (bound != SHIP_STATE_EOF && f->live) {
				/* Shrank under us: the next run's plan sees why. */
				log_warn("%s: ends at byte %" PRIu64 ", before the %" PRIu64
					 " planned; next run",
					 f->path, in->pos, bound);
				r->failed = true;
				return FILL_FAILED;
			}
			if (bound != SHIP_STATE_EOF) {
				/*
				 * A copy (logrotate's copytruncate) that ends before a bound
				 * planned on its original by an interrupted run: the lines after
				 * its end were lost by the rotation, its end is the end.
				 */
				log_info("%s: ends at byte %" PRIu64 ", before the %" PRIu64
					 " planned on its original; shipped to its end",
					 f->path, in->pos, bound);
			}
			return FILL_EOF;
		}
		size_t avail = in->have - in->at;
		if (bound != SHIP_STATE_EOF && avail > bound - in->pos) {
			avail = (size_t)(bound - in->pos);
		}
		const unsigned char *p = r->in + in->at;
		size_t cut = co->pack ? SIZE_MAX
				      : ship_cut(p, avail, in->pos, co->start,
						 r->jobs[ji].entry->max_chunk);
		size_t take = cut == SIZE_MAX ? avail : cut;
		if (!co->active && chunk_begin(r, co->job, co) != 0) {
			return r->stop ? FILL_STOPPED : FILL_FAILED;
		}
		/* Hashed beside the deflate (on another core), done before p changes. */
		hasher_post(r->hs, p, take);
		int zr = r->opt->dry_run ? 0 : chunk_deflate(r, co, p, take, Z_NO_FLUSH);
		co->lines += hasher_wait(r->hs);
		co->last = p[take - 1];
		if (zr != 0) {
			return r->stop ? FILL_STOPPED : FILL_FAILED;
		}
		crashpoint("ship-deflate");
		in->at += take;
		in->pos += take;
		r->progress_bytes += take;
		show_progress(r, f->path, false);
		if (cut != SIZE_MAX || in->pos == bound) {
			return FILL_CUT;
		}
		delivery_take(r, false);
		if (r->stop) {
			return FILL_STOPPED;
		}
	}
}

/* Streams the job's planned bytes as chunks. */
static void job_run(struct run *r, size_t ji)
{
	struct job *j = &r->jobs[ji];
	struct ship_entry *e = j->entry;
	struct job_input in = {.ct = {.fd = -1}, .pos = e->offset};
	enum content_open o = content_open(&r->files, j->file, e->offset, &in.ct);
	if (o == CONTENT_NOTHING_NEW) {
		ship_entry_advance(e, e->offset, true);
		r->dirty = true;
		return;
	}
	if (o != CONTENT_OK) {
		j->failed = true;
		r->failed |= o == CONTENT_ERROR;
		return;
	}
	while (!r->stop) {
		uint64_t bound = ship_entry_next_bound(e, in.pos);
		if (bound == 0) {
			break;
		}
		struct chunk_out co = {.job = ji, .start = in.pos, .last = '\n', .rec = SIZE_MAX};
		enum chunk_fill fill = chunk_fill(r, ji, &in, &co, bound);
		if (fill == FILL_FAILED || fill == FILL_STOPPED) {
			chunk_abort(r, &co, fill == FILL_FAILED);
			j->failed |= fill == FILL_FAILED;
			break;
		}
		if (!co.active) {
			/* Nothing left before the end of a finished file: it is done once the
			 * chunks before are delivered. */
			chunk_none(r, &co);
			break;
		}
		if (chunk_end(r, ji, &co, in.pos, fill == FILL_EOF, in.ct.mtime) != 0) {
			/* A lost connection is the next server's business; anything else is this
			 * file's. */
			if (!r->stop) {
				j->failed = true;
				r->failed = true;
			}
			break;
		}
		delivery_take(r, false);
		if (fill == FILL_EOF) {
			break;
		}
	}
	content_close(&in.ct);
}

/*
 * Ends the gzip member of the pack's file before the next one: each file of a pack is a gzip
 * member of its own, deflated from an empty window as if it were shipped alone (the reader takes
 * concatenated members as one stream). One stream across the whole pack compresses some 6 %
 * better, but deflate then searches its matches back through the files before, which costs some
 * 8 % more CPU for 64 files of 100 kB: the time a backlog of small files takes is what packs are
 * for.
 */
static enum chunk_fill pack_member_end(struct run *r, struct chunk_out *co)
{
	if (!co->active || r->opt->dry_run || r->z.total_in == 0) {
		return FILL_EOF;
	}
	if (chunk_deflate(r, co, NULL, 0, Z_FINISH) != 0) {
		return r->stop ? FILL_STOPPED : FILL_FAILED;
	}
	deflateReset(&r->z);
	return FILL_EOF;
}

/*
 * Streams the pack headed by ji as one chunk: each member from its offset to its end, in pack
 * order. A member that cannot be read fails the pack for this run; the next run rebuilds it from
 * the members it finds.
 */
static void pack_run(struct run *r, size_t ji)
{
	struct job *head = &r->jobs[ji];
	struct chunk_out co = {.job = ji,
			       .pack = true,
			       .start = head->entry->offset,
			       .last = '\n',
			       .rec = SIZE_MAX};
	uint64_t total = 0;
	int64_t mtime = 0;
	enum chunk_fill fill = FILL_EOF;

	if (head->entry->done) {
		return; /* delivered before a failover */
	}
	for (size_t k = ji; k != SIZE_MAX; k = r->jobs[k].pack_next) {
		struct job *j = &r->jobs[k];
		struct job_input in = {.ct = {.fd = -1}, .pos = j->entry->offset};
		if (k != ji) {
			crashpoint("ship-pack-member");
			if ((fill = pack_member_end(r, &co)) != FILL_EOF) {
				break;
			}
		}
		/* Lines must not run from one member into the next (checked when packed). */
		if (co.last != '\n') {
			log_error(
				"%s: the file before it in its pack no longer ends with a newline",
				j->file->path);
			fill = FILL_FAILED;
			r->failed = true;
			break;
		}
		enum content_open o = content_open(&r->files, j->file, in.pos, &in.ct);
		j->pack_end = in.pos;
		if (o == CONTENT_NOTHING_NEW) {
			continue;
		}
		if (o != CONTENT_OK) {
			r->failed |= o == CONTENT_ERROR;
			fill = FILL_FAILED;
			break;
		}
		mtime = in.ct.mtime > mtime ? in.ct.mtime : mtime;
		fill = chunk_fill(r, k, &in, &co, SHIP_STATE_EOF);
		content_close(&in.ct);
		if (fill != FILL_EOF) {
			break;
		}
		j->pack_end = in.pos;
		total += in.pos - j->entry->offset;
	}
	if (fill == FILL_FAILED || fill == FILL_STOPPED) {
		chunk_abort(r, &co, fill == FILL_FAILED);
		head->failed |= fill == FILL_FAILED;
		return;
	}
	if (!co.active) {
		/* No member had anything new: the pack is done without a chunk. */
		chunk_none(r, &co);
		return;
	}
	if (chunk_end(r, ji, &co, co.start + total, true, mtime) != 0 && !r->stop) {
		head->failed = true;
		r->failed = true;
	}
	delivery_take(r, false);
}

int produce_init(struct run *r)
{
	if (deflateInit2(&r->z, (int)r->cfg->level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK) {
		log_error("zlib: cannot initialise deflate");
		return -1;
	}
	r->zinit = true;
	if (!(r->hs = hasher_create(!r->opt->dry_run))) {
		return -1;
	}
	if (!(r->in = malloc(IN_BUF_SIZE))) {
		log_error("out of memory");
		return -1;
	}
	local_zone(r->zone);
	return 0;
}

void produce_jobs(struct run *r)
{
	r->t_start = monoclock_now();
	r->t_bufwait = 0;
	for (size_t i = 0; i < r->njobs && !r->stop; i++) {
		if (r->jobs[i].pack_head) {
			pack_run(r, i);
		} else if (!r->jobs[i].in_pack) {
			job_run(r, i);
		}
	}
	double t0 = monoclock_now();
	if (r->up) {
		while (uploader_in_flight(r->up) > 0) {
			delivery_take(r, true);
		}
	}
	log_debug("producing took %.2f s (%.2f s waiting for upload buffers), the last uploads "
		  "%.2f s more",
		  t0 - r->t_start, r->t_bufwait, monoclock_now() - t0);
}

void produce_finish(struct run *r)
{
	if (r->zinit) {
		deflateEnd(&r->z);
		r->zinit = false;
	}
	hasher_destroy(r->hs);
	r->hs = NULL;
	free(r->in);
	r->in = NULL;
}
