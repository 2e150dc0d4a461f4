#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "chkuser.h"

static struct log_header header(const char *line)
{
	struct logtime lt;
	struct log_header h;
	/* Reference: 2014-03-01, so January lines fall in 2014. */
	logtime_init(&lt, 1393632000);
	log_header_parse(line, strlen(line), &lt, &h);
	return h;
}

static struct chk_event parse_ok(const char *line)
{
	struct log_header h = header(line);
	struct chk_event ev;
	assert_true(chkuser_is(h.msg));
	assert_int_equal(chk_parse(h.msg, &ev), CHK_EVENT);
	return ev;
}

#define assert_span(sp, s)                                                                         \
	do {                                                                                       \
		struct span sp_ = (sp);                                                            \
		assert_int_equal(sp_.n, strlen(s));                                                \
		assert_memory_equal(sp_.p, (s), sp_.n);                                            \
	} while (0)

static void relaying_auth(void **state)
{
	const char *l =
		"Jan 28 21:32:14 independence smtp: 1390973534.709575 CHKUSER relaying rcpt: "
		"from <alice@example.org:alice@example.org:> remote <mail.example.net:"
		"client.example.net:192.0.2.10> rcpt <bob@Example.COM> : client allowed to "
		"relay";
	struct log_header h = header(l);
	assert_int_equal(h.utc, 1390973534);
	assert_span(h.host, "independence");
	assert_span(h.service, "smtp");
	struct chk_event ev = parse_ok(l);
	assert_int_equal(ev.kind, CHK_RELAYING_RCPT);
	assert_false(ev.labelled);
	assert_span(ev.title, "relaying rcpt");
	assert_span(ev.desc, "client allowed to relay");
	assert_span(ev.sender, "alice@example.org");
	assert_span(ev.auth_user, "alice@example.org");
	assert_span(ev.identify, "");
	assert_span(ev.helo, "mail.example.net");
	assert_span(ev.remote_host, "client.example.net");
	assert_span(ev.remote_ip, "192.0.2.10");
	assert_span(ev.rcpt, "bob@Example.COM");
	assert_span(ev.rcpt_domain, "Example.COM");
}

static void relay_denied(void **state)
{
	struct chk_event ev = parse_ok("@4000000052e892682a4b434c CHKUSER rejected relaying: from "
				       "<spam@example.net::> remote <x:unknown:198.51.100.77> "
				       "rcpt <victim@example.com> : client not allowed to relay");
	assert_int_equal(ev.kind, CHK_REJECTED_RELAYING);
	assert_span(ev.auth_user, "");
	assert_span(ev.remote_host, "unknown");
	assert_span(ev.remote_ip, "198.51.100.77");
	assert_span(ev.rcpt_domain, "example.com");
}

static void multilog_stamp(void **state)
{
	struct log_header h = header(
		"@4000000052e892682a4b434c CHKUSER x: from <::> remote <::1.2.3.4> rcpt <> : y");
	assert_int_equal(h.utc, 1390973534);
	assert_int_equal(h.host.n, 0);
	assert_int_equal(h.service.n, 0);
	assert_true(chkuser_is(h.msg));
}

static void syslog_no_stamp(void **state)
{
	/* Without splogger's stamp the syslog date is read in TZ (UTC here), year from the ref. */
	setenv("TZ", "UTC", 1);
	struct log_header h = header("Jan 28 21:32:14 independence smtp-mx[123]: CHKUSER a: from "
				     "<::> remote <::1.2.3.4> rcpt <> : b");
	assert_int_equal(h.utc, 1390944734);
	assert_span(h.service, "smtp-mx");
	/* December before a March reference is last year's December. */
	h = header("Dec 31 23:59:59 h t: CHKUSER a: from <::> remote <::1.2.3.4> rcpt <> : b");
	assert_int_equal(h.utc, 1388534399);
}

