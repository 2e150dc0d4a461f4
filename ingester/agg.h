#ifndef RELAYWATCH_AGG_H
#define RELAYWATCH_AGG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chkuser.h"

/*
 * In-memory aggregation of one chunk: an open-addressing hash table per output table, keyed by
 * (hour, string fields), whose strings are copied once into an arena. Rows come back sorted in
 * primary-key order (hour, then the fields bytewise) so that the database writes them in index
 * order and two writers take row locks in the same order.
 */

enum agg_table {
	AGG_EVENT = 0,  /* host, service, event, reason */
	AGG_RELAY = 1,  /* host, service, auth_user, sender, remote_ip, rcpt_domain */
	AGG_DENIED = 2, /* host, service, remote_ip, sender, rcpt_domain */
	AGG_TABLES = 3,
};

#define AGG_MAX_FIELDS 6

/*
 * The number of string fields of each table; their names and widths are the schema's (schema.h,
 * whose hourly tables come in this order), and each field is cut to its width.
 */
unsigned agg_nfields(enum agg_table t);
/* The table names (for SQL and for messages). */
extern const char *const agg_table_name[AGG_TABLES];

/*
 * A row is a small header with the fields' bytes packed right behind it, in column order: about
 * 150 bytes a relay key instead of 250, which matters when a chunk has hundreds of thousands.
 */
struct agg_row {
	int64_t hour; /* UTC seconds, a multiple of 3600 */
	uint64_t n;
	/* Of n, what agg_take has already copied out (sent to the database while scanning). */
	uint64_t sent;
	uint16_t len[AGG_MAX_FIELDS]; /* 0 for the fields a table does not have */
	bool dirty;                   /* on the list of rows with counts not yet taken */
};

/* Field i of a row (in the agg's arena, valid as long as the row). */
static inline struct span agg_field(const struct agg_row *r, unsigned i)
{
	const char *p = (const char *)(r + 1);
	for (unsigned k = 0; k < i; k++) {
		p += r->len[k];
	}
	return (struct span){p, r->len[i]};
}

struct agg;

/* NULL on no memory. */
struct agg *agg_create(void);
/* Accepts NULL. */
void agg_destroy(struct agg *a);
/* Forgets every row, keeps the memory for the next chunk. */
void agg_reset(struct agg *a);

/*
 * Adds n to the row (hour of utc, f[0..agg_nfields[t]]). Each field is cut to its bound first.
 * Returns 0, or -1 on no memory.
 */
int agg_add(struct agg *a, enum agg_table t, int64_t utc, const struct span *f, uint64_t n);

/* Adds one parsed event to every table it belongs to. */
int agg_add_event(struct agg *a, int64_t utc, struct span host, struct span service,
		  const struct chk_event *ev);

/* Number of distinct rows of t. */
size_t agg_rows(const struct agg *a, enum agg_table t);
/* Number of distinct rows of all the tables (what max_keys bounds). */
size_t agg_rows_total(const struct agg *a);

/*
 * The rows of t in key order, valid until the next agg_add/agg_reset/agg_destroy. NULL (with
 * *count 0) when t is empty or on no memory (then *count is SIZE_MAX).
 */
const struct agg_row *const *agg_sorted(struct agg *a, enum agg_table t, size_t *count);

/*
 * Finished rows, copied out while the chunk is still being scanned (overlap.c hands them to the
 * database writer, which must not read the live table the scan keeps changing). A batch is the
 * rows of each table in key order, each with its own header and fields as in the table, n being
 * the part of the count not taken before. The rows stay in the table (with sent = n), so that a
 * replay can still write the whole chunk from it.
 */
struct agg_batch {
	char *buf; /* the copied rows, 16-byte aligned; never moves once created */
	size_t len, cap;
	const struct agg_row **row; /* table t's rows are row[start[t] .. start[t + 1]) */
	size_t start[AGG_TABLES + 1];
	size_t row_cap;
};

/* A batch of about max_bytes of rows. NULL on no memory. */
struct agg_batch *agg_batch_create(size_t max_bytes);
/* Accepts NULL. */
void agg_batch_destroy(struct agg_batch *b);

/*
 * Keeps (on), from now until agg_reset, the list of rows whose counts have not been taken, so that
 * agg_take costs what it takes rather than the whole table.
 */
void agg_track(struct agg *a, bool on);

/*
 * Empties b and copies into it the untaken part of the rows whose hour is before `before`
 * (INT64_MAX: every hour), in key order per table, as far as b has room; the rest stay untaken
 * for a later call. Copies nothing when fewer than min_rows rows qualify. Returns the rows
 * copied, or -1 on no memory (b is then empty and nothing is marked taken).
 */
long agg_take(struct agg *a, struct agg_batch *b, int64_t before, size_t min_rows);

/* Rows with counts not yet taken, over all tables (0 unless agg_track is on). */
size_t agg_untaken(const struct agg *a);

/*
 * Like agg_sorted, but only the rows with counts not yet taken (all rows when agg_track was not
 * on since the last agg_reset): what is left to write after the stream, sorted alone.
 */
const struct agg_row *const *agg_sorted_unsent(struct agg *a, enum agg_table t, size_t *count);

#endif
