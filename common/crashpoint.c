#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "crashpoint.h"

/* One "NAME:N" from the environment. */
struct hook {
	const char *env;
	int sig;
	bool armed;
	char name[64];
	unsigned long left;
};

static struct hook hooks[] = {
	{.env = "RELAYWATCH_CRASH", .sig = SIGKILL},
	{.env = "RELAYWATCH_PAUSE", .sig = SIGSTOP},
};

/* Whether the environment armed any hook: unset, a crashpoint returns without taking the lock. */
static bool hooks_any;
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void hooks_read(void)
{
	for (size_t i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++) {
		struct hook *h = &hooks[i];
		const char *env = getenv(h->env);
		const char *colon = env ? strrchr(env, ':') : NULL;
		if (colon && (size_t)(colon - env) < sizeof(h->name)) {
			memcpy(h->name, env, (size_t)(colon - env));
			h->name[colon - env] = '\0';
			h->left = strtoul(colon + 1, NULL, 10);
			h->armed = h->left > 0;
			hooks_any |= h->armed;
		}
	}
}

static void hook_pass(struct hook *h, const char *name)
{
	if (!h->armed || strcmp(name, h->name) != 0) {
		return;
	}
	if (--h->left == 0) {
		h->armed = false;
		/*
		 * To this thread, not the process: kill(getpid()) hands SIGSTOP to the main thread,
		 * and a writer thread that passed the point went on (sent its COMMIT) until the
		 * main thread had stopped the group. Sent to the caller, the stop takes it before
		 * it returns to the code after the point.
		 */
		pthread_kill(pthread_self(), h->sig);
	}
}

/* Passed from several threads at once (a scan's, the database writer's): one at a time. */
static pthread_mutex_t hooks_mu = PTHREAD_MUTEX_INITIALIZER;

void crashpoint(const char *name)
{
	pthread_once(&hooks_once, hooks_read);
	if (!hooks_any) {
		return;
	}
	pthread_mutex_lock(&hooks_mu);
	for (size_t i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++) {
		hook_pass(&hooks[i], name);
	}
	pthread_mutex_unlock(&hooks_mu);
}