static void syslog_tz(void **state)
{
	setenv("TZ", "America/Los_Angeles", 1);
	struct log_header h = header("Jan 28 21:32:14 independence smtp-mx: CHKUSER a: from <::> "
				     "remote <::1.2.3.4> rcpt <> : b");
	assert_int_equal(h.utc, 1390973534);
	setenv("TZ", "UTC", 1);
}

static void rfc3339_header(void **state)
{
	struct log_header h = header("2014-01-28T21:32:14.709575-08:00 independence smtp: CHKUSER "
				     "a: from <::> remote <::1.2.3.4> rcpt <> : b");
	assert_int_equal(h.utc, 1390973534);
	assert_span(h.host, "independence");
}

static void encore_stamp(void **state)
{
	struct log_header h =
		header("1390973534.709575 CHKUSER a: from <::> remote <::1.2.3.4> rcpt <> : b");
	assert_int_equal(h.utc, 1390973534);
	assert_true(chkuser_is(h.msg));
}

static void labelled(void **state)
{
	struct chk_event ev = parse_ok(
		"1390973534.709575 CHKUSER relaying rcpt: from <bob@example.org|remoteinfo/auth:"
		"bob@example.org|chkuser-identify:> remote <helo:[10.0.0.1]|remotehostname:unknown|"
		"remotehostip:2001:db8::7> rcpt <x@example.com> : client allowed to relay");
	assert_true(ev.labelled);
	assert_span(ev.sender, "bob@example.org");
	assert_span(ev.auth_user, "bob@example.org");
	assert_span(ev.identify, "");
	assert_span(ev.helo, "[10.0.0.1]");
	assert_span(ev.remote_host, "unknown");
	assert_span(ev.remote_ip, "2001:db8::7");
	assert_span(ev.rcpt, "x@example.com");
}

static void ipv6(void **state)
{
	struct chk_event ev =
		parse_ok("1390973534.709575 CHKUSER accepted rcpt: from <a@b.example::> "
			 "remote <cafe:unknown:2001:db8::1> rcpt <c@d.example> : "
			 "found existing recipient");
	assert_span(ev.remote_ip, "2001:db8::1");
	assert_span(ev.remote_host, "unknown");
	assert_span(ev.helo, "cafe");
	ev = parse_ok(
		"1390973534.709575 CHKUSER accepted rcpt: from <::> remote "
		"<::mx.example:::ffff:192.0.2.1> rcpt <c@d.example> : found existing recipient");
	assert_span(ev.remote_ip, "::ffff:192.0.2.1");
	assert_span(ev.remote_host, "mx.example");
}

static enum chk_result parse_result(const char *line)
{
	struct log_header h = header(line);
	struct chk_event ev;
	assert_true(chkuser_is(h.msg));
	return chk_parse(h.msg, &ev);
}

static void hostile_fields(void **state)
{
	/* The client put every marker into its sender, HELO and recipient: two anchors. */
	assert_int_equal(
		parse_result(
			"1390973534.709575 CHKUSER rejected relaying: from <a> remote "
			"<b:c:1.1.1.1> rcpt <x> : z|we:ird@x.example:u:> remote <he> rcpt "
			"<lo:h:1.2.3.4:unknown:203.0.113.9> rcpt <r> : q@evil.example> : client "
			"not allowed to relay"),
		CHK_AMBIGUOUS);
	/* Markers without an address before them anchor nothing: the line stays an event. */
	struct chk_event ev = parse_ok(
		"1390973534.709575 CHKUSER rejected relaying: from <a> rcpt <b::> remote "
		"<he> rcpt <lo:h:203.0.113.9> rcpt <r> : q@evil.example> : client not allowed to "
		"relay");
	assert_int_equal(ev.kind, CHK_REJECTED_RELAYING);
	assert_span(ev.desc, "client not allowed to relay");
	assert_span(ev.remote_ip, "203.0.113.9");
	assert_span(ev.rcpt, "r> : q@evil.example");
	assert_span(ev.rcpt_domain, "evil.example");
}

