#ifndef RELAYWATCH_SFTP_H
#define RELAYWATCH_SFTP_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The shipper's one SSH session to the stats server (libssh2), and SFTP "lanes" on it: each lane
 * is its own SFTP channel, so several uploads (and their round trips and remote fsyncs) run at
 * once over the one connection.
 *
 * sftp_connect() works in blocking mode with the configured timeouts. After
 * sftp_conn_set_nonblocking(), every lane operation returns SFTP_AGAIN instead of blocking and
 * must be called again with the same arguments until it returns something else;
 * sftp_conn_wait() sleeps until the socket is ready. A session and its lanes must be used by one
 * thread at a time (libssh2 is not thread-safe within a session).
 *
 * Errors: an enum sftp_status, with the text in sftp_lane_error() or sftp_conn_error(); connect
 * failures are logged. errno is not part of any of these contracts.
 */

enum sftp_status {
	SFTP_OK = 0,
	SFTP_FAILED = -1, /* the server refused this operation; the session is fine */
	SFTP_AGAIN = -2,  /* would block: call again after sftp_conn_wait() */
	SFTP_EXISTS = -3, /* rename: the target name already exists */
	SFTP_BROKEN = -4, /* the connection is unusable (text in sftp_conn_error()) */
};

struct sftp_params {
	const char *host;
	unsigned port;
	const char *user;
	const char *identity;    /* private key file */
	const char *known_hosts; /* OpenSSH format; created by accept_new_host_key */
	unsigned connect_timeout;
	unsigned timeout; /* seconds a blocking call waits for the server */
	unsigned keepalive;
	/* Trust and record a host key never seen before (first contact). A changed key is
	 * refused regardless. */
	bool accept_new_host_key;
};

struct sftp_conn;
struct sftp_lane;

/* The server's name in known_hosts and in messages: "host" for port 22, else "[host]:port". */
#define SFTP_LABEL_MAX 300
void sftp_host_label(const char *host, unsigned port, char out[static SFTP_LABEL_MAX]);

/*
 * Connects over TCP, checks the server's host key against known_hosts, authenticates with the
 * private key. Returns NULL after logging one line that says what to do: the caller tries the
 * next server or exits 3.
 *
 * known_hosts is read as OpenSSH reads it, with the port: an entry "[host]:port" vouches only
 * for that port, a bare "host" only for port 22. A known_hosts that another local user could
 * write (group/other-writable, or owned by a user other than root or us) is refused.
 */
struct sftp_conn *sftp_connect(const struct sftp_params *p);

/* Disconnects (politely when the session still works) and frees. Accepts NULL. */
void sftp_conn_destroy(struct sftp_conn *c);

/* Switches the session to non-blocking mode (before the lanes are driven by sftp_lane_*). */
void sftp_conn_set_nonblocking(struct sftp_conn *c);

/*
 * Waits until the socket is readable (with_socket) or writable (want_write), or extra_fd (-1:
 * none) is readable, or timeout_ms passes. Returns a mask of SFTP_WAIT_SOCKET and SFTP_WAIT_WOKEN
 * (0: timed out), or -1 on a poll error.
 */
#define SFTP_WAIT_SOCKET 1
#define SFTP_WAIT_WOKEN  2
int sftp_conn_wait(struct sftp_conn *c, bool with_socket, bool want_write, int timeout_ms,
		   int extra_fd);

/* Sends an SSH keepalive if one is due; returns the seconds until the next one is due. */
int sftp_conn_keepalive(struct sftp_conn *c);

/* The server's label (sftp_host_label). */
const char *sftp_conn_label(const struct sftp_conn *c);

/* The text of the error that made the connection unusable. */
const char *sftp_conn_error(const struct sftp_conn *c);

/* Declares the connection dead (the server stopped answering): teardown sends nothing more. */
void sftp_conn_set_broken(struct sftp_conn *c, const char *why);

/* Opens an SFTP channel, in blocking mode (call before sftp_conn_set_nonblocking). NULL on
 * failure, logged as an error, or only with --verbose when quiet_failure (an extra channel the
 * server refused). */
struct sftp_lane *sftp_lane_create(struct sftp_conn *c, bool quiet_failure);

/* Closes the channel (blocking briefly if needed). Accepts NULL. */
void sftp_lane_destroy(struct sftp_lane *l);

/* Whether data for this lane already sits in libssh2's buffers (so waiting on the socket would
 * not wake up for it). */
bool sftp_lane_pending(struct sftp_lane *l);

/* Right after a lane operation returned SFTP_AGAIN: whether it waits to send (rather than for
 * an answer). */
bool sftp_lane_blocked_sending(struct sftp_lane *l);

/*
 * File operations on the lane's one open file. Each returns an enum sftp_status. On SFTP_FAILED
 * sftp_lane_error() holds "server said: ..." text for the caller's message.
 */
/* Creates or truncates path for writing (mode 0640). */
int sftp_lane_create_file(struct sftp_lane *l, const char *path);
/* Writes buf[*done..len); advances *done by what the server acknowledged. SFTP_OK once *done ==
 * len. Large buffers are pipelined by libssh2 in 30,000-byte requests. */
int sftp_lane_write(struct sftp_lane *l, const unsigned char *buf, size_t len, size_t *done);
/* fsync@openssh.com: the data is on the server's disk before we rename it into view. A server
 * without the extension is reported once and then tolerated. */
int sftp_lane_fsync(struct sftp_lane *l);
int sftp_lane_close_file(struct sftp_lane *l);
/* Renames from to to, never over an existing file: SFTP_EXISTS when to already exists. */
int sftp_lane_rename(struct sftp_lane *l, const char *from, const char *to);
int sftp_lane_unlink(struct sftp_lane *l, const char *path);
/* Whether the lane has a file open (after a failure: close it before the next create). */
bool sftp_lane_has_file(const struct sftp_lane *l);

const char *sftp_lane_error(const struct sftp_lane *l);

#endif
