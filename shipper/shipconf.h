#ifndef RELAYWATCH_SHIPCONF_H
#define RELAYWATCH_SHIPCONF_H

#include <stddef.h>
#include <stdint.h>

/*
 * The shipper's configuration (/etc/relaywatch/ship.conf): plain "key = value" lines read with
 * common/config.c, keys looked up in a table (as OpenSSH's readconf does). Every key is
 * documented in scripts/ship.conf.example. Errors are logged as "file:line: why"; errno is not
 * part of the contract.
 */

#define SHIPCONF_DEFAULT_PATH "/etc/relaywatch/ship.conf"

enum ship_kind {
	SHIP_KIND_MULTILOG, /* a multilog directory: @<tai64n>.s/.u files, then current */
	SHIP_KIND_SYSLOG,   /* a live file; rotated siblings NAME.N[.gz], NAME-DATE[.gz] */
};

/* One "source = PATH KIND [service=NAME]" line. */
struct ship_source {
	char *path;
	enum ship_kind kind;
	char *service; /* "" when not given */
};

/*
 * One "host = NAME[:PORT]" line (an IPv6 address with a port as "[ADDR]:PORT"): a stats server.
 * A run delivers to the first that connects and verifies, and moves on to the next when one
 * fails mid-run.
 */
struct ship_server {
	char *host;    /* name or address, without brackets */
	unsigned port; /* the "port" key's value when the line gave none */
};

struct ship_config {
	struct ship_server *servers; /* in the order given; at least one once loaded */
	size_t nservers;
	unsigned port; /* for "host" lines without a port (default 22) */
	char *user;
	char *identity;    /* private key file (ed25519 or ECDSA, no passphrase) */
	char *known_hosts; /* OpenSSH format */
	char *remote_dir;  /* drop directory on the stats server, relative to the SFTP login dir */
	char *state_dir;
	unsigned level; /* zlib level 1..9 */
	char *hostname;
	unsigned connect_timeout; /* seconds for the TCP connect */
	unsigned timeout;         /* seconds without an answer before the connection is given up */
	unsigned keepalive;       /* seconds between SSH keepalives while the session is idle */
	unsigned parallel;        /* SFTP channels used at once */
	uint64_t max_chunk;       /* uncompressed bytes after which a chunk ends at a line end */
	uint64_t coalesce_below;  /* finished files with less to ship are packed together; 0: no */
	unsigned forget_days;     /* state of files not seen for this long is dropped */
	struct ship_source *sources;
	size_t nsources;
};

/* Fills c with the defaults (no sources, hostname from gethostname()). Returns 0 or -1 (logged). */
int shipconf_init(struct ship_config *c);

/*
 * Reads path with CONFIG_SECURE (the file names a private key: nobody else may be able to change
 * it) and checks that the required keys are there. Returns 0, or -1 after logging "file:line:
 * why" or "file: why".
 */
int shipconf_load(struct ship_config *c, const char *path);

/* The same over a buffer, without the ownership check (for tests). */
int shipconf_load_buffer(struct ship_config *c, const char *name, const char *buf, size_t len);

/* Frees everything c owns. */
void shipconf_finish(struct ship_config *c);

/* "multilog" or "syslog": the manifest's kind field. */
const char *ship_kind_name(enum ship_kind kind);

#endif
