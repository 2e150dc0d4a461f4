#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crashpoint.h"

static int crash_state; /* 0 unread, 1 armed, -1 off */
static char crash_name[64];
static unsigned long crash_left;

void crashpoint(const char *name)
{
	if (crash_state == 0) {
		crash_state = -1;
		const char *env = getenv("RELAYWATCH_CRASH");
		const char *colon = env ? strrchr(env, ':') : NULL;
		if (colon && (size_t)(colon - env) < sizeof(crash_name)) {
			memcpy(crash_name, env, (size_t)(colon - env));
			crash_name[colon - env] = '\0';
			crash_left = strtoul(colon + 1, NULL, 10);
			crash_state = crash_left > 0 ? 1 : -1;
		}
	}
	if (crash_state < 0 || strcmp(name, crash_name) != 0) {
		return;
	}
	if (--crash_left == 0) {
		kill(getpid(), SIGKILL);
	}
}
