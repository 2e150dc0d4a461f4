#ifndef RELAYWATCH_RUN_H
#define RELAYWATCH_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "chunk.h"
#include "manifest.h"
#include "ship_state.h"
#include "shipconf.h"
#include "sources.h"

struct ship_options; /* ship.h: the run belongs to ship.c, which includes us */
struct hasher;

/*
 * The state of one run of relaywatch-ship, shared by the modules that carry it out, each doing
 * one step:
 *   plan.c      which files to ship and up to where (bounds in the state entries)
 *   produce.c   reads a job's file (content.c), cuts, hashes (hasher.c, beside it) and deflates
 *               its chunks, and hands them to the uploader
 *   delivery.c  applies the uploader's results to the state, in file order, and saves it
 *   ship.c      the run itself: lock, plan, connect (and fail over), produce, save, exit status
 * Nothing here is used outside the shipper's run.
 */

/* A file to ship from this run. */
struct job {
	struct source_file *file;
	struct ship_entry *entry;
	bool failed;      /* its file failed here: produce no more chunks for it this run */
	size_t first_rec; /* oldest chunk not yet applied to the state (SIZE_MAX: none) */
	size_t last_rec;
	bool fresh;        /* its entry had no plan before this run: it may join a new pack */
	bool in_pack;      /* shipped as a member of a pack, by the pack's head */
	bool pack_head;    /* ships its pack: the members follow by pack_next, in pack order */
	size_t pack_next;  /* the next member (SIZE_MAX: the last one, or not in a pack) */
	uint64_t pack_end; /* where its content ended when its pack was read */
};

/* Files in one pack at most: each is a "part" line of the pack's manifest. */
#define PACK_FILES_MAX MANIFEST_PARTS_MAX

enum chunk_status {
	CHUNK_IN_FLIGHT,
	CHUNK_DELIVERED, /* by this run, or found delivered by an earlier one */
	CHUNK_FAILED,
};

/* A chunk of this run, by its upload cookie. */
struct chunk_rec {
	size_t job;
	uint64_t start, end;
	bool at_eof;
	bool aborted; /* given up by this side (reported and counted there), not by the upload */
	unsigned pack_files; /* a pack of this many files, the job's pack (0: not a pack) */
	enum chunk_status status;
	size_t next; /* the job's next chunk (SIZE_MAX: none) */
};

struct run {
	const struct ship_config *cfg;
	const struct ship_options *opt;
	char host[SHIP_HOST_LABEL_MAX + 1];
	char *state_path;
	struct ship_state st;
	struct source_list files;
	struct job *jobs;
	size_t njobs;
	struct chunk_rec *recs;
	size_t nrecs, caprecs;
	struct sftp_conn *conn; /* the server being shipped to */
	struct uploader *up;
	z_stream z;
	bool zinit;
	struct hasher *hs;              /* the chunk's SHA-256 and lines (hasher.h) */
	char zone[MANIFEST_TZ_MAX + 1]; /* the manifests' tz (produce.c's local_zone) */
	unsigned char *in;
	double last_save;
	bool dirty;
	bool stop; /* an upload failed or the connection broke: start nothing new on this server */
	bool failed; /* something failed: exit 1 */
	uint64_t delivered, already, failed_chunks, bytes, planned;
	double last_progress;
	double t_start, t_bufwait; /* producing, and the producer waiting for the network */
	uint64_t progress_bytes;
	bool progress_shown;
};

/*
 * plan.c: finds the files of every source, fingerprints them and makes r->jobs of those with
 * something to ship, their bounds planned in r->st. A source or file that fails is logged and
 * sets r->failed. Returns 0, or -1 (logged) when the run cannot go on (out of memory).
 */
int plan_run(struct run *r);

/* produce.c: allocates the deflate stream, digest and read buffer. 0, or -1 (logged). */
int produce_init(struct run *r);
/* Frees what produce_init() allocated (also after a failed init). */
void produce_finish(struct run *r);
/*
 * Streams every job's planned chunks to r->up (or lists them, for a dry run), until done or
 * r->stop, then waits for the results of what is in flight. Failures set r->failed (a file's
 * own) or r->stop (the server's).
 */
void produce_jobs(struct run *r);

/* delivery.c: a new chunk of job ji starting at start; its index, or SIZE_MAX (out of memory,
 * logged). */
size_t delivery_rec_add(struct run *r, size_t ji, uint64_t start);
/* Applies the job's delivered chunks to its state entry, in file order. */
void delivery_advance(struct run *r, size_t ji);
/* Takes the uploader's results (waiting for one with wait), then saves the state if due. */
void delivery_take(struct run *r, bool wait);
/* Saves the state if it changed and (unless force) the last save is a second old; a failure
 * is logged and sets r->failed. */
void delivery_save(struct run *r, bool force);

#endif
