#ifndef RELAYWATCH_OVERLAP_H
#define RELAYWATCH_OVERLAP_H

#include "agg.h"
#include "db.h"
#include "reader.h"
#include "scan.h"

/*
 * A chunk's scan with its database writes beside it. A writer thread owns the connection and does
 * one job at a time, each in order:
 *
 * - while a chunk is scanned, after each block but the last the scan hands it the rows of the
 *   hours that are complete (those before the newest hour seen so far; any hour once 64k rows
 *   wait, for logs whose hours do not advance), in key order, whenever it idles or one batch
 *   ahead while it writes; it upserts them inside the chunk's transaction (db_stream_rows)
 *   while the scan goes on. The rows stay in the aggregate table (marked sent), so
 *   db_ingest_chunk finishes with only what is left, or, after any database error of the
 *   writer, replays the whole chunk from the table as it always did: exactly once holds
 *   whatever the writer met. A row that gains counts after it was handed over is sent again
 *   with only the new ones.
 * - db_ingest_chunk of a scanned chunk (the ledger row, the rows not sent yet, COMMIT), which the
 *   caller may leave to the writer while it reads the next chunk (overlap_ingest_start) and
 *   collect later (overlap_ingest_wait): the next chunk's rows are streamed only once that
 *   transaction has ended, in a transaction of their own.
 *
 * The wall time of an ingest then approaches the larger of scan and database instead of their
 * sum. Nothing is committed but by db_ingest_chunk, which the caller starts only for a chunk it
 * has verified. The caller may use the connection itself only while the writer idles (after
 * overlap_scan, overlap_ingest_wait or overlap_wait_idle, until it hands over the next job). The
 * writer's log lines are never held by log_hold (they are printed as they happen).
 */
struct overlap;

/*
 * For db, whose writer thread starts here (when it cannot, every job is done in the caller's
 * thread, at once: nothing overlaps, nothing else changes). NULL on no memory (logged).
 */
struct overlap *overlap_create(struct db *db);
/* Waits for the writer's job, ends its thread. Accepts NULL. */
void overlap_destroy(struct overlap *o);

/*
 * scan_chunk (same arguments and results) with the writer beside it; returns once the writer
 * idles (it may first finish an ingest started before). On 0 the chunk's transaction may be
 * open: the caller either counts the chunk with overlap_ingest(_start), or discards it with
 * overlap_abort. On failure the transaction is rolled back already. o may be NULL (a dry run,
 * no database): then it is scan_chunk alone.
 */
int overlap_scan(struct overlap *o, struct reader *r, const char *name, const struct scan_opts *so,
		 struct agg *agg, struct scan_stats *st);

/*
 * Rolls back what the last overlap_scan streamed: a chunk whose scan succeeded, not to be counted
 * after all. A failed scan has rolled itself back already; with nothing streamed, nothing happens.
 */
void overlap_abort(struct overlap *o);

/*
 * db_ingest_chunk(c, agg) by the writer, after the last overlap_scan of that agg. _start returns
 * at once; c, everything it points to and agg must stay as they are until overlap_ingest_wait,
 * which returns the result (one ingest at a time). overlap_ingest does both.
 */
void overlap_ingest_start(struct overlap *o, const struct db_chunk *c, struct agg *agg);
enum db_result overlap_ingest_wait(struct overlap *o);
enum db_result overlap_ingest(struct overlap *o, const struct db_chunk *c, struct agg *agg);

/* Waits until the writer idles (e.g. before the caller changes the environment). */
void overlap_wait_idle(struct overlap *o);

/* Batches the writer has sent during the last overlap_scan (for tests and --verbose). */
unsigned long overlap_batches(const struct overlap *o);

#endif
