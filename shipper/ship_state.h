#ifndef RELAYWATCH_SHIP_STATE_H
#define RELAYWATCH_SHIP_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"

/*
 * What the shipper remembers between runs (state_dir/state), per source file identity.
 *
 * A file is identified by its fingerprint: the SHA-256 of its first complete line (with the
 * '\n'), read as content, so maillog, maillog.1 and maillog.2.gz share it, and so do multilog's
 * current and the @<tai64n>.s it becomes. For each fingerprint the state holds how many bytes of
 * content were delivered (always a chunk end) and whether the file is finished and shipped to its
 * end.
 *
 * Exactly once across crashes: before any upload, the run appends the ends it plans ("bounds")
 * to the entry and saves the state. A chunk never crosses a bound, and its end is a pure function
 * of (content, start, bounds, max_chunk), so a rerun after a crash rebuilds byte-identical chunks
 * under the same remote names: a chunk that was delivered before the crash is recognised by its
 * existing remote name (or, if the stats server already took it, dropped by the ingester's ledger
 * keyed by the chunk's SHA-256).
 *
 * The file is text, one entry per line, sorted by fingerprint:
 *   relaywatch-ship-state 1
 *   <64 hex> <offset> <seen> done
 *   <64 hex> <offset> <seen> open
 *   <64 hex> <offset> <seen> plan <end>[,<end>...][,eof] <max_chunk>
 *   <64 hex> <offset> <seen> plan eof <max_chunk> pack=<64 hex>:<index>
 *
 * max_chunk is the config value the plan was made with: the chunks of a plan are cut with it even
 * if the config changes before the plan is carried out.
 *
 * Packs: small finished files of one source are shipped together as one chunk (a pack), each
 * from its offset to its end. A member's entry names its pack (the fingerprint of the pack's
 * first member) and its place in it, saved with the plan before any upload, so that a rerun or
 * the next server rebuilds the same pack from the same files in the same order, never a pack
 * with other members. The pack's delivery makes every member done at once (one state save).
 *
 * Functions that fail log why (with the file name) and return -1 or NULL; errno is not part of
 * their contract.
 */

/* Marks a bound that is the end of a finished file. */
#define SHIP_STATE_EOF UINT64_MAX
/* A rerun finishes older plans before it adds more; more bounds than this wait for a later run. */
#define SHIP_STATE_MAX_BOUNDS 16

struct ship_entry {
	uint8_t fpr[DIGEST_LEN];
	uint64_t offset; /* content bytes delivered from the start of the file */
	int64_t seen;    /* time of the last run that found the file */
	bool done;       /* finished file, shipped to its end */
	unsigned nbounds;
	uint64_t bounds[SHIP_STATE_MAX_BOUNDS]; /* increasing, all > offset; last may be EOF */
	uint64_t max_chunk;                     /* of the plan; 0 while there is none */
	bool packed;                            /* its plan is [eof] as a member of a pack */
	unsigned pack_index;                    /* its place in the pack */
	uint8_t pack[DIGEST_LEN];               /* the pack: fingerprint of its first member */
};

/* Entries are allocated one by one: pointers stay valid until prune or finish. */
struct ship_state {
	struct ship_entry **v;
	size_t n, cap;
	size_t *index; /* open addressing over v, SIZE_MAX = empty */
	size_t index_cap;
};

void ship_state_init(struct ship_state *st);
void ship_state_finish(struct ship_state *st);

/*
 * Reads the state file. A missing file is an empty state (first run). Returns 0, or -1 after
 * logging "path:line: why": a damaged state must stop the run, since shipping without it would
 * send everything again under other chunk boundaries.
 */
int ship_state_load(struct ship_state *st, const char *path);
int ship_state_parse(struct ship_state *st, const char *name, const char *buf, size_t len);

/*
 * Writes the whole state to "path.tmp", fsyncs it, renames it over path and fsyncs the
 * directory, so that after a crash path holds either the old or the new state, never a mix.
 * Returns 0, or -1 (logged; path is unchanged).
 */
int ship_state_save(const struct ship_state *st, const char *path);

/* The text of the state file in a malloc'd buffer (*len bytes); NULL when out of memory. */
char *ship_state_format(const struct ship_state *st, size_t *len);

struct ship_entry *ship_state_find(const struct ship_state *st, const uint8_t fpr[DIGEST_LEN]);

/* Finds or adds the entry (new: offset 0, open). NULL when out of memory (logged). */
struct ship_entry *ship_state_add(struct ship_state *st, const uint8_t fpr[DIGEST_LEN]);

/*
 * Appends a planned end to e when it lies beyond the offset and the last bound. Returns true
 * when it was added (false also when the list is full: the end waits for a later run).
 */
bool ship_entry_plan(struct ship_entry *e, uint64_t end);

/*
 * Before planning: a plan is cut with the chunk size it was made with, whatever the config says
 * now, so max_chunk is taken only when e has no plan yet.
 */
void ship_entry_plan_begin(struct ship_entry *e, uint64_t max_chunk);

/* Drops a last bound at the end of the file: a live file is never read to its end. */
void ship_entry_drop_eof(struct ship_entry *e);

/* The end of what is delivered or planned: the last bound, else the offset. */
uint64_t ship_entry_planned_end(const struct ship_entry *e);

/* A done entry is open again: its live original grew past what a copy of it shipped. */
void ship_entry_reopen(struct ship_entry *e);

/* Records that a run found the file at time now. Returns whether the entry changed (at most
 * hourly, so that an idle run does not rewrite the state). */
bool ship_entry_seen(struct ship_entry *e, int64_t now);

/* The first bound greater than pos, or 0 when none is. */
uint64_t ship_entry_next_bound(const struct ship_entry *e, uint64_t pos);

/*
 * Records a delivered chunk ending at end (at_eof: it reached the end of a finished file): the
 * offset moves there, bounds at or below it are dropped, and at the end of a finished file the
 * entry becomes done.
 */
void ship_entry_advance(struct ship_entry *e, uint64_t end, bool at_eof);

/*
 * Plans the rest of e, a finished file with no plan, as member index of the pack whose first
 * member is pack_fpr. Returns false when e already has a plan or is done.
 */
bool ship_entry_pack(struct ship_entry *e, const uint8_t pack_fpr[DIGEST_LEN], unsigned index);

/* Forgets the plan of e and sets its offset (a file truncated in place starts over at 0). */
void ship_entry_reset(struct ship_entry *e, uint64_t offset);

/*
 * Drops the entries not seen since cutoff (their files were deleted long ago). A dropped entry
 * that still had planned bytes is logged as a warning, since those bytes were never shipped.
 * Returns the number dropped.
 */
size_t ship_state_prune(struct ship_state *st, int64_t cutoff);

#endif
