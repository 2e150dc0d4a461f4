#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "logtime.h"
#include "schema.h"

/* The schema's names, in the order of enum agg_table. */
const char *const agg_table_name[AGG_TABLES] = {SCHEMA_EVENT_HOURLY_NAME, SCHEMA_RELAY_HOURLY_NAME,
						SCHEMA_DENIED_HOURLY_NAME};

#define ARENA_BLOCK (1024 * 1024)

struct arena_block {
	struct arena_block *next;
	size_t used, size;
	max_align_t data[];
};

/* The hash sits beside the pointer so that a probe touches a row only on a likely match. */
struct agg_slot {
	uint64_t hash;
	struct agg_row *row;
};

struct agg_map {
	struct agg_slot *slots; /* open addressing, linear probing */
	size_t cap;             /* power of two */
	size_t count;
	struct agg_row **sorted;
	size_t sorted_cap;
	struct agg_row **dirty; /* rows with counts not yet taken, while tracking */
	size_t ndirty, dirty_cap;
};

struct agg {
	struct agg_map t[AGG_TABLES];
	struct arena_block *blocks; /* the newest first */
	bool track;
};

static void *arena_alloc(struct agg *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct arena_block *b = a->blocks;
	if (!b || b->size - b->used < n) {
		size_t size = n > ARENA_BLOCK ? n : ARENA_BLOCK;
		b = malloc(sizeof(*b) + size);
		if (!b) {
			return NULL;
		}
		b->size = size;
		b->used = 0;
		b->next = a->blocks;
		a->blocks = b;
	}
	void *p = (char *)b->data + b->used;
	b->used += n;
	return p;
}

struct agg *agg_create(void)
{
	return calloc(1, sizeof(struct agg));
}

void agg_destroy(struct agg *a)
{
	if (!a) {
		return;
	}
	for (int i = 0; i < AGG_TABLES; i++) {
		free(a->t[i].slots);
		free(a->t[i].sorted);
		free(a->t[i].dirty);
	}
	while (a->blocks) {
		struct arena_block *next = a->blocks->next;
		free(a->blocks);
		a->blocks = next;
	}
	free(a);
}

void agg_reset(struct agg *a)
{
	for (int i = 0; i < AGG_TABLES; i++) {
		struct agg_map *t = &a->t[i];
		/*
		 * A table grown by one big chunk would make every small chunk after it clear and
		 * scan (agg_sorted) all of it: give it back when this chunk used a sixteenth.
		 */
		if (t->cap > 16 * 1024 && t->count * 16 < t->cap) {
			free(t->slots);
			free(t->sorted);
			free(t->dirty);
			t->slots = NULL;
			t->sorted = NULL;
			t->dirty = NULL;
			t->cap = t->sorted_cap = t->dirty_cap = 0;
		} else if (t->count) {
			memset(t->slots, 0, t->cap * sizeof(*t->slots));
		}
		t->count = 0;
		t->ndirty = 0;
	}
	a->track = false;
	/* Keep one block for the next chunk; most chunks fit in it. */
	while (a->blocks && a->blocks->next) {
		struct arena_block *next = a->blocks->next;
		free(a->blocks);
		a->blocks = next;
	}
	if (a->blocks) {
		a->blocks->used = 0;
	}
}

/*
 * Eight bytes a step: the keys are ~150 bytes and this runs for every event. The last 1-7 bytes
 * are read in place (two overlapping words, or three bytes) and n is mixed in with them, so that
 * ("ab", "c") and ("a", "bc") differ; copying a short tail into a word on the stack made every
 * field wait for a store to be forwarded.
 */
static uint64_t hash_bytes(uint64_t h, const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	const size_t len = n;
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, s, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 32;
		s += 8;
		n -= 8;
	}
	uint64_t w = 0;
	if (n >= 4) {
		uint32_t lo, hi;
		memcpy(&lo, s, 4);
		memcpy(&hi, s + n - 4, 4);
		w = (uint64_t)hi << 32 | lo;
	} else if (n > 0) {
		w = (uint64_t)s[0] << 16 | (uint64_t)s[n / 2] << 8 | s[n - 1];
	}
	h = (h ^ w ^ (uint64_t)len << 56) * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

/* Puts r on the list of rows with counts not yet taken. 0, or -1 on no memory. */
static int mark_dirty(struct agg_map *t, struct agg_row *r)
{
	if (t->ndirty == t->dirty_cap) {
		size_t cap = t->dirty_cap ? t->dirty_cap * 2 : 1024;
		struct agg_row **d = realloc(t->dirty, cap * sizeof(*d));
		if (!d) {
			return -1;
		}
		t->dirty = d;
		t->dirty_cap = cap;
	}
	t->dirty[t->ndirty++] = r;
	r->dirty = true;
	return 0;
}

