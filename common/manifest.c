#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "manifest.h"

bool manifest_name_valid(const char *name)
{
	size_t n = 0;
	/* A leading dot would make "..", or a hidden temporary upload still being written. */
	if (name[0] == '.' || name[0] == '\0') {
		return false;
	}
	for (; name[n]; n++) {
		char c = name[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@' || c == '+' ||
			  c == '-';
		if (!ok || n >= MANIFEST_NAME_MAX) {
			return false;
		}
	}
	return true;
}

bool manifest_zone_valid(const char *zone)
{
	size_t n = strlen(zone);
	/* The ingester hands it to TZ: a path out of zoneinfo would make glibc read that file. */
	if (n == 0 || n > MANIFEST_TZ_MAX || zone[0] == '/' || strstr(zone, "..")) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		char c = zone[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '+' || c == '-' || c == '/')) {
			return false;
		}
	}
	return true;
}

int manifest_format(const struct manifest *m, char *buf, size_t size)
{
	char hex[DIGEST_HEX_LEN + 1];
	digest_hex(m->sha256, hex);
	int n = snprintf(buf, size,
			 "version = %u\nchunk = %s\nhost = %s\nservice = %s\nkind = %s\n"
			 "source = %s\noffset = %" PRIu64 "\nlength = %" PRIu64 "\nlines = %" PRIu64
			 "\nsha256 = %s\nmtime = %" PRId64 "\n",
			 m->version, m->chunk, m->host, m->service, m->kind, m->source, m->offset,
			 m->length, m->lines, hex, m->mtime);
	if (n < 0 || (size_t)n >= size) {
		return -1;
	}
	if (m->tz[0] != '\0') {
		int k = snprintf(buf + n, size - (size_t)n, "tz = %s\n", m->tz);
		if (k < 0 || (size_t)k >= size - (size_t)n) {
			return -1;
		}
		n += k;
	}
	return n;
}

enum {
	KEY_VERSION,
	KEY_CHUNK,
	KEY_HOST,
	KEY_SERVICE,
	KEY_KIND,
	KEY_SOURCE,
	KEY_OFFSET,
	KEY_LENGTH,
	KEY_LINES,
	KEY_SHA256,
	KEY_MTIME,
	KEY_TZ,
	KEY_COUNT,
};

/* Keys a manifest may leave out. */
#define KEYS_OPTIONAL (1u << KEY_TZ)

static const char *const manifest_keys[KEY_COUNT] = {
	"version", "chunk",  "host",  "service", "kind",  "source",
	"offset",  "length", "lines", "sha256",  "mtime", "tz",
};

struct manifest_parse {
	struct manifest *m;
	unsigned seen;
};

/* Copies an untrusted string field, refusing control bytes that could forge log lines. */
static int copy_text(const struct config_line *cl, char *dst, size_t size, bool empty_ok)
{
	size_t n = strlen(cl->value);
	if (n >= size || (n == 0 && !empty_ok)) {
		log_error("%s:%u: %s: %s", cl->file, cl->line, cl->key, n ? "too long" : "empty");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)cl->value[i];
		if (c < 0x20 || c == 0x7f) {
			log_error("%s:%u: %s: control byte", cl->file, cl->line, cl->key);
			return -1;
		}
	}
	memcpy(dst, cl->value, n + 1);
	return 0;
}

static int manifest_line(const struct config_line *cl, void *data)
{
	struct manifest_parse *mp = data;
	struct manifest *m = mp->m;
	int k = 0;
	while (k < KEY_COUNT && strcmp(cl->key, manifest_keys[k]) != 0) {
		k++;
	}
	if (k == KEY_COUNT) {
		return config_unknown(cl);
	}
	if (mp->seen & (1u << k)) {
		log_error("%s:%u: %s given twice", cl->file, cl->line, cl->key);
		return -1;
	}
	mp->seen |= 1u << k;

	uint64_t v;
	switch (k) {
	case KEY_VERSION:
		if (config_uint(cl, 1, 1, &v) != 0) {
			return -1;
		}
		m->version = (unsigned)v;
		return 0;
	case KEY_CHUNK:
		if (copy_text(cl, m->chunk, sizeof(m->chunk), false) != 0) {
			return -1;
		}
		if (!manifest_name_valid(m->chunk)) {
			log_error("%s:%u: chunk: not a valid file name", cl->file, cl->line);
			return -1;
		}
		return 0;
	case KEY_HOST:
		return copy_text(cl, m->host, sizeof(m->host), true);
	case KEY_SERVICE:
		return copy_text(cl, m->service, sizeof(m->service), true);
	case KEY_KIND:
		if (strcmp(cl->value, "multilog") != 0 && strcmp(cl->value, "syslog") != 0) {
			log_error("%s:%u: kind: expected multilog or syslog", cl->file, cl->line);
			return -1;
		}
		return copy_text(cl, m->kind, sizeof(m->kind), false);
	case KEY_SOURCE:
		return copy_text(cl, m->source, sizeof(m->source), true);
	/*
	 * Every number is bounded far below what arithmetic on it could overflow: mtime =
	 * INT64_MAX once made a signed addition in the date code overflow (UBSan aborted).
	 */
	case KEY_OFFSET:
		return config_uint(cl, 0, MANIFEST_BYTES_MAX, &m->offset);
	case KEY_LENGTH:
		return config_uint(cl, 0, MANIFEST_BYTES_MAX, &m->length);
	case KEY_LINES:
		return config_uint(cl, 0, MANIFEST_BYTES_MAX, &m->lines);
	case KEY_SHA256:
		if (digest_unhex(cl->value, m->sha256) != 0) {
			log_error("%s:%u: sha256: expected 64 hex digits", cl->file, cl->line);
			return -1;
		}
		return 0;
	case KEY_MTIME:
		if (config_uint(cl, 0, MANIFEST_MTIME_MAX, &v) != 0) {
			return -1;
		}
		m->mtime = (int64_t)v;
		return 0;
	case KEY_TZ:
		if (!manifest_zone_valid(cl->value)) {
			log_error("%s:%u: tz: not a zone name", cl->file, cl->line);
			return -1;
		}
		return copy_text(cl, m->tz, sizeof(m->tz), false);
	}
	return -1;
}

int manifest_parse(const char *name, const char *buf, size_t len, struct manifest *m)
{
	struct manifest_parse mp = {.m = m};
	memset(m, 0, sizeof(*m));
	if (len > MANIFEST_MAX_SIZE) {
		log_error("%s: larger than %d bytes", name, MANIFEST_MAX_SIZE);
		return -1;
	}
	if (config_parse_buffer(name, buf, len, manifest_line, &mp) != 0) {
		return -1;
	}
	for (int k = 0; k < KEY_COUNT; k++) {
		if (!(mp.seen & (1u << k)) && !(KEYS_OPTIONAL & (1u << k))) {
			log_error("%s: missing %s", name, manifest_keys[k]);
			return -1;
		}
	}
	return 0;
}
