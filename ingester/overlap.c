#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

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

struct overlap {
	struct db *db;
	struct agg_batch *batch; /* the writer's while busy, the scan's otherwise */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool busy;   /* a batch is handed over and not yet written */
	bool done;   /* the scan has ended: the writer leaves when idle */
	bool failed; /* the writer met an error: no more batches, db_ingest_chunk replays */
	unsigned long batches;
};

struct overlap *overlap_create(struct db *db)
{
	struct overlap *o = calloc(1, sizeof(*o));

	if (o == NULL || (o->batch = agg_batch_create(OVERLAP_BATCH)) == NULL) {
		free(o);
		log_error("out of memory");
		return NULL;
	}
	o->db = db;
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	return o;
}

void overlap_destroy(struct overlap *o)
{
	if (o == NULL) {
		return;
	}
	agg_batch_destroy(o->batch);
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->mu);
	free(o);
}

unsigned long overlap_batches(const struct overlap *o)
{
	return o->batches;
}

static void *overlap_writer(void *arg)
{
	struct overlap *o = arg;

	pthread_mutex_lock(&o->mu);
	for (;;) {
		while (!o->busy && !o->done) {
			pthread_cond_wait(&o->cv, &o->mu);
		}
		if (!o->busy) {
			break;
		}
		pthread_mutex_unlock(&o->mu);
		int r = db_stream_rows(o->db, o->batch);
		pthread_mutex_lock(&o->mu);
		o->failed = o->failed || r != 0;
		o->busy = false;
		o->batches += r == 0;
		pthread_cond_broadcast(&o->cv);
	}
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

/* After each block, in the scanning thread: hand the complete hours over if the writer idles. */
static int overlap_block(void *arg, struct agg *agg, const struct scan_stats *st)
{
	struct overlap *o = arg;
	bool idle;
	long n;

	pthread_mutex_lock(&o->mu);
	idle = !o->busy && !o->failed;
	pthread_mutex_unlock(&o->mu);
	if (!idle || st->last_utc == LOGTIME_NONE) {
		return 0;
	}
	n = agg_take(agg, o->batch, logtime_hour_floor(st->last_utc), OVERLAP_MIN_ROWS);
	if (n == 0 && agg_untaken(agg) >= OVERLAP_ANY_ROWS) {
		n = agg_take(agg, o->batch, INT64_MAX, OVERLAP_MIN_ROWS);
	}
	if (n < 0) {
		log_error("out of memory");
		return -1;
	}
	if (n > 0) {
		pthread_mutex_lock(&o->mu);
		o->busy = true;
		pthread_cond_broadcast(&o->cv);
		pthread_mutex_unlock(&o->mu);
	}
	return 0;
}

int overlap_scan(struct overlap *o, struct reader *r, const char *name, const struct scan_opts *so,
		 struct agg *agg, struct scan_stats *st)
{
	struct scan_opts s = *so;
	pthread_t tid;
	int ret;

	o->busy = o->done = o->failed = false;
	o->batches = 0;
	if (pthread_create(&tid, NULL, overlap_writer, o) != 0) {
		/* Not worth failing the chunk: it is written after the scan, as it used to be. */
		log_info("%s: cannot start a writer thread; writing after the scan", name);
		return scan_chunk(r, name, so, agg, st);
	}
	s.block_done = overlap_block;
	s.block_arg = o;
	agg_track(agg, true);
	ret = scan_chunk(r, name, &s, agg, st);
	pthread_mutex_lock(&o->mu);
	o->done = true;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	pthread_join(tid, NULL);
	if (ret != 0) {
		db_stream_abort(o->db);
	}
	return ret;
}
