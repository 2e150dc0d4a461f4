#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "crashpoint.h"
#include "fileio.h"
#include "log.h"
#include "ship_state.h"

#define STATE_MAGIC    "relaywatch-ship-state 1"
#define STATE_MAX_SIZE (256 * 1024 * 1024)

void ship_state_init(struct ship_state *st)
{
	memset(st, 0, sizeof(*st));
}

void ship_state_finish(struct ship_state *st)
{
	for (size_t i = 0; i < st->n; i++) {
		free(st->v[i]);
	}
	free(st->v);
	free(st->index);
	memset(st, 0, sizeof(*st));
}

static size_t fpr_hash(const uint8_t fpr[DIGEST_LEN])
{
	size_t h;
	memcpy(&h, fpr, sizeof(h));
	return h;
}

static int index_rebuild(struct ship_state *st, size_t cap)
{
	size_t *idx = malloc(cap * sizeof(*idx));
	if (!idx) {
		log_error("out of memory");
		return -1;
	}
	for (size_t i = 0; i < cap; i++) {
		idx[i] = SIZE_MAX;
	}
	for (size_t i = 0; i < st->n; i++) {
		size_t h = fpr_hash(st->v[i]->fpr) & (cap - 1);
		while (idx[h] != SIZE_MAX) {
			h = (h + 1) & (cap - 1);
		}
		idx[h] = i;
	}
	free(st->index);
	st->index = idx;
	st->index_cap = cap;
	return 0;
}

struct ship_entry *ship_state_find(const struct ship_state *st, const uint8_t fpr[DIGEST_LEN])
{
	if (st->index_cap == 0) {
		return NULL;
	}
	size_t h = fpr_hash(fpr) & (st->index_cap - 1);
	while (st->index[h] != SIZE_MAX) {
		struct ship_entry *e = st->v[st->index[h]];
		if (memcmp(e->fpr, fpr, DIGEST_LEN) == 0) {
			return e;
		}
		h = (h + 1) & (st->index_cap - 1);
	}
	return NULL;
}

struct ship_entry *ship_state_add(struct ship_state *st, const uint8_t fpr[DIGEST_LEN])
{
	struct ship_entry *e = ship_state_find(st, fpr);
	if (e) {
		return e;
	}
	if (st->n == st->cap) {
		size_t cap = st->cap ? 2 * st->cap : 64;
		struct ship_entry **v = realloc(st->v, cap * sizeof(*v));
		if (!v) {
			log_error("out of memory");
			return NULL;
		}
		st->v = v;
		st->cap = cap;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		log_error("out of memory");
		return NULL;
	}
	memcpy(e->fpr, fpr, DIGEST_LEN);
	st->v[st->n++] = e;
	/* Keep the table at most half full. */
	if (2 * st->n > st->index_cap) {
		if (index_rebuild(st, st->index_cap ? 2 * st->index_cap : 128) != 0) {
			free(e);
			st->n--;
			return NULL;
		}
		return e;
	}
	size_t h = fpr_hash(fpr) & (st->index_cap - 1);
	while (st->index[h] != SIZE_MAX) {
		h = (h + 1) & (st->index_cap - 1);
	}
	st->index[h] = st->n - 1;
	return e;
}

bool ship_entry_plan(struct ship_entry *e, uint64_t end)
{
	uint64_t last = e->nbounds ? e->bounds[e->nbounds - 1] : e->offset;
	if (e->done || end <= last || last == SHIP_STATE_EOF ||
	    e->nbounds == SHIP_STATE_MAX_BOUNDS) {
		return false;
	}
	e->bounds[e->nbounds++] = end;
	return true;
}

void ship_entry_plan_begin(struct ship_entry *e, uint64_t max_chunk)
{
	if (e->nbounds == 0 || e->max_chunk == 0) {
		e->max_chunk = max_chunk;
	}
}

void ship_entry_drop_eof(struct ship_entry *e)
{
	if (e->nbounds > 0 && e->bounds[e->nbounds - 1] == SHIP_STATE_EOF) {
		e->nbounds--;
		e->packed = false;
	}
}

uint64_t ship_entry_planned_end(const struct ship_entry *e)
{
	return e->nbounds ? e->bounds[e->nbounds - 1] : e->offset;
}

void ship_entry_reopen(struct ship_entry *e)
{
	e->done = false;
}

