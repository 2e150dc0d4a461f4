/* memmem and memrchr: the scan finds "CHKUSER " over whole buffers, not line by line. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "bytevec.h"
#include "crashpoint.h"
#include "log.h"
#include "scan.h"

/*
 * Two threads per chunk: one inflates into a ring of blocks, the other hashes, checks the gzip
 * CRC-32, counts and parses them. Inflate is the floor; everything else runs beside it on the
 * second core (zlib's CRC in the inflating thread was a tenth of its time).
 */
#define SCAN_BLOCK  (2 * 1024 * 1024)
#define SCAN_BLOCKS 4
/* The consumer hashes and scans a block in pieces that stay in its L2 cache between the two. */
#define SCAN_PIECE (128 * 1024)

struct scan_block {
	char *data;
	size_t len;
	/* A gzip member ends with the block; its content's CRC-32 must be crc. */
	bool member_end;
	uint32_t crc;
};

struct scan_ring {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct scan_block blocks[SCAN_BLOCKS];
	size_t head, tail; /* produced / consumed counts */
	bool done, failed, stop;
	bool over;    /* more content than limit: stopped one byte past it */
	bool gzip;    /* the content is inflated: the consumer computes each member's CRC */
	bool limited; /* limit applies */
	uint64_t limit;
	uint64_t produced;
	struct reader *r;
};

static void *scan_producer(void *arg)
{
	struct scan_ring *q = arg;
	for (;;) {
		pthread_mutex_lock(&q->mu);
		while (q->head - q->tail == SCAN_BLOCKS && !q->stop) {
			pthread_cond_wait(&q->cv, &q->mu);
		}
		bool stop = q->stop;
		struct scan_block *b = &q->blocks[q->head % SCAN_BLOCKS];
		pthread_mutex_unlock(&q->mu);
		if (stop) {
			break;
		}
		/*
		 * Fill the block as far as the reader gives, so the consumer sees few edges, or to
		 * the end of a gzip member, whose CRC the consumer then checks.
		 */
		size_t len = 0, want = SCAN_BLOCK;
		ssize_t n = 1;
		bool end = false;
		/* Never inflate more than one byte past the limit: that byte is the proof. */
		if (q->limited && q->limit + 1 - q->produced < want) {
			want = (size_t)(q->limit + 1 - q->produced);
		}
		b->member_end = false;
		while (len < want && !b->member_end) {
			n = reader_read(q->r, b->data + len, want - len);
			b->member_end = n >= 0 && reader_member_end(q->r, &b->crc);
			if (n < 0 || (n == 0 && !b->member_end)) {
				end = true;
				break;
			}
			len += (size_t)n;
		}
		q->produced += len;
		if (q->limited && q->produced > q->limit) {
			end = true;
			q->over = true;
		}
		b->len = len;
		pthread_mutex_lock(&q->mu);
		/* Set with the first block: known from the first read on, it never changes. */
		if (q->head == 0) {
			q->gzip = reader_is_gzip(q->r);
		}
		if (len > 0 || b->member_end) {
			q->head++;
		}
		if (end) {
			q->done = true;
			q->failed = n < 0;
		}
		pthread_cond_broadcast(&q->cv);
		pthread_mutex_unlock(&q->mu);
		if (end) {
			break;
		}
	}
	return NULL;
}

struct scan_state {
	const char *name;
	const struct scan_opts *o;
	struct agg *agg;
	struct scan_stats *st;
	struct logtime lt;
	int64_t last_utc; /* of the previous dated event, for undated ones */
	char *carry;
	size_t carry_len;
	bool overlong; /* the carried line is longer than SCAN_LINE_MAX: skip to its end */
	bool failed;
	bool too_many_keys;
};

/*
 * More distinct rows than max_keys stops the scan. Rows are only ever added, so checking after
 * each piece rather than each event gives the same verdict, and the table exceeds the bound by
 * at most what one piece's lines add.
 */
static void check_keys(struct scan_state *s)
{
	if (s->o->max_keys > 0 && agg_rows_total(s->agg) > s->o->max_keys) {
		s->too_many_keys = true;
	}
}

static void note_malformed(struct scan_state *s, const char *line, size_t len, const char *why)
{
	struct scan_stats *st = s->st;
	st->malformed++;
	unsigned max =
		s->o->malformed_log_max < SCAN_SAMPLES ? s->o->malformed_log_max : SCAN_SAMPLES;
	if (st->samples >= max) {
		return;
	}
	char *out = st->sample[st->samples++];
	size_t n = (size_t)snprintf(out, SCAN_SAMPLE_SIZE, "(%s): ", why);
	log_escape(out + n, SCAN_SAMPLE_SIZE - n, line, len);
}

