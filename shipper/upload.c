#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crashpoint.h"
#include "log.h"
#include "monoclock.h"
#include "upload.h"

enum step {
	S_IDLE,
	S_OPEN,
	S_WRITE,
	S_FSYNC,
	S_CLOSE,
	S_RENAME,
	S_UNLINK_TEMP, /* NAME.gz was there already: drop our copy */
	S_MOPEN,
	S_MWRITE,
	S_MFSYNC,
	S_MCLOSE,
	S_MRENAME,
	S_MUNLINK, /* NAME.manifest was there already */
	S_FAIL_CLOSE,
	S_FAIL_UNLINK,
};

struct upload_chunk {
	struct upload_chunk *next;
	uint64_t cookie;
	char *temp, *final, *mtemp, *mfinal; /* remote paths; the last three set by end */
	char *manifest;
	size_t manifest_len;
	/* Shared with the producer, under the mutex: */
	struct upload_buf *head, *tail;
	bool ended, aborted;
	bool finished; /* status is final, the chunk is on the done list or reported */
	bool reported; /* uploader_result() returned it */
	bool released; /* the producer called end or abort: it no longer touches it */
	enum upload_status status;
	/* Writer only: */
	bool data_existed;
	bool in_manifest;
};

struct lane {
	struct sftp_lane *sl;
	struct upload_chunk *ch;
	enum step step;
	struct upload_buf *cur;
	size_t off;
	enum upload_status fail_status;
	bool io_wait;      /* last step waited for the server */
	bool wait_sending; /* ... to send (the socket or the channel window was full) */
};

struct uploader {
	struct sftp_conn *c;
	char *remote_dir;
	unsigned nlanes, want_lanes;
	struct lane *lanes;
	unsigned timeout;
	pthread_t thread;
	bool thread_started;
	int wake[2];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct upload_chunk *qhead, *qtail; /* begun, waiting for a lane */
	struct upload_chunk *dhead, *dtail; /* finished, waiting to be reported */
	size_t in_flight;
	struct upload_buf *free_bufs;
	unsigned nbufs, maxbufs;
	bool broken;
	bool broken_logged;
	unsigned failures; /* writer only */
	bool stop;
	/* The writer sleeps in poll() only after checking that gen did not move; the producer
	 * bumps gen on every change and writes to the pipe only while the writer sleeps. */
	uint64_t gen;
	bool sleeping;
};

/* Lane step results. */
enum {
	STEP_PROGRESS,
	STEP_IO,   /* waiting for the server */
	STEP_DATA, /* waiting for the producer */
	STEP_NONE, /* no chunk */
};

/* Under the mutex: tells the writer there is something new. */
static void notify_writer(struct uploader *up)
{
	up->gen++;
	if (up->sleeping) {
		char b = 1;
		/* A full pipe already means "wake up". */
		if (write(up->wake[1], &b, 1) < 0 && errno != EAGAIN) {
			log_debug("wake: %s", strerror(errno));
		}
	}
}

static void chunk_free(struct upload_chunk *ch)
{
	free(ch->temp);
	free(ch->final);
	free(ch->mtemp);
	free(ch->mfinal);
	free(ch->manifest);
	free(ch);
}

/* Under the mutex. */
static void buf_release(struct uploader *up, struct upload_buf *b)
{
	b->next = up->free_bufs;
	up->free_bufs = b;
	pthread_cond_broadcast(&up->cv);
}

/* Under the mutex: the chunk's result is final. */
static void chunk_finish(struct uploader *up, struct upload_chunk *ch, enum upload_status st)
{
	ch->status = st;
	ch->finished = true;
	while (ch->head) {
		struct upload_buf *b = ch->head;
		ch->head = b->next;
		buf_release(up, b);
	}
	ch->tail = NULL;
	ch->next = NULL;
	if (up->dtail) {
		up->dtail->next = ch;
	} else {
		up->dhead = ch;
	}
	up->dtail = ch;
	pthread_cond_broadcast(&up->cv);
}