bool ship_entry_seen(struct ship_entry *e, int64_t now)
{
	/* "seen" only matters at forget_days' scale: refreshing it hourly spares an idle run
	 * (cron, every few minutes) a state rewrite and two fsyncs. */
	if (now - e->seen < 3600) {
		return false;
	}
	e->seen = now;
	return true;
}

uint64_t ship_entry_next_bound(const struct ship_entry *e, uint64_t pos)
{
	for (unsigned i = 0; i < e->nbounds; i++) {
		if (e->bounds[i] > pos) {
			return e->bounds[i];
		}
	}
	return 0;
}

void ship_entry_advance(struct ship_entry *e, uint64_t end, bool at_eof)
{
	unsigned keep = 0;
	if (end > e->offset) {
		e->offset = end;
	}
	for (unsigned i = 0; i < e->nbounds; i++) {
		uint64_t b = e->bounds[i];
		if (b > e->offset && !(at_eof && b == SHIP_STATE_EOF)) {
			e->bounds[keep++] = b;
		}
	}
	e->nbounds = keep;
	if (keep == 0) {
		e->max_chunk = 0;
	}
	if (at_eof) {
		/* Everything of a finished file is out: nothing will ever be planned for it again.
		 */
		e->done = true;
		e->nbounds = 0;
	}
	if (e->nbounds == 0) {
		e->packed = false;
	}
}

bool ship_entry_pack(struct ship_entry *e, const uint8_t pack_fpr[DIGEST_LEN], unsigned index)
{
	if (e->done || e->nbounds != 0) {
		return false;
	}
	e->bounds[e->nbounds++] = SHIP_STATE_EOF;
	e->packed = true;
	e->pack_index = index;
	memcpy(e->pack, pack_fpr, DIGEST_LEN);
	return true;
}

void ship_entry_reset(struct ship_entry *e, uint64_t offset)
{
	e->offset = offset;
	e->nbounds = 0;
	e->max_chunk = 0;
	e->done = false;
	e->packed = false;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct ship_entry *x = *(const struct ship_entry *const *)a;
	const struct ship_entry *y = *(const struct ship_entry *const *)b;
	return memcmp(x->fpr, y->fpr, DIGEST_LEN);
}

size_t ship_state_prune(struct ship_state *st, int64_t cutoff)
{
	size_t keep = 0, dropped = 0;
	for (size_t i = 0; i < st->n; i++) {
		struct ship_entry *e = st->v[i];
		if (e->seen >= cutoff) {
			st->v[keep++] = e;
			continue;
		}
		if (e->nbounds > 0) {
			char hex[DIGEST_HEX_LEN + 1];
			char when[32] = "?";
			struct tm tm;
			time_t t = (time_t)e->seen;
			if (gmtime_r(&t, &tm)) {
				strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
			}
			digest_hex(e->fpr, hex);
			log_warn(
				"forgetting file %.16s, not seen since %s: its planned bytes after "
				"offset %" PRIu64 " were never shipped",
				hex, when, e->offset);
		}
		free(e);
		dropped++;
	}
	st->n = keep;
	if (dropped > 0) {
		size_t cap = 128;
		while (cap < 2 * st->n) {
			cap *= 2;
		}
		/* On failure the old index would point past the array: drop it, lookups then fail.
		 */
		if (index_rebuild(st, cap) != 0) {
			free(st->index);
			st->index = NULL;
			st->index_cap = 0;
		}
	}
	return dropped;
}

