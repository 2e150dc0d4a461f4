/*
 * common/worker.c, the one-job thread under the shipper's hasher and the ingester's database
 * writer: where a job runs, that waiting for idle waits for the jobs that done hands on too, the
 * inline fallback, and that destroy does a job still handed over instead of dropping it.
 */
#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

#include "unit.h"

#include "log.h"
#include "worker.h"

enum { PROBE_MAX = 8 };

/*
 * What the jobs did, in order; written by run and done, read once the worker idles (they never
 * assert: a cmocka failure cannot leave the worker's thread).
 */
struct probe {
	pthread_t caller;
	int chain;   /* done hands job + 1 on while job < chain */
	int gate[2]; /* when gated, job 1 reads a byte from gate[0] first */
	bool gated;
	int runs[PROBE_MAX];
	bool on_caller[PROBE_MAX];
	int nruns;
	int results[PROBE_MAX];
	int ndone;
	bool gate_failed;
};

static int probe_run(void *arg, int job)
{
	struct probe *p = arg;
	char c;

	if (p->gated && job == 1 && read(p->gate[0], &c, 1) != 1) {
		p->gate_failed = true;
	}
	if (p->nruns < PROBE_MAX) {
		p->on_caller[p->nruns] = pthread_equal(pthread_self(), p->caller);
		p->runs[p->nruns++] = job;
	}
	return job * 10;
}

static int probe_done(void *arg, int job, int result)
{
	struct probe *p = arg;

	if (p->ndone < PROBE_MAX) {
		p->results[p->ndone++] = result;
	}
	return job < p->chain ? job + 1 : 0;
}

static const struct worker_ops probe_ops = {.run = probe_run, .done = probe_done};

static void probe_init(struct probe *p, int chain, bool gated)
{
	*p = (struct probe){.caller = pthread_self(), .chain = chain, .gated = gated};
	if (gated) {
		assert_int_equal(pipe(p->gate), 0);
	}
}

static void probe_finish(struct probe *p)
{
	assert_false(p->gate_failed);
	if (p->gated) {
		close(p->gate[0]);
		close(p->gate[1]);
	}
}

/* Jobs 1..n ran in order, each where expected, and done saw each one's result. */
static void assert_ran(const struct probe *p, int n, bool on_caller)
{
	assert_int_equal(p->nruns, n);
	assert_int_equal(p->ndone, n);
	for (int i = 0; i < n; i++) {
		assert_int_equal(p->runs[i], i + 1);
		assert_int_equal(p->results[i], (i + 1) * 10);
		assert_int_equal(p->on_caller[i], on_caller);
	}
}

static void assert_idle(struct worker *w)
{
	worker_lock(w);
	assert_int_equal(worker_job(w), 0);
	worker_unlock(w);
}

/* Each job runs on the worker's thread, not the caller's; its result reaches done. */
static void runs_on_thread(void **unused)
{
	struct probe p;
	probe_init(&p, 0, false);
	struct worker *w = worker_create(&probe_ops, &p, true);
	assert_non_null(w);
	assert_true(worker_threaded(w));
	worker_post(w, 1);
	worker_wait_idle(w);
	worker_post(w, 2);
	worker_wait_idle(w);
	assert_ran(&p, 2, false);
	worker_destroy(w);
	worker_destroy(NULL);
	probe_finish(&p);
}

/*
 * A job that cannot end yet keeps the worker busy; waiting for idle returns only after it and the
 * jobs its done handed on, in order; waiting on an idle worker returns at once.
 */
static void wait_idle(void **unused)
{
	struct probe p;
	probe_init(&p, 3, true);
	struct worker *w = worker_create(&probe_ops, &p, true);
	assert_non_null(w);
	worker_wait_idle(w);
	worker_post(w, 1);
	worker_lock(w);
	assert_int_not_equal(worker_job(w), 0); /* job 1 waits for the gate */
	worker_unlock(w);
	assert_int_equal(write(p.gate[1], "x", 1), 1);
	worker_wait_idle(w);
	assert_idle(w);
	assert_ran(&p, 3, false);
	worker_wait_idle(w);
	worker_destroy(w);
	probe_finish(&p);
}

/*
 * Without a thread (the path taken when pthread_create fails), post does the job and those done
 * hands on in the caller's thread before it returns.
 */
static void inline_fallback(void **unused)
{
	struct probe p;
	probe_init(&p, 2, false);
	struct worker *w = worker_create(&probe_ops, &p, false);
	assert_non_null(w);
	assert_false(worker_threaded(w));
	worker_post(w, 1);
	assert_ran(&p, 2, true);
	assert_idle(w);
	worker_wait_idle(w);
	worker_destroy(w);
	probe_finish(&p);
}

/*
 * Destroy right after a post, while the job is handed over (often before the thread woke), and
 * while a gated job runs with another to be handed on: every one of them is done before destroy
 * returns, never dropped. Many rounds, to meet the thread at different points.
 */
static void quit_with_job_pending(void **unused)
{
	for (int round = 0; round < 200; round++) {
		struct probe p;
		bool gated = round % 2 == 1;
		probe_init(&p, 2, gated);
		struct worker *w = worker_create(&probe_ops, &p, true);
		assert_non_null(w);
		worker_post(w, 1);
		if (gated) {
			assert_int_equal(write(p.gate[1], "x", 1), 1);
		}
		worker_destroy(w);
		assert_ran(&p, 2, false);
		probe_finish(&p);
	}
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(runs_on_thread),
	cmocka_unit_test(wait_idle),
	cmocka_unit_test(inline_fallback),
	cmocka_unit_test(quit_with_job_pending),
};

UNIT_MAIN("test_worker", tests)
