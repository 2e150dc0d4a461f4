#include <errno.h>
#include <fcntl.h>
#include <libssh2.h>
#include <libssh2_sftp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "sftp.h"

/* A known_hosts file bigger than this is not one. */
#define KNOWN_HOSTS_MAX (4 * 1024 * 1024)

/*
 * Every block libssh2 allocates for the session, so that sftp_conn_destroy() can free what
 * libssh2 itself leaks when a connection breaks (an SFTP handle whose close could not be sent
 * keeps its queued writes).
 */
union mem_hdr {
	struct {
		union mem_hdr *prev, *next;
	} l;
	max_align_t align;
};

struct sftp_conn {
	union mem_hdr mem; /* list head */
	int fd;
	LIBSSH2_SESSION *session;
	bool nonblocking;
	bool broken;
	bool fsync_warned;
	char label[SFTP_LABEL_MAX]; /* as in known_hosts */
	char err[300];
};

struct sftp_lane {
	struct sftp_conn *c;
	LIBSSH2_SFTP *sftp;
	LIBSSH2_SFTP_HANDLE *h;
	int rename_step; /* 0 rename sent or to send, 1 checking whether the target exists */
	unsigned long last_fx;
	char err[300];
};

/* Host key algorithms in the order we prefer them, with their known_hosts key bits. */
static const struct hostkey_kind {
	int libssh2_type;
	int knownhost_bit;
	const char *name;
} hostkey_kinds[] = {
	{LIBSSH2_HOSTKEY_TYPE_ED25519, LIBSSH2_KNOWNHOST_KEY_ED25519, "ssh-ed25519"},
	{LIBSSH2_HOSTKEY_TYPE_ECDSA_256, LIBSSH2_KNOWNHOST_KEY_ECDSA_256, "ecdsa-sha2-nistp256"},
	{LIBSSH2_HOSTKEY_TYPE_ECDSA_384, LIBSSH2_KNOWNHOST_KEY_ECDSA_384, "ecdsa-sha2-nistp384"},
	{LIBSSH2_HOSTKEY_TYPE_ECDSA_521, LIBSSH2_KNOWNHOST_KEY_ECDSA_521, "ecdsa-sha2-nistp521"},
	{LIBSSH2_HOSTKEY_TYPE_RSA, LIBSSH2_KNOWNHOST_KEY_SSHRSA, "ssh-rsa"},
};

static const struct hostkey_kind *hostkey_kind_of(int libssh2_type)
{
	for (size_t i = 0; i < sizeof(hostkey_kinds) / sizeof(hostkey_kinds[0]); i++) {
		if (hostkey_kinds[i].libssh2_type == libssh2_type) {
			return &hostkey_kinds[i];
		}
	}
	return NULL;
}

static void mem_link(struct sftp_conn *c, union mem_hdr *h)
{
	h->l.prev = &c->mem;
	h->l.next = c->mem.l.next;
	c->mem.l.next->l.prev = h;
	c->mem.l.next = h;
}

static void mem_unlink(union mem_hdr *h)
{
	h->l.prev->l.next = h->l.next;
	h->l.next->l.prev = h->l.prev;
}

static LIBSSH2_ALLOC_FUNC(mem_alloc)
{
	struct sftp_conn *c = *abstract;
	union mem_hdr *h = malloc(sizeof(*h) + count);
	if (!h) {
		return NULL;
	}
	mem_link(c, h);
	return h + 1;
}

static LIBSSH2_FREE_FUNC(mem_free)
{
	(void)abstract;
	if (ptr) {
		union mem_hdr *h = (union mem_hdr *)ptr - 1;
		mem_unlink(h);
		free(h);
	}
}

static LIBSSH2_REALLOC_FUNC(mem_realloc)
{
	struct sftp_conn *c = *abstract;
	if (!ptr) {
		return mem_alloc(count, abstract);
	}
	union mem_hdr *h = (union mem_hdr *)ptr - 1;
	mem_unlink(h);
	union mem_hdr *n = realloc(h, sizeof(*n) + count);
	if (!n) {
		mem_link(c, h);
		return NULL;
	}
	mem_link(c, n);
	return n + 1;
}

static const char *session_error(LIBSSH2_SESSION *s)
{
	char *msg = NULL;
	libssh2_session_last_error(s, &msg, NULL, 0);
	return msg && *msg ? msg : "unknown libssh2 error";
}

