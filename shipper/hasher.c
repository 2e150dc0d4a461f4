#include <stdbool.h>
#include <stdlib.h>

#include "bytevec.h"
#include "hasher.h"
#include "log.h"
#include "worker.h"

/* Below this, a slice is hashed in the caller's thread: waking the thread costs more. */
#define HASHER_INLINE_MAX (16 * 1024)

struct hasher {
	struct digest *dg;
	struct worker *w;
	/* The slice in flight and its count: handed over by the worker's lock. */
	const unsigned char *p;
	size_t n;
	uint64_t lines;
};

static uint64_t hash_slice(struct digest *dg, const unsigned char *p, size_t n)
{
	digest_update(dg, p, n);
	return bytevec_newlines(p, n);
}

/* The worker's one job: the slice posted last. */
static int hasher_run(void *arg, int job)
{
	struct hasher *h = arg;
	h->lines = hash_slice(h->dg, h->p, h->n);
	return 0;
}

static const struct worker_ops hasher_ops = {.run = hasher_run};

struct hasher *hasher_create(bool threaded)
{
	struct hasher *h = calloc(1, sizeof(*h));
	if (!h) {
		log_error("out of memory");
		return NULL;
	}
	if (!(h->dg = digest_create()) || !(h->w = worker_create(&hasher_ops, h, threaded))) {
		hasher_destroy(h);
		return NULL;
	}
	if (threaded && !worker_threaded(h->w)) {
		log_debug("no hashing thread: hashing while compressing");
	}
	return h;
}

void hasher_post(struct hasher *h, const unsigned char *p, size_t n)
{
	/* Without a thread, worker_post hashes in this thread too (see worker.h). */
	if (n < HASHER_INLINE_MAX) {
		h->lines = hash_slice(h->dg, p, n);
		return;
	}
	h->p = p;
	h->n = n;
	worker_post(h->w, 1);
}

uint64_t hasher_wait(struct hasher *h)
{
	worker_wait_idle(h->w);
	uint64_t lines = h->lines;
	h->lines = 0;
	return lines;
}

void hasher_final(struct hasher *h, uint8_t out[static DIGEST_LEN])
{
	digest_final(h->dg, out);
}

void hasher_destroy(struct hasher *h)
{
	if (!h) {
		return;
	}
	worker_destroy(h->w);
	digest_destroy(h->dg);
	free(h);
}
