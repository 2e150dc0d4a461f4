#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check_alerts.h"
#include "db_sql.h"
#include "escape.h"
#include "logtime.h"
#include "render.h"
#include "unit.h"

static int set(struct check_rules *r, const char *key, const char *value)
{
	struct config_line cl = {.file = "test.conf", .line = 7, .key = key, .value = value};
	return check_rules_set(r, &cl);
}

static void rules_defaults(void **state)
{
	struct check_rules r;

	(void)state;
	check_rules_init(&r);
	assert_true(r.relay_rcpt.warn > 0 && r.relay_rcpt.crit > r.relay_rcpt.warn);
	assert_true(r.relay_domains.warn > 0 && r.relay_domains.crit > r.relay_domains.warn);
	assert_true(r.relay_ips.warn > 0 && r.relay_ips.crit > r.relay_ips.warn);
	assert_true(r.sender_mismatch.warn > 0 && r.sender_mismatch.crit > r.sender_mismatch.warn);
	assert_true(r.denied.warn > 0 && r.denied.crit > r.denied.warn);
	assert_int_equal(r.baseline_days, 7);
	assert_int_equal(r.baseline_percentile, 95);
	assert_true(r.baseline_min > 0);
	assert_true(r.stale.warn > 0 && r.stale.crit > r.stale.warn);
	assert_int_equal(r.sender_allow_count, 0);
	check_rules_finish(&r);
}

static void rules_set(void **state)
{
	struct check_rules r;

	(void)state;
	check_rules_init(&r);
	assert_int_equal(set(&r, "check_relay_rcpt_warn", "300"), 1);
	assert_int_equal(r.relay_rcpt.warn, 300);
	assert_int_equal(set(&r, "check_relay_rcpt_crit", "off"), 1);
	assert_int_equal(r.relay_rcpt.crit, 0);
	assert_int_equal(set(&r, "check_denied_crit", "0"), 1);
	assert_int_equal(r.denied.crit, 0);
	assert_int_equal(set(&r, "check_stale_crit", "90m"), 1);
	assert_int_equal(r.stale.crit, 5400);
	assert_int_equal(set(&r, "check_stale_warn", "2d"), 1);
	assert_int_equal(r.stale.warn, 172800);
	assert_int_equal(set(&r, "check_baseline_warn", "2.5"), 1);
	assert_int_equal(r.baseline_factor.warn, 250);
	assert_int_equal(set(&r, "check_baseline_crit", "12"), 1);
	assert_int_equal(r.baseline_factor.crit, 1200);
	assert_int_equal(set(&r, "check_baseline_min", "40"), 1);
	assert_int_equal(r.baseline_min, 40);
	assert_int_equal(set(&r, "check_baseline_days", "14"), 1);
	assert_int_equal(r.baseline_days, 14);
	assert_int_equal(set(&r, "check_sender_allow", "app@example.org  Billing@Example.org"), 1);
	assert_int_equal(set(&r, "check_sender_allow", "cron"), 1);
	assert_int_equal(r.sender_allow_count, 3);
	assert_true(check_sender_allowed(&r, "billing@example.org", 19));
	assert_true(check_sender_allowed(&r, "cron", 4));
	assert_false(check_sender_allowed(&r, "cro", 3));
	assert_false(check_sender_allowed(&r, "alice@example.org", 17));

	/* not rule keys: left to the caller */
	assert_int_equal(set(&r, "incoming", "/srv"), 0);
	assert_int_equal(set(&r, "check_nonsense_warn", "1"), 0);
	assert_int_equal(set(&r, "check_relay_rcpt", "1"), 0);

	/* bad values */
	assert_int_equal(set(&r, "check_relay_rcpt_warn", "many"), -1);
	assert_int_equal(set(&r, "check_relay_rcpt_warn", "-3"), -1);
	assert_int_equal(set(&r, "check_stale_crit", "6 hours"), -1);
	assert_int_equal(set(&r, "check_baseline_warn", "2.x"), -1);
	assert_int_equal(set(&r, "check_baseline_days", "0"), -1);
	assert_int_equal(set(&r, "check_baseline_percentile", "101"), -1);
	assert_int_equal(r.relay_rcpt.warn, 300);
	check_rules_finish(&r);
	assert_int_equal(r.sender_allow_count, 0);
}