static void lane_done(struct uploader *up, struct lane *ln, enum upload_status st)
{
	pthread_mutex_lock(&up->mu);
	if (ln->cur) {
		buf_release(up, ln->cur);
		ln->cur = NULL;
	}
	chunk_finish(up, ln->ch, st);
	pthread_mutex_unlock(&up->mu);
	ln->ch = NULL;
	ln->step = S_IDLE;
	ln->off = 0;
}

/* The name to report: the final one is set by the producer, and only read once the lane has
 * seen (under the mutex) that the chunk ended. */
static const char *chunk_label(const struct lane *ln)
{
	if (ln->ch->in_manifest) {
		return ln->ch->mtemp;
	}
	return ln->step > S_WRITE && ln->step < S_FAIL_CLOSE ? ln->ch->final : ln->ch->temp;
}

/* Handles a non-OK result of a step: returns the lane step result. */
static int lane_trouble(struct uploader *up, struct lane *ln, int r)
{
	if (r == SFTP_AGAIN) {
		return STEP_IO;
	}
	if (r == SFTP_BROKEN) {
		pthread_mutex_lock(&up->mu);
		up->broken = true;
		pthread_mutex_unlock(&up->mu);
		return STEP_PROGRESS;
	}
	/* The same cause (permissions, a full disk) usually fails every chunk in flight: one
	 * error line is enough, the rest go to --verbose. */
	if (up->failures++ == 0) {
		log_error("upload of %s failed: %s", chunk_label(ln), sftp_lane_error(ln->sl));
	} else {
		log_info("upload of %s failed: %s", chunk_label(ln), sftp_lane_error(ln->sl));
	}
	ln->fail_status = UPLOAD_FAILED;
	ln->step = S_FAIL_CLOSE;
	return STEP_PROGRESS;
}

