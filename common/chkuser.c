/* memrchr */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <string.h>

#include "chkuser.h"

/* First occurrence of the literal lit in [p, p + n), or NULL. */
static const char *find(const char *p, size_t n, const char *lit, size_t m)
{
	const char *end = p + n;
	while ((size_t)(end - p) >= m) {
		const char *c = memchr(p, lit[0], (size_t)(end - p) - m + 1);
		if (!c) {
			return NULL;
		}
		if (memcmp(c, lit, m) == 0) {
			return c;
		}
		p = c + 1;
	}
	return NULL;
}

/* Last occurrence of the literal lit in [p, p + n), or NULL. */
static const char *rfind(const char *p, size_t n, const char *lit, size_t m)
{
	if (n < m) {
		return NULL;
	}
	/* memrchr for the first byte: the searches here pass tens of bytes without one. */
	for (size_t k = n - m + 1; k > 0;) {
		const char *c = memrchr(p, lit[0], k);
		if (!c) {
			return NULL;
		}
		if (memcmp(c, lit, m) == 0) {
			return c;
		}
		k = (size_t)(c - p);
	}
	return NULL;
}

#define FIND(p, n, s)  find((p), (n), (s), sizeof(s) - 1)
#define RFIND(p, n, s) rfind((p), (n), (s), sizeof(s) - 1)

static struct span mkspan(const char *a, const char *b)
{
	return (struct span){a, (size_t)(b - a)};
}

static bool starts(const char *p, size_t n, const char *lit, size_t m)
{
	return n >= m && memcmp(p, lit, m) == 0;
}

#define STARTS(p, n, s) starts((p), (n), (s), sizeof(s) - 1)

void log_header_parse(const char *line, size_t len, struct logtime *lt, struct log_header *h)
{
	const char *p = line;
	const char *end = line + len;
	int64_t exact = LOGTIME_NONE, header = LOGTIME_NONE;

	if (len > 0 && end[-1] == '\r') {
		end--;
	}
	h->host = (struct span){p, 0};
	h->service = (struct span){p, 0};

	size_t n = (size_t)(end - p);
	size_t used = 0;
	if (n > 25 && p[0] == '@' && p[25] == ' ' &&
	    (exact = logtime_tai64n(p, n)) != LOGTIME_NONE) {
		p += 26;
	} else {
		if (n > 16 && p[15] == ' ' && (header = logtime_syslog(lt, p, n)) != LOGTIME_NONE) {
			p += 16;
		} else if (n > 20 && p[4] == '-' &&
			   (header = logtime_rfc3339(p, n, &used)) != LOGTIME_NONE && used < n &&
			   p[used] == ' ') {
			p += used + 1;
		} else {
			header = LOGTIME_NONE;
		}
		if (header != LOGTIME_NONE) {
			/* "host tag: message"; the tag may carry "[pid]". */
			const char *sp = memchr(p, ' ', (size_t)(end - p));
			if (sp) {
				h->host = mkspan(p, sp);
				const char *t = sp + 1;
				const char *tsp = memchr(t, ' ', (size_t)(end - t));
				const char *tend = tsp ? tsp : end;
				if (tend > t && tend[-1] == ':') {
					const char *br = memchr(t, '[', (size_t)(tend - t));
					h->service = mkspan(t, br ? br : tend - 1);
					p = tsp ? tsp + 1 : end;
				} else {
					p = t;
				}
			} else {
				h->host = mkspan(p, end);
				p = end;
			}
		}
	}
	/* splogger (or daemontools-encore's T) stamp: UTC epoch seconds, exact. */
	int64_t e = logtime_epoch(p, (size_t)(end - p), &used);
	if (e != LOGTIME_NONE) {
		p += used + 1;
		if (exact == LOGTIME_NONE) {
			exact = e;
		}
	}
	h->utc = exact != LOGTIME_NONE ? exact : header;
	h->msg = mkspan(p, end);
}

struct title_entry {
	const char *text;
	size_t len;
	enum chk_kind kind;
};

#define TITLE(s, k)                                                                                \
	{                                                                                          \
		(s), sizeof(s) - 1, (k)                                                            \
	}

