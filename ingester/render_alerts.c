#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "escape.h"
#include "render.h"

/* The output of `check`: a monitoring plugin's status line, then one line per alert. */

void render_alert_when(const struct check_alert *a, enum render_unit unit, char out[static 21])
{
	render_time(a->when, check_alert_is_day(a) ? RENDER_DAY : unit, out);
}

const char *render_alert_kind(enum check_rule rule)
{
	switch (rule) {
	case CHECK_DENIED:
		return "ip";
	case CHECK_STALE:
		return "host";
	default:
		return "account";
	}
}

const char *render_alert_period(const struct check_alert *a)
{
	return a->rule == CHECK_STALE ? "newest" : (a->daily ? "day" : "hour");
}

size_t render_alert_value(char *out, size_t width, const char *s, size_t n)
{
	return escape_text(out, width, s, n, ESCAPE_NOSPACE | ESCAPE_PIPE);
}

void render_alert_line(FILE *f, const struct check_alert *x)
{
	char host[100], subj[200], when[21];

	render_alert_value(host, sizeof(host) - 1, x->host, x->host_len);
	render_alert_value(subj, sizeof(subj) - 1, x->subject, x->subject_len);
	render_alert_when(x, RENDER_MINUTE, when);
	fprintf(f, "%s %s host=%s", check_status_name[x->status], check_rule_name[x->rule], host);
	if (x->rule != CHECK_STALE) {
		fprintf(f, " %s=%s", render_alert_kind(x->rule), subj);
	}
	fprintf(f, " value=%" PRIu64 " threshold=%" PRIu64 " %s=%s\n", x->value, x->threshold,
		render_alert_period(x), when);
}

void render_alert_json(FILE *f, const struct check_alert *x)
{
	char when[21];

	render_alert_when(x, RENDER_SECOND, when);
	fprintf(f, "{\"status\":\"%s\",\"rule\":\"%s\",\"host\":", check_status_name[x->status],
		check_rule_name[x->rule]);
	escape_json(f, x->host, x->host_len);
	if (x->rule != CHECK_STALE) {
		fprintf(f, ",\"%s\":", render_alert_kind(x->rule));
		escape_json(f, x->subject, x->subject_len);
	}
	fprintf(f,
		",\"value\":%" PRIu64 ",\"threshold\":%" PRIu64
		",\"period\":\"%s\",\"start\":\"%s\"}",
		x->value, x->threshold, render_alert_period(x), when);
}

static void print_perf(FILE *f, const struct check_rules *r, const struct check_alerts *a)
{
	fprintf(f,
		"relayed=%" PRIu64 " denied=%" PRIu64 " events=%" PRIu64
		" max_account_rcpt=%" PRIu64 ";%" PRIu64 ";%" PRIu64 " max_ip_denied=%" PRIu64
		";%" PRIu64 ";%" PRIu64 " stale_hosts=%u hosts=%u alerts=%zu",
		a->relayed, a->denied, a->events, a->max_account_rcpt, r->relay_rcpt.warn,
		r->relay_rcpt.crit, a->max_ip_denied, r->denied.warn, r->denied.crit,
		a->stale_hosts, a->hosts, a->count);
}

void render_alerts_text(FILE *f, const struct check_rules *r, const struct check_alerts *a,
			enum check_status st, const char *why)
{
	size_t ncrit = 0;

	for (size_t i = 0; i < a->count; i++) {
		ncrit += a->v[i].status == CHECK_CRITICAL;
	}
	fprintf(f, "RELAYWATCH %s - ", check_status_name[st]);
	if (why != NULL) {
		fprintf(f, "%s", why);
	} else if (a->count == 0) {
		fprintf(f, "no alerts, %u host%s fresh", a->hosts, a->hosts == 1 ? "" : "s");
	} else {
		fprintf(f, "%zu alert%s (%zu critical, %zu warning)", a->count,
			a->count == 1 ? "" : "s", ncrit, a->count - ncrit);
	}
	fprintf(f, " | ");
	print_perf(f, r, a);
	fputc('\n', f);
	for (size_t i = 0; i < a->count; i++) {
		render_alert_line(f, &a->v[i]);
	}
}

void render_alerts_json(FILE *f, const struct check_alerts *a, enum check_status st,
			const char *why, int64_t since, int64_t until)
{
	char t1[21], t2[21];

	render_time(since, RENDER_SECOND, t1);
	render_time(until, RENDER_SECOND, t2);
	fprintf(f, "{\"status\":\"%s\",\"code\":%d,", check_status_name[st], (int)st);
	if (why != NULL) {
		fprintf(f, "\"message\":");
		escape_json(f, why, strlen(why));
		fputc(',', f);
	}
	fprintf(f, "\"since\":\"%s\",\"until\":\"%s\",\"alerts\":[", t1, t2);
	for (size_t i = 0; i < a->count; i++) {
		fputs(i ? "," : "", f);
		render_alert_json(f, &a->v[i]);
	}
	fprintf(f,
		"],\"perf\":{\"relayed\":%" PRIu64 ",\"denied\":%" PRIu64 ",\"events\":%" PRIu64
		",\"max_account_rcpt\":%" PRIu64 ",\"max_ip_denied\":%" PRIu64
		",\"stale_hosts\":%u,\"hosts\":%u,\"alerts\":%zu}}\n",
		a->relayed, a->denied, a->events, a->max_account_rcpt, a->max_ip_denied,
		a->stale_hosts, a->hosts, a->count);
}