/* Runs the lane's state machine as far as it goes without blocking. */
static int lane_step(struct uploader *up, struct lane *ln)
{
	struct upload_chunk *ch = ln->ch;
	int r;
	bool progressed = false;

	if (!ch) {
		return STEP_NONE;
	}
	for (;;) {
		switch (ln->step) {
		case S_IDLE:
		case S_OPEN:
			r = sftp_lane_create_file(ln->sl, ch->temp);
			if (r != SFTP_OK) {
				return lane_trouble(up, ln, r);
			}
			ln->step = S_WRITE;
			break;
		case S_WRITE:
			if (!ln->cur) {
				pthread_mutex_lock(&up->mu);
				ln->cur = ch->head;
				if (ln->cur) {
					ch->head = ln->cur->next;
					if (!ch->head) {
						ch->tail = NULL;
					}
				}
				bool ended = ch->ended, aborted = ch->aborted;
				pthread_mutex_unlock(&up->mu);
				ln->off = 0;
				if (!ln->cur) {
					if (aborted) {
						ln->fail_status = UPLOAD_FAILED;
						ln->step = S_FAIL_CLOSE;
						break;
					}
					if (!ended) {
						return progressed ? STEP_PROGRESS : STEP_DATA;
					}
					ln->step = S_FSYNC;
					break;
				}
			}
			r = sftp_lane_write(ln->sl, ln->cur->data, ln->cur->len, &ln->off);
			if (r != SFTP_OK) {
				return lane_trouble(up, ln, r);
			}
			pthread_mutex_lock(&up->mu);
			buf_release(up, ln->cur);
			pthread_mutex_unlock(&up->mu);
			ln->cur = NULL;
			crashpoint("ship-upload");
			break;
		case S_FSYNC:
		case S_MFSYNC:
			r = sftp_lane_fsync(ln->sl);
			if (r != SFTP_OK) {
				return lane_trouble(up, ln, r);
			}
			ln->step = ln->step == S_FSYNC ? S_CLOSE : S_MCLOSE;
			break;
		case S_CLOSE:
		case S_MCLOSE:
			r = sftp_lane_close_file(ln->sl);
			if (r != SFTP_OK) {
				return lane_trouble(up, ln, r);
			}
			ln->step = ln->step == S_CLOSE ? S_RENAME : S_MRENAME;
			break;
		case S_RENAME:
			r = sftp_lane_rename(ln->sl, ch->temp, ch->final);
			if (r == SFTP_EXISTS) {
				ch->data_existed = true;
				ln->step = S_UNLINK_TEMP;
				break;
			}
			if (r != SFTP_OK) {
				return lane_trouble(up, ln, r);
			}
			crashpoint("ship-after-rename");
			ln->step = S_MOPEN;
			break;
		case S_UNLINK_TEMP:
		case S_MUNLINK:
			r = sftp_lane_unlink(ln->sl,
					     ln->step == S_UNLINK_TEMP ? ch->temp : ch->mtemp);
			if (r == SFTP_AGAIN || r == SFTP_BROKEN) {
				return lane_trouble(up, ln, r);
			}
			/* A leftover temporary file is harmless: the ingester never looks at
			 * dot files. */
			if (ln->step == S_MUNLINK) {
				lane_done(up, ln,
					  ch->data_existed ? UPLOAD_ALREADY : UPLOAD_DELIVERED);
				return STEP_PROGRESS;
			}
			ln->step = S_MOPEN;
			break;
		case S_MOPEN:
			ch->in_manifest = true;
			r = sftp_lane_create_file(ln->sl, ch->mtemp);
			if (r != SFTP_OK) {
				return lane_trouble(up, ln, r);
			}
			ln->off = 0;
			ln->step = S_MWRITE;
			break;
		case S_MWRITE:
			r = sftp_lane_write(ln->sl, (const unsigned char *)ch->manifest,
					    ch->manifest_len, &ln->off);
			if (r != SFTP_OK) {
				return lane_trouble(up, ln, r);
			}
			ln->step = S_MFSYNC;
			break;
		case S_MRENAME:
			r = sftp_lane_rename(ln->sl, ch->mtemp, ch->mfinal);
			if (r == SFTP_EXISTS) {
				ln->step = S_MUNLINK;
				break;
			}
			if (r != SFTP_OK) {
				return lane_trouble(up, ln, r);
			}
			crashpoint("ship-after-rename");
			lane_done(up, ln, UPLOAD_DELIVERED);
			return STEP_PROGRESS;
		case S_FAIL_CLOSE:
			if (sftp_lane_has_file(ln->sl)) {
				r = sftp_lane_close_file(ln->sl);
				if (r == SFTP_AGAIN || r == SFTP_BROKEN) {
					return lane_trouble(up, ln, r);
				}
			}
			ln->step = S_FAIL_UNLINK;
			break;
		case S_FAIL_UNLINK:
			r = sftp_lane_unlink(ln->sl, ch->in_manifest ? ch->mtemp : ch->temp);
			if (r == SFTP_AGAIN || r == SFTP_BROKEN) {
				return lane_trouble(up, ln, r);
			}
			lane_done(up, ln, ln->fail_status);
			return STEP_PROGRESS;
		}
		progressed = true;
	}
}

/* The connection is gone: every chunk in a lane or in the queue fails, now and from now on. */
static void fail_everything(struct uploader *up)
{
	if (!up->broken_logged) {
		log_error("connection to %s lost: %s", sftp_conn_label(up->c),
			  sftp_conn_error(up->c));
		up->broken_logged = true;
	}
	for (unsigned i = 0; i < up->nlanes; i++) {
		if (up->lanes[i].ch) {
			lane_done(up, &up->lanes[i], UPLOAD_FAILED);
		}
	}
	pthread_mutex_lock(&up->mu);
	while (up->qhead) {
		struct upload_chunk *ch = up->qhead;
		up->qhead = ch->next;
		chunk_finish(up, ch, UPLOAD_FAILED);
	}
	up->qtail = NULL;
	pthread_cond_broadcast(&up->cv);
	pthread_mutex_unlock(&up->mu);
}

