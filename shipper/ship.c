#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "monoclock.h"
#include "run.h"
#include "sftp.h"
#include "ship.h"
#include "upload.h"

enum lock_result {
	LOCK_TAKEN,
	LOCK_BUSY,  /* another run holds it */
	LOCK_ERROR, /* logged */
};

static enum lock_result lock_state_dir(const char *dir, int *fd)
{
	char path[4096];
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		log_error("state_dir %s: %s", dir, strerror(errno));
		return LOCK_ERROR;
	}
	/*
	 * Another local user who can write here could swap the state (shipping lines twice or
	 * never) or plant symlinks for us to follow as root: refuse, as for the config.
	 */
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		log_error("state_dir %s: %s", dir,
			  errno == ELOOP || errno == ENOTDIR ? "must be a directory, not a symlink"
							     : strerror(errno));
		return LOCK_ERROR;
	}
	int bad = fileio_check_private(dfd, dir, "state_dir", FILEIO_DIR);
	close(dfd);
	if (bad != 0) {
		return LOCK_ERROR;
	}
	snprintf(path, sizeof(path), "%s/lock", dir);
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (*fd < 0) {
		log_error("%s: %s", path, strerror(errno));
		return LOCK_ERROR;
	}
	if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK) {
			return LOCK_BUSY;
		}
		log_error("%s: %s", path, strerror(errno));
		return LOCK_ERROR;
	}
	return LOCK_TAKEN;
}

/* Enough lanes for the chunks this run will have, at most cfg->parallel. */
static unsigned lanes_for(const struct run *r)
{
	uint64_t chunks = 0;
	for (size_t i = 0; i < r->njobs && chunks < r->cfg->parallel; i++) {
		const struct source_file *f = r->jobs[i].file;
		if (r->jobs[i].in_pack) {
			/* A pack is one upload (at most max_chunk), counted at its head. */
			chunks += r->jobs[i].pack_head;
			continue;
		}
		/* gzip content is several times its file size. */
		uint64_t bytes = f->gz ? 8 * f->size : f->size;
		chunks += 1 + bytes / r->cfg->max_chunk;
	}
	return chunks < r->cfg->parallel ? (unsigned)chunks : r->cfg->parallel;
}

/*
 * Connects to the first server from cfg->servers[*next] on that connects and verifies, moving
 * *next past it; one line for each server given up on. NULL when none is left.
 */
static struct sftp_conn *connect_next(struct run *r, size_t *next)
{
	const struct ship_config *cfg = r->cfg;
	while (*next < cfg->nservers) {
		const struct ship_server *s = &cfg->servers[(*next)++];
		bool last = *next == cfg->nservers;
		struct sftp_params sp = {
			.host = s->host,
			.port = s->port,
			.user = cfg->user,
			.identity = cfg->identity,
			.known_hosts = cfg->known_hosts,
			.connect_timeout = cfg->connect_timeout,
			.timeout = cfg->timeout,
			.keepalive = cfg->keepalive,
			.accept_new_host_key = r->opt->accept_new_host_key,
		};
		char why[1024], label[SFTP_LABEL_MAX];
		double t0 = monoclock_now();
		/* With another server to try, a failure is a warning that names it, not an
		 * error of its own. */
		if (!last) {
			log_hold();
		}
		struct sftp_conn *c = sftp_connect(&sp);
		if (!last && log_release(why, sizeof(why))) {
			const struct ship_server *n = &cfg->servers[*next];
			sftp_host_label(n->host, n->port, label);
			log_warn("%s%s%s", why, c ? "" : "; trying ", c ? "" : label);
		}
		if (c) {
			log_debug("connected to %s in %.2f s", sftp_conn_label(c),
				  monoclock_now() - t0);
			return c;
		}
	}
	return NULL;
}

/* After a server failed mid-run: each file goes on from what is delivered, to the next one. */
static void run_rewind(struct run *r)
{
	for (size_t i = 0; i < r->njobs; i++) {
		r->jobs[i].first_rec = r->jobs[i].last_rec = SIZE_MAX;
	}
	r->stop = false;
	r->failed_chunks = 0;
}

/*
 * Ships the plan to the first server that connects and verifies, and what is not delivered
 * when one fails mid-run to the next, in the same run. A chunk that the failed server got
 * without our knowing (its answer was lost) goes to the next one too: the ingesters' ledger,
 * keyed by the chunk's SHA-256 on the shared database, counts it once. Returns SHIP_EXIT_CONNECT
 * when no server could be used, SHIP_EXIT_PARTIAL when the plan could not be saved, else 0
 * (r->failed and r->stop say how it went).
 */
