#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "crashpoint.h"
#include "digest.h"
#include "fileio.h"
#include "log.h"
#include "manifest.h"
#include "reader.h"
#include "sftp.h"
#include "ship.h"
#include "ship_state.h"
#include "sources.h"
#include "upload.h"

/* Read size: big enough for few syscalls, small next to the upload buffers. */
#define IN_BUF_SIZE (256 * 1024)
/* How often the state file is rewritten while chunks are being delivered. */
#define SAVE_INTERVAL 1.0

void ship_host_label(const char *hostname, char out[static SHIP_HOST_LABEL_MAX + 1])
{
	size_t n = 0;
	for (; hostname[n] && n < SHIP_HOST_LABEL_MAX; n++) {
		char c = hostname[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '-';
		out[n] = ok ? c : '-';
	}
	out[n] = '\0';
	if (n == 0) {
		snprintf(out, SHIP_HOST_LABEL_MAX + 1, "unknown");
	} else if (out[0] == '.' || out[0] == '-') {
		/* A leading dot would hide the chunk from the ingester (and "." / ".." are paths).
		 */
		out[0] = 'x';
	}
}

void ship_chunk_name(const char *host_label, const uint8_t fpr[DIGEST_LEN], uint64_t start,
		     uint64_t end, char out[static SHIP_NAME_MAX])
{
	char hex[DIGEST_HEX_LEN + 1];
	digest_hex(fpr, hex);
	snprintf(out, SHIP_NAME_MAX, "%s_%.16s_%" PRIu64 "-%" PRIu64, host_label, hex, start, end);
}

void ship_temp_name(const char *host_label, const uint8_t fpr[DIGEST_LEN], uint64_t start,
		    char out[static SHIP_NAME_MAX])
{
	char hex[DIGEST_HEX_LEN + 1];
	digest_hex(fpr, hex);
	snprintf(out, SHIP_NAME_MAX, ".%s_%.16s_%" PRIu64 ".gz.tmp", host_label, hex, start);
}

size_t ship_cut(const unsigned char *buf, size_t n, uint64_t pos, uint64_t chunk_start,
		uint64_t max_chunk)
{
	uint64_t from = chunk_start + max_chunk - 1;
	if (pos + n <= from) {
		return SIZE_MAX;
	}
	size_t skip = from > pos ? (size_t)(from - pos) : 0;
	const unsigned char *nl = memchr(buf + skip, '\n', n - skip);
	return nl ? (size_t)(nl - buf) + 1 : SIZE_MAX;
}

struct job {
	struct source_file *file;
	struct ship_entry *entry;
	bool failed;      /* produce no more chunks for it this run */
	size_t first_rec; /* oldest chunk not yet applied to the state (SIZE_MAX: none) */
	size_t last_rec;
};

/* A chunk of this run, by its upload cookie. */
struct chunk_rec {
	size_t job;
	uint64_t start, end;
	bool at_eof;
	bool aborted; /* given up by this side (reported and counted there), not by the upload */
	int status;   /* 0 in flight, 1 delivered, -1 failed */
	size_t next;
};

struct run {
	const struct ship_config *cfg;
	const struct ship_options *opt;
	char host[SHIP_HOST_LABEL_MAX + 1];
	char *state_path;
	struct ship_state st;
	struct source_list files;
	struct job *jobs;
	size_t njobs;
	struct chunk_rec *recs;
	size_t nrecs, caprecs;
	struct uploader *up;
	z_stream z;
	bool zinit;
	struct digest *dg;
	unsigned char *in;
	double last_save;
	bool dirty;
	bool stop;   /* an upload failed or the connection broke: start nothing new */
	bool failed; /* something failed: exit 1 */
	uint64_t delivered, already, failed_chunks, bytes, planned;
	double last_progress;
	double t_start, t_bufwait; /* producing, and the producer waiting for the network */
	uint64_t progress_bytes;
	bool progress_shown;
};

static double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- planning ---- */

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
	if (!e->done && !j->file->live && !j->file->gz && e->nbounds == 0 &&
	    e->offset >= j->file->size) {
		/* Shipped to its end while it was live: nothing left, ever. */
		e->done = true;
		r->dirty = true;
	}
	if (e->done) {
		/*
		 * A copy was shipped to its end while its original was out of sight, and the
		 * original goes on under the same first line: what it gained since is new.
		 */
		if (!j->file->live || j->file->line_end <= e->offset) {
			return false;
		}
		e->done = false;
	}
	const struct source_file *f = j->file;
	/* A plan is cut with the chunk size it was made with, whatever the config says now. */
	if (e->nbounds == 0 || e->max_chunk == 0) {
		e->max_chunk = r->cfg->max_chunk;
	}
	if (!f->live) {
		if (e->nbounds == 0 || e->bounds[e->nbounds - 1] != SHIP_STATE_EOF) {
			ship_entry_plan(e, SHIP_STATE_EOF);
		}
		return e->nbounds > 0;
	}
	if (f->gz) {
		log_warn("%s: the live file is gzip-compressed: not shipped", f->path);
		return false;
	}
	/* Live again after being seen finished cannot happen; never read a live file to EOF. */
	if (e->nbounds > 0 && e->bounds[e->nbounds - 1] == SHIP_STATE_EOF) {
		e->nbounds--;
	}
	uint64_t last = e->nbounds ? e->bounds[e->nbounds - 1] : e->offset;
	if (f->size < last) {
		log_warn("%s: %" PRIu64 " bytes, less than the %" PRIu64
			 " already shipped or planned: truncated in place; shipping it from the "
			 "start",
			 f->path, f->size, last);
		ship_entry_reset(e, 0);
		e->max_chunk = r->cfg->max_chunk;
	}
	ship_entry_plan(e, f->line_end);
	return e->nbounds > 0;
}

