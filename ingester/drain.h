#ifndef RELAYWATCH_DRAIN_H
#define RELAYWATCH_DRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * `relaywatch-ingest run`: drains the drop directory that relaywatch-ship uploads into.
 *
 * Layout under the drop directory (the subdirectories are created when missing, and must be real
 * directories owned by the ingester's user, mode 0700 and its own group: the shipper's SFTP
 * account can write the drop directory itself, a symlink it planted as work/ would make us move
 * files anywhere, and a subdirectory it can read would give it every server's archived logs):
 *
 *   NAME.gz, NAME.manifest   complete uploads; the manifest is renamed into place last
 *   .anything                temporary uploads, never touched
 *   work/                    claimed chunks (NAME.manifest + NAME.gz; NAME.takeover while a
 *                            takeover reads one)
 *   archive/                 ingested chunks (archive = yes)
 *   quarantine/              chunks that failed verification or parsing, each with NAME.why;
 *                            NAME.manifest.ignored for a non-regular entry reported once
 *
 * A chunk is claimed by opening NAME.manifest, taking flock(LOCK_EX|LOCK_NB) on it and only then
 * renaming it into work/: the file never appears in work/ unlocked while its claimer lives, so
 * a claim in work/ whose lock can be taken is stale (its ingester died or gave up on a database
 * error) and is taken over. Everything else follows from the ledger: a chunk is counted by the
 * one transaction that inserts its ledger row, so a chunk processed twice (after a crash between
 * commit and archive, or by a takeover race) is a duplicate, never a double count.
 *
 * Order per chunk: claim, move NAME.gz into work/, read and check the manifest (name, size,
 * bounds, the bound host), check the chunk's size and gzip magic, scan it (never past the
 * manifest's length, never over max_keys rows) and verify length, line count and SHA-256 against
 * the manifest (ingester/verify.c), ingest (ledger + aggregates in one transaction), then move
 * NAME.gz and NAME.manifest out of work/ (to archive/, or unlink), fsync the directories. A claim
 * whose takeover died while reading it is quarantined by the next takeover.
 *
 * The database works beside the scan (ingester/overlap.c): the rows of the hours a chunk has
 * finished go into its open transaction while it is still read, and its ledger row, its other
 * rows and the COMMIT go while the next chunk is claimed and read; that chunk's rows follow in a
 * transaction of their own once the commit is done, and the committed chunk is moved out of
 * work/ before the next one is ingested. Nothing commits before its chunk is verified: a chunk
 * that fails (quarantined, a local error, the run stopping) has its transaction rolled back. A
 * takeover is committed before the next claim is read (NAME.takeover must blame only the chunk
 * being read), and so is a chunk of more than max_keys / 8 rows (memory stays bounded).
 */

struct db;

struct drain_opts {
	/*
	 * Connects to the database before the first chunk with a valid manifest is read (a dry
	 * run, or a run with nothing to read, never does): DRAIN_OK with *db set, DRAIN_SETUP when
	 * the option file is at fault, DRAIN_DB when the server is (each logged). arg is
	 * connect_arg.
	 */
	int (*connect)(void *arg, struct db **db);
	void *connect_arg;
	const char *incoming;
	const char *host;   /* the one mail server that uploads here; NULL: any (shared) */
	uint64_t max_chunk; /* uncompressed bytes of one chunk (ingest.conf's max_chunk) */
	size_t max_keys;    /* distinct aggregate rows of one chunk (ingest.conf's max_keys) */
	bool archive;       /* keep ingested chunks in archive/ (else delete them) */
	bool dry_run;       /* check and count, print what would happen; no DB, no renames */
	bool verbose;
	bool progress;
};

struct drain_stats {
	unsigned ingested;
	unsigned duplicates;
	unsigned quarantined;
	unsigned failed; /* local errors (I/O while archiving): the chunk stays claimed */
};

enum drain_result {
	DRAIN_OK = 0,     /* every chunk ingested (or a duplicate) */
	DRAIN_FAILED = 1, /* some chunks were quarantined or failed; the others went on */
	DRAIN_SETUP = 2,  /* the drop directory or the database's option file cannot be used */
	DRAIN_DB = 3,     /* the database failed: the run stopped, the chunk stays in work/ */
};

struct overlap;

/*
 * The database connection and its writer thread (ingester/overlap.c), kept from one drain_run to
 * the next: run drains each drop directory in turn, and connects once. The writer must also be
 * started before the first scan lowers the main thread's priority, or it would inherit the
 * scan's nice value (as a writer started for a second drop directory did). Zeroed before the
 * first drain_run, which connects when a chunk needs it; a run whose database failed leaves it
 * zeroed again. drain_close ends both.
 */
struct drain_conn {
	struct db *db;
	struct overlap *ov;
};

void drain_close(struct drain_conn *conn);

/* One pass over the drop directory, on conn's connection (made when first needed). */
enum drain_result drain_run(const struct drain_opts *o, struct drain_conn *conn,
			    struct drain_stats *st);

#endif