static const char *fx_text(unsigned long fx)
{
	switch (fx) {
	case LIBSSH2_FX_NO_SUCH_FILE:
		return "no such file or directory";
	case LIBSSH2_FX_PERMISSION_DENIED:
		return "permission denied";
	case LIBSSH2_FX_FAILURE:
		return "failure (disk full, or the name exists?)";
	case LIBSSH2_FX_OP_UNSUPPORTED:
		return "operation not supported";
	case LIBSSH2_FX_NO_SUCH_PATH:
		return "no such path";
	case LIBSSH2_FX_FILE_ALREADY_EXISTS:
		return "file already exists";
	case LIBSSH2_FX_WRITE_PROTECT:
		return "write protected";
	case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM:
		return "no space left on the server's file system";
	case LIBSSH2_FX_QUOTA_EXCEEDED:
		return "quota exceeded";
	default:
		return "SFTP error";
	}
}

/* OpenSSH writes fingerprints as "SHA256:" + unpadded base64. */
static void fingerprint_sha256(LIBSSH2_SESSION *s, char *out, size_t size)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *h =
		(const unsigned char *)libssh2_hostkey_hash(s, LIBSSH2_HOSTKEY_HASH_SHA256);
	size_t o = (size_t)snprintf(out, size, "SHA256:");
	if (!h) {
		snprintf(out, size, "(no fingerprint)");
		return;
	}
	for (size_t i = 0; i < 32 && o + 5 < size; i += 3) {
		uint32_t v = (uint32_t)h[i] << 16;
		size_t n = 32 - i < 3 ? 32 - i : 3;
		if (n > 1) {
			v |= (uint32_t)h[i + 1] << 8;
		}
		if (n > 2) {
			v |= h[i + 2];
		}
		out[o++] = b64[(v >> 18) & 63];
		out[o++] = b64[(v >> 12) & 63];
		if (n > 1) {
			out[o++] = b64[(v >> 6) & 63];
		}
		if (n > 2) {
			out[o++] = b64[v & 63];
		}
	}
	out[o] = '\0';
}

static int tcp_connect(const struct sftp_params *p)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char port[16];
	int fd = -1;
	int err = 0;
	snprintf(port, sizeof(port), "%u", p->port);
	int g = getaddrinfo(p->host, port, &hints, &res);
	if (g != 0) {
		log_error("cannot resolve %s: %s", p->host, gai_strerror(g));
		return -1;
	}
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			break;
		}
		err = errno;
		if (errno == EINPROGRESS) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};
			int r;
			do {
				r = poll(&pfd, 1, (int)p->connect_timeout * 1000);
			} while (r < 0 && errno == EINTR);
			socklen_t len = sizeof(err);
			if (r == 0) {
				err = ETIMEDOUT;
			} else if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
				err = errno;
			}
			if (r > 0 && err == 0) {
				break;
			}
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		log_error("cannot connect to %s port %u: %s", p->host, p->port, strerror(err));
		return -1;
	}
	int flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	/* Each chunk costs a few small request/answer round trips: don't let Nagle delay them. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

void sftp_host_label(const char *host, unsigned port, char out[static SFTP_LABEL_MAX])
{
	if (port == 22) {
		snprintf(out, SFTP_LABEL_MAX, "%s", host);
	} else {
		snprintf(out, SFTP_LABEL_MAX, "[%s]:%u", host, port);
	}
}

/*
 * Looks the key up under the server's known_hosts name only. libssh2_knownhost_checkp() with a
 * port also accepts a line for the bare name, so a key recorded for one port would vouch for
 * every service on that host; OpenSSH matches "[host]:port" for any port but 22, and the bare
 * name only for 22.
 */
static int known_check(LIBSSH2_KNOWNHOSTS *kh, const struct sftp_conn *c, const char *key,
		       size_t keylen, int knownhost_bit)
{
	return libssh2_knownhost_checkp(
		kh, c->label, -1, key, keylen,
		LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | knownhost_bit, NULL);
}

/*
 * Asks the server for the host key types known_hosts holds for it (as OpenSSH does), so that a
 * server offering several keys shows the one we can check rather than an "unknown" one.
 */