static int plan(struct run *r)
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
		/*
		 * "seen" only matters at forget_days' scale: refreshing it hourly spares an idle
		 * run (cron, every few minutes) a state rewrite and two fsyncs.
		 */
		if (now - j->entry->seen >= 3600) {
			j->entry->seen = now;
			r->dirty = true;
		}
		if (plan_entry(r, j)) {
			r->jobs[keep++] = *j;
		}
	}
	r->njobs = keep;
	return 0;
}

/* ---- reading a job's file ---- */

struct content {
	int fd;
	struct reader *r; /* gzip files only */
	int64_t mtime;
};

static void content_close(struct content *ct)
{
	if (ct->r) {
		reader_destroy(ct->r);
	} else if (ct->fd >= 0) {
		close(ct->fd);
	}
	ct->r = NULL;
	ct->fd = -1;
}

/*
 * Opens the job's file positioned at the entry's offset. Returns 0, 1 when the file is no longer
 * the one that was planned (rotated or rewritten meanwhile: the next run sees it as it is now),
 * 2 when a .gz ends at or before the offset (nothing in it is new), or -1 after logging an error.
 */
static int content_open(struct job *j, struct content *ct)
{
	const struct source_file *f = j->file;
	uint64_t offset = j->entry->offset;
	/* As when it was listed (sources_open): a link swapped in since is refused. */
	ct->fd = sources_open(f->path, false);
	ct->r = NULL;
	if (ct->fd < 0) {
		if (errno == ENOENT) {
			log_info("%s: rotated away since it was listed; next run", f->path);
			return 1;
		}
		if (sources_refused(f->path, errno)) {
			return 1;
		}
		log_error("%s: %s", f->path, strerror(errno));
		return -1;
	}
	struct stat sb;
	if (fstat(ct->fd, &sb) != 0) {
		log_error("%s: %s", f->path, strerror(errno));
		content_close(ct);
		return -1;
	}
	/* Another file under the planned name would be shipped under the wrong identity. */
	if ((uint64_t)sb.st_dev != f->dev || (uint64_t)sb.st_ino != f->ino) {
		log_info("%s: replaced since it was listed; next run", f->path);
		content_close(ct);
		return 1;
	}
	ct->mtime = (int64_t)sb.st_mtime;
	if (f->gz) {
		/* A .gz is written once and never changed in place. */
		int fd = ct->fd;
		ct->fd = -1;
		if (!(ct->r = reader_fdopen(fd, f->path))) {
			return -1;
		}
		int s = offset > 0 ? reader_skip(ct->r, (off_t)offset) : 0;
		if (s != 0) {
			content_close(ct);
		}
		if (s > 0) {
			/*
			 * A compressed copy that ends before what was shipped of its original
			 * (lines logged between logrotate's copy and its truncate, shipped from the
			 * live file): it holds nothing new.
			 */
			log_info("%s: ends before the %" PRIu64 " bytes already shipped; done",
				 f->path, offset);
			return 2;
		}
		return s;
	}
	/* A live file can be truncated and rewritten in place (copytruncate) between listing and
	 * reading: check it is still the same. Rotated files are only renamed. */
	uint8_t fpr[DIGEST_LEN];
	bool has = false;
	if (f->live && sources_fingerprint_plain(ct->fd, f->path, false, fpr, &has) != 0) {
		content_close(ct);
		return -1;
	}
	if (f->live && (!has || memcmp(fpr, f->fpr, DIGEST_LEN) != 0)) {
		log_info("%s: rewritten since it was listed; next run", f->path);
		content_close(ct);
		return 1;
	}
	if (lseek(ct->fd, (off_t)offset, SEEK_SET) == (off_t)-1) {
		log_error("%s: %s", f->path, strerror(errno));
		content_close(ct);
		return -1;
	}
	return 0;
}