static void sender_matches(void **state)
{
	(void)state;
#define M(s, a) check_sender_matches(s, strlen(s), a, strlen(a))
	assert_true(M("alice@example.org", "alice@example.org"));
	assert_true(M("Alice@Example.ORG", "alice@example.org"));
	assert_true(M("", "alice@example.org"));
	assert_true(M("alice@example.org", "alice"));
	assert_true(M("alice@other.example", "alice"));
	assert_false(M("bob@example.org", "alice@example.org"));
	assert_false(M("alice@example.org.evil", "alice@example.org"));
	assert_false(M("alice", "alice@example.org"));
	assert_false(M("bob@example.org", "alice"));
	assert_false(M("alicex@example.org", "alice"));
#undef M
	/* bytes after a NUL count */
	assert_false(check_sender_matches("a\0b", 3, "a", 1));
}

static void judge(void **state)
{
	struct check_level l = {10, 20}, warn_only = {10, 0}, off = {0, 0};

	(void)state;
	assert_int_equal(check_judge(9, &l), CHECK_OK);
	assert_int_equal(check_judge(10, &l), CHECK_WARNING);
	assert_int_equal(check_judge(19, &l), CHECK_WARNING);
	assert_int_equal(check_judge(20, &l), CHECK_CRITICAL);
	assert_int_equal(check_judge(1000, &warn_only), CHECK_WARNING);
	assert_int_equal(check_judge(UINT64_MAX, &off), CHECK_OK);
	assert_int_equal(check_judge(0, &off), CHECK_OK);
}

static void percentile(void **state)
{
	uint64_t v[20];

	(void)state;
	assert_int_equal(check_percentile(v, 0, 95), 0);
	for (int i = 0; i < 20; i++) {
		v[i] = (uint64_t)(20 - i); /* 20..1, unsorted */
	}
	/* nearest rank: ceil(0.95 * 20) = 19th smallest */
	assert_int_equal(check_percentile(v, 20, 95), 19);
	assert_int_equal(check_percentile(v, 20, 100), 20);
	assert_int_equal(check_percentile(v, 20, 50), 10);
	assert_int_equal(check_percentile(v, 20, 1), 1);
	uint64_t one = 7;
	assert_int_equal(check_percentile(&one, 1, 95), 7);
}

static void baseline(void **state)
{
	struct check_rules r;
	uint64_t hist[168], tw, tc;

	(void)state;
	check_rules_init(&r); /* K 3 / 10, min 100, p95 */

	/* a steady account: 40 an hour in every hour of the week -> p95 40 */
	for (size_t i = 0; i < 168; i++) {
		hist[i] = 40;
	}
	assert_int_equal(check_baseline(&r, 120, hist, 168, &tw, &tc), CHECK_OK);
	assert_int_equal(tw, 121); /* strictly above 3 x 40 */
	assert_int_equal(tc, 401);
	assert_int_equal(check_baseline(&r, 121, hist, 168, &tw, &tc), CHECK_WARNING);
	assert_int_equal(check_baseline(&r, 401, hist, 168, &tw, &tc), CHECK_CRITICAL);

	/* a quiet account: the minimum absolute count keeps it from alarming on 5 mails */
	memset(hist, 0, sizeof(hist));
	hist[3] = 2;
	assert_int_equal(check_baseline(&r, 5, hist, 168, &tw, &tc), CHECK_OK);
	assert_int_equal(tw, 100);
	assert_int_equal(tc, 100);
	assert_int_equal(check_baseline(&r, 100, hist, 168, &tw, &tc), CHECK_CRITICAL);

	/* a few busy hours do not lift p95: 8 of 168 hours at 1000 (under 5%) */
	memset(hist, 0, sizeof(hist));
	for (size_t i = 0; i < 8; i++) {
		hist[i * 20] = 1000;
	}
	assert_int_equal(check_baseline(&r, 150, hist, 168, &tw, &tc), CHECK_CRITICAL);
	/* 9 busy hours do (ceil(0.95*168) = 160: the 160th smallest of 159 zeros and 9 x 1000) */
	memset(hist, 0, sizeof(hist));
	for (size_t i = 0; i < 9; i++) {
		hist[i * 18] = 1000;
	}
	assert_int_equal(check_baseline(&r, 150, hist, 168, &tw, &tc), CHECK_OK);
	assert_int_equal(tw, 3001);

	/* a factor of 0 switches that level off */
	r.baseline_factor.crit = 0;
	memset(hist, 0, sizeof(hist));
	assert_int_equal(check_baseline(&r, 100000, hist, 168, &tw, &tc), CHECK_WARNING);
	assert_int_equal(tc, 0);

	/* no overflow on absurd counts */
	for (size_t i = 0; i < 168; i++) {
		hist[i] = UINT64_MAX / 2;
	}
	assert_int_equal(check_baseline(&r, UINT64_MAX - 1, hist, 168, &tw, &tc), CHECK_OK);
	assert_int_equal(tw, UINT64_MAX);
	check_rules_finish(&r);
}