static void prefer_known_types(const struct sftp_conn *c, LIBSSH2_KNOWNHOSTS *kh,
			       char list[static 256])
{
	LIBSSH2_SESSION *s = c->session;
	size_t o = 0;
	list[0] = '\0';
	for (size_t i = 0; i < sizeof(hostkey_kinds) / sizeof(hostkey_kinds[0]); i++) {
		/* A dummy key: MISMATCH means an entry of this type exists for the host. */
		int r = known_check(kh, c, "x", 1, hostkey_kinds[i].knownhost_bit);
		if (r == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
			/* All five names together are under 100 bytes. */
			o += (size_t)snprintf(list + o, 256 - o, "%s%s", o ? "," : "",
					      hostkey_kinds[i].name);
		}
	}
	if (o > 0 && libssh2_session_method_pref(s, LIBSSH2_METHOD_HOSTKEY, list) != 0) {
		log_debug("host key preference %s not taken: %s", list, session_error(s));
	}
}

static int append_known_host(LIBSSH2_KNOWNHOSTS *kh, const struct sftp_conn *c,
			     const struct sftp_params *p, const char *key, size_t keylen,
			     const struct hostkey_kind *kind, const char *fp)
{
	struct libssh2_knownhost *entry = NULL;
	char line[4096];
	size_t len = 0;
	if (libssh2_knownhost_addc(kh, c->label, NULL, key, keylen, NULL, 0,
				   LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
					   kind->knownhost_bit,
				   &entry) != 0 ||
	    libssh2_knownhost_writeline(kh, entry, line, sizeof(line), &len,
					LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0) {
		log_error("cannot record the host key of %s: %s", c->label,
			  session_error(c->session));
		return -1;
	}
	int fd = open(p->known_hosts, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error("%s: %s", p->known_hosts, strerror(errno));
		return -1;
	}
	ssize_t w = write(fd, line, len);
	int ret = 0;
	if (w != (ssize_t)len || fsync(fd) != 0) {
		log_error("%s: %s", p->known_hosts, w < 0 ? strerror(errno) : "short write");
		ret = -1;
	}
	close(fd);
	if (ret == 0) {
		log_notice("added the %s host key of %s (%s) to %s", kind->name, c->label, fp,
			   p->known_hosts);
	}
	return ret;
}

/*
 * Loads known_hosts (a missing file is an empty one). Refused, as for the config, when another
 * local user could write it: whoever can add a line there can vouch for their own server and
 * receive every log we ship.
 */
static int read_known_hosts(LIBSSH2_KNOWNHOSTS *kh, const struct sftp_conn *c, const char *path)
{
	char *buf = NULL;
	int ret = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT) {
			return 0;
		}
		log_error("%s: %s", path, strerror(errno));
		return -1;
	}
	if (fileio_check_private(fd, path, "known_hosts", FILEIO_FILE) != 0) {
		goto out;
	}
	size_t len;
	if (fileio_read_file(fd, path, KNOWN_HOSTS_MAX, &buf, &len) != 0) {
		goto out;
	}
	unsigned line = 1;
	for (char *p = buf, *end = buf + len; p < end; line++) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		if (libssh2_knownhost_readline(kh, p, n, LIBSSH2_KNOWNHOST_FILE_OPENSSH) != 0) {
			log_error("%s:%u: cannot read it as an OpenSSH known_hosts line (%s); "
				  "libssh2 does not know @cert-authority, @revoked or security-key "
				  "lines: keep a separate known_hosts for relaywatch",
				  path, line, session_error(c->session));
			goto out;
		}
		p += n;
	}
	ret = 0;
out:
	free(buf);
	close(fd);
	return ret;
}