/*
 * memset through a pointer the compiler cannot follow: malloc followed by memset of zeros is
 * otherwise turned into calloc, which is what grow() avoids.
 */
static void *(*const volatile zero_fill)(void *, int, size_t) = memset;

static int grow(struct agg_map *t)
{
	size_t cap = t->cap ? t->cap * 2 : 1024;
	/*
	 * Written now rather than calloc'ed: calloc leaves fresh pages unmapped, a probe's read
	 * then maps the shared zero page, and the first insert into each page copied it on write
	 * and flushed the TLB of the other scan thread's CPU (an interrupt) every time.
	 */
	struct agg_slot *slots = malloc(cap * sizeof(*slots));
	if (!slots) {
		return -1;
	}
	zero_fill(slots, 0, cap * sizeof(*slots));
	for (size_t i = 0; i < t->cap; i++) {
		if (t->slots[i].row) {
			size_t j = t->slots[i].hash & (cap - 1);
			while (slots[j].row) {
				j = (j + 1) & (cap - 1);
			}
			slots[j] = t->slots[i];
		}
	}
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
	return 0;
}

/* A row's key, cut and hashed, before it is looked up. */
struct agg_key {
	enum agg_table t;
	int64_t hour;
	uint64_t hash;
	size_t total; /* bytes of the fields */
	struct span f[AGG_MAX_FIELDS];
};

static void key_make(struct agg_key *k, enum agg_table tn, int64_t utc, const struct span *f)
{
	unsigned nf = agg_nfields(tn);

	k->t = tn;
	k->hour = logtime_hour_floor(utc);
	k->total = 0;
	/*
	 * Each field is hashed from its own seed (its position and the hour) and the results are
	 * summed: the fields' multiply chains run side by side instead of one after the other.
	 */
	uint64_t h = 0, seed = 0xcbf29ce484222325ULL ^ (uint64_t)k->hour;
	for (unsigned i = 0; i < nf; i++) {
		k->f[i] = f[i];
		/* Cut to the column's width: strict mode would reject the whole chunk. */
		uint16_t width = schema_field((enum schema_table_id)tn, i)->width;
		if (k->f[i].n > width) {
			k->f[i].n = width;
		}
		h += hash_bytes(seed + i * 0x9e3779b97f4a7c15ULL, k->f[i].p, k->f[i].n);
		k->total += k->f[i].n;
	}
	h = (h ^ (h >> 32)) * 0x9e3779b97f4a7c15ULL;
	k->hash = h ^ (h >> 29);
}

/*
 * Starts loading the slot where k's probe begins: in a table of hundreds of thousands of rows it
 * is rarely in the cache, and perf put most of agg_add's time on the wait for it.
 */
static void key_prefetch(const struct agg *a, const struct agg_key *k)
{
	const struct agg_map *t = &a->t[k->t];
	if (t->cap > 0) {
		__builtin_prefetch(&t->slots[k->hash & (t->cap - 1)]);
	}
}

static int key_add(struct agg *a, const struct agg_key *k, uint64_t n)
{
	struct agg_map *t = &a->t[k->t];
	unsigned nf = agg_nfields(k->t);
	const struct span *cut = k->f;
	uint64_t h = k->hash;

	if ((t->count + 1) * 10 > t->cap * 7 && grow(t) != 0) {
		return -1;
	}
	size_t j = h & (t->cap - 1);
	for (; t->slots[j].row; j = (j + 1) & (t->cap - 1)) {
		struct agg_row *r = t->slots[j].row;
		if (t->slots[j].hash != h || r->hour != k->hour) {
			continue;
		}
		const char *s = (const char *)(r + 1);
		unsigned i = 0;
		while (i < nf && r->len[i] == cut[i].n &&
		       (cut[i].n == 0 || memcmp(s, cut[i].p, cut[i].n) == 0)) {
			s += cut[i].n;
			i++;
		}
		if (i == nf) {
			r->n += n;
			return a->track && !r->dirty ? mark_dirty(t, r) : 0;
		}
	}

	struct agg_row *r = arena_alloc(a, sizeof(*r) + k->total);
	if (!r) {
		return -1;
	}
	char *s = (char *)(r + 1);
	r->hour = k->hour;
	r->n = n;
	r->sent = 0;
	r->dirty = false;
	if (a->track && mark_dirty(t, r) != 0) {
		return -1;
	}
	for (unsigned i = 0; i < AGG_MAX_FIELDS; i++) {
		r->len[i] = i < nf ? (uint16_t)cut[i].n : 0;
		if (r->len[i]) {
			memcpy(s, cut[i].p, cut[i].n);
			s += cut[i].n;
		}
	}
	t->slots[j] = (struct agg_slot){h, r};
	t->count++;
	return 0;
}