/* The attacks of issue 10: a client choosing the IP or the account its line is counted under. */
static void ambiguous_anchors(void **state)
{
	/* A recipient that names another IP would move a relay attempt to 203.0.113.9. */
	assert_int_equal(
		parse_result("1390973534.709575 CHKUSER rejected relaying: from "
			     "<spam@x.example::> remote <h:unknown:198.51.100.66> rcpt "
			     "<\"a:203.0.113.9> rcpt <v\"@gmail.test> : client not allowed "
			     "to relay"),
		CHK_AMBIGUOUS);
	/* A fake "> remote <" in the recipient would make the auth_user the client's text. */
	assert_int_equal(parse_result("1390973534.709575 CHKUSER relaying rcpt: from "
				      "<u@x.example:u@x.example:> remote <h:unknown:198.51.100.66> "
				      "rcpt <\"x:boss@x.example:> remote <h:h:203.0.113.9> rcpt "
				      "<v\"@gmail.test> : client allowed to relay"),
			 CHK_AMBIGUOUS);
	/* A fake "> remote <" in the sender, before the real one. */
	assert_int_equal(
		parse_result("1390973534.709575 CHKUSER relaying rcpt: from "
			     "<s:boss@x.example:> remote <x:u@x.example:> remote "
			     "<h:unknown:198.51.100.66> rcpt <v@gmail.test> : client allowed "
			     "to relay"),
		CHK_AMBIGUOUS);
	/* Labelled format, the same recipient. */
	assert_int_equal(
		parse_result(
			"1390973534.709575 CHKUSER rejected relaying: from "
			"<s@x.example|remoteinfo/auth:|chkuser-identify:> remote "
			"<helo:h|remotehostname:unknown|remotehostip:198.51.100.66> rcpt "
			"<a|remotehostip:203.0.113.9> rcpt <v@gmail.test> : client not allowed "
			"to relay"),
		CHK_AMBIGUOUS);
	/* No address at all, and two "> remote <": ambiguous too. */
	assert_int_equal(parse_result("1390973534.709575 CHKUSER x: from <a> remote <b> remote "
				      "<c> rcpt <d> : e"),
			 CHK_AMBIGUOUS);
	/* One of each is the normal line. */
	struct chk_event ev = parse_ok("1390973534.709575 CHKUSER rejected relaying: from "
				       "<spam@x.example::> remote <h:unknown:198.51.100.66> rcpt "
				       "<\"a:203.0.113.9 rcpt v\"@gmail.test> : client not allowed "
				       "to relay");
	assert_span(ev.remote_ip, "198.51.100.66");
}

static void colon_pipe_sender(void **state)
{
	struct chk_event ev = parse_ok("1390973534.709575 CHKUSER relaying rcpt: from "
				       "<we:ird|a@b.example:u@b.example:> remote <h>lo:x:10.1.2.3> "
				       "rcpt <t@u.example> : client allowed to relay");
	assert_span(ev.sender, "we:ird|a@b.example");
	assert_span(ev.auth_user, "u@b.example");
	assert_span(ev.helo, "h>lo");
}

static void empty_sender(void **state)
{
	struct chk_event ev =
		parse_ok("1390973534.709575 CHKUSER accepted sender: from <::> remote "
			 "<:unknown:192.0.2.3> rcpt <> : accepted null sender always");
	assert_int_equal(ev.kind, CHK_ACCEPTED_SENDER);
	assert_true(ev.sender_phase);
	assert_span(ev.sender, "");
	assert_span(ev.rcpt, "");
	assert_span(ev.rcpt_domain, "");
}

