#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "log.h"
#include "logtime.h"
#include "overlap.h"
#include "worker.h"

/*
 * Rows per batch: a few statements' worth (db.c cuts statements at 1 MB), so the writer seldom
 * waits for the scan, and fewer finished rows than OVERLAP_MIN_ROWS wait for the next block.
 */
#define OVERLAP_BATCH    (4 * 1024 * 1024)
#define OVERLAP_MIN_ROWS 512
/*
 * A log whose hours do not advance (one busy hour, or lines out of order) still streams once this
 * many rows wait, whatever their hour: a row that gains counts later is sent again with those.
 */
#define OVERLAP_ANY_ROWS (64 * 1024)

/*
 * The scan runs this much nicer than the writer. Where the database runs on the same machine, its
 * work for the rows is the serial part (one connection, one server thread): a scan competing
 * with it on equal terms (inflate and parse, two threads) leaves it behind, to finish alone after
 * the scan while a core idles. Yielding, the scan takes what the database leaves, and both end
 * nearly together (the README's Performance section has the measurement).
 */
#define OVERLAP_SCAN_NICE 10

static pthread_once_t scan_nice_once = PTHREAD_ONCE_INIT;
static int scan_nice;

/* The process's nice value as the first writer started, plus OVERLAP_SCAN_NICE. */
static void scan_nice_init(void)
{
	int base;

	errno = 0;
	base = getpriority(PRIO_PROCESS, 0);
	if (errno != 0) {
		base = 0;
	}
	scan_nice = base + OVERLAP_SCAN_NICE < 19 ? base + OVERLAP_SCAN_NICE : 19;
}

/*
 * Lowers the calling thread's priority to scan_nice (an absolute value: calling it again changes
 * nothing). On Linux the nice value is a thread's, so the writer keeps its own; threads the scan
 * starts (the reader's inflater) inherit it. Where it is the process's, everything yields alike.
 */
static void scan_yield(void)
{
	if (setpriority(PRIO_PROCESS, 0, scan_nice) != 0) {
		log_debug("cannot lower the scan's priority: %s", strerror(errno));
	}
}

enum overlap_job {
	OVERLAP_JOB_NONE,   /* the writer idles (the worker's 0) */
	OVERLAP_JOB_STREAM, /* db_stream_rows of batch */
	OVERLAP_JOB_INGEST, /* db_ingest_chunk of chunk and agg */
};

struct overlap {
	struct db *db;
	/* The writer thread, whose lock guards what follows (worker_job: the job handed over). */
	struct worker *w;
	struct agg_batch *batch; /* the writer's during a batch job, the scan's otherwise */
	/*
	 * The scan takes the next batch here while the writer writes batch, so that the database
	 * never waits for the end of a block to get more rows; next_ready: it waits its turn.
	 */
	struct agg_batch *next;
	bool next_ready;
	bool stream_failed; /* the current scan's stream met an error: no more batches */
	const struct db_chunk *chunk;
	struct agg *agg;
	enum db_result result; /* of the last ingest job */
	unsigned long batches;
};

/* Does one job with the lock released. */
static int overlap_run(void *arg, int job)
{
	struct overlap *o = arg;

	if (job == OVERLAP_JOB_STREAM) {
		return db_stream_rows(o->db, o->batch);
	}
	return (int)db_ingest_chunk(o->db, o->chunk, o->agg);
}

/*
 * Under the lock: records the job's result, and hands the batch that waits its turn over at once
 * (the writer never idles between them, so the scan that saw it busy never strands a batch).
 */
static int overlap_done(void *arg, int job, int r)
{
	struct overlap *o = arg;

	if (job != OVERLAP_JOB_STREAM) {
		o->result = (enum db_result)r;
		return OVERLAP_JOB_NONE;
	}
	o->stream_failed = o->stream_failed || r != 0;
	o->batches += r == 0;
	if (!o->next_ready) {
		return OVERLAP_JOB_NONE;
	}
	/* Written next (after a failure db_stream_rows refuses it at once). */
	struct agg_batch *b = o->batch;
	o->batch = o->next;
	o->next = b;
	o->next_ready = false;
	return OVERLAP_JOB_STREAM;
}

static const struct worker_ops overlap_ops = {.run = overlap_run, .done = overlap_done};

struct overlap *overlap_create(struct db *db)
{
	struct overlap *o = calloc(1, sizeof(*o));