static const struct title_entry titles[] = {
	TITLE("accepted rcpt", CHK_ACCEPTED_RCPT),
	TITLE("accepted any rcpt", CHK_ACCEPTED_ANY_RCPT),
	TITLE("relaying rcpt", CHK_RELAYING_RCPT),
	TITLE("rejected relaying", CHK_REJECTED_RELAYING),
	TITLE("rejected rcpt", CHK_REJECTED_RCPT),
	TITLE("intrusion threshold", CHK_INTRUSION_THRESHOLD),
	TITLE("rejected intrusion", CHK_REJECTED_INTRUSION),
	TITLE("no auth resource", CHK_NO_AUTH_RESOURCE),
	TITLE("must auth", CHK_MUST_AUTH),
	TITLE("mbx overquota", CHK_MBX_OVERQUOTA),
	TITLE("accepted sender", CHK_ACCEPTED_SENDER),
	TITLE("accepted null sender", CHK_ACCEPTED_NULL_SENDER),
	TITLE("accepted doublebounce", CHK_ACCEPTED_DOUBLEBOUNCE),
	TITLE("rejected sender", CHK_REJECTED_SENDER),
};

enum chk_kind chk_kind_of(struct span title)
{
	for (size_t i = 0; i < sizeof(titles) / sizeof(titles[0]); i++) {
		if (title.n == titles[i].len && memcmp(title.p, titles[i].text, title.n) == 0) {
			return titles[i].kind;
		}
	}
	return CHK_OTHER;
}

/* The bytes of IPv4 and IPv6 addresses: hex digits, ':' and '.'. */
static const bool ip_chars[256] = {
	['0'] = true, ['1'] = true, ['2'] = true, ['3'] = true, ['4'] = true, ['5'] = true,
	['6'] = true, ['7'] = true, ['8'] = true, ['9'] = true, ['a'] = true, ['b'] = true,
	['c'] = true, ['d'] = true, ['e'] = true, ['f'] = true, ['A'] = true, ['B'] = true,
	['C'] = true, ['D'] = true, ['E'] = true, ['F'] = true, [':'] = true, ['.'] = true,
};

static bool ip_char(char c)
{
	return ip_chars[(unsigned char)c];
}

bool chk_is_ipv4(const char *s, size_t n)
{
	size_t i = 0;
	for (int octet = 0; octet < 4; octet++) {
		if (octet > 0) {
			if (i == n || s[i] != '.') {
				return false;
			}
			i++;
		}
		size_t start = i;
		unsigned v = 0;
		while (i < n && i - start < 3 && s[i] >= '0' && s[i] <= '9') {
			v = v * 10 + (unsigned)(s[i++] - '0');
		}
		/* A leading zero ("01") is refused, as glibc refuses it. */
		if (i == start || v > 255 || (s[start] == '0' && i - start > 1)) {
			return false;
		}
	}
	return i == n;
}

#define IP_MAX 45

/*
 * The remote IP that ends just before q: the longest run [s, q) that reads as an IPv4 or IPv6
 * address and is preceded by ':' (the field separator, or the label "remotehostip:"). NULL when
 * there is none.
 */
static const char *ip_before(const char *lo, const char *q)
{
	const char *s0 = q;
	while (s0 > lo && q - s0 < IP_MAX && ip_char(s0[-1])) {
		s0--;
	}
	for (const char *s = s0; s < q; s++) {
		if (s == lo || s[-1] != ':') {
			continue;
		}
		char buf[IP_MAX + 1];
		unsigned char addr[16];
		size_t n = (size_t)(q - s);
		if (chk_is_ipv4(s, n)) {
			return s;
		}
		memcpy(buf, s, n);
		buf[n] = '\0';
		if (inet_pton(AF_INET6, buf, addr) == 1) {
			return s;
		}
	}
	return NULL;
}

enum chk_result chk_parse(struct span msg, struct chk_event *ev)
{
	const char *p = msg.p;
	const char *end = msg.p + msg.n;
	memset(ev, 0, sizeof(*ev));
	/* Fields a line lacks are empty spans inside it, never NULL. */
	struct span none = {p, 0};
	ev->sender = ev->auth_user = ev->identify = ev->helo = ev->remote_host = none;

	/* Titles are chkuser's own text and never contain the marker: the first one ends it. */
	const char *t = FIND(p + 8, msg.n - 8, ": from <");
	if (!t) {
		return CHK_MALFORMED;
	}
	ev->title = mkspan(p + 8, t);
	const char *b = t + 8;

	/* Descriptions are chkuser's own text too: the last "> : " ends the recipient. */
	const char *d = RFIND(b, (size_t)(end - b), "> : ");
	if (!d) {
		return CHK_MALFORMED;
	}
	ev->desc = mkspan(d + 4, end);