static int check_host_key(struct sftp_conn *c, const struct sftp_params *p)
{
	LIBSSH2_KNOWNHOSTS *kh = libssh2_knownhost_init(c->session);
	int ret = -1;
	if (!kh) {
		log_error("out of memory");
		return -1;
	}
	if (read_known_hosts(kh, c, p->known_hosts) != 0) {
		goto out;
	}

	char known[256];
	prefer_known_types(c, kh, known);
	if (libssh2_session_handshake(c->session, c->fd) != 0) {
		/* libssh2 1.10 verifies RSA host keys only with SHA-1 ("ssh-rsa"), which OpenSSH
		 * 8.8 and later no longer offer. */
		bool rsa_only = strcmp(known, "ssh-rsa") == 0;
		log_error("SSH handshake with %s failed: %s%s", c->label, session_error(c->session),
			  rsa_only
				  ? " (known_hosts has only its RSA key, which this libssh2 cannot "
				    "verify with OpenSSH 8.8 and later: add its ed25519 key with "
				    "ssh-keyscan -t ed25519)"
				  : "");
		goto out;
	}

	size_t keylen = 0;
	int type = 0;
	const char *key = libssh2_session_hostkey(c->session, &keylen, &type);
	const struct hostkey_kind *kind = hostkey_kind_of(type);
	char fp[64];
	fingerprint_sha256(c->session, fp, sizeof(fp));
	if (!key || !kind) {
		log_error("%s offers a host key type libssh2 cannot check", c->label);
		goto out;
	}
	int r = known_check(kh, c, key, keylen, kind->knownhost_bit);
	switch (r) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		ret = 0;
		break;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		/* Never overridable from here: a changed key is what an interception looks like. */
		log_error("host key for %s has CHANGED (now %s %s): possible man-in-the-middle "
			  "attack, refusing to connect; if the server's key was really replaced, "
			  "remove its old line from %s and add the new one",
			  c->label, kind->name, fp, p->known_hosts);
		break;
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		if (p->accept_new_host_key) {
			ret = append_known_host(kh, c, p, key, keylen, kind, fp);
			break;
		}
		log_error("host key for %s is not in %s (%s %s); add it with 'ssh-keyscan -p %u %s "
			  ">> %s' after checking the fingerprint with the server's admin, or run "
			  "once with --accept-new-host-key",
			  c->label, p->known_hosts, kind->name, fp, p->port, p->host,
			  p->known_hosts);
		break;
	default:
		log_error("cannot check the host key of %s: %s", c->label,
			  session_error(c->session));
		break;
	}
out:
	libssh2_knownhost_free(kh);
	return ret;
}

/* Whether the key is RSA, for a better message when OpenSSH refuses its SHA-1 signature. */
static bool key_is_rsa(const char *identity)
{
	char path[4096], buf[64] = "";
	snprintf(path, sizeof(path), "%s.pub", identity);
	FILE *f = fopen(path, "re");
	if (!f) {
		f = fopen(identity, "re");
	}
	if (!f) {
		return false;
	}
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return strncmp(buf, "ssh-rsa ", 8) == 0 || strstr(buf, "BEGIN RSA PRIVATE KEY") != NULL;
}

static int authenticate(struct sftp_conn *c, const struct sftp_params *p)
{
	struct stat sb;
	if (stat(p->identity, &sb) != 0) {
		log_error("identity %s: %s", p->identity, strerror(errno));
		return -1;
	}
	/* As ssh does: a key others can read is no longer a secret. */
	if (sb.st_mode & (S_IRWXG | S_IRWXO)) {
		log_error("identity %s: group or others can read it; chmod 600 %s", p->identity,
			  p->identity);
		return -1;
	}
	if (libssh2_userauth_publickey_fromfile_ex(c->session, p->user, (unsigned)strlen(p->user),
						   NULL, p->identity, NULL) != 0) {
		const char *hint =
			key_is_rsa(p->identity)
				? " (this libssh2 signs with RSA only by SHA-1, which "
				  "OpenSSH 8.8 and later refuse: use an ed25519 or ECDSA "
				  "key)"
				: "";
		log_error("cannot log in to %s as %s with key %s: %s%s", c->label, p->user,
			  p->identity, session_error(c->session), hint);
		return -1;
	}
	return 0;
}

struct sftp_conn *sftp_connect(const struct sftp_params *p)
{
	static bool initialised;
	struct sftp_conn *ret = NULL;
	struct sftp_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		log_error("out of memory");
		return NULL;
	}
	c->fd = -1;
	c->mem.l.prev = c->mem.l.next = &c->mem;
	sftp_host_label(p->host, p->port, c->label);
	if (!initialised) {
		if (libssh2_init(0) != 0) {
			log_error("cannot initialise libssh2");
			goto out;
		}
		initialised = true;
	}
	if ((c->fd = tcp_connect(p)) < 0) {
		goto out;
	}
	if (!(c->session = libssh2_session_init_ex(mem_alloc, mem_free, mem_realloc, c))) {
		log_error("cannot create an SSH session");
		goto out;
	}
	libssh2_session_set_blocking(c->session, 1);
	libssh2_session_set_timeout(c->session, (long)p->timeout * 1000);
	if (check_host_key(c, p) != 0 || authenticate(c, p) != 0) {
		goto out;
	}
	/* No reply wanted: nobody reads the socket while the session is idle. */
	libssh2_keepalive_config(c->session, 0, p->keepalive);
	ret = c;
	c = NULL;
out:
	if (c) {
		/* Nothing to say to a server we gave up on. */
		c->broken = true;
		sftp_conn_destroy(c);
	}
	return ret;
}