static void drain_wake(struct uploader *up)
{
	char drain[64];
	while (read(up->wake[0], drain, sizeof(drain)) > 0) {
	}
}

/* Under the mutex: gives each idle lane the next chunk waiting in the queue. */
static void assign_lanes(struct uploader *up)
{
	for (unsigned i = 0; i < up->nlanes && up->qhead; i++) {
		struct lane *ln = &up->lanes[i];
		if (!ln->ch) {
			ln->ch = up->qhead;
			up->qhead = ln->ch->next;
			if (!up->qhead) {
				up->qtail = NULL;
			}
			ln->step = S_OPEN;
			ln->cur = NULL;
			ln->off = 0;
			ln->io_wait = false;
		}
	}
}

/*
 * Opens the lanes after the first (blocking), then switches the session to non-blocking mode.
 * Done by the writer while the producer already compresses into the buffers: each channel costs
 * round trips and a process on the server (some 8 ms each here), which would otherwise delay
 * the first byte of a run.
 */
static void open_lanes(struct uploader *up)
{
	while (up->nlanes < up->want_lanes) {
		struct sftp_lane *sl = sftp_lane_create(up->c, true);
		if (!sl) {
			/* Fewer than asked (the server's MaxSessions) only costs speed. */
			log_info("using %u SFTP channels instead of %u", up->nlanes,
				 up->want_lanes);
			break;
		}
		up->lanes[up->nlanes++].sl = sl; /* the lanes are the writer's alone */
	}
	sftp_conn_set_nonblocking(up->c);
}

static void *writer_main(void *arg)
{
	struct uploader *up = arg;
	double last_progress;
	bool sock_ready = true;

	open_lanes(up);
	last_progress = monoclock_now();

	for (;;) {
		pthread_mutex_lock(&up->mu);
		bool stop = up->stop;
		bool broken = up->broken;
		uint64_t gen = up->gen;
		if (!broken) {
			assign_lanes(up);
		}
		pthread_mutex_unlock(&up->mu);

		if (broken) {
			fail_everything(up);
			if (stop) {
				break;
			}
			sftp_conn_wait(up->c, false, false, 1000, up->wake[0]);
			drain_wake(up);
			continue;
		}
		bool busy = false, progress = false, any = false;
		for (unsigned i = 0; i < up->nlanes && !up->broken; i++) {
			struct lane *ln = &up->lanes[i];
			/* A lane waiting for the server has nothing to do until the socket is
			 * ready or another lane's read queued a packet for it: calling it anyway
			 * only costs a failing recv(). */
			if (ln->ch && ln->io_wait && !sock_ready && !sftp_lane_pending(ln->sl)) {
				any = busy = true;
				continue;
			}
			int r = lane_step(up, ln);
			ln->io_wait = r == STEP_IO;
			ln->wait_sending = ln->io_wait && sftp_lane_blocked_sending(ln->sl);
			any |= r != STEP_NONE;
			busy |= r == STEP_IO;
			progress |= r == STEP_PROGRESS;
		}
		sock_ready = false;
		if (up->broken) {
			/* Set by a lane: published under the mutex for the producer. */
			pthread_mutex_lock(&up->mu);
			pthread_cond_broadcast(&up->cv);
			pthread_mutex_unlock(&up->mu);
			continue;
		}
		if (stop && !any) {
			pthread_mutex_lock(&up->mu);
			bool empty = up->qhead == NULL;
			pthread_mutex_unlock(&up->mu);
			if (empty) {
				break;
			}
			continue;
		}
		double now = monoclock_now();
		if (progress) {
			last_progress = now;
			continue;
		}
		bool pending = false;
		for (unsigned i = 0; i < up->nlanes; i++) {
			pending |= up->lanes[i].ch && sftp_lane_pending(up->lanes[i].sl);
		}
		if (pending) {
			continue;
		}
		if (busy && now - last_progress > up->timeout) {
			char why[128];
			snprintf(why, sizeof(why), "no answer for %u s", up->timeout);
			sftp_conn_set_broken(up->c, why);
			pthread_mutex_lock(&up->mu);
			up->broken = true;
			pthread_mutex_unlock(&up->mu);
			continue;
		}
		int wait_ms = 1000;
		if (!busy) {
			/* Idle (the producer is compressing): keep NAT boxes and the server's
			 * ClientAlive timer from closing the session. */
			int next = sftp_conn_keepalive(up->c);
			wait_ms = next * 1000 < wait_ms ? next * 1000 : wait_ms;
			last_progress = now;
		}
		pthread_mutex_lock(&up->mu);
		if (up->gen != gen) {
			pthread_mutex_unlock(&up->mu);
			continue;
		}
		up->sleeping = true;
		pthread_mutex_unlock(&up->mu);
		/* Idle lanes do not read the socket, so only a busy one waits on it. */
		bool want_write = false;
		for (unsigned i = 0; i < up->nlanes; i++) {
			want_write |= up->lanes[i].ch && up->lanes[i].wait_sending;
		}
		int ready = sftp_conn_wait(up->c, busy, want_write, wait_ms, up->wake[0]);
		pthread_mutex_lock(&up->mu);
		up->sleeping = false;
		pthread_mutex_unlock(&up->mu);
		/* On a timeout too: lanes get a look in case we missed something. */
		sock_ready = ready != SFTP_WAIT_WOKEN;
		if (ready & SFTP_WAIT_WOKEN) {
			drain_wake(up);
		}
	}
	return NULL;
}

