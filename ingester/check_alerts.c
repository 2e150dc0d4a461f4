#include <stdlib.h>
#include <string.h>

#include "check_alerts.h"
#include "db.h"
#include "log.h"

void check_alerts_init(struct check_alerts *a)
{
	*a = (struct check_alerts){0};
}

void check_alerts_finish(struct check_alerts *a)
{
	for (size_t i = 0; i < a->count; i++) {
		free(a->v[i].host);
		free(a->v[i].subject);
	}
	free(a->v);
	check_alerts_init(a);
}

char *check_bytes_dup(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p != NULL) {
		if (n > 0) {
			memcpy(p, s, n);
		}
		p[n] = '\0';
	}
	return p;
}

int check_alerts_add(struct check_alerts *a, enum check_rule rule, enum check_status status,
		     const char *host, size_t host_len, const char *subject, size_t subject_len,
		     uint64_t value, uint64_t threshold, int64_t when, bool daily)
{
	if (a->count == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		struct check_alert *v = realloc(a->v, cap * sizeof(*v));
		if (v == NULL) {
			log_error("out of memory");
			return -1;
		}
		a->v = v;
		a->cap = cap;
	}
	struct check_alert *x = &a->v[a->count];
	*x = (struct check_alert){
		.rule = rule,
		.status = status,
		.host = check_bytes_dup(host, host_len),
		.host_len = host_len,
		.subject = check_bytes_dup(subject, subject_len),
		.subject_len = subject_len,
		.value = value,
		.threshold = threshold,
		.when = when,
		.daily = daily,
	};
	if (x->host == NULL || x->subject == NULL) {
		free(x->host);
		free(x->subject);
		log_error("out of memory");
		return -1;
	}
	a->count++;
	return 0;
}

static int cmp_bytes(const char *a, size_t an, const char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	if (c != 0) {
		return c;
	}
	return (an > bn) - (an < bn);
}

static int cmp_alert(const void *pa, const void *pb)
{
	const struct check_alert *a = pa, *b = pb;
	int c;

	if (a->status != b->status) {
		return a->status > b->status ? -1 : 1;
	}
	if (a->rule != b->rule) {
		return a->rule < b->rule ? -1 : 1;
	}
	if (a->when != b->when) {
		return a->when < b->when ? -1 : 1;
	}
	c = cmp_bytes(a->host, a->host_len, b->host, b->host_len);
	if (c != 0) {
		return c;
	}
	return cmp_bytes(a->subject, a->subject_len, b->subject, b->subject_len);
}

void check_alerts_sort(struct check_alerts *a)
{
	if (a->count > 1) {
		qsort(a->v, a->count, sizeof(*a->v), cmp_alert);
	}
}

enum check_status check_worst(const struct check_alerts *a)
{
	enum check_status w = CHECK_OK;
	for (size_t i = 0; i < a->count; i++) {
		if (a->v[i].status > w) {
			w = a->v[i].status;
		}
	}
	return w;
}

/* ---- judging the hours of the database ---- */

/* The lowest threshold that raises anything (for HAVING), or 0 when the rule is off. */
static uint64_t level_min(const struct check_level *l)
{
	if (l->warn == 0) {
		return l->crit;
	}
	if (l->crit == 0) {
		return l->warn;
	}
	return l->warn < l->crit ? l->warn : l->crit;
}

/* Whether the rule is on: some level of it has a threshold. */
static bool level_on(const struct check_level *l)
{
	return l->warn != 0 || l->crit != 0;
}

static uint64_t level_reached(const struct check_level *l, enum check_status st)
{
	return st == CHECK_CRITICAL ? l->crit : l->warn;
}

struct acct_hour {
	int64_t hour;
	uint64_t n;
	uint64_t domains;
};

/* The accounts whose baseline is worth judging: some hour of the window reached baseline_min. */
struct candidates {
	struct span *v; /* owned bytes */
	size_t count, cap;
};

static void candidates_finish(struct candidates *c)
{
	for (size_t i = 0; i < c->count; i++) {
		free((char *)c->v[i].p);
	}
	free(c->v);
}

/* Adds an account; candidates_unique drops the repeats once all are in. */
static int candidates_add(struct candidates *c, const char *s, size_t n)
{
	/* An account's hours come together: most repeats are of the last one added. */
	if (c->count > 0 && span_eq(c->v[c->count - 1], (struct span){s, n})) {
		return 0;
	}
	if (c->count == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct span *v = realloc(c->v, cap * sizeof(*v));
		if (v == NULL) {
			goto nomem;
		}
		c->v = v;
		c->cap = cap;
	}
	c->v[c->count].p = check_bytes_dup(s, n);
	if (c->v[c->count].p == NULL) {
		goto nomem;
	}
	c->v[c->count++].n = n;
	return 0;
nomem:
	log_error("out of memory");
	return -1;
}