/* Teardown must not hang on a server that stopped answering. */
static void teardown_mode(struct sftp_conn *c)
{
	if (c->nonblocking) {
		libssh2_session_set_blocking(c->session, 1);
		c->nonblocking = false;
	}
	libssh2_session_set_timeout(c->session, 2000);
}

void sftp_conn_destroy(struct sftp_conn *c)
{
	if (!c) {
		return;
	}
	if (c->session) {
		teardown_mode(c);
		if (!c->broken) {
			libssh2_session_disconnect(c->session, "relaywatch-ship done");
		} else if (c->fd >= 0) {
			/* libssh2_session_free() still tries to close the channels; on a server
			 * that stopped reading, that would time out half-way and leave libssh2's
			 * cipher contexts unfreed. A shut-down socket makes those sends fail at
			 * once. */
			shutdown(c->fd, SHUT_RDWR);
		}
		libssh2_session_free(c->session);
	}
	while (c->mem.l.next != &c->mem) {
		union mem_hdr *h = c->mem.l.next;
		mem_unlink(h);
		free(h);
	}
	if (c->fd >= 0) {
		close(c->fd);
	}
	free(c);
}

void sftp_conn_set_nonblocking(struct sftp_conn *c)
{
	libssh2_session_set_blocking(c->session, 0);
	c->nonblocking = true;
}

int sftp_conn_wait(struct sftp_conn *c, bool with_socket, bool want_write, int timeout_ms,
		   int extra_fd)
{
	struct pollfd pfd[2] = {
		{.fd = with_socket || want_write ? c->fd : -1,
		 .events = (short)((with_socket ? POLLIN : 0) | (want_write ? POLLOUT : 0))},
		{.fd = extra_fd, .events = POLLIN},
	};
	int r = poll(pfd, 2, timeout_ms);
	if (r < 0) {
		if (errno == EINTR) {
			return 0;
		}
		snprintf(c->err, sizeof(c->err), "poll: %s", strerror(errno));
		return -1;
	}
	return (pfd[0].revents ? SFTP_WAIT_SOCKET : 0) | (pfd[1].revents ? SFTP_WAIT_WOKEN : 0);
}

int sftp_conn_keepalive(struct sftp_conn *c)
{
	int next = 0;
	if (libssh2_keepalive_send(c->session, &next) != 0) {
		/* A failure to send shows up on the next real operation too. */
		log_debug("keepalive: %s", session_error(c->session));
	}
	return next > 0 ? next : 1;
}

const char *sftp_conn_label(const struct sftp_conn *c)
{
	return c->label;
}

const char *sftp_conn_error(const struct sftp_conn *c)
{
	return c->err[0] ? c->err : "connection lost";
}

void sftp_conn_set_broken(struct sftp_conn *c, const char *why)
{
	c->broken = true;
	snprintf(c->err, sizeof(c->err), "%s", why);
}

struct sftp_lane *sftp_lane_create(struct sftp_conn *c, bool quiet_failure)
{
	struct sftp_lane *l = calloc(1, sizeof(*l));
	if (!l) {
		log_error("out of memory");
		return NULL;
	}
	l->c = c;
	l->sftp = libssh2_sftp_init(c->session);
	if (!l->sftp) {
		log_msg(quiet_failure ? LOG_INFO : LOG_ERROR, "cannot start SFTP on %s: %s",
			c->label, session_error(c->session));
		free(l);
		return NULL;
	}
	return l;
}

void sftp_lane_destroy(struct sftp_lane *l)
{
	if (!l) {
		return;
	}
	teardown_mode(l->c);
	if (!l->c->broken) {
		if (l->h) {
			libssh2_sftp_close_handle(l->h);
		}
		libssh2_sftp_shutdown(l->sftp);
	}
	/* A broken session is freed as a whole by sftp_conn_destroy(). */
	free(l);
}

bool sftp_lane_pending(struct sftp_lane *l)
{
	return libssh2_poll_channel_read(libssh2_sftp_get_channel(l->sftp), 0) > 0;
}

bool sftp_lane_blocked_sending(struct sftp_lane *l)
{
	return libssh2_session_block_directions(l->c->session) & LIBSSH2_SESSION_BLOCK_OUTBOUND;
}

bool sftp_lane_has_file(const struct sftp_lane *l)
{
	return l->h != NULL;
}

const char *sftp_lane_error(const struct sftp_lane *l)
{
	return l->err;
}

