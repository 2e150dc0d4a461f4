#ifndef RELAYWATCH_WORKER_H
#define RELAYWATCH_WORKER_H

#include <stdbool.h>

/*
 * One thread beside the caller that does one job at a time (the shipper's hasher, the ingester's
 * database writer): the caller posts a job, goes on with its own work, and waits until the worker
 * idles before it reads the job's outcome or changes what the job reads. A job is a positive int
 * whose meaning is the owner's; 0 is none. The owner's state is handed over by the worker's own
 * lock: what the caller wrote before worker_post() is seen by run, what run wrote is seen after
 * worker_wait_idle().
 *
 * When the thread cannot be started (or the caller asks for none), worker_post() does the job in
 * the caller's thread before it returns: nothing overlaps, nothing else changes.
 *
 * The thread's log lines are never held by log_hold (it works beside whoever holds), and a
 * crashpoint passed in run stops or kills that thread (the one that passed it), as anywhere.
 * Out of memory is logged; errno is not part of the contract.
 */
struct worker;

/*
 * run does job with the lock released, in the worker's thread, and returns a result of the
 * owner's choosing. done, when not NULL, is called right after with the lock held and that result:
 * it records the outcome where the owner reads it under the lock and returns the job to do next
 * without going idle in between (0: idle), so that a hand-over decided under the lock is never
 * lost to a caller that saw the worker busy. arg is passed to both.
 */
struct worker_ops {
	int (*run)(void *arg, int job);
	int (*done)(void *arg, int job, int result);
};

/*
 * A worker for ops (which must outlive it) and arg, with its thread when threaded and
 * pthread_create succeeds (see worker_threaded). NULL when out of memory (logged).
 */
struct worker *worker_create(const struct worker_ops *ops, void *arg, bool threaded);

/* Whether a thread does the jobs (false: worker_post does them in the caller's thread). */
bool worker_threaded(const struct worker *w);

/*
 * Hands job (> 0) over and returns at once (threaded), or after doing it and those its done hands
 * on (not threaded). Only while the worker idles: one job at a time.
 */
void worker_post(struct worker *w, int job);

/* Returns once no job is handed over or running (at once when none is). */
void worker_wait_idle(struct worker *w);

/*
 * The worker's lock, for owner state that the caller and done share (not held across run). With
 * it held, worker_job() is the job handed over and not done yet, 0 when the worker idles.
 */
void worker_lock(struct worker *w);
void worker_unlock(struct worker *w);
int worker_job(const struct worker *w);

/* Does the job still handed over (and those its done hands on), then ends the thread and frees.
 * Accepts NULL. */
void worker_destroy(struct worker *w);

#endif