void scan_report_malformed(const char *name, const struct scan_stats *st)
{
	for (unsigned i = 0; i < st->samples; i++) {
		log_warn("%s: malformed CHKUSER line %s", name, st->sample[i]);
	}
	if (st->malformed > st->samples && st->samples > 0) {
		log_warn("%s: %llu more malformed CHKUSER lines", name,
			 (unsigned long long)(st->malformed - st->samples));
	}
}

/* One complete line, without its '\n'. Only lines that contain "CHKUSER " get here. */
static void scan_line(struct scan_state *s, const char *line, size_t len, bool whole)
{
	struct log_header h;
	log_header_parse(line, len, &s->lt, &h);
	if (!chkuser_is(h.msg)) {
		return;
	}
	/* A line this long is no chkuser output (SMTP bounds its fields); keep memory bounded. */
	if (!whole || len > SCAN_LINE_MAX) {
		note_malformed(s, line, len, "line too long");
		return;
	}
	struct chk_event ev;
	enum chk_result parsed = chk_parse(h.msg, &ev);
	if (parsed != CHK_EVENT) {
		note_malformed(s, line, len,
			       parsed == CHK_AMBIGUOUS ? "ambiguous markers" : "markers missing");
		return;
	}
	int64_t utc = h.utc;
	if (utc == LOGTIME_NONE) {
		utc = s->last_utc != LOGTIME_NONE ? s->last_utc : s->o->ref_utc;
		s->st->undated++;
	} else {
		s->last_utc = utc;
	}
	if (h.host.n && s->st->first_host_len == 0) {
		size_t n =
			h.host.n < sizeof(s->st->first_host) ? h.host.n : sizeof(s->st->first_host);
		memcpy(s->st->first_host, h.host.p, n);
		s->st->first_host_len = n;
	}
	struct span host = h.host.n && !s->o->host_fixed ? h.host : s->o->host;
	struct span service = h.service.n ? h.service : s->o->service;
	if (agg_add_event(s->agg, utc, host, service, &ev) != 0) {
		log_error("%s: out of memory", s->name);
		s->failed = true;
		return;
	}
	s->st->events++;
	if (s->st->first_utc == LOGTIME_NONE || utc < s->st->first_utc) {
		s->st->first_utc = utc;
	}
	if (s->st->last_utc == LOGTIME_NONE || utc > s->st->last_utc) {
		s->st->last_utc = utc;
	}
}

/*
 * If "CHKUSER " starts at c (c + 8 <= p + n) and c is not inside a line already scanned (before
 * *q), scans the line around it and moves *q past its '\n'. p[n - 1] is a '\n'.
 */
static void scan_candidate(struct scan_state *s, const char *c, const char **q, const char *end)
{
	if (c < *q || memcmp(c, "CHKUSER ", 8) != 0) {
		return;
	}
	const char *ls = memrchr(*q, '\n', (size_t)(c - *q));
	ls = ls ? ls + 1 : *q;
	const char *le = memchr(c + 8, '\n', (size_t)(end - c - 8));
	scan_line(s, ls, (size_t)(le - ls), true);
	*q = le + 1;
}

/*
 * Complete lines p[0..n), n == 0 or p[n - 1] == '\n': scans those with "CHKUSER " and returns
 * the number of lines. It reads each byte once, BYTEVEC_LEN at a time: it counts the newlines and
 * looks for a 'C' with a ' ' seven bytes on (where "CHKUSER " may start) in the same pass, where
 * memmem and a separate newline count (bytevec_newlines) would read every block twice.
 */
static size_t scan_region(struct scan_state *s, const char *p, size_t n)
{
	const char *end = p + n;
	const char *q = p; /* the lines before q are done */
	size_t lines = 0, i = 0;

	/* The second load reads 7 bytes further: stop where it would pass the end. */
	while (i + BYTEVEC_LEN + 7 <= n) {
		bytevec acc = {0};
		/* A byte lane of acc counts up to 255 newlines before it is summed. */
		for (unsigned k = 0; k < 255 && i + BYTEVEC_LEN + 7 <= n; k++, i += BYTEVEC_LEN) {
			bytevec a, b;
			bytevec_load(&a, p + i);
			bytevec_load(&b, p + i + 7);
			acc -= (bytevec)(a == '\n');
			bytevec cand = (bytevec)((a == 'C') & (b == ' '));
			for (unsigned m = bytevec_mask(&cand); m; m &= m - 1) {
				scan_candidate(s, p + i + (unsigned)__builtin_ctz(m), &q, end);
			}
		}
		lines += bytevec_sum(&acc);
	}
	/* The last few bytes, one at a time. */
	for (size_t j = i; j < n; j++) {
		lines += p[j] == '\n';
	}
	const char *from = q > p + i ? q : p + i;
	const char *c;
	while (from < end && (c = memmem(from, (size_t)(end - from), "CHKUSER ", 8)) != NULL) {
		scan_candidate(s, c, &q, end);
		from = q;
	}
	return lines;
}