/* Turns a libssh2 result into ours, keeping the library's text. */
static int lane_status(struct sftp_lane *l, int rc, const char *what)
{
	if (rc == LIBSSH2_ERROR_EAGAIN) {
		return SFTP_AGAIN;
	}
	if (rc == LIBSSH2_ERROR_SFTP_PROTOCOL) {
		unsigned long fx = libssh2_sftp_last_error(l->sftp);
		l->last_fx = fx;
		snprintf(l->err, sizeof(l->err), "%s: %s", what, fx_text(fx));
		return SFTP_FAILED;
	}
	l->c->broken = true;
	snprintf(l->c->err, sizeof(l->c->err), "%s: %s", what, session_error(l->c->session));
	snprintf(l->err, sizeof(l->err), "%s", l->c->err);
	return SFTP_BROKEN;
}

int sftp_lane_create_file(struct sftp_lane *l, const char *path)
{
	l->h = libssh2_sftp_open_ex(l->sftp, path, (unsigned)strlen(path),
				    LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC, 0640,
				    LIBSSH2_SFTP_OPENFILE);
	if (l->h) {
		return SFTP_OK;
	}
	return lane_status(l, libssh2_session_last_errno(l->c->session), "create");
}

int sftp_lane_write(struct sftp_lane *l, const unsigned char *buf, size_t len, size_t *done)
{
	while (*done < len) {
		ssize_t n = libssh2_sftp_write(l->h, (const char *)buf + *done, len - *done);
		if (n < 0) {
			return lane_status(l, (int)n, "write");
		}
		*done += (size_t)n;
	}
	return SFTP_OK;
}

int sftp_lane_fsync(struct sftp_lane *l)
{
	int rc = libssh2_sftp_fsync(l->h);
	if (rc == 0) {
		return SFTP_OK;
	}
	int s = lane_status(l, rc, "fsync");
	if (s == SFTP_FAILED && l->last_fx == LIBSSH2_FX_OP_UNSUPPORTED) {
		if (!l->c->fsync_warned) {
			log_warn("%s does not support fsync@openssh.com: a crash of the stats "
				 "server "
				 "could lose uploads (use OpenSSH's sftp server)",
				 l->c->label);
			l->c->fsync_warned = true;
		}
		return SFTP_OK;
	}
	return s;
}

int sftp_lane_close_file(struct sftp_lane *l)
{
	int rc = libssh2_sftp_close_handle(l->h);
	if (rc == LIBSSH2_ERROR_EAGAIN) {
		return SFTP_AGAIN;
	}
	/* Whatever the answer, the handle is gone for us (libssh2 frees it with the channel). */
	l->h = NULL;
	return rc == 0 ? SFTP_OK : lane_status(l, rc, "close");
}

int sftp_lane_rename(struct sftp_lane *l, const char *from, const char *to)
{
	if (l->rename_step == 0) {
		/*
		 * No OVERWRITE flag (and SFTP v3, which OpenSSH speaks, has none: its rename is a
		 * link() that fails on an existing name). A final name exists only if an earlier
		 * run delivered this very chunk.
		 */
		int rc = libssh2_sftp_rename_ex(
			l->sftp, from, (unsigned)strlen(from), to, (unsigned)strlen(to),
			LIBSSH2_SFTP_RENAME_ATOMIC | LIBSSH2_SFTP_RENAME_NATIVE);
		if (rc == 0) {
			return SFTP_OK;
		}
		int s = lane_status(l, rc, "rename");
		if (s != SFTP_FAILED) {
			return s;
		}
		l->rename_step = 1;
	}
	LIBSSH2_SFTP_ATTRIBUTES attrs;
	int rc =
		libssh2_sftp_stat_ex(l->sftp, to, (unsigned)strlen(to), LIBSSH2_SFTP_LSTAT, &attrs);
	if (rc == LIBSSH2_ERROR_EAGAIN) {
		return SFTP_AGAIN;
	}
	l->rename_step = 0;
	if (rc == 0) {
		return SFTP_EXISTS;
	}
	unsigned long fx = l->last_fx;
	int s = lane_status(l, rc, "rename");
	if (s == SFTP_FAILED) {
		snprintf(l->err, sizeof(l->err), "rename: %s", fx_text(fx));
	}
	return s;
}

int sftp_lane_unlink(struct sftp_lane *l, const char *path)
{
	int rc = libssh2_sftp_unlink_ex(l->sftp, path, (unsigned)strlen(path));
	return rc == 0 ? SFTP_OK : lane_status(l, rc, "remove");
}
