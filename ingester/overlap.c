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
	OVERLAP_JOB_NONE,   /* the writer idles */
	OVERLAP_JOB_STREAM, /* db_stream_rows of batch */
	OVERLAP_JOB_INGEST, /* db_ingest_chunk of chunk and agg */
};

struct overlap {
	struct db *db;
	struct agg_batch *batch; /* the writer's during a batch job, the scan's otherwise */
	/*
	 * The scan takes the next batch here while the writer writes batch, so that the database
	 * never waits for the end of a block to get more rows; next_ready: it waits its turn.
	 */
	struct agg_batch *next;
	bool next_ready;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t tid;
	bool threaded; /* the writer thread runs (else jobs are done by the caller) */
	bool quit;
	enum overlap_job job; /* handed over and not yet done */
	bool stream_failed;   /* the current scan's stream met an error: no more batches */
	const struct db_chunk *chunk;
	struct agg *agg;
	enum db_result result; /* of the last ingest job */
	unsigned long batches;
};

/* Does one job with the lock released; its result is recorded and the writer idles again. */
static void overlap_do(struct overlap *o, enum overlap_job job)
{
	int r;

	if (job == OVERLAP_JOB_STREAM) {
		r = db_stream_rows(o->db, o->batch);
	} else {
		r = (int)db_ingest_chunk(o->db, o->chunk, o->agg);
	}
	pthread_mutex_lock(&o->mu);
	o->job = OVERLAP_JOB_NONE;
	if (job == OVERLAP_JOB_STREAM) {
		o->stream_failed = o->stream_failed || r != 0;
		o->batches += r == 0;
		if (o->next_ready) {
			/* Written next (after a failure db_stream_rows refuses it at once). */
			struct agg_batch *b = o->batch;
			o->batch = o->next;
			o->next = b;
			o->next_ready = false;
			o->job = OVERLAP_JOB_STREAM;
		}
	} else {
		o->result = (enum db_result)r;
	}
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
}

static void *overlap_writer(void *arg)
{
	struct overlap *o = arg;

	/* Its lines (a replay, a lost server) must not become the reason of the chunk being read.
	 */
	log_hold_exempt();
	pthread_mutex_lock(&o->mu);
	for (;;) {
		while (o->job == OVERLAP_JOB_NONE && !o->quit) {
			pthread_cond_wait(&o->cv, &o->mu);
		}
		if (o->job == OVERLAP_JOB_NONE) {
			break;
		}
		enum overlap_job job = o->job;
		pthread_mutex_unlock(&o->mu);
		overlap_do(o, job);
		pthread_mutex_lock(&o->mu);
	}
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

/* Hands a job to the writer (the caller's thread does it when there is no writer). */
static void overlap_hand(struct overlap *o, enum overlap_job job)
{
	pthread_mutex_lock(&o->mu);
	o->job = job;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	if (!o->threaded) {
		overlap_do(o, job);
	}
}

struct overlap *overlap_create(struct db *db)
{
	struct overlap *o = calloc(1, sizeof(*o));

	if (o == NULL || (o->batch = agg_batch_create(OVERLAP_BATCH)) == NULL ||
	    (o->next = agg_batch_create(OVERLAP_BATCH)) == NULL) {
		if (o != NULL) {
			agg_batch_destroy(o->batch);
		}
		free(o);
		log_error("out of memory");
		return NULL;
	}
	o->db = db;
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	pthread_once(&scan_nice_once, scan_nice_init);
	o->threaded = pthread_create(&o->tid, NULL, overlap_writer, o) == 0;
	if (!o->threaded) {
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
	if (o->threaded) {
		pthread_mutex_lock(&o->mu);
		o->quit = true;
		pthread_cond_broadcast(&o->cv);
		pthread_mutex_unlock(&o->mu);
		pthread_join(o->tid, NULL);
	}
	agg_batch_destroy(o->batch);
	agg_batch_destroy(o->next);
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->mu);
	free(o);
}

unsigned long overlap_batches(const struct overlap *o)
{
	return o->batches;
}

void overlap_wait_idle(struct overlap *o)
{
	pthread_mutex_lock(&o->mu);
	while (o->job != OVERLAP_JOB_NONE) {
		pthread_cond_wait(&o->cv, &o->mu);
	}
	pthread_mutex_unlock(&o->mu);
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

	pthread_mutex_lock(&o->mu);
	if (o->stream_failed || o->next_ready ||
	    (o->job != OVERLAP_JOB_NONE && o->job != OVERLAP_JOB_STREAM)) {
		b = NULL;
	} else {
		/* Only this thread hands batches: the writer's batch stays its own until idle. */
		b = o->job == OVERLAP_JOB_NONE ? o->batch : o->next;
	}
	pthread_mutex_unlock(&o->mu);
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
	pthread_mutex_lock(&o->mu);
	bool idle = o->job == OVERLAP_JOB_NONE;
	if (idle && b != o->batch) {
		/* The writer finished meanwhile (and found no batch waiting). */
		o->next = o->batch;
		o->batch = b;
	}
	o->next_ready = !idle;
	pthread_mutex_unlock(&o->mu);
	if (idle) {
		overlap_hand(o, OVERLAP_JOB_STREAM);
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
	pthread_mutex_lock(&o->mu);
	o->stream_failed = false;
	o->batches = 0;
	pthread_mutex_unlock(&o->mu);
	if (o->threaded) {
		scan_yield();
		s.block_done = overlap_block;
		s.block_arg = o;
		agg_track(agg, true);
	}
	ret = scan_chunk(r, name, &s, agg, st);
	overlap_wait_idle(o);
	if (ret != 0) {
		db_stream_abort(o->db);
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
	overlap_hand(o, OVERLAP_JOB_INGEST);
}

enum db_result overlap_ingest_wait(struct overlap *o)
{
	enum db_result r;

	overlap_wait_idle(o);
	pthread_mutex_lock(&o->mu);
	r = o->result;
	pthread_mutex_unlock(&o->mu);
	return r;
}

enum db_result overlap_ingest(struct overlap *o, const struct db_chunk *c, struct agg *agg)
{
	overlap_ingest_start(o, c, agg);
	return overlap_ingest_wait(o);
}