static void parse_duration(void **state)
{
	int64_t s;

	(void)state;
	assert_int_equal(logtime_parse_duration("24h", &s), 0);
	assert_int_equal(s, 86400);
	assert_int_equal(logtime_parse_duration("7d", &s), 0);
	assert_int_equal(s, 7 * 86400);
	assert_int_equal(logtime_parse_duration("400d", &s), 0);
	assert_int_equal(s, 400 * 86400);
	assert_int_equal(logtime_parse_duration("2w", &s), 0);
	assert_int_equal(s, 14 * 86400);
	assert_int_equal(logtime_parse_duration("90m", &s), 0);
	assert_int_equal(s, 5400);
	assert_int_equal(logtime_parse_duration("45s", &s), 0);
	assert_int_equal(s, 45);
	/* A bare number is a slip, not seconds. */
	assert_int_equal(logtime_parse_duration("3600", &s), -1);
	assert_int_equal(logtime_parse_duration("0s", &s), -1);
	assert_int_equal(logtime_parse_duration("", &s), -1);
	assert_int_equal(logtime_parse_duration("h", &s), -1);
	assert_int_equal(logtime_parse_duration("-1d", &s), -1);
	assert_int_equal(logtime_parse_duration("1dd", &s), -1);
	assert_int_equal(logtime_parse_duration("1y", &s), -1);
	assert_int_equal(logtime_parse_duration("99999999999999999999d", &s), -1);
}

