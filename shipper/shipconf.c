#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "manifest.h"
#include "shipconf.h"

const char *ship_kind_name(enum ship_kind kind)
{
	return kind == SHIP_KIND_MULTILOG ? "multilog" : "syslog";
}

static int dupstr(char **out, const char *s)
{
	*out = strdup(s);
	if (!*out) {
		log_error("out of memory");
		return -1;
	}
	return 0;
}

int shipconf_init(struct ship_config *c)
{
	memset(c, 0, sizeof(*c));
	c->port = 22;
	c->level = 6;
	c->connect_timeout = 10;
	c->timeout = 60;
	c->keepalive = 15;
	c->parallel = 8;
	c->max_chunk = 64 * 1024 * 1024;
	c->forget_days = 14;

	_Static_assert(HOST_NAME_MAX <= MANIFEST_HOST_MAX, "a host name fits a manifest");
	char host[HOST_NAME_MAX + 1];
	if (gethostname(host, sizeof(host)) != 0) {
		log_error("gethostname: %s", strerror(errno));
		return -1;
	}
	host[HOST_NAME_MAX] = '\0';
	/* Held to the same rule as a configured hostname (text_ok): it goes into manifests. */
	for (char *p = host; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			*p = '?';
		}
	}
	if (dupstr(&c->known_hosts, "/etc/relaywatch/known_hosts") != 0 ||
	    dupstr(&c->state_dir, "/var/lib/relaywatch") != 0 || dupstr(&c->hostname, host) != 0) {
		shipconf_finish(c);
		return -1;
	}
	return 0;
}

void shipconf_finish(struct ship_config *c)
{
	free(c->host);
	free(c->user);
	free(c->identity);
	free(c->known_hosts);
	free(c->remote_dir);
	free(c->state_dir);
	free(c->hostname);
	for (size_t i = 0; i < c->nsources; i++) {
		free(c->sources[i].path);
		free(c->sources[i].service);
	}
	free(c->sources);
	memset(c, 0, sizeof(*c));
}

/* A size with an optional k/M/G suffix (powers of 1024). */
/* Bytes a manifest field may hold: printable ASCII without control bytes. */
static bool text_ok(const char *s, size_t max)
{
	size_t n = 0;
	for (; s[n]; n++) {
		if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f || n >= max) {
			return false;
		}
	}
	return true;
}

/* "PATH KIND [service=NAME]" */
static int parse_source(const struct config_line *cl, struct ship_config *c)
{
	char *copy = NULL;
	char *path = NULL;
	char *service = NULL;
	int ret = -1;
	if (dupstr(&copy, cl->value) != 0) {
		goto out;
	}
	char *save = NULL;
	char *word[4] = {NULL};
	size_t n = 0;
	for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		if (n == 3) {
			log_error("%s:%u: source: expected 'PATH KIND [service=NAME]'", cl->file,
				  cl->line);
			goto out;
		}
		word[n++] = w;
	}
	if (n < 2) {
		log_error("%s:%u: source: expected 'PATH KIND [service=NAME]'", cl->file, cl->line);
		goto out;
	}
	enum ship_kind kind;
	if (strcmp(word[1], "multilog") == 0) {
		kind = SHIP_KIND_MULTILOG;
	} else if (strcmp(word[1], "syslog") == 0) {
		kind = SHIP_KIND_SYSLOG;
	} else {
		log_error("%s:%u: source: kind must be multilog or syslog", cl->file, cl->line);
		goto out;
	}
	if (word[0][0] != '/') {
		log_error("%s:%u: source: the path must be absolute", cl->file, cl->line);
		goto out;
	}
	if (!text_ok(word[0], MANIFEST_SOURCE_MAX - 32)) {
		log_error("%s:%u: source: path too long", cl->file, cl->line);
		goto out;
	}
	const char *svc = "";
	if (n == 3) {
		if (strncmp(word[2], "service=", 8) != 0) {
			log_error("%s:%u: source: expected service=NAME after the kind", cl->file,
				  cl->line);
			goto out;
		}
		svc = word[2] + 8;
		if (!text_ok(svc, MANIFEST_SERVICE_MAX)) {
			log_error("%s:%u: source: service name longer than %d bytes", cl->file,
				  cl->line, MANIFEST_SERVICE_MAX);
			goto out;
		}
	}
	if (dupstr(&path, word[0]) != 0 || dupstr(&service, svc) != 0) {
		goto out;
	}
	struct ship_source *v = realloc(c->sources, (c->nsources + 1) * sizeof(*v));
	if (!v) {
		log_error("out of memory");
		goto out;
	}
	c->sources = v;
	v[c->nsources++] = (struct ship_source){.path = path, .kind = kind, .service = service};
	path = service = NULL;
	ret = 0;