char *ship_state_format(const struct ship_state *st, size_t *len)
{
	/* Longest line: 64 + 3 * 21 + 6 + 16 * 21 + a few separators, or a pack's
	 * " pack=<64 hex>:<index>". */
	size_t cap = sizeof(STATE_MAGIC) + 1 +
		     st->n * (64 + 4 * 21 + 8 + SHIP_STATE_MAX_BOUNDS * 21 + 6 + 64 + 12);
	char *buf = malloc(cap);
	struct ship_entry **sorted = malloc((st->n ? st->n : 1) * sizeof(*sorted));
	if (!buf || !sorted) {
		log_error("out of memory");
		free(buf);
		free(sorted);
		return NULL;
	}
	if (st->n > 0) {
		memcpy(sorted, st->v, st->n * sizeof(*sorted));
	}
	qsort(sorted, st->n, sizeof(*sorted), cmp_entry);
	size_t o = (size_t)snprintf(buf, cap, "%s\n", STATE_MAGIC);
	for (size_t i = 0; i < st->n; i++) {
		const struct ship_entry *e = sorted[i];
		char hex[DIGEST_HEX_LEN + 1];
		digest_hex(e->fpr, hex);
		o += (size_t)snprintf(buf + o, cap - o, "%s %" PRIu64 " %" PRId64 " ", hex,
				      e->offset, e->seen);
		if (e->done) {
			o += (size_t)snprintf(buf + o, cap - o, "done\n");
			continue;
		}
		if (e->nbounds == 0) {
			o += (size_t)snprintf(buf + o, cap - o, "open\n");
			continue;
		}
		o += (size_t)snprintf(buf + o, cap - o, "plan ");
		for (unsigned b = 0; b < e->nbounds; b++) {
			const char *sep = b + 1 < e->nbounds ? "," : " ";
			if (e->bounds[b] == SHIP_STATE_EOF) {
				o += (size_t)snprintf(buf + o, cap - o, "eof%s", sep);
			} else {
				o += (size_t)snprintf(buf + o, cap - o, "%" PRIu64 "%s",
						      e->bounds[b], sep);
			}
		}
		o += (size_t)snprintf(buf + o, cap - o, "%" PRIu64, e->max_chunk);
		if (e->packed) {
			digest_hex(e->pack, hex);
			o += (size_t)snprintf(buf + o, cap - o, " pack=%s:%u", hex, e->pack_index);
		}
		o += (size_t)snprintf(buf + o, cap - o, "\n");
	}
	free(sorted);
	*len = o;
	return buf;
}

static int parse_u64(const char *s, uint64_t *out)
{
	if (*s < '0' || *s > '9') {
		return -1;
	}
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (*end != '\0' || errno == ERANGE || x == UINT64_MAX) {
		return -1;
	}
	*out = x;
	return 0;
}

/* A pack member's plan: "pack=<64 hex>:<index>" (word is cut at the ':'). 0, or -1. */
static int parse_pack(char *word, uint8_t pack[DIGEST_LEN], unsigned *index)
{
	const size_t colon = 5 + DIGEST_HEX_LEN;
	uint64_t idx;
	if (strncmp(word, "pack=", 5) != 0 || strlen(word) < colon + 2 || word[colon] != ':' ||
	    parse_u64(word + colon + 1, &idx) != 0 || idx > UINT_MAX) {
		return -1;
	}
	word[colon] = '\0';
	*index = (unsigned)idx;
	return digest_unhex(word + 5, pack);
}

static int parse_line(struct ship_state *st, char *line)
{
	char *save = NULL;
	char *w[7];
	size_t n = 0;
	for (char *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (n == 7) {
			return -1;
		}
		w[n++] = t;
	}
	uint8_t fpr[DIGEST_LEN];
	uint64_t offset, seen;
	if (n < 4 || digest_unhex(w[0], fpr) != 0 || parse_u64(w[1], &offset) != 0 ||
	    parse_u64(w[2], &seen) != 0 || seen > INT64_MAX || ship_state_find(st, fpr)) {
		return -1;
	}
	struct ship_entry *e = NULL;
	if (strcmp(w[3], "done") == 0 && n == 4) {
		if (!(e = ship_state_add(st, fpr))) {
			return -2;
		}
		e->done = true;
	} else if (strcmp(w[3], "open") == 0 && n == 4) {
		if (!(e = ship_state_add(st, fpr))) {
			return -2;
		}
	} else if (strcmp(w[3], "plan") == 0 && (n == 6 || n == 7)) {
		uint64_t max;
		unsigned idx = 0;
		uint8_t pack[DIGEST_LEN];
		bool packed = n == 7;
		/* A pack member's plan is its end of file only. */
		if (parse_u64(w[5], &max) != 0 ||
		    (packed && (strcmp(w[4], "eof") != 0 || parse_pack(w[6], pack, &idx) != 0))) {
			return -1;
		}
		if (!(e = ship_state_add(st, fpr))) {
			return -2;
		}
		e->offset = offset;
		e->max_chunk = max;
		char *save2 = NULL;
		for (char *b = strtok_r(w[4], ",", &save2); b; b = strtok_r(NULL, ",", &save2)) {
			uint64_t v;
			if (strcmp(b, "eof") == 0) {
				v = SHIP_STATE_EOF;
			} else if (parse_u64(b, &v) != 0) {
				return -1;
			}
			if (!ship_entry_plan(e, v)) {
				return -1;
			}
		}
		if (e->nbounds == 0) {
			return -1;
		}
		if (packed) {
			e->packed = true;
			e->pack_index = idx;
			memcpy(e->pack, pack, DIGEST_LEN);
		}
	} else {
		return -1;
	}
	e->offset = offset;
	e->seen = (int64_t)seen;
	return 0;
}