static void all_titles(void **state)
{
	static const struct {
		const char *title, *desc;
		enum chk_kind kind;
	} t[] = {
		{"accepted rcpt", "found existing recipient", CHK_ACCEPTED_RCPT},
		{"accepted any rcpt", "accepted any recipient for any rcpt domain",
		 CHK_ACCEPTED_ANY_RCPT},
		{"relaying rcpt", "client allowed to relay", CHK_RELAYING_RCPT},
		{"rejected relaying", "client not allowed to relay", CHK_REJECTED_RELAYING},
		{"rejected rcpt", "not existing recipient", CHK_REJECTED_RCPT},
		{"rejected rcpt", "max number of recipients", CHK_REJECTED_RCPT},
		{"rejected rcpt", "invalid rcpt MX domain", CHK_REJECTED_RCPT},
		{"intrusion threshold", "max number of allowed rcpt", CHK_INTRUSION_THRESHOLD},
		{"rejected intrusion", "rcpt ignored, session over intrusion threshold",
		 CHK_REJECTED_INTRUSION},
		{"no auth resource", "no auth resource available", CHK_NO_AUTH_RESOURCE},
		{"must auth", "sender not authenticated/authorized", CHK_MUST_AUTH},
		{"mbx overquota", "rcpt mailbox is overquota", CHK_MBX_OVERQUOTA},
		{"accepted sender", "sender accepted", CHK_ACCEPTED_SENDER},
		{"accepted null sender", "accepted null sender always", CHK_ACCEPTED_NULL_SENDER},
		{"accepted doublebounce", "accepted qmail doublebounce #@[]",
		 CHK_ACCEPTED_DOUBLEBOUNCE},
		{"rejected sender", "invalid sender MX domain", CHK_REJECTED_SENDER},
		{"brand new title", "something chkuser 3 says", CHK_OTHER},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char line[512];
		snprintf(line, sizeof(line),
			 "1390973534.709575 CHKUSER %s: from <a@b.example::> remote "
			 "<h:unknown:192.0.2.1> rcpt <c@d.example> : %s",
			 t[i].title, t[i].desc);
		struct chk_event ev = parse_ok(line);
		assert_int_equal(ev.kind, t[i].kind);
		assert_span(ev.title, t[i].title);
		assert_span(ev.desc, t[i].desc);
	}
}

static void crlf(void **state)
{
	struct chk_event ev = parse_ok("1390973534.709575 CHKUSER accepted rcpt: from <::> remote "
				       "<:unknown:192.0.2.3> rcpt <a@b.example> : found existing "
				       "recipient\r");
	assert_span(ev.desc, "found existing recipient");
}

static void truncated(void **state)
{
	const char *l = "1390973534.709575 CHKUSER relaying rcpt: from <a@b.example:a@b.example:> "
			"remote <h:unknown:192.0.2.1> rcpt <c@d.exam";
	for (size_t n = 26; n < strlen(l); n++) {
		struct log_header h = header(l);
		struct span m = h.msg;
		m.n -= strlen(l) - n;
		if (!chkuser_is(m)) {
			continue;
		}
		struct chk_event ev;
		assert_int_equal(chk_parse(m, &ev), CHK_MALFORMED);
	}
}

static void not_chkuser(void **state)
{
	struct log_header h = header("Jan 28 21:32:14 independence smtp: 1390973534.709575 "
				     "tcpserver: status: 3/40");
	assert_false(chkuser_is(h.msg));
	h = header("Jan 28 21:32:14 independence qmail: 1390973534.709575 qmail-smtpd: pid 1 "
		   "CHKUSER relaying rcpt: from <::> remote <::1.2.3.4> rcpt <> : x");
	assert_false(chkuser_is(h.msg));
}