static void carry_append(struct scan_state *s, const char *p, size_t n)
{
	if (s->overlong) {
		return;
	}
	size_t room = SCAN_LINE_MAX + 1 - s->carry_len;
	if (n > room) {
		n = room;
	}
	memcpy(s->carry + s->carry_len, p, n);
	s->carry_len += n;
	if (s->carry_len > SCAN_LINE_MAX) {
		s->overlong = true;
	}
}

static void carry_finish(struct scan_state *s)
{
	if (s->carry_len > 0 || s->overlong) {
		if (memmem(s->carry, s->carry_len, "CHKUSER ", 8)) {
			scan_line(s, s->carry, s->carry_len, !s->overlong);
		}
	}
	s->carry_len = 0;
	s->overlong = false;
}

static void scan_block(struct scan_state *s, const char *p, size_t n)
{
	const char *end = p + n;
	if (s->carry_len > 0 || s->overlong) {
		const char *nl = memchr(p, '\n', n);
		if (!nl) {
			carry_append(s, p, n);
			return;
		}
		carry_append(s, p, (size_t)(nl - p));
		carry_finish(s);
		s->st->lines++;
		p = nl + 1;
	}
	const char *last = memrchr(p, '\n', (size_t)(end - p));
	const char *tail = last ? last + 1 : p;
	s->st->lines += scan_region(s, p, (size_t)(tail - p));
	carry_append(s, tail, (size_t)(end - tail));
}

/* scan_block over the bytes of p[0..n) (content offset off) outside the ranges o->skip. */
static void scan_kept(struct scan_state *s, uint64_t off, const char *p, size_t n)
{
	const struct scan_opts *o = s->o;
	uint64_t end = off + n;
	size_t i = 0;

	while (off < end) {
		while (i < o->nskip && o->skip[i].end <= off) {
			i++;
		}
		uint64_t stop = i < o->nskip && o->skip[i].start < end ? o->skip[i].start : end;
		if (stop > off) {
			scan_block(s, p, (size_t)(stop - off));
			p += stop - off;
			off = stop;
			continue;
		}
		/* Inside a skipped range: what was carried ended with the part before it. */
		carry_finish(s);
		stop = o->skip[i].end < end ? o->skip[i].end : end;
		size_t lines = bytevec_newlines(p, (size_t)(stop - off));
		s->st->skipped_bytes += stop - off;
		s->st->skipped_lines += lines;
		s->st->lines += lines;
		p += stop - off;
		off = stop;
	}
}

static void progress(const char *name, uint64_t done, uint64_t total, bool final)
{
	char esc[80];
	log_escape(esc, sizeof(esc), name, strlen(name));
	if (final) {
		fprintf(stderr, "\r\033[K");
	} else if (total) {
		fprintf(stderr, "\r%s: %3u%% (%llu MB)\033[K", esc,
			(unsigned)(done * 100 / (total ? total : 1)),
			(unsigned long long)(done >> 20));
	} else {
		fprintf(stderr, "\r%s: %llu MB\033[K", esc, (unsigned long long)(done >> 20));
	}
	fflush(stderr);
}

int scan_chunk(struct reader *r, const char *name, const struct scan_opts *o, struct agg *agg,
	       struct scan_stats *st)
{
	int ret = SCAN_FAILED;
	struct digest *d = NULL;
	struct scan_ring q = {.r = r, .limited = o->limit_bytes, .limit = o->max_bytes};
	struct scan_state s = {.name = name, .o = o, .agg = agg, .st = st};
	bool thread = false, crc_bad = false;

	memset(st, 0, sizeof(*st));
	st->first_utc = st->last_utc = LOGTIME_NONE;
	s.last_utc = LOGTIME_NONE;
	logtime_init(&s.lt, o->ref_utc);
	pthread_mutex_init(&q.mu, NULL);
	pthread_cond_init(&q.cv, NULL);