static enum ship_exit ship_planned(struct run *r)
{
	const struct ship_config *cfg = r->cfg;
	size_t next = 0;
	bool started = false;
	while ((r->conn = connect_next(r, &next)) != NULL) {
		if (!started) {
			/* The plan must be on disk before the first byte goes out: a rerun after a
			 * crash rebuilds exactly these chunks. */
			r->dirty = true;
			delivery_save(r, true);
			if (r->dirty) {
				return SHIP_EXIT_PARTIAL;
			}
		} else {
			log_notice("shipping the rest to %s", sftp_conn_label(r->conn));
		}
		r->up = uploader_create(r->conn, cfg->remote_dir, lanes_for(r), cfg->timeout);
		if (r->up) {
			started = true;
			produce_jobs(r);
			uploader_destroy(r->up);
			r->up = NULL;
		} else {
			r->stop = true;
		}
		sftp_conn_destroy(r->conn);
		r->conn = NULL;
		if (!r->stop || next == cfg->nservers) {
			break;
		}
		run_rewind(r);
	}
	return started ? 0 : SHIP_EXIT_CONNECT;
}

static void run_finish(struct run *r)
{
	uploader_destroy(r->up);
	sftp_conn_destroy(r->conn);
	produce_finish(r);
	free(r->recs);
	free(r->jobs);
	source_list_finish(&r->files);
	ship_state_finish(&r->st);
	free(r->state_path);
}

enum ship_exit ship_run(const struct ship_config *cfg, const struct ship_options *opt)
{
	struct run r = {.cfg = cfg, .opt = opt};
	int lockfd = -1;
	enum ship_exit ret = SHIP_EXIT_PARTIAL;

	ship_host_label(cfg->hostname, r.host);
	ship_state_init(&r.st);
	source_list_init(&r.files);
	size_t plen = strlen(cfg->state_dir) + 7;
	if (!(r.state_path = malloc(plen))) {
		log_error("out of memory");
		goto out;
	}
	snprintf(r.state_path, plen, "%s/state", cfg->state_dir);

	if (!opt->dry_run) {
		enum lock_result l = lock_state_dir(cfg->state_dir, &lockfd);
		if (l == LOCK_ERROR) {
			ret = SHIP_EXIT_USAGE;
			goto out;
		}
		if (l == LOCK_BUSY) {
			log_notice("another run holds %s/lock: leaving the work to it",
				   cfg->state_dir);
			ret = SHIP_EXIT_OK;
			goto out;
		}
	}
	if (ship_state_load(&r.st, r.state_path) != 0) {
		ret = SHIP_EXIT_USAGE;
		goto out;
	}
	double t0 = monoclock_now();
	if (plan_run(&r) != 0) {
		goto out;
	}
	log_debug("planned %zu file(s) to ship in %.2f s", r.njobs, monoclock_now() - t0);
	if (produce_init(&r) != 0) {
		goto out;
	}
	if (opt->dry_run) {
		produce_jobs(&r);
		printf("%" PRIu64 " chunks, %" PRIu64 " bytes would be shipped\n", r.planned,
		       r.progress_bytes);
		ret = r.failed ? SHIP_EXIT_PARTIAL : SHIP_EXIT_OK;
		goto out;
	}
	if (r.njobs > 0 && (ret = ship_planned(&r)) != 0) {
		goto out;
	}
	if (r.progress_shown) {
		fprintf(stderr, "\r\033[K");
	}
	if (ship_state_prune(&r.st, (int64_t)time(NULL) - (int64_t)cfg->forget_days * 86400) > 0) {
		r.dirty = true;
	}
	delivery_save(&r, true);
	/* The first failure was logged where it happened; one more line only for a count. */
	if (r.failed_chunks > 0) {
		log_msg(r.failed_chunks > 1 ? LOG_ERROR : LOG_INFO,
			"%" PRIu64 " chunk(s) not shipped; the next run retries them",
			r.failed_chunks);
	} else if (r.stop) {
		log_error("stopped early; the next run ships the rest");
		r.failed = true;
	}
	log_info("%" PRIu64 " chunk(s) shipped (%" PRIu64 " bytes), %" PRIu64
		 " found delivered already",
		 r.delivered, r.bytes, r.already);
	ret = r.failed || r.failed_chunks > 0 ? SHIP_EXIT_PARTIAL : SHIP_EXIT_OK;
out:
	run_finish(&r);
	if (lockfd >= 0) {
		close(lockfd);
	}
	return ret;
}