struct uploader *uploader_create(struct sftp_conn *c, const char *remote_dir, unsigned lanes,
				 unsigned timeout)
{
	struct uploader *ret = NULL;
	struct uploader *up = calloc(1, sizeof(*up));
	if (!up) {
		log_error("out of memory");
		return NULL;
	}
	up->c = c;
	up->timeout = timeout;
	up->want_lanes = lanes > 0 ? lanes : 1;
	up->wake[0] = up->wake[1] = -1;
	/*
	 * One producer fills one chunk at a time: a buffer being written and one being filled keep
	 * a lane streaming, two more cover a chunk's end (its last buffers still going out while
	 * the next chunk starts on another lane) and small chunks, which hold a buffer only until
	 * it is written. More raised the peak RSS when the uploads fell behind (6 buffers: 14-15.7
	 * MB of the 16 MB bound, and libssh2 holds a copy of each buffer a lane is writing until it
	 * is acknowledged), not the speed: normal runs mostly used 2 or 3 and almost never waited
	 * for one (once 0.06 s of 1.9 s, on a loaded machine). Smaller buffers would save memory,
	 * but a lane's SFTP writes drain at each buffer's end (its last write is acknowledged
	 * before the next buffer's first is sent), which costs a round trip per buffer on a distant
	 * server.
	 */
	up->maxbufs = (lanes < 2 ? lanes : 2) + 2;
	pthread_mutex_init(&up->mu, NULL);
	pthread_cond_init(&up->cv, NULL);
	if (!(up->remote_dir = strdup(remote_dir)) ||
	    !(up->lanes = calloc(up->want_lanes, sizeof(*up->lanes)))) {
		log_error("out of memory");
		goto out;
	}
	if (pipe(up->wake) != 0) {
		log_error("pipe: %s", strerror(errno));
		goto out;
	}
	for (int i = 0; i < 2; i++) {
		fcntl(up->wake[i], F_SETFL, fcntl(up->wake[i], F_GETFL) | O_NONBLOCK);
		fcntl(up->wake[i], F_SETFD, FD_CLOEXEC);
	}
	/* The first channel must open here: a server without SFTP fails the run now. The writer
	 * opens the others. */
	if (!(up->lanes[0].sl = sftp_lane_create(c, false))) {
		goto out;
	}
	up->nlanes = 1;
	if (pthread_create(&up->thread, NULL, writer_main, up) != 0) {
		log_error("cannot start the upload thread");
		goto out;
	}
	up->thread_started = true;
	ret = up;
	up = NULL;
out:
	uploader_destroy(up);
	return ret;
}