static int cmp_span(const void *pa, const void *pb)
{
	const struct span *a = pa, *b = pb;

	return cmp_bytes(a->p, a->n, b->p, b->n);
}

/*
 * Sorts the accounts and drops the repeats (one account on several hosts): n log n, where a
 * look-up per addition was quadratic in the accounts of a busy window.
 */
static void candidates_unique(struct candidates *c)
{
	size_t k = 0;

	if (c->count < 2) {
		return;
	}
	qsort(c->v, c->count, sizeof(*c->v), cmp_span);
	for (size_t i = 1; i < c->count; i++) {
		if (span_eq(c->v[i], c->v[k])) {
			free((char *)c->v[i].p);
		} else {
			c->v[++k] = c->v[i];
		}
	}
	c->count = k + 1;
}

struct acct_ctx {
	const struct check_rules *r;
	int64_t since, first;
	bool baseline;           /* second pass: judge the baseline rule only */
	struct candidates *cand; /* first pass: collects the accounts for the second */
	uint64_t *hist;
	struct check_alerts *out;
};

/* relay_rcpt and relay_domains of one account-hour; candidates for the baseline. */
static int judge_hour(struct acct_ctx *x, const char *host, size_t hn, const char *acct, size_t an,
		      const struct acct_hour *h)
{
	const struct check_rules *r = x->r;
	enum check_status st;

	if (h->n > x->out->max_account_rcpt) {
		x->out->max_account_rcpt = h->n;
	}
	st = check_judge(h->n, &r->relay_rcpt);
	if (st != CHECK_OK &&
	    check_alerts_add(x->out, CHECK_RELAY_RCPT, st, host, hn, acct, an, h->n,
			     level_reached(&r->relay_rcpt, st), h->hour, false) < 0) {
		return -1;
	}
	st = check_judge(h->domains, &r->relay_domains);
	if (st != CHECK_OK &&
	    check_alerts_add(x->out, CHECK_RELAY_DOMAINS, st, host, hn, acct, an, h->domains,
			     level_reached(&r->relay_domains, st), h->hour, false) < 0) {
		return -1;
	}
	if (x->cand != NULL && h->n >= r->baseline_min && h->n > 0 &&
	    candidates_add(x->cand, acct, an) < 0) {
		return -1;
	}
	return 0;
}

/*
 * Judges the hours of one (host, account) group. First pass (the window's rows): relay_rcpt and
 * relay_domains. Second pass (the same accounts' rows with their trailing history): baseline.
 */
static int judge_account(struct acct_ctx *x, const char *host, size_t hn, const char *acct,
			 size_t an, const struct acct_hour *v, size_t count)
{
	const struct check_rules *r = x->r;
	size_t nhist = (size_t)r->baseline_days * 24;
	int64_t span = (int64_t)r->baseline_days * 86400;
	size_t lo = 0; /* the first row inside the current hour's history (rows come by hour) */

	for (size_t i = 0; i < count; i++) {
		const struct acct_hour *h = &v[i];

		if (h->hour < x->since) {
			continue;
		}
		if (!x->baseline) {
			if (judge_hour(x, host, hn, acct, an, h) < 0) {
				return -1;
			}
			continue;
		}
		/*
		 * The baseline needs a full history: on a database that holds less than that, every
		 * busy account would look like it jumped from nothing.
		 */
		if (h->n < r->baseline_min || h->n == 0 || x->first > h->hour - span) {
			continue;
		}
		memset(x->hist, 0, nhist * sizeof(*x->hist));
		while (v[lo].hour < h->hour - span) {
			lo++;
		}
		for (size_t j = lo; j < i; j++) {
			x->hist[(size_t)(v[j].hour - (h->hour - span)) / 3600] = v[j].n;
		}
		uint64_t tw, tc;
		enum check_status st = check_baseline(r, h->n, x->hist, nhist, &tw, &tc);
		if (st != CHECK_OK &&
		    check_alerts_add(x->out, CHECK_BASELINE, st, host, hn, acct, an, h->n,
				     st == CHECK_CRITICAL ? tc : tw, h->hour, false) < 0) {
			return -1;
		}
	}
	return 0;
}

/* The (host, account) of the rows being read, copied: a row's bytes last until the next row. */
struct group {
	char *host, *acct; /* NULL: no group yet */
	size_t hn, an;
};

static void group_end(struct group *g)
{
	free(g->host);
	free(g->acct);
	*g = (struct group){0};
}

