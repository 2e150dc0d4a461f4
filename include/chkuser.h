#ifndef RELAYWATCH_CHKUSER_H
#define RELAYWATCH_CHKUSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "logtime.h"

/*
 * Parsing of qmail log lines and the CHKUSER messages in them. Everything works on pointers into
 * the caller's buffer: nothing is copied or allocated, and every span stays valid as long as the
 * line does. Every byte is untrusted: spans may contain any byte, NUL included.
 */

struct span {
	const char *p;
	size_t n;
};

#define SPAN_LIT(s) ((struct span){(s), sizeof(s) - 1})

static inline bool span_eq(struct span a, struct span b)
{
	return a.n == b.n && (a.n == 0 || __builtin_memcmp(a.p, b.p, a.n) == 0);
}

/* What stands in front of the message. */
struct log_header {
	/* UTC seconds of the line, or LOGTIME_NONE when no stamp could be read. */
	int64_t utc;
	/* From a syslog header; empty (n == 0) when the line has none (multilog). */
	struct span host;
	/* The syslog tag without "[pid]" and the colon; empty when none. */
	struct span service;
	/* The message proper, after every stamp. */
	struct span msg;
};

/*
 * Splits a line (without its '\n'; a trailing '\r' is ignored) into stamps and message.
 * Understands, in any combination that occurs: a syslog header "Mon DD HH:MM:SS host tag:" (or an
 * RFC 3339 stamp "2014-01-28T21:32:14.709575-08:00 host tag:"), splogger's "EPOCH.USEC " stamp, and
 * multilog's "@" + 24 hex TAI64N label. The most exact stamp wins: TAI64N or splogger's epoch over
 * an RFC 3339 stamp over the syslog date, which is read in lt's zone with its year inferred by lt.
 * A line that matches none of them has msg = the whole line and utc = LOGTIME_NONE.
 */
void log_header_parse(const char *line, size_t len, struct logtime *lt, struct log_header *h);

/* True when the message is a CHKUSER message (begins with "CHKUSER "). */
static inline bool chkuser_is(struct span msg)
{
	return msg.n >= 8 && __builtin_memcmp(msg.p, "CHKUSER ", 8) == 0;
}

/* Well-known titles, for classification without string compares; anything else is CHK_OTHER. */
enum chk_kind {
	CHK_OTHER = 0,
	CHK_ACCEPTED_RCPT,
	CHK_ACCEPTED_ANY_RCPT,
	CHK_RELAYING_RCPT,
	CHK_REJECTED_RELAYING,
	CHK_REJECTED_RCPT,
	CHK_INTRUSION_THRESHOLD,
	CHK_REJECTED_INTRUSION,
	CHK_NO_AUTH_RESOURCE,
	CHK_MUST_AUTH,
	CHK_MBX_OVERQUOTA,
	CHK_ACCEPTED_SENDER,
	CHK_ACCEPTED_NULL_SENDER,
	CHK_ACCEPTED_DOUBLEBOUNCE,
	CHK_REJECTED_SENDER,
};

struct chk_event {
	enum chk_kind kind;
	/* Sender-phase line: it names no recipient (accepted/rejected sender, doublebounce). */
	bool sender_phase;
	/* The labelled variant ("|remoteinfo/auth:") rather than upstream's plain colons. */
	bool labelled;
	struct span title;       /* "relaying rcpt" */
	struct span desc;        /* "client allowed to relay" */
	struct span sender;      /* MAIL FROM, empty for <> */
	struct span auth_user;   /* empty when not authenticated */
	struct span identify;    /* CHKUSER_IDENTIFY */
	struct span helo;        /* HELO name */
	struct span remote_host; /* TCPREMOTEHOST or "unknown" */
	struct span remote_ip;   /* TCPREMOTEIP */
	struct span rcpt;        /* recipient, empty on sender-phase lines */
	struct span rcpt_domain; /* the part of rcpt after its last '@' (empty when none) */
};

enum chk_result {
	CHK_EVENT = 0,     /* every marker found; ev is filled */
	CHK_MALFORMED = 1, /* a CHKUSER message that lacks a marker (truncated, split, foreign) */
	CHK_AMBIGUOUS = 2, /* more than one marker could anchor the fields: malformed too */
};

/*
 * Parses a CHKUSER message (chkuser_is(msg) must hold). SENDER, HELO and RCPT are chosen by the
 * remote client and may contain the very markers the format uses; the parser anchors on the
 * fixed text at both ends (title before the first ": from <", the description after the last
 * "> : ", preferring a known description) and on the remote IP, which must read as an address,
 * so that a hostile field can at worst move bytes between the fields of its own line: it never
 * changes whether, or under which title and description, the line is counted. A line where more
 * than one "> rcpt <" follows an address, or more than one "> remote <" comes before the one
 * anchored at the address, is CHK_AMBIGUOUS: a client that wrote the markers into its own
 * recipient or sender could otherwise choose the remote IP or the account its line is counted
 * under. Anything but CHK_EVENT is a malformed line.
 */
enum chk_result chk_parse(struct span msg, struct chk_event *ev);

/*
 * Whether s[0..n) is an IPv4 address as glibc's inet_pton(AF_INET) reads one: four decimal
 * octets of at most 255, without leading zeros, joined by single dots (the parser's remote IP
 * test, without inet_pton's copy into a NUL-terminated buffer).
 */
bool chk_is_ipv4(const char *s, size_t n);

/* The table of known titles: the kind of a title, or CHK_OTHER. */
enum chk_kind chk_kind_of(struct span title);

#endif
