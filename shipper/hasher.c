#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hasher.h"
#include "log.h"

/* Below this, a slice is hashed in the caller's thread: waking the thread costs more. */
#define HASHER_INLINE_MAX (16 * 1024)

struct hasher {
	struct digest *dg;
	bool threaded;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* Under mu: */
	const unsigned char *p;
	size_t n;
	bool posted; /* a slice is in flight */
	bool quit;
	uint64_t lines;
};

static uint64_t hash_slice(struct digest *dg, const unsigned char *p, size_t n)
{
	uint64_t c = 0;
	const unsigned char *end = p + n;
	digest_update(dg, p, n);
	while ((p = memchr(p, '\n', (size_t)(end - p)))) {
		c++;
		p++;
	}
	return c;
}

static void *hasher_main(void *arg)
{
	struct hasher *h = arg;
	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (!h->posted && !h->quit) {
			pthread_cond_wait(&h->cv, &h->mu);
		}
		if (h->quit) {
			break;
		}
		const unsigned char *p = h->p;
		size_t n = h->n;
		pthread_mutex_unlock(&h->mu);
		uint64_t lines = hash_slice(h->dg, p, n);
		pthread_mutex_lock(&h->mu);
		h->lines = lines;
		h->posted = false;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

struct hasher *hasher_create(bool threaded)
{
	struct hasher *h = calloc(1, sizeof(*h));
	if (!h) {
		log_error("out of memory");
		return NULL;
	}
	if (!(h->dg = digest_create())) {
		free(h);
		return NULL;
	}
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	h->threaded = threaded && pthread_create(&h->thread, NULL, hasher_main, h) == 0;
	if (threaded && !h->threaded) {
		log_debug("no hashing thread: hashing while compressing");
	}
	return h;
}

void hasher_post(struct hasher *h, const unsigned char *p, size_t n)
{
	if (!h->threaded || n < HASHER_INLINE_MAX) {
		h->lines = hash_slice(h->dg, p, n);
		return;
	}
	pthread_mutex_lock(&h->mu);
	h->p = p;
	h->n = n;
	h->posted = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
}

uint64_t hasher_wait(struct hasher *h)
{
	pthread_mutex_lock(&h->mu);
	while (h->posted) {
		pthread_cond_wait(&h->cv, &h->mu);
	}
	uint64_t lines = h->lines;
	h->lines = 0;
	pthread_mutex_unlock(&h->mu);
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
	if (h->threaded) {
		pthread_mutex_lock(&h->mu);
		h->quit = true;
		pthread_cond_broadcast(&h->cv);
		pthread_mutex_unlock(&h->mu);
		pthread_join(h->thread, NULL);
	}
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	digest_destroy(h->dg);
	free(h);
}