static void nul_bytes(void **state)
{
	static const char l[] = "1390973534.709575 CHKUSER relaying rcpt: from <a\0b@c.example:u:> "
				"remote <h\0:unknown:192.0.2.1> rcpt <x@d\0.example> : client "
				"allowed to relay";
	struct logtime lt;
	struct log_header h;
	struct chk_event ev;
	logtime_init(&lt, 1393632000);
	log_header_parse(l, sizeof(l) - 1, &lt, &h);
	assert_int_equal(chk_parse(h.msg, &ev), CHK_EVENT);
	assert_int_equal(ev.sender.n, 13);
	assert_int_equal(ev.rcpt_domain.n, 10);
}

static void huge_line(void **state)
{
	static const char head[] = "1390973534.709575 CHKUSER relaying rcpt: from <";
	static const char tail[] = ":u:> remote <h:unknown:192.0.2.1> rcpt <x@y.example> : client "
				   "allowed to relay";
	const size_t n = 1024 * 1024, k = sizeof(head) - 1, t = sizeof(tail) - 1;
	char *l = malloc(k + n + t);
	assert_non_null(l);
	memcpy(l, head, k);
	memset(l + k, '>', n);
	memcpy(l + k + n, tail, t);
	struct logtime lt;
	struct log_header h;
	struct chk_event ev;
	logtime_init(&lt, 1393632000);
	log_header_parse(l, k + n + t, &lt, &h);
	assert_int_equal(chk_parse(h.msg, &ev), CHK_EVENT);
	assert_int_equal(ev.sender.n, n);
	/* A megabyte of separators and no markers: malformed, quickly. */
	memset(l + k, ':', n);
	log_header_parse(l, k + n, &lt, &h);
	assert_int_equal(chk_parse(h.msg, &ev), CHK_MALFORMED);
	free(l);
}

/* chk_is_ipv4 stands in for inet_pton(AF_INET): it must agree with it on every string. */
static void ipv4_like_inet_pton(void **state)
{
	static const char alphabet[] = "012569.";
	const size_t a = sizeof(alphabet) - 1;
	char buf[32];
	unsigned char addr[4];
	/* Every string of up to 7 bytes over the alphabet... */
	for (size_t len = 0; len <= 7; len++) {
		size_t total = 1;
		for (size_t k = 0; k < len; k++) {
			total *= a;
		}
		for (size_t x = 0; x < total; x++) {
			size_t y = x;
			for (size_t k = 0; k < len; k++, y /= a) {
				buf[k] = alphabet[y % a];
			}
			buf[len] = '\0';
			assert_int_equal(chk_is_ipv4(buf, len), inet_pton(AF_INET, buf, addr) == 1);
		}
	}
	/* ...and dotted quads of octets near the edges, with a stray byte or not. */
	static const char *const octets[] = {"",    "0",   "00",  "01",  "1",    "9",
					     "25",  "99",  "100", "199", "249",  "255",
					     "256", "260", "300", "999", "1000", "0255"};
	const size_t no = sizeof(octets) / sizeof(octets[0]);
	unsigned seed = 7;
	for (int i = 0; i < 200000; i++) {
		size_t len = 0;
		for (int k = 0; k < 4; k++) {
			seed = seed * 1103515245 + 12345;
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", k ? "." : "",
						octets[(seed >> 16) % no]);
		}
		if (seed % 5 == 0) {
			buf[len++] = seed % 3 ? '.' : 'x';
			buf[len] = '\0';
		}
		assert_int_equal(chk_is_ipv4(buf, len), inet_pton(AF_INET, buf, addr) == 1);
	}
}

/*
 * Reads stamps in zone tz one after the other with one logtime, whose hour is reused from the
 * line before, and each with a fresh one: they must agree.
 */
static void same_hour_in(const char *tz, int64_t ref, const char *const *stamps, size_t n)
{
	struct logtime cached;
	setenv("TZ", tz, 1);
	logtime_init(&cached, ref);
	for (size_t i = 0; i < n; i++) {
		struct logtime fresh;
		logtime_init(&fresh, ref);
		int64_t want = logtime_syslog(&fresh, stamps[i], 15);
		assert_int_equal(logtime_syslog(&cached, stamps[i], 15), want);
	}
	setenv("TZ", "UTC", 1);
}