int ship_state_parse(struct ship_state *st, const char *name, const char *buf, size_t len)
{
	char *line = NULL;
	size_t pos = 0;
	unsigned lineno = 0;
	int ret = -1;
	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		if (!nl) {
			log_error("%s:%u: state file damaged (last line incomplete); move it away "
				  "only "
				  "if you accept that everything still on disk is shipped again",
				  name, lineno + 1);
			goto out;
		}
		size_t n = (size_t)(nl - (buf + pos));
		lineno++;
		char *l = realloc(line, n + 1);
		if (!l) {
			log_error("out of memory");
			goto out;
		}
		line = l;
		memcpy(line, buf + pos, n);
		line[n] = '\0';
		pos += n + 1;
		if (lineno == 1) {
			if (strcmp(line, STATE_MAGIC) != 0) {
				log_error("%s:1: not a relaywatch-ship state file (version 1)",
					  name);
				goto out;
			}
			continue;
		}
		if (memchr(line, '\0', n)) {
			log_error("%s:%u: state file damaged (NUL byte)", name, lineno);
			goto out;
		}
		int r = parse_line(st, line);
		if (r == -2) {
			goto out;
		}
		if (r != 0) {
			log_error("%s:%u: state file damaged (bad entry)", name, lineno);
			goto out;
		}
	}
	if (lineno == 0) {
		log_error("%s: state file is empty (damaged)", name);
		goto out;
	}
	ret = 0;
out:
	free(line);
	return ret;
}

int ship_state_load(struct ship_state *st, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *buf = NULL;
	int ret = -1;
	if (fd < 0) {
		if (errno == ENOENT) {
			return 0;
		}
		log_error("%s: %s", path, strerror(errno));
		return -1;
	}
	size_t len;
	if (fileio_read_file(fd, path, STATE_MAX_SIZE, &buf, &len) != 0) {
		goto out;
	}
	ret = ship_state_parse(st, path, buf, len);
out:
	free(buf);
	close(fd);
	return ret;
}

static int write_all(int fd, const char *p, size_t n, const char *path)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w < 0) {
			log_error("%s: %s", path, strerror(errno));
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int fsync_dir_of(const char *path)
{
	char *copy = strdup(path);
	if (!copy) {
		log_error("out of memory");
		return -1;
	}
	const char *dir = dirname(copy);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = -1;
	if (fd < 0 || fsync(fd) != 0) {
		log_error("%s: %s", dir, strerror(errno));
	} else {
		ret = 0;
	}
	if (fd >= 0) {
		close(fd);
	}
	free(copy);
	return ret;
}

int ship_state_save(const struct ship_state *st, const char *path)
{
	size_t len = 0;
	char *text = ship_state_format(st, &len);
	char *tmp = NULL;
	int fd = -1;
	int ret = -1;
	if (!text) {
		goto out;
	}
	size_t tlen = strlen(path) + 5;
	tmp = malloc(tlen);
	if (!tmp) {
		log_error("out of memory");
		goto out;
	}
	snprintf(tmp, tlen, "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		log_error("%s: %s", tmp, strerror(errno));
		goto out;
	}
	/* Half, then the rest: the fault suite kills us here to prove the old state survives. */
	if (write_all(fd, text, len / 2, tmp) != 0) {
		goto out;
	}
	crashpoint("ship-state-write");
	if (write_all(fd, text + len / 2, len - len / 2, tmp) != 0) {
		goto out;
	}
	/* The data must be on disk before the rename makes it the state, or a power cut could
	 * leave an empty state file behind a completed rename. */
	if (fsync(fd) != 0) {
		log_error("%s: fsync: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		log_error("%s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		log_error("%s: rename to %s: %s", tmp, path, strerror(errno));
		goto out;
	}
	ret = fsync_dir_of(path);
out:
	if (fd >= 0) {
		close(fd);
	}
	if (ret != 0 && tmp) {
		unlink(tmp);
	}
	free(tmp);
	free(text);
	return ret;
}