out:
	free(copy);
	free(path);
	free(service);
	return ret;
}

static int shipconf_line(const struct config_line *cl, void *data)
{
	struct ship_config *c = data;
	uint64_t v;
	const char *k = cl->key;

	if (strcmp(k, "host") == 0) {
		return config_string(cl, &c->host);
	}
	if (strcmp(k, "port") == 0) {
		if (config_uint(cl, 1, 65535, &v) != 0) {
			return -1;
		}
		c->port = (unsigned)v;
		return 0;
	}
	if (strcmp(k, "user") == 0) {
		return config_string(cl, &c->user);
	}
	if (strcmp(k, "identity") == 0) {
		return config_string(cl, &c->identity);
	}
	if (strcmp(k, "known_hosts") == 0) {
		return config_string(cl, &c->known_hosts);
	}
	if (strcmp(k, "remote_dir") == 0) {
		return config_string(cl, &c->remote_dir);
	}
	if (strcmp(k, "state_dir") == 0) {
		return config_string(cl, &c->state_dir);
	}
	if (strcmp(k, "hostname") == 0) {
		if (!text_ok(cl->value, MANIFEST_HOST_MAX)) {
			log_error("%s:%u: hostname: at most %d printable bytes", cl->file, cl->line,
				  MANIFEST_HOST_MAX);
			return -1;
		}
		return config_string(cl, &c->hostname);
	}
	if (strcmp(k, "level") == 0) {
		if (config_uint(cl, 1, 9, &v) != 0) {
			return -1;
		}
		c->level = (int)v;
		return 0;
	}
	if (strcmp(k, "connect_timeout") == 0) {
		if (config_uint(cl, 1, 3600, &v) != 0) {
			return -1;
		}
		c->connect_timeout = (unsigned)v;
		return 0;
	}
	if (strcmp(k, "timeout") == 0) {
		if (config_uint(cl, 1, 3600, &v) != 0) {
			return -1;
		}
		c->timeout = (unsigned)v;
		return 0;
	}
	if (strcmp(k, "keepalive") == 0) {
		if (config_uint(cl, 1, 3600, &v) != 0) {
			return -1;
		}
		c->keepalive = (unsigned)v;
		return 0;
	}
	if (strcmp(k, "parallel") == 0) {
		if (config_uint(cl, 1, 16, &v) != 0) {
			return -1;
		}
		c->parallel = (unsigned)v;
		return 0;
	}
	if (strcmp(k, "max_chunk") == 0) {
		return config_size(cl, 64 * 1024, (uint64_t)64 << 30, &c->max_chunk);
	}
	if (strcmp(k, "forget_days") == 0) {
		if (config_uint(cl, 1, 3650, &v) != 0) {
			return -1;
		}
		c->forget_days = (unsigned)v;
		return 0;
	}
	if (strcmp(k, "source") == 0) {
		return parse_source(cl, c);
	}
	return config_unknown(cl);
}

static int check_required(const struct ship_config *c, const char *name)
{
	static const char *const keys[] = {"host", "user", "identity", "remote_dir"};
	const char *const vals[] = {c->host, c->user, c->identity, c->remote_dir};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (!vals[i]) {
			log_error("%s: missing required key '%s'", name, keys[i]);
			return -1;
		}
	}
	if (c->nsources == 0) {
		log_error("%s: no 'source' line: nothing to ship", name);
		return -1;
	}
	return 0;
}

int shipconf_load(struct ship_config *c, const char *path)
{
	if (config_parse(path, CONFIG_SECURE, shipconf_line, c) != 0) {
		return -1;
	}
	return check_required(c, path);
}

int shipconf_load_buffer(struct ship_config *c, const char *name, const char *buf, size_t len)
{
	if (config_parse_buffer(name, buf, len, shipconf_line, c) != 0) {
		return -1;
	}
	return check_required(c, name);
}
