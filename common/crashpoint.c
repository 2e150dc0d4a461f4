#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crashpoint.h"

/* One "NAME:N" from the environment. */
struct hook {
	const char *env;
	int sig;
	int state; /* 0 unread, 1 armed, -1 off */
	char name[64];
	unsigned long left;
};

static struct hook hooks[] = {
	{.env = "RELAYWATCH_CRASH", .sig = SIGKILL},
	{.env = "RELAYWATCH_PAUSE", .sig = SIGSTOP},
};

static void hook_pass(struct hook *h, const char *name)
{
	if (h->state == 0) {
		h->state = -1;
		const char *env = getenv(h->env);
		const char *colon = env ? strrchr(env, ':') : NULL;
		if (colon && (size_t)(colon - env) < sizeof(h->name)) {
			memcpy(h->name, env, (size_t)(colon - env));
			h->name[colon - env] = '\0';
			h->left = strtoul(colon + 1, NULL, 10);
			h->state = h->left > 0 ? 1 : -1;
		}
	}
	if (h->state < 0 || strcmp(name, h->name) != 0) {
		return;
	}
	if (--h->left == 0) {
		h->state = -1;
		kill(getpid(), h->sig);
	}
}

/* Passed from several threads at once (a scan's, the database writer's): one at a time. */
static pthread_mutex_t hooks_mu = PTHREAD_MUTEX_INITIALIZER;

void crashpoint(const char *name)
{
	pthread_mutex_lock(&hooks_mu);
	for (size_t i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++) {
		hook_pass(&hooks[i], name);
	}
	pthread_mutex_unlock(&hooks_mu);
}
