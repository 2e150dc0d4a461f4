#ifndef RELAYWATCH_OVERLAP_H
#define RELAYWATCH_OVERLAP_H

#include "agg.h"
#include "db.h"
#include "reader.h"
#include "scan.h"

/*
 * A chunk's scan with its database writes beside it: after each block the scan hands the rows of
 * the hours that are complete (those before the newest hour seen so far; any hour once 64k rows
 * wait, for logs whose hours do not advance), in key order, to a
 * writer thread that owns the connection and upserts them inside the chunk's transaction
 * (db_stream_rows), while the scan goes on. The wall time of an ingest then approaches the
 * larger of scan and database instead of their sum. The rows stay in the aggregate table (marked
 * sent), so db_ingest_chunk finishes with only what is left, or, after any database error of
 * the writer, replays the whole chunk from the table as it always did: exactly once holds
 * whatever the writer met. A row that gains counts after it was handed over is sent again with
 * only the new ones.
 */
struct overlap;

/* For db, which the overlap uses while scanning. NULL on no memory (logged). */
struct overlap *overlap_create(struct db *db);
/* Accepts NULL. */
void overlap_destroy(struct overlap *o);

/*
 * scan_chunk (same arguments and results) with the writer beside it. On 0 the chunk's
 * transaction may be open: the caller either counts the chunk with db_ingest_chunk on the same
 * db, or discards it with db_stream_abort. On failure the transaction is rolled back already.
 */
int overlap_scan(struct overlap *o, struct reader *r, const char *name, const struct scan_opts *so,
		 struct agg *agg, struct scan_stats *st);

/* Batches the writer has sent during the last overlap_scan (for tests and --verbose). */
unsigned long overlap_batches(const struct overlap *o);

#endif