static char *remote_path(const struct uploader *up, const char *name, const char *prefix,
			 const char *suffix)
{
	size_t len = strlen(up->remote_dir) + strlen(name) + strlen(prefix) + strlen(suffix) + 2;
	char *p = malloc(len);
	if (!p) {
		log_error("out of memory");
		return NULL;
	}
	snprintf(p, len, "%s/%s%s%s", up->remote_dir, prefix, name, suffix);
	return p;
}

struct upload_chunk *uploader_begin(struct uploader *up, uint64_t cookie, const char *temp_name)
{
	struct upload_chunk *ch = calloc(1, sizeof(*ch));
	if (!ch || !(ch->temp = remote_path(up, temp_name, "", ""))) {
		if (ch) {
			chunk_free(ch);
		} else {
			log_error("out of memory");
		}
		return NULL;
	}
	ch->cookie = cookie;
	pthread_mutex_lock(&up->mu);
	if (up->broken) {
		pthread_mutex_unlock(&up->mu);
		chunk_free(ch);
		return NULL;
	}
	if (up->qtail) {
		up->qtail->next = ch;
	} else {
		up->qhead = ch;
	}
	up->qtail = ch;
	up->in_flight++;
	notify_writer(up);
	pthread_mutex_unlock(&up->mu);
	return ch;
}

struct upload_buf *uploader_buf_get(struct uploader *up)
{
	struct upload_buf *b = NULL;
	bool grow = false;
	pthread_mutex_lock(&up->mu);
	while (!up->broken && !up->free_bufs && up->nbufs >= up->maxbufs) {
		pthread_cond_wait(&up->cv, &up->mu);
	}
	if (!up->broken) {
		if (up->free_bufs) {
			b = up->free_bufs;
			up->free_bufs = b->next;
		} else {
			up->nbufs++;
			grow = true;
		}
	}
	pthread_mutex_unlock(&up->mu);
	if (grow) {
		b = malloc(sizeof(*b));
		if (!b) {
			log_error("out of memory");
			pthread_mutex_lock(&up->mu);
			up->nbufs--;
			pthread_mutex_unlock(&up->mu);
			return NULL;
		}
	}
	if (b) {
		b->next = NULL;
		b->len = 0;
	}
	return b;
}

void uploader_buf_put(struct uploader *up, struct upload_buf *b)
{
	if (!b) {
		return;
	}
	pthread_mutex_lock(&up->mu);
	buf_release(up, b);
	pthread_mutex_unlock(&up->mu);
}

void uploader_write(struct uploader *up, struct upload_chunk *ch, struct upload_buf *b)
{
	b->next = NULL;
	pthread_mutex_lock(&up->mu);
	if (ch->finished) {
		/* Failed already (the connection, or the server refused it): nothing to send. */
		buf_release(up, b);
	} else {
		if (ch->tail) {
			ch->tail->next = b;
		} else {
			ch->head = b;
		}
		ch->tail = b;
		notify_writer(up);
	}
	pthread_mutex_unlock(&up->mu);
}

/* Under the mutex: the producer is done with ch. */
static void chunk_release(struct upload_chunk *ch)
{
	ch->released = true;
	if (ch->reported) {
		chunk_free(ch);
	}
}

