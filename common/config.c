#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "fileio.h"
#include "log.h"

/* A config file is small; a larger one is a mistake (or /dev/zero). */
#define CONFIG_MAX_SIZE (1024 * 1024)

int config_check_secure(int fd, const char *path)
{
	return fileio_check_private(fd, path, "config", FILEIO_FILE);
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static bool key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.';
}

int config_parse_buffer(const char *name, const char *buf, size_t len, config_fn fn, void *data)
{
	char *line = NULL;
	size_t cap = 0;
	int ret = -1;
	unsigned lineno = 0;
	size_t pos = 0;

	while (pos < len) {
		const char *start = buf + pos;
		const char *nl = memchr(start, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - start) : len - pos;
		pos += n + (nl ? 1 : 0);
		lineno++;

		if (memchr(start, '\0', n)) {
			log_error("%s:%u: NUL byte in line", name, lineno);
			goto out;
		}
		if (n + 1 > cap) {
			char *p = realloc(line, n + 1);
			if (!p) {
				log_error("out of memory");
				goto out;
			}
			line = p;
			cap = n + 1;
		}
		memcpy(line, start, n);
		line[n] = '\0';

		char *s = line;
		while (is_space(*s)) {
			s++;
		}
		if (*s == '\0' || *s == '#') {
			continue;
		}
		char *k = s;
		while (key_char(*s)) {
			s++;
		}
		char *kend = s;
		while (is_space(*s)) {
			s++;
		}
		if (kend == k || *s != '=') {
			log_error("%s:%u: expected 'key = value'", name, lineno);
			goto out;
		}
		*kend = '\0';
		s++;
		while (is_space(*s)) {
			s++;
		}
		char *vend = s + strlen(s);
		while (vend > s && is_space(vend[-1])) {
			vend--;
		}
		*vend = '\0';

		struct config_line cl = {.file = name, .line = lineno, .key = k, .value = s};
		if (fn(&cl, data) != 0) {
			goto out;
		}
	}
	ret = 0;
out:
	free(line);
	return ret;
}

int config_parse(const char *path, int flags, config_fn fn, void *data)
{
	int ret = -1;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		log_error("%s: %s", path, strerror(errno));
		goto out;
	}
	if ((flags & CONFIG_SECURE) && config_check_secure(fd, path) != 0) {
		goto out;
	}
	size_t len;
	if (fileio_read_file(fd, path, CONFIG_MAX_SIZE, &buf, &len) != 0) {
		goto out;
	}
	ret = config_parse_buffer(path, buf, len, fn, data);
out:
	free(buf);
	if (fd >= 0) {
		close(fd);
	}
	return ret;
}

int config_uint(const struct config_line *cl, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *v = cl->value;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno == ERANGE || x < min || x > max) {
		log_error("%s:%u: %s: expected a whole number from %" PRIu64 " to %" PRIu64,
			  cl->file, cl->line, cl->key, min, max);
		return -1;
	}
	*out = x;
	return 0;
}

int config_size(const struct config_line *cl, uint64_t min, uint64_t max, uint64_t *out)
{
	const char *v = cl->value;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 10);
	unsigned shift = 0;
	if (*end == 'k' || *end == 'K') {
		shift = 10;
	} else if (*end == 'm' || *end == 'M') {
		shift = 20;
	} else if (*end == 'g' || *end == 'G') {
		shift = 30;
	}
	if (shift) {
		end++;
	}
	if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno == ERANGE ||
	    x > (UINT64_MAX >> shift) || (x << shift) < min || (x << shift) > max) {
		log_error("%s:%u: %s: expected a size from %" PRIu64 " to %" PRIu64
			  " bytes (suffix k, M or G allowed)",
			  cl->file, cl->line, cl->key, min, max);
		return -1;
	}
	*out = (uint64_t)x << shift;
	return 0;
}

int config_bool(const struct config_line *cl, bool *out)
{
	const char *v = cl->value;
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1")) {
		*out = true;
		return 0;
	}
	if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0")) {
		*out = false;
		return 0;
	}
	log_error("%s:%u: %s: expected yes or no", cl->file, cl->line, cl->key);
	return -1;
}

int config_string(const struct config_line *cl, char **out)
{
	if (cl->value[0] == '\0') {
		log_error("%s:%u: %s: empty value", cl->file, cl->line, cl->key);
		return -1;
	}
	char *s = strdup(cl->value);
	if (!s) {
		log_error("out of memory");
		return -1;
	}
	free(*out);
	*out = s;
	return 0;
}

const char *config_word(const char **p, size_t *n)
{
	const char *w = *p + strspn(*p, " \t");

	*n = strcspn(w, " \t");
	*p = w + *n;
	return *n > 0 ? w : NULL;
}

int config_unknown(const struct config_line *cl)
{
	char esc[LOG_ESCAPE_SIZE];
	log_error("%s:%u: unknown key '%s'", cl->file, cl->line,
		  log_escape(esc, sizeof(esc), cl->key, strlen(cl->key)));
	return -1;
}

int config_bad_value(const struct config_line *cl, const char *what)
{
	char esc[LOG_ESCAPE_SIZE];

	log_error("%s:%u: %s: '%s' %s", cl->file, cl->line, cl->key,
		  log_escape(esc, sizeof(esc), cl->value, strlen(cl->value)), what);
	return -1;
}