int agg_add(struct agg *a, enum agg_table tn, int64_t utc, const struct span *f, uint64_t n)
{
	struct agg_key k;
	key_make(&k, tn, utc, f);
	return key_add(a, &k, n);
}

/* Domains compare without case; keep one spelling per domain. */
static struct span lower(struct span s, char *buf, size_t size)
{
	size_t n = s.n < size ? s.n : size;
	for (size_t i = 0; i < n; i++) {
		char c = s.p[i];
		buf[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
	}
	return (struct span){buf, n};
}

int agg_add_event(struct agg *a, int64_t utc, struct span host, struct span service,
		  const struct chk_event *ev)
{
	struct span f[AGG_MAX_FIELDS] = {host, service, ev->title, ev->desc};
	struct agg_key ek, rk;
	bool rk_set = false;
	char dom[256];

	/* The relay or denied key first, so that its slot loads while the event row is counted. */
	if (ev->kind == CHK_RELAYING_RCPT) {
		struct span g[AGG_MAX_FIELDS] = {
			host,       service,       ev->auth_user,
			ev->sender, ev->remote_ip, lower(ev->rcpt_domain, dom, sizeof(dom))};
		key_make(&rk, AGG_RELAY, utc, g);
		rk_set = true;
	} else if (ev->kind == CHK_REJECTED_RELAYING) {
		struct span g[AGG_MAX_FIELDS] = {host, service, ev->remote_ip, ev->sender,
						 lower(ev->rcpt_domain, dom, sizeof(dom))};
		key_make(&rk, AGG_DENIED, utc, g);
		rk_set = true;
	}
	if (rk_set) {
		key_prefetch(a, &rk);
	}
	key_make(&ek, AGG_EVENT, utc, f);
	if (key_add(a, &ek, 1) != 0) {
		return -1;
	}
	return rk_set ? key_add(a, &rk, 1) : 0;
}

size_t agg_rows(const struct agg *a, enum agg_table t)
{
	return a->t[t].count;
}

size_t agg_rows_total(const struct agg *a)
{
	size_t n = 0;
	for (int i = 0; i < AGG_TABLES; i++) {
		n += a->t[i].count;
	}
	return n;
}

static int row_cmp(const void *pa, const void *pb)
{
	const struct agg_row *x = *(struct agg_row *const *)pa;
	const struct agg_row *y = *(struct agg_row *const *)pb;
	if (x->hour != y->hour) {
		return x->hour < y->hour ? -1 : 1;
	}
	/* Field by field, bytewise, a prefix first: the order of the VARBINARY primary key. */
	const char *p = (const char *)(x + 1), *q = (const char *)(y + 1);
	for (unsigned i = 0; i < AGG_MAX_FIELDS; i++) {
		size_t m = x->len[i] < y->len[i] ? x->len[i] : y->len[i];
		int c = m ? memcmp(p, q, m) : 0;
		if (c != 0) {
			return c;
		}
		if (x->len[i] != y->len[i]) {
			return x->len[i] < y->len[i] ? -1 : 1;
		}
		p += x->len[i];
		q += y->len[i];
	}
	return 0;
}

/* Makes t->sorted hold at least n rows (kept for the next chunk). 0, or -1 on no memory. */
static int sorted_reserve(struct agg_map *t, size_t n)
{
	if (t->sorted_cap < n) {
		struct agg_row **s = realloc(t->sorted, n * sizeof(*s));
		if (!s) {
			return -1;
		}
		t->sorted = s;
		t->sorted_cap = n;
	}
	return 0;
}

const struct agg_row *const *agg_sorted(struct agg *a, enum agg_table tn, size_t *count)
{
	struct agg_map *t = &a->t[tn];
	*count = 0;
	if (t->count == 0) {
		return NULL;
	}
	if (sorted_reserve(t, t->count) != 0) {
		*count = SIZE_MAX;
		return NULL;
	}
	size_t k = 0;
	for (size_t i = 0; i < t->cap; i++) {
		if (t->slots[i].row) {
			t->sorted[k++] = t->slots[i].row;
		}
	}
	qsort(t->sorted, k, sizeof(*t->sorted), row_cmp);
	*count = k;
	return (const struct agg_row *const *)t->sorted;
}

void agg_track(struct agg *a, bool on)
{
	a->track = on;
}

struct agg_batch *agg_batch_create(size_t max_bytes)
{
	struct agg_batch *b = calloc(1, sizeof(*b));
	if (!b || !(b->buf = aligned_alloc(16, (max_bytes + 15) & ~(size_t)15))) {
		free(b);
		return NULL;
	}
	b->cap = (max_bytes + 15) & ~(size_t)15;
	return b;
}

void agg_batch_destroy(struct agg_batch *b)
{
	if (b) {
		free(b->buf);
		free(b->row);
		free(b);
	}
}

static size_t row_size(const struct agg_row *r)
{
	size_t n = sizeof(*r);
	for (unsigned i = 0; i < AGG_MAX_FIELDS; i++) {
		n += r->len[i];
	}
	return (n + 15) & ~(size_t)15;
}

/* Copies the untaken part of r into b and marks it taken; false when b is full. */
static bool batch_put(struct agg_batch *b, struct agg_row *r)
{
	size_t size = row_size(r);
	if (size > b->cap - b->len) {
		return false;
	}
	struct agg_row *c = (struct agg_row *)(void *)(b->buf + b->len);
	memcpy(c, r, size);
	c->n = r->n - r->sent;
	c->sent = 0;
	c->dirty = false;
	r->sent = r->n;
	r->dirty = false;
	b->len += size;
	return true;
}

long agg_take(struct agg *a, struct agg_batch *b, int64_t before, size_t min_rows)
{
	size_t ready = 0, k = 0;

	b->len = 0;
	memset(b->start, 0, sizeof(b->start));
	for (int i = 0; i < AGG_TABLES; i++) {
		for (size_t j = 0; j < a->t[i].ndirty; j++) {
			ready += a->t[i].dirty[j]->hour < before;
		}
	}
	if (ready < min_rows || ready == 0) {
		return 0;
	}
	if (b->row_cap < ready) {
		const struct agg_row **row = realloc(b->row, ready * sizeof(*row));
		if (!row) {
			return -1;
		}
		b->row = row;
		b->row_cap = ready;
	}
	for (int i = 0; i < AGG_TABLES; i++) {
		struct agg_map *t = &a->t[i];
		size_t m = 0, keep = 0, j;
		b->start[i] = k;
		/* The qualifying rows go into sorted[] (as big as the table), the others stay. */
		if (sorted_reserve(t, t->count) != 0) {
			return -1;
		}
		for (j = 0; j < t->ndirty; j++) {
			struct agg_row *r = t->dirty[j];
			if (r->hour < before) {
				t->sorted[m++] = r;
			} else {
				t->dirty[keep++] = r;
			}
		}
		t->ndirty = keep;
		if (m > 1) { /* sorted may be NULL when the table is empty */
			qsort(t->sorted, m, sizeof(*t->sorted), row_cmp);
		}
		for (j = 0; j < m; j++) {
			struct agg_row *c = (struct agg_row *)(void *)(b->buf + b->len);
			if (!batch_put(b, t->sorted[j])) {
				break;
			}
			b->row[k++] = c;
		}
		/* What did not fit stays on the list (it held them a moment ago). */
		for (; j < m; j++) {
			t->dirty[t->ndirty++] = t->sorted[j];
		}
	}
	b->start[AGG_TABLES] = k;
	return (long)k;
}

size_t agg_untaken(const struct agg *a)
{
	size_t n = 0;
	for (int i = 0; i < AGG_TABLES; i++) {
		n += a->t[i].ndirty;
	}
	return n;
}

const struct agg_row *const *agg_sorted_unsent(struct agg *a, enum agg_table tn, size_t *count)
{
	struct agg_map *t = &a->t[tn];

	if (!a->track) {
		return agg_sorted(a, tn, count);
	}
	*count = 0;
	if (t->ndirty == 0) {
		return NULL;
	}
	if (sorted_reserve(t, t->ndirty) != 0) {
		*count = SIZE_MAX;
		return NULL;
	}
	memcpy(t->sorted, t->dirty, t->ndirty * sizeof(*t->dirty));
	qsort(t->sorted, t->ndirty, sizeof(*t->sorted), row_cmp);
	*count = t->ndirty;
	return (const struct agg_row *const *)t->sorted;
}

unsigned agg_nfields(enum agg_table t)
{
	return schema_nfields((enum schema_table_id)t);
}