static void parse_time(void **state)
{
	int64_t t, now = 1714572000; /* 2024-05-01 14:00:00 UTC */

	(void)state;
	assert_int_equal(logtime_parse_time("24h", now, &t), 0);
	assert_int_equal(t, now - 86400);
	assert_int_equal(logtime_parse_time("2024-05-01", now, &t), 0);
	assert_int_equal(t, 1714521600);
	assert_int_equal(logtime_parse_time("2024-05-01 13:00", now, &t), 0);
	assert_int_equal(t, 1714568400);
	assert_int_equal(logtime_parse_time("2024-05-01T13:00:05", now, &t), 0);
	assert_int_equal(t, 1714568405);
	assert_int_equal(logtime_parse_time("1970-01-01", now, &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(logtime_parse_time("2024-02-29", now, &t), 0);
	assert_int_equal(t, 1709164800);
	assert_int_equal(logtime_parse_time("2023-02-29", now, &t), -1);
	assert_int_equal(logtime_parse_time("2000-02-29 23:59", now, &t), 0);
	assert_int_equal(logtime_parse_time("1900-02-29", now, &t), -1);
	assert_int_equal(logtime_parse_time("2024-13-01", now, &t), -1);
	assert_int_equal(logtime_parse_time("2024-05-01 24:00", now, &t), -1);
	assert_int_equal(logtime_parse_time("2024-05-01 13", now, &t), -1);
	assert_int_equal(logtime_parse_time("2024-05-01 13:00:", now, &t), -1);
	assert_int_equal(logtime_parse_time("2024-5-1", now, &t), -1);
	assert_int_equal(logtime_parse_time("yesterday", now, &t), -1);
	/* DATETIME values as the server returns them */
	assert_int_equal(db_sql_datetime("2024-05-01 13:00:00", 19), 1714568400);
	assert_true(db_sql_datetime(NULL, 0) == INT64_MIN);
	assert_true(db_sql_datetime("2024-05-01", 10) == INT64_MIN);
	assert_int_equal(db_sql_u64("12345", 5), 12345);
	assert_int_equal(db_sql_u64("12345", 3), 123);
	assert_int_equal(db_sql_u64(NULL, 0), 0);
}

static void alerts_exit_code(void **state)
{
	struct check_alerts a;

	(void)state;
	check_alerts_init(&a);
	assert_int_equal(check_worst(&a), CHECK_OK);
	assert_int_equal(check_alerts_add(&a, CHECK_DENIED, CHECK_WARNING, "mx1", 3, "192.0.2.1", 9,
					  150, 100, 3600, false),
			 0);
	assert_int_equal(check_worst(&a), CHECK_WARNING);
	assert_int_equal(check_alerts_add(&a, CHECK_RELAY_RCPT, CHECK_CRITICAL, "mx1", 3, "a\0b", 3,
					  2500, 2000, 7200, false),
			 0);
	assert_int_equal(check_alerts_add(&a, CHECK_STALE, CHECK_CRITICAL, "mx2", 3, "mx2", 3,
					  90000, 21600, 0, false),
			 0);
	assert_int_equal(check_worst(&a), CHECK_CRITICAL);
	check_alerts_sort(&a);
	/* critical first, then by rule */
	assert_int_equal(a.v[0].rule, CHECK_RELAY_RCPT);
	assert_int_equal(a.v[1].rule, CHECK_STALE);
	assert_int_equal(a.v[2].rule, CHECK_DENIED);
	assert_int_equal(a.v[0].subject_len, 3);
	assert_memory_equal(a.v[0].subject, "a\0b", 3);
	/* the exit code of check is the worst status: the enum values are the plugin codes */
	assert_int_equal(CHECK_OK, 0);
	assert_int_equal(CHECK_WARNING, 1);
	assert_int_equal(CHECK_CRITICAL, 2);
	assert_int_equal(CHECK_UNKNOWN, 3);
	assert_string_equal(check_status_name[check_worst(&a)], "CRITICAL");
	check_alerts_finish(&a);
	assert_int_equal(a.count, 0);
}

/* Renders with fn into a string (caller frees). */
static char *render(void (*fn)(FILE *, const char *, size_t), const char *s, size_t n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	fn(f, s, n);
	fclose(f);
	return buf;
}

/* One alert rendered with fn into a string (caller frees). */
static char *render_alert(void (*fn)(FILE *, const struct check_alert *),
			  const struct check_alert *a)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	fn(f, a);
	fclose(f);
	return buf;
}

#define R(fn, lit) render(fn, lit, sizeof(lit) - 1)

static void expect(char *got, const char *want)
{
	assert_string_equal(got, want);
	free(got);
}

static void case_escape_utf8(void **state)
{
	uint32_t cp;

	(void)state;
	assert_int_equal(escape_utf8((const unsigned char *)"a", 1, &cp), 1);
	assert_int_equal(escape_utf8((const unsigned char *)"\xc3\xa9", 2, &cp), 2);
	assert_int_equal(cp, 0xe9);
	assert_int_equal(escape_utf8((const unsigned char *)"\xe2\x82\xac", 3, &cp), 3);
	assert_int_equal(cp, 0x20ac);
	assert_int_equal(escape_utf8((const unsigned char *)"\xf0\x9f\x98\x80", 4, &cp), 4);
	assert_int_equal(cp, 0x1f600);
	assert_int_equal(escape_utf8((const unsigned char *)"\xc3", 1, &cp), 0);     /* cut */
	assert_int_equal(escape_utf8((const unsigned char *)"\xc0\xaf", 2, &cp), 0); /* overlong */
	assert_int_equal(escape_utf8((const unsigned char *)"\xe0\x80\xaf", 3, &cp), 0);
	assert_int_equal(escape_utf8((const unsigned char *)"\xed\xa0\x80", 3, &cp), 0); /* surr. */
	assert_int_equal(escape_utf8((const unsigned char *)"\xf4\x90\x80\x80", 4, &cp), 0);
	assert_int_equal(escape_utf8((const unsigned char *)"\x80", 1, &cp), 0);
	assert_int_equal(escape_utf8((const unsigned char *)"\xff", 1, &cp), 0);
	assert_true(escape_unsafe_cp(0x1b));
	assert_true(escape_unsafe_cp(0x9b));
	assert_true(escape_unsafe_cp(0x202e));
	assert_true(escape_unsafe_cp(0x2066));
	assert_false(escape_unsafe_cp(0xe9));
	assert_false(escape_unsafe_cp(' '));
}

static void case_escape_html(void **state)
{
	(void)state;
	expect(R(escape_html, "alice@example.org"), "alice@example.org");
	expect(R(escape_html, "<script>alert('x')</script>&\""),
	       "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;");
	expect(R(escape_html, "caf\xc3\xa9"), "caf\xc3\xa9");
	expect(R(escape_html, "a\xff"
			      "b"),
	       "a&#xFFFD;b");
	expect(R(escape_html, "a\0b"), "a&#xFFFD;b");
	expect(R(escape_html, "\x1b[31m"), "&#xFFFD;[31m");
	expect(R(escape_html, "x\xe2\x80\xaey"), "x&#xFFFD;y"); /* RLO */
	expect(R(escape_html, "\xc2\x9b"
			      "1m"),
	       "&#xFFFD;1m");                                   /* C1 CSI */
	expect(R(escape_html, "\xe2\x82"), "&#xFFFD;&#xFFFD;"); /* cut sequence */
}

static void case_escape_json(void **state)
{
	(void)state;
	expect(R(escape_json, "alice@example.org"), "\"alice@example.org\"");
	expect(R(escape_json, "a\"b\\c"), "\"a\\\"b\\\\c\"");
	expect(R(escape_json, "l1\nl2\r\t"), "\"l1\\nl2\\r\\t\"");
	expect(R(escape_json, "\x01\x1b\x7f"), "\"\\u0001\\u001b\\u007f\"");
	expect(R(escape_json, "a\0b"), "\"a\\u0000b\"");
	expect(R(escape_json, "caf\xc3\xa9"), "\"caf\xc3\xa9\"");
	expect(R(escape_json, "\xff\xfe"), "\"\\ufffd\\ufffd\"");
	expect(R(escape_json, "x\xe2\x80\xa8y"), "\"x\\u2028y\"");
	expect(R(escape_json, ""), "\"\"");
}

static void case_escape_tsv(void **state)
{
	(void)state;
	expect(R(escape_tsv, "alice@example.org"), "alice@example.org");
	expect(R(escape_tsv, "a\tb\nc\rd\\e"), "a\\tb\\nc\\rd\\\\e");
	expect(R(escape_tsv, "\x1b[0m\x7f"), "\\x1b[0m\\x7f");
	expect(R(escape_tsv, "a\0b"), "a\\x00b");
	expect(R(escape_tsv, "caf\xc3\xa9"), "caf\xc3\xa9");
	expect(R(escape_tsv, "\xff"
			     "a\xc3"),
	       "\\xffa\\xc3");
	expect(R(escape_tsv, "\xe2\x80\xae"), "\\xe2\\x80\\xae");
}

static void case_escape_text(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(escape_text(out, 20, "alice@example.org", 17, 0), 17);
	assert_string_equal(out, "alice@example.org");
	escape_text(out, 20, "a b\\c\x1b", 6, 0);
	assert_string_equal(out, "a b\\x5cc\\x1b");
	escape_text(out, 20, "a b", 3, ESCAPE_NOSPACE);
	assert_string_equal(out, "a\\x20b");
	escape_text(out, 20, "caf\xc3\xa9", 5, 0);
	assert_string_equal(out, "caf\\xc3\\xa9");
	/* cut with an ellipsis, never wider than the column */
	assert_int_equal(escape_text(out, 10, "0123456789abc", 13, 0), 10);
	assert_string_equal(out, "0123456...");
	assert_int_equal(escape_text(out, 10, "0123456789", 10, 0), 10);
	assert_string_equal(out, "0123456789");
	/* an escape is never split */
	assert_true(escape_text(out, 10, "012345\x01\x02", 8, 0) <= 10);
	assert_string_equal(out, "012345...");
	assert_int_equal(escape_text(out, 10, "", 0, 0), 0);
	assert_string_equal(out, "");
}

/* check's lines: no raw '|' (Nagios would read the rest as performance data), no space. */
static void escape_plugin(void **state)
{
	char out[100];
	struct check_alert a = {
		.rule = CHECK_RELAY_RCPT,
		.status = CHECK_WARNING,
		.host = "mx|1",
		.host_len = 4,
		.subject = "a|b c@x",
		.subject_len = 7,
		.value = 600,
		.threshold = 500,
		.when = 1710075600,
	};
	char *line;

	(void)state;
	render_alert_value(out, 99, "a|b c\\|", 7);
	assert_string_equal(out, "a\\x7cb\\x20c\\x5c\\x7c");
	/* cut as the other escapes: never inside one */
	render_alert_value(out, 10, "||||||||||||", 12);
	assert_string_equal(out, "\\x7c...");
	line = render_alert(render_alert_line, &a);
	assert_string_equal(line,
			    "WARNING relay_rcpt host=mx\\x7c1 account=a\\x7cb\\x20c@x value=600 "
			    "threshold=500 hour=2024-03-10T13:00Z\n");
	free(line);
}

/*
 * One formatter for every output's times: JSON to the second, check's lines to the minute. In UTC
 * whatever the process's zone (ingest.conf's tz sets it): here one whose date differs from UTC's
 * at 00:00 UTC.
 */
static void render_times(void **state)
{
	char out[21], *json;
	struct check_alert a = {.rule = CHECK_RELAY_RCPT, .when = 1710075600};

	(void)state;
	setenv("TZ", "America/Los_Angeles", 1);
	tzset();
	render_time(1710078185, RENDER_DAY, out);
	assert_string_equal(out, "2024-03-10");
	render_time(1710078185, RENDER_MINUTE, out);
	assert_string_equal(out, "2024-03-10T13:43Z");
	render_time(1710078185, RENDER_SECOND, out);
	assert_string_equal(out, "2024-03-10T13:43:05Z");
	render_alert_when(&a, RENDER_MINUTE, out);
	assert_string_equal(out, "2024-03-10T13:00Z");
	/* a daily rule's alert is a date only when its period is a whole UTC day */
	a.daily = true;
	render_alert_when(&a, RENDER_MINUTE, out);
	assert_string_equal(out, "2024-03-10T13:00Z");
	a.when = 1710028800;
	render_alert_when(&a, RENDER_MINUTE, out);
	assert_string_equal(out, "2024-03-10");
	a.daily = false;
	json = render_alert(render_alert_json, &a);
	assert_non_null(strstr(json, ",\"period\":\"hour\",\"start\":\"2024-03-10T00:00:00Z\"}"));
	free(json);
	/* JSON's day: the date alone. */
	a.daily = true;
	json = render_alert(render_alert_json, &a);
	assert_non_null(strstr(json, ",\"period\":\"day\",\"start\":\"2024-03-10\"}"));
	free(json);
	setenv("TZ", "UTC", 1);
	tzset();
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(rules_defaults),
	cmocka_unit_test(rules_set),
	cmocka_unit_test(sender_matches),
	cmocka_unit_test(judge),
	cmocka_unit_test(percentile),
	cmocka_unit_test(baseline),
	cmocka_unit_test(parse_duration),
	cmocka_unit_test(parse_time),
	cmocka_unit_test(alerts_exit_code),
	{"escape_utf8", case_escape_utf8, NULL, NULL, NULL},
	{"escape_html", case_escape_html, NULL, NULL, NULL},
	{"escape_json", case_escape_json, NULL, NULL, NULL},
	{"escape_tsv", case_escape_tsv, NULL, NULL, NULL},
	{"escape_text", case_escape_text, NULL, NULL, NULL},
	cmocka_unit_test(escape_plugin),
	cmocka_unit_test(render_times),
};

UNIT_MAIN("test_check", tests)