int uploader_end(struct uploader *up, struct upload_chunk *ch, const char *name,
		 const char *manifest, size_t manifest_len)
{
	char *final = remote_path(up, name, "", ".gz");
	char *mtemp = remote_path(up, name, ".", ".manifest.tmp");
	char *mfinal = remote_path(up, name, "", ".manifest");
	char *text = malloc(manifest_len ? manifest_len : 1);
	int ret = 0;
	if (!final || !mtemp || !mfinal || !text) {
		if (text) {
			log_error("out of memory");
		}
		free(final);
		free(mtemp);
		free(mfinal);
		free(text);
		uploader_abort(up, ch);
		return -1;
	}
	memcpy(text, manifest, manifest_len);
	pthread_mutex_lock(&up->mu);
	if (ch->finished) {
		free(final);
		free(mtemp);
		free(mfinal);
		free(text);
	} else {
		ch->final = final;
		ch->mtemp = mtemp;
		ch->mfinal = mfinal;
		ch->manifest = text;
		ch->manifest_len = manifest_len;
		ch->ended = true;
	}
	chunk_release(ch);
	notify_writer(up);
	pthread_mutex_unlock(&up->mu);
	return ret;
}

void uploader_abort(struct uploader *up, struct upload_chunk *ch)
{
	pthread_mutex_lock(&up->mu);
	ch->aborted = true;
	chunk_release(ch);
	notify_writer(up);
	pthread_mutex_unlock(&up->mu);
}

bool uploader_result(struct uploader *up, struct upload_result *r, bool wait)
{
	bool got = false;
	pthread_mutex_lock(&up->mu);
	while (wait && !up->dhead && up->in_flight > 0) {
		pthread_cond_wait(&up->cv, &up->mu);
	}
	struct upload_chunk *ch = up->dhead;
	if (ch) {
		up->dhead = ch->next;
		if (!up->dhead) {
			up->dtail = NULL;
		}
		up->in_flight--;
		r->cookie = ch->cookie;
		r->status = ch->status;
		ch->reported = true;
		if (ch->released) {
			chunk_free(ch);
		}
		got = true;
	}
	pthread_mutex_unlock(&up->mu);
	return got;
}

bool uploader_broken(struct uploader *up)
{
	pthread_mutex_lock(&up->mu);
	bool b = up->broken;
	pthread_mutex_unlock(&up->mu);
	return b;
}

size_t uploader_in_flight(struct uploader *up)
{
	pthread_mutex_lock(&up->mu);
	size_t n = up->in_flight;
	pthread_mutex_unlock(&up->mu);
	return n;
}

void uploader_destroy(struct uploader *up)
{
	if (!up) {
		return;
	}
	if (up->thread_started) {
		pthread_mutex_lock(&up->mu);
		up->stop = true;
		notify_writer(up);
		pthread_mutex_unlock(&up->mu);
		pthread_join(up->thread, NULL);
		log_debug("%u SFTP channel(s), %u upload buffer(s) of %d kB", up->nlanes, up->nbufs,
			  UPLOAD_BUF_SIZE / 1024);
	}
	for (unsigned i = 0; i < up->nlanes; i++) {
		sftp_lane_destroy(up->lanes[i].sl);
	}
	free(up->lanes);
	/* Chunks the producer never collected. */
	while (up->dhead) {
		struct upload_chunk *ch = up->dhead;
		up->dhead = ch->next;
		if (ch->released) {
			chunk_free(ch);
		}
	}
	while (up->free_bufs) {
		struct upload_buf *b = up->free_bufs;
		up->free_bufs = b->next;
		free(b);
	}
	for (int i = 0; i < 2; i++) {
		if (up->wake[i] >= 0) {
			close(up->wake[i]);
		}
	}
	pthread_mutex_destroy(&up->mu);
	pthread_cond_destroy(&up->cv);
	free(up->remote_dir);
	free(up);
}