/* 0, or -1 on no memory (logged; group_end frees what was copied). */
static int group_start(struct group *g, struct span h, struct span a)
{
	group_end(g);
	g->host = check_bytes_dup(h.p, h.n);
	g->acct = check_bytes_dup(a.p, a.n);
	g->hn = h.n;
	g->an = a.n;
	if (g->host == NULL || g->acct == NULL) {
		log_error("out of memory");
		return -1;
	}
	return 0;
}

static bool group_is(const struct group *g, struct span h, struct span a)
{
	return g->host != NULL && span_eq(h, (struct span){g->host, g->hn}) &&
	       span_eq(a, (struct span){g->acct, g->an});
}

/* Reads rows (host, account, hour, n[, domains], ordered so) and judges them group by group. */
static int scan_accounts(struct db_rows *rs, struct acct_ctx *x)
{
	struct acct_hour *v = NULL;
	size_t count = 0, cap = 0;
	struct group g = {0};
	int ret = -1;

	if (rs == NULL) {
		return -1;
	}
	for (;;) {
		struct db_row row;
		bool more = db_rows_next(rs, &row);
		struct span h = row.key[0], a = row.key[1];
		bool same = more && group_is(&g, h, a);
		if (!same && g.host != NULL) {
			if (judge_account(x, g.host, g.hn, g.acct, g.an, v, count) < 0) {
				goto out;
			}
			group_end(&g);
			count = 0;
		}
		if (!more) {
			break;
		}
		if (g.host == NULL && group_start(&g, h, a) < 0) {
			goto out;
		}
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct acct_hour *nv = realloc(v, ncap * sizeof(*nv));
			if (nv == NULL) {
				log_error("out of memory");
				goto out;
			}
			v = nv;
			cap = ncap;
		}
		v[count++] = (struct acct_hour){row.when[0], row.n[0], row.n[1]};
	}
	ret = 0;
out:
	group_end(&g);
	free(v);
	db_rows_free(rs);
	return ret;
}

/* Accounts per IN (...) list of the baseline pass. */
#define CANDIDATES_PER_QUERY 200

/*
 * relay_rcpt and relay_domains over the window's rows; then the baseline, for the few accounts
 * that reached baseline_min in some hour, over their trailing history read through the
 * (auth_user, hour_utc) index, so an hourly check does not scan a week of every account. With
 * none of the three on and no performance data wanted, nothing is read: notify's daily pass
 * judges relay_ips alone, and would otherwise read a day of every account's hours for nothing.
 */
static int collect_accounts(struct db *db, const struct check_rules *r, const struct db_window *w,
			    bool perf, int64_t *first_hour, struct check_alerts *out)
{
	struct candidates cand = {0};
	struct acct_ctx x = {.r = r, .since = w->since, .first = INT64_MAX, .out = out};
	bool baseline = level_on(&r->baseline_factor);
	struct db_window hist = *w;
	int ret = -1;

	if (!perf && !baseline && !level_on(&r->relay_rcpt) && !level_on(&r->relay_domains)) {
		return 0;
	}
	x.cand = baseline ? &cand : NULL;
	if (scan_accounts(db_account_hours(db, w, NULL, 0), &x) < 0) {
		goto out;
	}
	if (cand.count == 0) {
		ret = 0;
		goto out;
	}
	candidates_unique(&cand);
	/* One query per run, not per window: notify judges many windows. */
	if (*first_hour == CHECK_FIRST_HOUR_UNREAD && db_first_hour(db, first_hour) < 0) {
		goto out;
	}
	x.first = *first_hour;
	x.hist = calloc((size_t)r->baseline_days * 24, sizeof(*x.hist));
	if (x.hist == NULL) {
		log_error("out of memory");
		goto out;
	}
	x.baseline = true;
	x.cand = NULL;
	hist.since = w->since - (int64_t)r->baseline_days * 86400;
	for (size_t i = 0; i < cand.count; i += CANDIDATES_PER_QUERY) {
		size_t n = cand.count - i < CANDIDATES_PER_QUERY ? cand.count - i
								 : CANDIDATES_PER_QUERY;
		if (scan_accounts(db_account_hours(db, &hist, cand.v + i, n), &x) < 0) {
			goto out;
		}
	}
	ret = 0;
out:
	free(x.hist);
	candidates_finish(&cand);
	return ret;
}

/*
 * Judges rows of (host, account or IP, time, value) against level, adding an alert for each one
 * that reaches it. 0, or -1 on a database error (logged) or no memory.
 */
static int judge_rows(struct db_rows *rs, enum check_rule rule, const struct check_level *level,
		      bool daily, struct check_alerts *out)
{
	struct db_row row;
	int ret = 0;

	if (rs == NULL) {
		return -1;
	}
	while (db_rows_next(rs, &row)) {
		uint64_t n = row.n[0];
		enum check_status st = check_judge(n, level);
		if (st != CHECK_OK &&
		    check_alerts_add(out, rule, st, row.key[0].p, row.key[0].n, row.key[1].p,
				     row.key[1].n, n, level_reached(level, st), row.when[0],
				     daily) < 0) {
			ret = -1;
			break;
		}
	}
	db_rows_free(rs);
	return ret;
}