static ssize_t content_read(struct content *ct, unsigned char *buf, size_t cap, const char *name)
{
	if (ct->r) {
		return reader_read(ct->r, buf, cap);
	}
	for (;;) {
		ssize_t n = read(ct->fd, buf, cap);
		if (n >= 0) {
			return n;
		}
		if (errno != EINTR) {
			log_error("%s: %s", name, strerror(errno));
			return -1;
		}
	}
}

/* ---- results and state ---- */

static size_t rec_add(struct run *r, size_t ji, uint64_t start)
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

/* Applies the job's delivered chunks to its state entry, in file order. */
static void job_advance(struct run *r, size_t ji)
{
	struct job *j = &r->jobs[ji];
	while (j->first_rec != SIZE_MAX && r->recs[j->first_rec].status == 1) {
		const struct chunk_rec *c = &r->recs[j->first_rec];
		ship_entry_advance(j->entry, c->end, c->at_eof);
		r->dirty = true;
		j->first_rec = c->next;
	}
	if (j->first_rec == SIZE_MAX) {
		j->last_rec = SIZE_MAX;
	}
}

static void save_state(struct run *r, bool force)
{
	double now = now_mono();
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

static void take_results(struct run *r, bool wait)
{
	struct upload_result res;
	if (!r->up) {
		return;
	}
	while (uploader_result(r->up, &res, wait)) {
		struct chunk_rec *c = &r->recs[res.cookie];
		const struct source_file *f = r->jobs[c->job].file;
		if (res.status == UPLOAD_FAILED) {
			c->status = -1;
			r->jobs[c->job].failed = true;
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
		c->status = 1;
		r->bytes += c->end - c->start;
		if (res.status == UPLOAD_ALREADY) {
			r->already++;
			log_info("%s: bytes %" PRIu64 "-%" PRIu64
				 " were delivered by an earlier run",
				 f->path, c->start, c->end);
		} else {
			r->delivered++;
			log_info("%s: shipped bytes %" PRIu64 "-%" PRIu64, f->path, c->start,
				 c->end);
		}
		job_advance(r, c->job);
	}
	if (uploader_broken(r->up)) {
		r->stop = true;
	}
	save_state(r, false);
}

/* ---- producing chunks ---- */

struct chunk_out {
	struct upload_chunk *uc;
	struct upload_buf *ob;
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
	double now = now_mono();
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
			double t0 = now_mono();
			co->ob = uploader_buf_get(r->up);
			r->t_bufwait += now_mono() - t0;
			if (!co->ob) {
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
	co->rec = rec_add(r, ji, co->start);
	if (co->rec == SIZE_MAX) {
		return -1;
	}
	co->active = true;
	if (r->opt->dry_run) {
		return 0;
	}
	char tmp[SHIP_NAME_MAX];
	ship_temp_name(r->host, r->jobs[ji].entry->fpr, co->start, tmp);
	deflateReset(&r->z);
	co->uc = uploader_begin(r->up, co->rec, tmp);
	if (!co->uc) {
		r->recs[co->rec].status = -1;
		r->stop = true;
		return -1;
	}
	return 0;
}

static void chunk_abort(struct run *r, struct chunk_out *co)
{
	uint8_t dummy[DIGEST_LEN];
	digest_final(r->dg, dummy); /* resets it for the next chunk */
	if (!co->active) {
		return;
	}
	if (co->ob) {
		uploader_buf_put(r->up, co->ob);
		co->ob = NULL;
	}
	if (co->uc) {
		r->recs[co->rec].aborted = true;
		uploader_abort(r->up, co->uc);
		co->uc = NULL;
	} else {
		r->recs[co->rec].status = -1;
	}
}

/*
 * This machine's zone name, sent in each manifest so that the stats server reads syslog dates
 * without a UTC stamp in the mail server's zone, not its own: TZ when it names a zone, else the
 * zoneinfo file /etc/localtime links to. Empty when neither says.
 */
static const char *local_zone(void)
{
	static char zone[MANIFEST_TZ_MAX + 1];
	static bool done;
	if (done) {
		return zone;
	}
	done = true;
	const char *tz = getenv("TZ");
	char link[4096];
	if (tz != NULL && *tz != '\0') {
		tz += *tz == ':';
	} else {
		ssize_t n = readlink("/etc/localtime", link, sizeof(link) - 1);
		link[n > 0 ? n : 0] = '\0';
		tz = strstr(link, "zoneinfo/");
		tz = tz ? tz + 9 : "";
	}
	if (manifest_zone_valid(tz)) {
		snprintf(zone, sizeof(zone), "%s", tz);
	}
	return zone;
}

static int chunk_end(struct run *r, size_t ji, struct chunk_out *co, uint64_t end, bool at_eof,
		     int64_t mtime)
{
	struct job *j = &r->jobs[ji];
	struct chunk_rec *c = &r->recs[co->rec];
	struct manifest m = {.version = 1};
	char name[SHIP_NAME_MAX];
	char text[MANIFEST_MAX_SIZE];

	digest_final(r->dg, m.sha256);
	m.lines = co->lines + (co->last != '\n');
	ship_chunk_name(r->host, j->entry->fpr, co->start, end, name);
	c->end = end;
	c->at_eof = at_eof;
	r->planned++;
	if (r->opt->dry_run) {
		printf("%s %" PRIu64 "-%" PRIu64 " %" PRIu64 " bytes %" PRIu64
		       " lines -> %s.gz%s\n",
		       j->file->path, co->start, end, end - co->start, m.lines, name,
		       at_eof ? " (end of file)" : "");
		c->status = 1;
		return 0;
	}
	if (chunk_deflate(r, co, NULL, 0, Z_FINISH) != 0) {
		chunk_abort(r, co);
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
	snprintf(m.chunk, sizeof(m.chunk), "%s.gz", name);
	snprintf(m.host, sizeof(m.host), "%s", r->cfg->hostname);
	snprintf(m.service, sizeof(m.service), "%s", j->file->source->service);
	snprintf(m.kind, sizeof(m.kind), "%s", ship_kind_name(j->file->source->kind));
	snprintf(m.source, sizeof(m.source), "%s", j->file->path);
	m.offset = co->start;
	m.length = end - co->start;
	m.mtime = mtime;
	snprintf(m.tz, sizeof(m.tz), "%s", local_zone());
	int len = manifest_format(&m, text, sizeof(text));
	if (len < 0) {
		log_error("%s: manifest does not fit", name);
		uploader_abort(r->up, co->uc);
		return -1;
	}
	int ret = uploader_end(r->up, co->uc, name, text, (size_t)len);
	co->uc = NULL;
	return ret;
}

static uint64_t count_lines(const unsigned char *p, size_t n)
{
	uint64_t c = 0;
	const unsigned char *end = p + n;
	while ((p = memchr(p, '\n', (size_t)(end - p)))) {
		c++;
		p++;
	}
	return c;
}

/* Streams the job's planned bytes as chunks. */
static void job_run(struct run *r, size_t ji)
{
	struct job *j = &r->jobs[ji];
	struct ship_entry *e = j->entry;
	const struct source_file *f = j->file;
	struct content ct = {.fd = -1};
	int o = content_open(j, &ct);
	if (o == 2) {
		ship_entry_advance(e, e->offset, true);
		r->dirty = true;
		return;
	}
	if (o != 0) {
		j->failed = true;
		r->failed |= o < 0;
		return;
	}
	uint64_t pos = e->offset;
	uint64_t max_chunk = e->max_chunk;
	size_t at = 0, have = 0;
	bool eof = false;

	while (!j->failed && !r->stop) {
		uint64_t bound = ship_entry_next_bound(e, pos);
		if (bound == 0) {
			break;
		}
		struct chunk_out co = {.start = pos, .last = '\n', .rec = SIZE_MAX};
		bool at_eof = false, ok = true;
		for (;;) {
			if (at == have && !eof) {
				ssize_t n = content_read(&ct, r->in, IN_BUF_SIZE, f->path);
				if (n < 0) {
					r->failed = true;
					ok = false;
					break;
				}
				at = 0;
				have = (size_t)n;
				eof = n == 0;
			}
			if (at == have) {
				if (bound != SHIP_STATE_EOF && f->live) {
					/* Shrank under us: the next run's plan sees why. */
					log_warn("%s: ends at byte %" PRIu64 ", before the %" PRIu64
						 " planned; next run",
						 f->path, pos, bound);
					r->failed = true;
					ok = false;
				} else if (bound != SHIP_STATE_EOF) {
					/*
					 * A copy (logrotate's copytruncate) that ends before a
					 * bound planned on its original by an interrupted run: the
					 * lines after its end were lost by the rotation, its end is
					 * the end.
					 */
					log_info("%s: ends at byte %" PRIu64 ", before the %" PRIu64
						 " planned on its original; shipped to its end",
						 f->path, pos, bound);
				}
				at_eof = true;
				break;
			}
			size_t avail = have - at;
			if (bound != SHIP_STATE_EOF && avail > bound - pos) {
				avail = (size_t)(bound - pos);
			}
			size_t cut = ship_cut(r->in + at, avail, pos, co.start, max_chunk);
			size_t take = cut == SIZE_MAX ? avail : cut;
			if (!co.active && chunk_begin(r, ji, &co) != 0) {
				ok = false;
				break;
			}
			digest_update(r->dg, r->in + at, take);
			co.lines += count_lines(r->in + at, take);
			co.last = r->in[at + take - 1];
			if (!r->opt->dry_run &&
			    chunk_deflate(r, &co, r->in + at, take, Z_NO_FLUSH) != 0) {
				r->failed = true;
				ok = false;
				break;
			}
			crashpoint("ship-deflate");
			at += take;
			pos += take;
			r->progress_bytes += take;
			show_progress(r, f->path, false);
			if (cut != SIZE_MAX || pos == bound) {
				break;
			}
			take_results(r, false);
			if (r->stop) {
				ok = false;
				break;
			}
		}
		if (!ok) {
			chunk_abort(r, &co);
			j->failed = true;
			break;
		}
		if (!co.active) {
			/* Nothing left before the end of a finished file: it is done once the
			 * chunks before are delivered. */
			size_t rec = rec_add(r, ji, pos);
			if (rec == SIZE_MAX) {
				r->failed = true;
				break;
			}
			r->recs[rec].at_eof = true;
			r->recs[rec].status = 1;
			job_advance(r, ji);
			break;
		}
		if (chunk_end(r, ji, &co, pos, at_eof, ct.mtime) != 0) {
			j->failed = true;
			r->failed = true;
			break;
		}
		take_results(r, false);
		if (at_eof) {
			break;
		}
	}
	content_close(&ct);
}

/* ---- the run ---- */

static int lock_state_dir(const char *dir, int *fd)
{
	char path[4096];
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		log_error("state_dir %s: %s", dir, strerror(errno));
		return -1;
	}
	/*
	 * Another local user who can write here could swap the state (shipping lines twice or
	 * never) or plant symlinks for us to follow as root: refuse, as for the config.
	 */
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		log_error("state_dir %s: %s", dir,
			  errno == ELOOP || errno == ENOTDIR ? "must be a directory, not a symlink"
							     : strerror(errno));
		return -1;
	}
	int bad = fileio_check_private(dfd, dir, "state_dir", FILEIO_DIR);
	close(dfd);
	if (bad != 0) {
		return -1;
	}
	snprintf(path, sizeof(path), "%s/lock", dir);
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (*fd < 0) {
		log_error("%s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK) {
			return 1;
		}
		log_error("%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Enough lanes for the chunks this run will have, at most cfg->parallel. */
static unsigned lanes_for(const struct run *r)
{
	uint64_t chunks = 0;
	for (size_t i = 0; i < r->njobs && chunks < r->cfg->parallel; i++) {
		const struct source_file *f = r->jobs[i].file;
		/* gzip content is several times its file size. */
		uint64_t bytes = f->gz ? 8 * f->size : f->size;
		chunks += 1 + bytes / r->cfg->max_chunk;
	}
	return chunks < r->cfg->parallel ? (unsigned)chunks : r->cfg->parallel;
}

static int produce(struct run *r)
{
	if (deflateInit2(&r->z, r->cfg->level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK) {
		log_error("zlib: cannot initialise deflate");
		return -1;
	}
	r->zinit = true;
	r->t_start = now_mono();
	if (!(r->dg = digest_create())) {
		return -1;
	}
	if (!(r->in = malloc(IN_BUF_SIZE))) {
		log_error("out of memory");
		return -1;
	}
	for (size_t i = 0; i < r->njobs && !r->stop; i++) {
		job_run(r, i);
	}
	double t0 = now_mono();
	if (r->up) {
		while (uploader_in_flight(r->up) > 0) {
			take_results(r, true);
		}
	}
	log_debug("producing took %.2f s (%.2f s waiting for upload buffers), the last uploads "
		  "%.2f s more",
		  t0 - r->t_start, r->t_bufwait, now_mono() - t0);
	return 0;
}

static void run_finish(struct run *r)
{
	if (r->zinit) {
		deflateEnd(&r->z);
	}
	digest_destroy(r->dg);
	free(r->in);
	free(r->recs);
	free(r->jobs);
	source_list_finish(&r->files);
	ship_state_finish(&r->st);
	free(r->state_path);
}

int ship_run(const struct ship_config *cfg, const struct ship_options *opt)
{
	struct run r = {.cfg = cfg, .opt = opt};
	struct sftp_conn *conn = NULL;
	int lockfd = -1;
	int ret = SHIP_EXIT_PARTIAL;

	ship_host_label(cfg->hostname, r.host);
	ship_state_init(&r.st);
	source_list_init(&r.files);
	size_t plen = strlen(cfg->state_dir) + 7;
	if (!(r.state_path = malloc(plen))) {
		log_error("out of memory");
		goto out;
	}
	snprintf(r.state_path, plen, "%s/state", cfg->state_dir);

	if (!opt->dry_run) {
		int l = lock_state_dir(cfg->state_dir, &lockfd);
		if (l < 0) {
			ret = SHIP_EXIT_USAGE;
			goto out;
		}
		if (l > 0) {
			log_notice("another run holds %s/lock: leaving the work to it",
				   cfg->state_dir);
			ret = SHIP_EXIT_OK;
			goto out;
		}
	}
	if (ship_state_load(&r.st, r.state_path) != 0) {
		ret = SHIP_EXIT_USAGE;
		goto out;
	}
	double t0 = now_mono();
	if (plan(&r) != 0) {
		goto out;
	}
	log_debug("planned %zu file(s) to ship in %.2f s", r.njobs, now_mono() - t0);
	if (opt->dry_run) {
		if (produce(&r) == 0) {
			printf("%" PRIu64 " chunks, %" PRIu64 " bytes would be shipped\n",
			       r.planned, r.progress_bytes);
			ret = r.failed ? SHIP_EXIT_PARTIAL : SHIP_EXIT_OK;
		}
		goto out;
	}
	if (r.njobs > 0) {
		struct sftp_params sp = {
			.host = cfg->host,
			.port = cfg->port,
			.user = cfg->user,
			.identity = cfg->identity,
			.known_hosts = cfg->known_hosts,
			.connect_timeout = cfg->connect_timeout,
			.timeout = cfg->timeout,
			.keepalive = cfg->keepalive,
			.accept_new_host_key = opt->accept_new_host_key,
		};
		t0 = now_mono();
		if (!(conn = sftp_connect(&sp))) {
			ret = SHIP_EXIT_CONNECT;
			goto out;
		}
		log_debug("connected in %.2f s", now_mono() - t0);
		/* The plan must be on disk before the first byte goes out: a rerun after a crash
		 * rebuilds exactly these chunks. */
		r.dirty = true;
		save_state(&r, true);
		if (r.dirty) {
			goto out;
		}
		if (!(r.up = uploader_create(conn, cfg->remote_dir, lanes_for(&r), cfg->timeout))) {
			ret = SHIP_EXIT_CONNECT;
			goto out;
		}
		if (produce(&r) != 0) {
			r.failed = true;
		}
		uploader_destroy(r.up);
		r.up = NULL;
	}
	if (r.progress_shown) {
		fprintf(stderr, "\r\033[K");
	}
	if (ship_state_prune(&r.st, (int64_t)time(NULL) - (int64_t)cfg->forget_days * 86400) > 0) {
		r.dirty = true;
	}
	save_state(&r, true);
	/* The first failure was logged where it happened; one more line only for a count. */
	if (r.failed_chunks > 0) {
		log_msg(r.failed_chunks > 1 ? LOG_ERROR : LOG_INFO,
			"%" PRIu64 " chunk(s) not shipped; the next run retries them",
			r.failed_chunks);
	} else if (r.stop) {
		log_error("stopped early; the next run ships the rest");
		r.failed = true;
	}
	log_info("%" PRIu64 " chunk(s) shipped (%" PRIu64 " bytes), %" PRIu64
		 " found delivered already",
		 r.delivered, r.bytes, r.already);
	ret = r.failed || r.failed_chunks > 0 ? SHIP_EXIT_PARTIAL : SHIP_EXIT_OK;
out:
	if (r.up) {
		uploader_destroy(r.up);
	}
	sftp_conn_destroy(conn);
	run_finish(&r);
	if (lockfd >= 0) {
		close(lockfd);
	}
	return ret;
}
