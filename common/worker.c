#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "log.h"
#include "worker.h"

struct worker {
	const struct worker_ops *ops;
	void *arg;
	bool threaded;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* Under mu: */
	int job; /* handed over and not done yet */
	bool quit;
};

/* Does job and those done hands on, until idle; called and returns without the lock. */
static void worker_do(struct worker *w, int job)
{
	while (job != 0) {
		int r = w->ops->run(w->arg, job);
		pthread_mutex_lock(&w->mu);
		job = w->ops->done ? w->ops->done(w->arg, job, r) : 0;
		w->job = job;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	/* Its lines (a replay, a lost server) must not become the reason the holder reports. */
	log_hold_exempt();
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->job == 0 && !w->quit) {
			pthread_cond_wait(&w->cv, &w->mu);
		}
		/* Quit only once idle: a job handed over is done first. */
		if (w->job == 0) {
			break;
		}
		int job = w->job;
		pthread_mutex_unlock(&w->mu);
		worker_do(w, job);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

struct worker *worker_create(const struct worker_ops *ops, void *arg, bool threaded)
{
	struct worker *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		log_error("out of memory");
		return NULL;
	}
	w->ops = ops;
	w->arg = arg;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->threaded = threaded && pthread_create(&w->thread, NULL, worker_main, w) == 0;
	return w;
}

bool worker_threaded(const struct worker *w)
{
	return w->threaded;
}

void worker_post(struct worker *w, int job)
{
	if (!w->threaded) {
		worker_do(w, job);
		return;
	}
	pthread_mutex_lock(&w->mu);
	w->job = job;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

void worker_wait_idle(struct worker *w)
{
	pthread_mutex_lock(&w->mu);
	while (w->job != 0) {
		pthread_cond_wait(&w->cv, &w->mu);
	}
	pthread_mutex_unlock(&w->mu);
}

void worker_lock(struct worker *w)
{
	pthread_mutex_lock(&w->mu);
}

void worker_unlock(struct worker *w)
{
	pthread_mutex_unlock(&w->mu);
}

int worker_job(const struct worker *w)
{
	return w->job;
}

void worker_destroy(struct worker *w)
{
	if (w == NULL) {
		return;
	}
	if (w->threaded) {
		pthread_mutex_lock(&w->mu);
		w->quit = true;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thread, NULL);
	}
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