	/*
	 * SENDER, HELO and RCPT may all contain "> rcpt <" and "> remote <". The real "> rcpt <"
	 * follows the remote IP; a client that writes "IP> rcpt <" into its own fields makes a
	 * second candidate, and whichever we chose, it could pick the IP, the account or the
	 * recipient of its own line (and dodge the rules that watch them, or frame someone else).
	 * A line with more than one marker that could anchor the fields is therefore ambiguous:
	 * malformed, counted and reported, never attributed.
	 */
	const char *rc = NULL, *ip = NULL;
	unsigned anchors = 0;
	for (const char *q = b; (q = FIND(q, (size_t)(d - q), "> rcpt <")) != NULL; q++) {
		const char *a = ip_before(b, q);
		if (a) {
			rc = q;
			ip = a;
			anchors++;
		}
	}
	if (anchors > 1) {
		return CHK_AMBIGUOUS;
	}
	const char *rs;
	if (rc) {
		rs = RFIND(b, (size_t)(ip - b), "> remote <");
		if (rs && FIND(b, (size_t)(rs - b), "> remote <")) {
			return CHK_AMBIGUOUS;
		}
	} else {
		/* No address anywhere: still a well-formed line if the markers are there, once. */
		rs = FIND(b, (size_t)(d - b), "> remote <");
		rc = rs ? FIND(rs, (size_t)(d - rs), "> rcpt <") : NULL;
		if ((rs && FIND(rs + 1, (size_t)(d - rs - 1), "> remote <")) ||
		    (rc && FIND(rc + 1, (size_t)(d - rc - 1), "> rcpt <"))) {
			return CHK_AMBIGUOUS;
		}
		if (rc) {
			const char *c = rfind(rs, (size_t)(rc - rs), ":", 1);
			ip = c && c > rs + 10 ? c + 1 : rc;
		}
	}
	if (!rs || !rc) {
		return CHK_MALFORMED;
	}
	ev->rcpt = mkspan(rc + 8, d);
	ev->remote_ip = mkspan(ip, rc);

	const char *from_end = rs;
	const char *remote = rs + 10;
	const char *host_end = ip - 1; /* the ':' before the IP */
	if (host_end - remote >= 14 && memcmp(host_end - 13, "|remotehostip", 13) == 0) {
		ev->labelled = true;
		host_end -= 13;
		const char *hn = RFIND(remote, (size_t)(host_end - remote), "|remotehostname:");
		if (hn) {
			ev->remote_host = mkspan(hn + 16, host_end);
			const char *helo = remote;
			if (STARTS(helo, (size_t)(hn - helo), "helo:")) {
				helo += 5;
			}
			ev->helo = mkspan(helo, hn);
		} else {
			ev->helo = mkspan(remote, host_end);
		}
		const char *au = RFIND(b, (size_t)(from_end - b), "|remoteinfo/auth:");
		if (au) {
			ev->sender = mkspan(b, au);
			const char *auth = au + 17;
			const char *ci =
				RFIND(auth, (size_t)(from_end - auth), "|chkuser-identify:");
			ev->auth_user = mkspan(auth, ci ? ci : from_end);
			ev->identify = mkspan(ci ? ci + 18 : from_end, from_end);
		} else {
			ev->sender = mkspan(b, from_end);
		}
	} else {
		/* REMOTEHOST is a DNS name or "unknown", never with ':'; HELO may have any. */
		const char *c = host_end > remote
					? rfind(remote, (size_t)(host_end - remote), ":", 1)
					: NULL;
		ev->remote_host = mkspan(c ? c + 1 : remote, host_end > remote ? host_end : remote);
		ev->helo = mkspan(remote, c ? c : remote);
		/* AUTHUSER and IDENTIFY come from the server; SENDER may contain ':'. */
		const char *c2 = rfind(b, (size_t)(from_end - b), ":", 1);
		const char *c1 = c2 ? rfind(b, (size_t)(c2 - b), ":", 1) : NULL;
		if (c1) {
			ev->sender = mkspan(b, c1);
			ev->auth_user = mkspan(c1 + 1, c2);
			ev->identify = mkspan(c2 + 1, from_end);
		} else {
			ev->sender = mkspan(b, from_end);
		}
	}

	const char *at = ev->rcpt.n ? rfind(ev->rcpt.p, ev->rcpt.n, "@", 1) : NULL;
	ev->rcpt_domain = at ? mkspan(at + 1, d) : mkspan(d, d);
	ev->kind = chk_kind_of(ev->title);
	ev->sender_phase = ev->kind == CHK_ACCEPTED_SENDER ||
			   ev->kind == CHK_ACCEPTED_NULL_SENDER ||
			   ev->kind == CHK_ACCEPTED_DOUBLEBOUNCE || ev->kind == CHK_REJECTED_SENDER;
	return CHK_EVENT;
}