	if (!(d = digest_create()) || !(s.carry = malloc(SCAN_LINE_MAX + 1))) {
		log_error("%s: out of memory", name);
		goto out;
	}
	/*
	 * One allocation for the whole ring: glibc then keeps it in the heap from one chunk to
	 * the next, where four 2 MB blocks were trimmed and faulted in again for every chunk
	 * (a third of `ingest run`'s CPU time on 100 kB chunks).
	 */
	if (!(q.blocks[0].data = malloc((size_t)SCAN_BLOCK * SCAN_BLOCKS))) {
		log_error("%s: out of memory", name);
		goto out;
	}
	for (int i = 1; i < SCAN_BLOCKS; i++) {
		q.blocks[i].data = q.blocks[0].data + (size_t)i * SCAN_BLOCK;
	}
	reader_defer_crc(r);
	pthread_t tid;
	if (pthread_create(&tid, NULL, scan_producer, &q) != 0) {
		log_error("%s: cannot start a thread", name);
		goto out;
	}
	thread = true;

	uint64_t next_progress = 0;
	uLong crc = crc32_z(0, Z_NULL, 0); /* of the gzip member read so far */
	for (;;) {
		pthread_mutex_lock(&q.mu);
		while (q.head == q.tail && !q.done) {
			pthread_cond_wait(&q.cv, &q.mu);
		}
		bool have = q.head != q.tail, gzip = q.gzip;
		struct scan_block *b = &q.blocks[q.tail % SCAN_BLOCKS];
		pthread_mutex_unlock(&q.mu);
		if (!have) {
			break;
		}
		/*
		 * A piece at a time: it is still in the cache when it is scanned after its hash and
		 * CRC.
		 */
		size_t off = 0;
		for (; off < b->len && !s.too_many_keys; off += SCAN_PIECE) {
			size_t n = b->len - off < SCAN_PIECE ? b->len - off : SCAN_PIECE;
			digest_update(d, b->data + off, n);
			if (gzip) {
				crc = crc32_z(crc, (const Bytef *)b->data + off, n);
			}
			scan_kept(&s, st->bytes, b->data + off, n);
			st->bytes += n;
			check_keys(&s);
		}
		if (b->member_end) {
			/*
			 * Too many keys in the block that ends a member: zlib, checking the CRC as
			 * it inflated, refused a wrong one before this block reached the scan.
			 */
			if (off < b->len) {
				crc = crc32_z(crc, (const Bytef *)b->data + off, b->len - off);
			}
			crc_bad = !reader_crc_ok(r, b->crc, (uint32_t)crc);
			crc = crc32_z(0, Z_NULL, 0);
		}
		crashpoint("scan-block");
		pthread_mutex_lock(&q.mu);
		q.tail++;
		/*
		 * After the last block, a batch would only delay the caller: its rows go with the
		 * rest at once (in `run`, while the next chunk is read).
		 */
		bool last = q.done && q.head == q.tail;
		pthread_cond_broadcast(&q.cv);
		pthread_mutex_unlock(&q.mu);
		if (crc_bad) {
			ret = SCAN_BAD_INPUT;
			goto out;
		}
		if (s.failed) {
			goto out;
		}
		if (s.too_many_keys) {
			ret = SCAN_TOO_MANY_KEYS;
			goto out;
		}
		if (o->block_done != NULL && !last && o->block_done(o->block_arg, agg, st) != 0) {
			goto out;
		}
		if (o->progress && st->bytes >= next_progress) {
			progress(name, (uint64_t)reader_raw_offset(r), o->progress_total, false);
			next_progress = st->bytes + 16 * SCAN_BLOCK;
		}
	}
	if (q.failed) {
		ret = reader_failed_locally(r) ? SCAN_FAILED : SCAN_BAD_INPUT;
		goto out;
	}
	if (q.over) {
		ret = SCAN_TOO_LONG;
		goto out;
	}
	/* A last line without '\n' is still a line. */
	if (s.carry_len > 0 || s.overlong) {
		st->lines++;
		carry_finish(&s);
		check_keys(&s);
	}
	if (s.failed) {
		goto out;
	}
	if (s.too_many_keys) {
		ret = SCAN_TOO_MANY_KEYS;
		goto out;
	}
	digest_final(d, st->sha256);
	ret = 0;
out:
	if (thread) {
		pthread_mutex_lock(&q.mu);
		q.stop = true;
		pthread_cond_broadcast(&q.cv);
		pthread_mutex_unlock(&q.mu);
		pthread_join(tid, NULL);
	}
	/* Not past a wrong CRC: zlib would have stopped there (see reader_defer_crc). */
	if (q.failed && !crc_bad) {
		reader_log_failure(r);
	}
	if (o->progress) {
		progress(name, 0, 0, true);
	}
	free(q.blocks[0].data);
	pthread_cond_destroy(&q.cv);
	pthread_mutex_destroy(&q.mu);
	free(s.carry);
	digest_destroy(d);
	return ret;
}
