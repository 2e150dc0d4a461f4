#include "ingest_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "log.h"
#include "logtime.h"
#include "manifest.h"

void ingest_config_init(struct ingest_config *c)
{
	memset(c, 0, sizeof(*c));
	c->archive = true;
	c->max_chunk = INGEST_MAX_CHUNK_DEFAULT;
	c->max_keys = INGEST_MAX_KEYS_DEFAULT;
	check_rules_init(&c->rules);
	alert_command_init(&c->alert);
}

void ingest_config_finish(struct ingest_config *c)
{
	free(c->defaults_file);
	for (size_t i = 0; i < c->nincoming; i++) {
		free(c->incoming[i].dir);
		free(c->incoming[i].host);
	}
	free(c->incoming);
	free(c->tz);
	check_rules_finish(&c->rules);
	alert_command_finish(&c->alert);
	memset(c, 0, sizeof(*c));
}

/* "DIR" or "DIR host=NAME" (DIR may hold spaces: only a last word host=... is taken off). */
static int parse_incoming(const struct config_line *cl, struct ingest_config *c)
{
	const char *v = cl->value, *sp = strrchr(v, ' ');
	const char *host = sp != NULL && strncmp(sp + 1, "host=", 5) == 0 ? sp + 6 : NULL;
	size_t n = host != NULL ? (size_t)(sp - v) : strlen(v);
	struct ingest_incoming in = {0}, *nv;

	while (n > 0 && v[n - 1] == ' ') {
		n--;
	}
	if (n == 0 || (host != NULL && (host[0] == '\0' || strlen(host) > MANIFEST_HOST_MAX))) {
		log_error("%s:%u: incoming: expected 'DIR [host=NAME]'", cl->file, cl->line);
		return -1;
	}
	nv = realloc(c->incoming, (c->nincoming + 1) * sizeof(*nv));
	if (nv != NULL) {
		c->incoming = nv;
	}
	in.dir = strndup(v, n);
	in.host = host != NULL ? strdup(host) : NULL;
	if (nv == NULL || in.dir == NULL || (host != NULL && in.host == NULL)) {
		log_error("out of memory");
		free(in.dir);
		free(in.host);
		return -1;
	}
	c->incoming[c->nincoming++] = in;
	return 0;
}

static int ingest_config_line(const struct config_line *cl, void *data)
{
	struct ingest_config *c = data;

	if (strcmp(cl->key, "defaults_file") == 0) {
		return config_string(cl, &c->defaults_file);
	}
	if (strcmp(cl->key, "incoming") == 0) {
		return parse_incoming(cl, c);
	}
	if (strcmp(cl->key, "max_chunk") == 0) {
		return config_size(cl, 1 << 20, (uint64_t)64 << 30, &c->max_chunk);
	}
	if (strcmp(cl->key, "max_keys") == 0) {
		return config_uint(cl, 1000, 100000000, &c->max_keys);
	}
	if (strcmp(cl->key, "archive") == 0) {
		return config_bool(cl, &c->archive);
	}
	if (strcmp(cl->key, "tz") == 0) {
		if (!logtime_zone_known(cl->value)) {
			return config_bad_value(cl, "is not a known time zone");
		}
		return config_string(cl, &c->tz);
	}
	/* Each module's keys, then the next module's. */
	enum config_set_result r = check_rules_set(&c->rules, cl);
	if (r == CONFIG_SET_OTHER) {
		r = alert_command_set(&c->alert, cl);
	}
	if (r == CONFIG_SET_OTHER) {
		return config_unknown(cl);
	}
	return r == CONFIG_SET_APPLIED ? 0 : -1;
}

int ingest_config_load(struct ingest_config *c, const char *path, bool missing_ok)
{
	struct stat sb;

	if (missing_ok && stat(path, &sb) != 0 && errno == ENOENT) {
		return 0;
	}
	return config_parse(path, CONFIG_SECURE, ingest_config_line, c);
}