/* The syslog date of the line before is reused for its hour: it must read as a fresh one. */
static void syslog_same_hour(void **state)
{
	static const char *const stamps[] = {
		"Jan 28 21:32:14", "Jan 28 21:59:60", "Jan 28 21:61:00", "Jan 28 21:5x:00",
		"Jan 28 22:00:00", "Jan 28 21:00:00", "Jan 28 21:00:61", "Jan 2x 21:00:00",
		"Dec 31 23:59:59", "Jan  1 00:00:00", "Jan  1 00:00:01", "Jan 28 21:32:14",
	};
	same_hour_in("UTC", 1393632000, stamps, sizeof(stamps) / sizeof(stamps[0]));
}

/*
 * The same where local time jumps: Europe/Berlin in 2014, 02:00 CET became 03:00 CEST on March 30
 * (an hour that never was) and 03:00 CEST became 02:00 CET on October 26 (an hour twice). The
 * cached hour is reused across the change and back, and the hours either side read as they must.
 */
static void syslog_same_hour_dst(void **state)
{
	static const char *const stamps[] = {
		"Mar 30 01:59:59", "Mar 30 02:00:00", "Mar 30 02:30:00", "Mar 30 03:00:00",
		"Mar 30 02:59:59", "Mar 30 01:00:00", "Mar 30 03:59:59", "Mar 30 02:15:00",
		"Oct 26 01:59:59", "Oct 26 02:00:00", "Oct 26 02:59:59", "Oct 26 03:00:00",
		"Oct 26 02:30:00", "Oct 26 01:30:00", "Oct 26 02:15:00", "Oct 26 03:00:01",
		"Oct 26 02:00:00", "Mar 30 02:00:00", "Oct 26 02:45:00", "Oct 26 01:59:59",
	};
	const int64_t ref = 1420070400; /* 2015-01-01 00:00 UTC: the dates are in 2014 */
	same_hour_in("Europe/Berlin", ref, stamps, sizeof(stamps) / sizeof(stamps[0]));

	/* Berlin's offsets, either side of each change (not UTC's, had the zone been missing). */
	struct logtime lt;
	setenv("TZ", "Europe/Berlin", 1);
	logtime_init(&lt, ref);
	assert_int_equal(logtime_syslog(&lt, "Mar 30 01:59:59", 15), 1396141199);
	assert_int_equal(logtime_syslog(&lt, "Mar 30 03:00:00", 15), 1396141200);
	assert_int_equal(logtime_syslog(&lt, "Oct 26 01:59:59", 15), 1414281599);
	assert_int_equal(logtime_syslog(&lt, "Oct 26 03:00:00", 15), 1414288800);
	setenv("TZ", "UTC", 1);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(relaying_auth),
	cmocka_unit_test(relay_denied),
	cmocka_unit_test(multilog_stamp),
	cmocka_unit_test(syslog_no_stamp),
	cmocka_unit_test(syslog_tz),
	cmocka_unit_test(rfc3339_header),
	cmocka_unit_test(encore_stamp),
	cmocka_unit_test(labelled),
	cmocka_unit_test(ipv6),
	cmocka_unit_test(hostile_fields),
	cmocka_unit_test(ambiguous_anchors),
	cmocka_unit_test(colon_pipe_sender),
	cmocka_unit_test(empty_sender),
	cmocka_unit_test(all_titles),
	cmocka_unit_test(crlf),
	cmocka_unit_test(truncated),
	cmocka_unit_test(not_chkuser),
	cmocka_unit_test(nul_bytes),
	cmocka_unit_test(huge_line),
	cmocka_unit_test(ipv4_like_inet_pton),
	cmocka_unit_test(syslog_same_hour),
	cmocka_unit_test(syslog_same_hour_dst),
};

UNIT_MAIN("test_chkuser", tests)