	if (o == NULL || (o->batch = agg_batch_create(OVERLAP_BATCH)) == NULL ||
	    (o->next = agg_batch_create(OVERLAP_BATCH)) == NULL) {
		log_error("out of memory");
		overlap_destroy(o);
		return NULL;
	}
	o->db = db;
	pthread_once(&scan_nice_once, scan_nice_init);
	if ((o->w = worker_create(&overlap_ops, o, true)) == NULL) {
		overlap_destroy(o);
		return NULL;
	}
	if (!worker_threaded(o->w)) {
		/* Not worth failing for: the chunks are written after their scans, as they used to.
		 */
		log_info("cannot start a writer thread; writing after each scan");
	}
	return o;
}

void overlap_destroy(struct overlap *o)
{
	if (o == NULL) {
		return;
	}
	worker_destroy(o->w);
	agg_batch_destroy(o->batch);
	agg_batch_destroy(o->next);
	free(o);
}

unsigned long overlap_batches(const struct overlap *o)
{
	return o->batches;
}

void overlap_wait_idle(struct overlap *o)
{
	worker_wait_idle(o->w);
}

/*
 * After each block, in the scanning thread: hand the complete hours over if the writer idles, or
 * have them wait their turn if it is writing a batch and none waits yet.
 */
static int overlap_block(void *arg, struct agg *agg, const struct scan_stats *st)
{
	struct overlap *o = arg;
	struct agg_batch *b;
	long n;

	worker_lock(o->w);
	int job = worker_job(o->w);
	if (o->stream_failed || o->next_ready || job == OVERLAP_JOB_INGEST) {
		b = NULL;
	} else {
		/* Only this thread hands batches: the writer's batch stays its own until idle. */
		b = job == OVERLAP_JOB_NONE ? o->batch : o->next;
	}
	worker_unlock(o->w);
	if (b == NULL || st->last_utc == LOGTIME_NONE) {
		return 0;
	}
	n = agg_take(agg, b, logtime_hour_floor(st->last_utc), OVERLAP_MIN_ROWS);
	if (n == 0 && agg_untaken(agg) >= OVERLAP_ANY_ROWS) {
		n = agg_take(agg, b, INT64_MAX, OVERLAP_MIN_ROWS);
	}
	if (n < 0) {
		log_error("out of memory");
		return -1;
	}
	if (n == 0) {
		return 0;
	}
	worker_lock(o->w);
	bool idle = worker_job(o->w) == OVERLAP_JOB_NONE;
	if (idle && b != o->batch) {
		/* The writer finished meanwhile (and found no batch waiting). */
		o->next = o->batch;
		o->batch = b;
	}
	o->next_ready = !idle;
	worker_unlock(o->w);
	if (idle) {
		worker_post(o->w, OVERLAP_JOB_STREAM);
	}
	return 0;
}

int overlap_scan(struct overlap *o, struct reader *r, const char *name, const struct scan_opts *so,
		 struct agg *agg, struct scan_stats *st)
{
	struct scan_opts s = *so;
	int ret;

	if (o == NULL) {
		return scan_chunk(r, name, so, agg, st);
	}
	worker_lock(o->w);
	o->stream_failed = false;
	o->batches = 0;
	worker_unlock(o->w);
	if (worker_threaded(o->w)) {
		scan_yield();
		s.block_done = overlap_block;
		s.block_arg = o;
		agg_track(agg, true);
	}
	ret = scan_chunk(r, name, &s, agg, st);
	if (ret != 0) {
		overlap_abort(o);
	} else {
		overlap_wait_idle(o);
	}
	return ret;
}

void overlap_abort(struct overlap *o)
{
	overlap_wait_idle(o);
	db_stream_abort(o->db);
}

void overlap_ingest_start(struct overlap *o, const struct db_chunk *c, struct agg *agg)
{
	/* The stream of agg's scan, or the last ingest, must be done: one job at a time. */
	overlap_wait_idle(o);
	o->chunk = c;
	o->agg = agg;
	worker_post(o->w, OVERLAP_JOB_INGEST);
}

enum db_result overlap_ingest_wait(struct overlap *o)
{
	/* Recorded by overlap_done under the worker's lock: seen once it idles (worker.h). */
	overlap_wait_idle(o);
	return o->result;
}

enum db_result overlap_ingest(struct overlap *o, const struct db_chunk *c, struct agg *agg)
{
	overlap_ingest_start(o, c, agg);
	return overlap_ingest_wait(o);
}
