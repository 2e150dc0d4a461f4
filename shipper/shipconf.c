#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
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

/* *out = a copy of the n bytes at s (a word of a value); -1 after logging, out of memory. */
static int dupstr_n(char **out, const char *s, size_t n)
{
	*out = strndup(s, n);
	if (!*out) {
		log_error("out of memory");
		return -1;
	}
	return 0;
}

static int dupstr(char **out, const char *s)
{
	return dupstr_n(out, s, strlen(s));
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
	c->coalesce_below = 1024 * 1024;
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
	for (size_t i = 0; i < c->nservers; i++) {
		free(c->servers[i].host);
	}
	free(c->servers);
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

/* Whether the n bytes at w are the word s. */
static bool word_is(const char *w, size_t n, const char *s)
{
	return strlen(s) == n && memcmp(w, s, n) == 0;
}

/* "PATH KIND [service=NAME]", words as config_word() splits them. */
static int parse_source(const struct config_line *cl, struct ship_config *c)
{
	char *path = NULL;
	char *service = NULL;
	int ret = -1;
	const char *p = cl->value, *w, *word[3] = {NULL};
	size_t len[3] = {0}, n = 0, wlen;
	while ((w = config_word(&p, &wlen)) != NULL) {
		if (n == 3) {
			log_error("%s:%u: source: expected 'PATH KIND [service=NAME]'", cl->file,
				  cl->line);
			goto out;
		}
		word[n] = w;
		len[n++] = wlen;
	}
	if (n < 2) {
		log_error("%s:%u: source: expected 'PATH KIND [service=NAME]'", cl->file, cl->line);
		goto out;
	}
	enum ship_kind kind;
	if (word_is(word[1], len[1], "multilog")) {
		kind = SHIP_KIND_MULTILOG;
	} else if (word_is(word[1], len[1], "syslog")) {
		kind = SHIP_KIND_SYSLOG;
	} else {
		log_error("%s:%u: source: kind must be multilog or syslog", cl->file, cl->line);
		goto out;
	}
	if (word[0][0] != '/') {
		log_error("%s:%u: source: the path must be absolute", cl->file, cl->line);
		goto out;
	}
	if (dupstr_n(&path, word[0], len[0]) != 0) {
		goto out;
	}
	if (!text_ok(path, MANIFEST_SOURCE_MAX - 32)) {
		log_error("%s:%u: source: path too long", cl->file, cl->line);
		goto out;
	}
	if (n == 3 && (len[2] < 8 || strncmp(word[2], "service=", 8) != 0)) {
		log_error("%s:%u: source: expected service=NAME after the kind", cl->file,
			  cl->line);
		goto out;
	}
	if ((n == 3 ? dupstr_n(&service, word[2] + 8, len[2] - 8) : dupstr(&service, "")) != 0) {
		goto out;
	}
	if (!text_ok(service, MANIFEST_SERVICE_MAX)) {
		log_error("%s:%u: source: service name longer than %d bytes", cl->file, cl->line,
			  MANIFEST_SERVICE_MAX);
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
	free(path);
	free(service);
	return ret;
}

/* "NAME", "NAME:PORT", "[ADDR]" or "[ADDR]:PORT"; a bare IPv6 address (two colons or more) has
 * no port. */
static int parse_host(const struct config_line *cl, struct ship_config *c)
{
	const char *v = cl->value;
	const char *name = v, *port = NULL;
	size_t len = strlen(v);
	if (v[0] == '[') {
		const char *close = strchr(v, ']');
		if (!close || (close[1] != '\0' && close[1] != ':')) {
			log_error("%s:%u: host: expected [ADDRESS] or [ADDRESS]:PORT", cl->file,
				  cl->line);
			return -1;
		}
		name = v + 1;
		len = (size_t)(close - name);
		port = close[1] ? close + 2 : NULL;
	} else {
		const char *colon = strchr(v, ':');
		if (colon && !strchr(colon + 1, ':')) {
			len = (size_t)(colon - v);
			port = colon + 1;
		}
	}
	/* The name goes into known_hosts lookups and messages: letters, digits and what host
	 * names and addresses (with an IPv6 zone) use, nothing else. */
	bool ok = len > 0 && len <= 255;
	for (size_t i = 0; i < len && ok; i++) {
		ok = isalnum((unsigned char)name[i]) || strchr(".-_:%", name[i]) != NULL;
	}
	if (!ok) {
		log_error("%s:%u: host: not a host name or address", cl->file, cl->line);
		return -1;
	}
	uint64_t p = 0;
	if (port) {
		struct config_line pl = *cl;
		pl.value = port;
		if (config_uint(&pl, 1, 65535, &p) != 0) {
			return -1;
		}
	}
	char *host = strndup(name, len);
	struct ship_server *sv = host ? realloc(c->servers, (c->nservers + 1) * sizeof(*sv)) : NULL;
	if (!sv) {
		free(host);
		log_error("out of memory");
		return -1;
	}
	c->servers = sv;
	sv[c->nservers++] = (struct ship_server){.host = host, .port = (unsigned)p};
	return 0;
}

static int parse_hostname(const struct config_line *cl, struct ship_config *c)
{
	if (!text_ok(cl->value, MANIFEST_HOST_MAX)) {
		log_error("%s:%u: hostname: at most %d printable bytes", cl->file, cl->line,
			  MANIFEST_HOST_MAX);
		return -1;
	}
	return config_string(cl, &c->hostname);
}

/* The keywords of ship.conf, as OpenSSH's readconf has them: a plain string, a bounded number,
 * a bounded size (suffix k, M or G), or a parser of its own. */
static const struct keyword {
	const char *name;
	enum { KW_STRING, KW_UINT, KW_SIZE, KW_PARSER } type;
	size_t offset; /* of the char *, unsigned or uint64_t field */
	uint64_t min, max;
	int (*parse)(const struct config_line *cl, struct ship_config *c);
} keywords[] = {
	{"host", KW_PARSER, 0, 0, 0, parse_host},
	{"port", KW_UINT, offsetof(struct ship_config, port), 1, 65535, NULL},
	{"user", KW_STRING, offsetof(struct ship_config, user), 0, 0, NULL},
	{"identity", KW_STRING, offsetof(struct ship_config, identity), 0, 0, NULL},
	{"known_hosts", KW_STRING, offsetof(struct ship_config, known_hosts), 0, 0, NULL},
	{"remote_dir", KW_STRING, offsetof(struct ship_config, remote_dir), 0, 0, NULL},
	{"state_dir", KW_STRING, offsetof(struct ship_config, state_dir), 0, 0, NULL},
	{"hostname", KW_PARSER, 0, 0, 0, parse_hostname},
	{"level", KW_UINT, offsetof(struct ship_config, level), 1, 9, NULL},
	{"connect_timeout", KW_UINT, offsetof(struct ship_config, connect_timeout), 1, 3600, NULL},
	{"timeout", KW_UINT, offsetof(struct ship_config, timeout), 1, 3600, NULL},
	{"keepalive", KW_UINT, offsetof(struct ship_config, keepalive), 1, 3600, NULL},
	{"parallel", KW_UINT, offsetof(struct ship_config, parallel), 1, 16, NULL},
	{"max_chunk", KW_SIZE, offsetof(struct ship_config, max_chunk), 64 * 1024,
	 (uint64_t)64 << 30, NULL},
	{"coalesce_below", KW_SIZE, offsetof(struct ship_config, coalesce_below), 0,
	 (uint64_t)64 << 30, NULL},
	{"forget_days", KW_UINT, offsetof(struct ship_config, forget_days), 1, 3650, NULL},
	{"source", KW_PARSER, 0, 0, 0, parse_source},
};

static int shipconf_line(const struct config_line *cl, void *data)
{
	struct ship_config *c = data;
	for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
		const struct keyword *kw = &keywords[i];
		if (strcmp(cl->key, kw->name) != 0) {
			continue;
		}
		char *field = (char *)c + kw->offset;
		uint64_t v;
		switch (kw->type) {
		case KW_STRING:
			return config_string(cl, (char **)(void *)field);
		case KW_UINT:
			if (config_uint(cl, kw->min, kw->max, &v) != 0) {
				return -1;
			}
			*(unsigned *)(void *)field = (unsigned)v;
			return 0;
		case KW_SIZE:
			return config_size(cl, kw->min, kw->max, (uint64_t *)(void *)field);
		case KW_PARSER:
			return kw->parse(cl, c);
		}
	}
	return config_unknown(cl);
}

/*
 * What only the whole file tells, for both ways of loading it: whether the keys without a
 * default are there; then the "host" lines without a port get the "port" key's, which may come
 * after them.
 */
static int load_end(struct ship_config *c, const char *name)
{
	static const char *const keys[] = {"host", "user", "identity", "remote_dir"};
	const void *const vals[] = {c->servers, c->user, c->identity, c->remote_dir};
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
	for (size_t i = 0; i < c->nservers; i++) {
		if (c->servers[i].port == 0) {
			c->servers[i].port = c->port;
		}
	}
	return 0;
}

int shipconf_load(struct ship_config *c, const char *path)
{
	if (config_parse(path, CONFIG_SECURE, shipconf_line, c) != 0) {
		return -1;
	}
	return load_end(c, path);
}

int shipconf_load_buffer(struct ship_config *c, const char *name, const char *buf, size_t len)
{
	if (config_parse_buffer(name, buf, len, shipconf_line, c) != 0) {
		return -1;
	}
	return load_end(c, name);
}