static int collect_mismatch(struct db *db, const struct check_rules *r, const struct db_window *w,
			    struct check_alerts *out)
{
	struct db_rows *rs = NULL;
	int ret = -1;
	/* the current (hour, host, account) group */
	int64_t ghour = INT64_MIN;
	struct group g = {0};
	uint64_t gsum = 0;

	if (!level_on(&r->sender_mismatch)) {
		return 0;
	}
	rs = db_sender_hours(db, w);
	if (rs == NULL) {
		goto out;
	}
	for (;;) {
		struct db_row row;
		bool more = db_rows_next(rs, &row);
		struct span h = row.key[0], a = row.key[1], sender = row.key[2];
		bool same = more && row.when[0] == ghour && group_is(&g, h, a);
		if (!same && g.host != NULL) {
			enum check_status st = check_judge(gsum, &r->sender_mismatch);
			if (st != CHECK_OK &&
			    check_alerts_add(out, CHECK_SENDER_MISMATCH, st, g.host, g.hn, g.acct,
					     g.an, gsum, level_reached(&r->sender_mismatch, st),
					     ghour, false) < 0) {
				goto out;
			}
			group_end(&g);
		}
		if (!more) {
			break;
		}
		if (g.host == NULL) {
			ghour = row.when[0];
			gsum = 0;
			if (group_start(&g, h, a) < 0) {
				goto out;
			}
		}
		if (!check_sender_allowed(r, g.acct, g.an) &&
		    !check_sender_matches(sender.p, sender.n, g.acct, g.an)) {
			gsum += row.n[0];
		}
	}
	ret = 0;
out:
	group_end(&g);
	db_rows_free(rs);
	return ret;
}

/* 1 when the ledger is empty. */
static int collect_stale(struct db *db, const struct check_rules *r, int64_t ref, const char *host,
			 struct check_alerts *out)
{
	struct db_rows *rs = db_host_chunks(db, host);
	struct db_row row;
	int ret;

	if (rs == NULL) {
		return -1;
	}
	ret = db_rows_count(rs) == 0 ? 1 : 0;
	while (db_rows_next(rs, &row)) {
		struct span h = row.key[0];
		int64_t newest = row.when[0], oldest = row.when[1];
		/* Files backfilled without a host name belong to no shipper to watch. */
		if (h.n == 0) {
			continue;
		}
		/* A host that only appears after a past window did not exist yet. */
		if (newest == INT64_MIN || oldest > ref) {
			continue;
		}
		out->hosts++;
		uint64_t age = newest < ref ? (uint64_t)(ref - newest) : 0;
		enum check_status st = check_judge(age, &r->stale);
		if (st == CHECK_OK) {
			continue;
		}
		out->stale_hosts++;
		if (check_alerts_add(out, CHECK_STALE, st, h.p, h.n, h.p, h.n, age,
				     level_reached(&r->stale, st), newest, false) < 0) {
			ret = -1;
			break;
		}
	}
	db_rows_free(rs);
	return ret;
}

enum check_collect_result check_collect(struct db *db, const struct check_rules *r, int64_t since,
					int64_t until, unsigned flags, int64_t stale_ref,
					const char *host, int64_t *first_hour,
					struct check_alerts *out)
{
	struct db_window w = {since, until, host};
	uint64_t ips = level_min(&r->relay_ips), denied = level_min(&r->denied);
	bool daily_window = flags & CHECK_DAILY_WINDOW;
	int64_t own_first_hour = CHECK_FIRST_HOUR_UNREAD;
	int empty;

	if (first_hour == NULL) {
		first_hour = &own_first_hour;
	}
	if (collect_accounts(db, r, &w, flags & CHECK_PERF, first_hour, out) < 0 ||
	    (ips != 0 && judge_rows(db_account_ips(db, &w, daily_window, ips), CHECK_RELAY_IPS,
				    &r->relay_ips, true, out) < 0) ||
	    collect_mismatch(db, r, &w, out) < 0 ||
	    (denied != 0 && judge_rows(db_denied_hours(db, &w, denied), CHECK_DENIED, &r->denied,
				       false, out) < 0)) {
		return CHECK_COLLECT_ERROR;
	}
	empty = stale_ref == CHECK_NO_STALE ? 0 : collect_stale(db, r, stale_ref, host, out);
	if (empty < 0) {
		return CHECK_COLLECT_ERROR;
	}
	return empty ? CHECK_COLLECT_EMPTY : CHECK_COLLECT_OK;
}
