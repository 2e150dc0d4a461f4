#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "check_rules.h"
#include "log.h"
#include "logtime.h"

const char *const check_rule_name[CHECK_RULES] = {
	[CHECK_RELAY_RCPT] = "relay_rcpt", [CHECK_RELAY_DOMAINS] = "relay_domains",
	[CHECK_RELAY_IPS] = "relay_ips",   [CHECK_SENDER_MISMATCH] = "sender_mismatch",
	[CHECK_DENIED] = "denied",         [CHECK_BASELINE] = "baseline",
	[CHECK_STALE] = "stale",
};

const char *const check_status_name[4] = {
	[CHECK_OK] = "OK",
	[CHECK_WARNING] = "WARNING",
	[CHECK_CRITICAL] = "CRITICAL",
	[CHECK_UNKNOWN] = "UNKNOWN",
};

void check_rules_init(struct check_rules *r)
{
	*r = (struct check_rules){
		.relay_rcpt = {500, 2000},
		.relay_domains = {50, 200},
		.relay_ips = {10, 30},
		.sender_mismatch = {25, 100},
		.denied = {100, 1000},
		.baseline_factor = {300, 1000},
		.baseline_min = 100,
		.baseline_days = 7,
		.baseline_percentile = 95,
		.stale = {2 * 3600, 6 * 3600},
	};
}

void check_rules_finish(struct check_rules *r)
{
	for (size_t i = 0; i < r->sender_allow_count; i++) {
		free(r->sender_allow[i]);
	}
	free(r->sender_allow);
	r->sender_allow = NULL;
	r->sender_allow_count = 0;
}

static bool is_off(const char *v)
{
	return strcmp(v, "off") == 0 || strcmp(v, "0") == 0;
}

/* "3", "2.5", "2.25" -> hundredths; 0 means off. */
static int parse_factor(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	unsigned frac = 0, fdigits = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p)) {
		return -1;
	}
	while (isdigit((unsigned char)*p)) {
		if (v > 1000000) {
			return -1;
		}
		v = v * 10 + (uint64_t)(*p++ - '0');
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p)) {
			return -1;
		}
		while (isdigit((unsigned char)*p)) {
			if (fdigits < 2) {
				frac = frac * 10 + (unsigned)(*p - '0');
				fdigits++;
			}
			p++;
		}
		while (fdigits < 2) {
			frac *= 10;
			fdigits++;
		}
	}
	if (*p != '\0') {
		return -1;
	}
	*out = v * 100 + frac;
	return 0;
}

static int add_allow(struct check_rules *r, const char *v)
{
	const char *p = v, *w;
	size_t n;

	while ((w = config_word(&p, &n)) != NULL) {
		char **nv = realloc(r->sender_allow, (r->sender_allow_count + 1) * sizeof(*nv));
		if (nv == NULL) {
			log_error("out of memory");
			return -1;
		}
		r->sender_allow = nv;
		char *a = strndup(w, n);
		if (a == NULL) {
			log_error("out of memory");
			return -1;
		}
		r->sender_allow[r->sender_allow_count++] = a;
	}
	return 0;
}

int check_rule_of(const char *name, size_t n)
{
	for (int i = 0; i < CHECK_RULES; i++) {
		if (strlen(check_rule_name[i]) == n && memcmp(check_rule_name[i], name, n) == 0) {
			return i;
		}
	}
	return -1;
}

static struct check_level *level_of(struct check_rules *r, const char *name, size_t n)
{
	static const size_t off[CHECK_RULES] = {
		[CHECK_RELAY_RCPT] = offsetof(struct check_rules, relay_rcpt),
		[CHECK_RELAY_DOMAINS] = offsetof(struct check_rules, relay_domains),
		[CHECK_RELAY_IPS] = offsetof(struct check_rules, relay_ips),
		[CHECK_SENDER_MISMATCH] = offsetof(struct check_rules, sender_mismatch),
		[CHECK_DENIED] = offsetof(struct check_rules, denied),
		[CHECK_BASELINE] = offsetof(struct check_rules, baseline_factor),
		[CHECK_STALE] = offsetof(struct check_rules, stale),
	};
	int rule = check_rule_of(name, n);

	return rule < 0 ? NULL : (struct check_level *)((char *)r + off[rule]);
}

enum config_set_result check_rules_set(struct check_rules *r, const struct config_line *cl)
{
	const char *k = cl->key;
	uint64_t v;

	if (strncmp(k, "check_", 6) != 0) {
		return CONFIG_SET_OTHER;
	}
	k += 6;
	if (strcmp(k, "sender_allow") == 0) {
		return add_allow(r, cl->value) == 0 ? CONFIG_SET_APPLIED : CONFIG_SET_BAD;
	}
	if (strcmp(k, "baseline_min") == 0) {
		return config_uint(cl, 0, UINT64_MAX, &r->baseline_min) == 0 ? CONFIG_SET_APPLIED
									     : CONFIG_SET_BAD;
	}
	if (strcmp(k, "baseline_days") == 0) {
		if (config_uint(cl, 1, 60, &v) < 0) {
			return CONFIG_SET_BAD;
		}
		r->baseline_days = (unsigned)v;
		return CONFIG_SET_APPLIED;
	}
	if (strcmp(k, "baseline_percentile") == 0) {
		if (config_uint(cl, 1, 100, &v) < 0) {
			return CONFIG_SET_BAD;
		}
		r->baseline_percentile = (unsigned)v;
		return CONFIG_SET_APPLIED;
	}

	size_t n = strlen(k);
	bool crit;
	if (n > 5 && strcmp(k + n - 5, "_warn") == 0) {
		crit = false;
	} else if (n > 5 && strcmp(k + n - 5, "_crit") == 0) {
		crit = true;
	} else {
		return CONFIG_SET_OTHER;
	}
	struct check_level *l = level_of(r, k, n - 5);
	if (l == NULL) {
		return CONFIG_SET_OTHER;
	}
	uint64_t *dst = crit ? &l->crit : &l->warn;
	if (is_off(cl->value)) {
		*dst = 0;
		return CONFIG_SET_APPLIED;
	}
	if (l == &r->baseline_factor) {
		if (parse_factor(cl->value, &v) < 0) {
			config_bad_value(cl, "is not a factor (e.g. 3 or 2.5, or off)");
			return CONFIG_SET_BAD;
		}
	} else if (l == &r->stale) {
		int64_t s;
		if (logtime_parse_duration(cl->value, &s) < 0) {
			config_bad_value(cl, "is not a duration (e.g. 90m, 6h, 2d, or off)");
			return CONFIG_SET_BAD;
		}
		v = (uint64_t)s;
	} else if (config_uint(cl, 0, UINT64_MAX, &v) < 0) {
		return CONFIG_SET_BAD;
	}
	*dst = v;
	return CONFIG_SET_APPLIED;
}

static bool ascii_eq_nocase(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
		if (x >= 'A' && x <= 'Z') {
			x = (unsigned char)(x - 'A' + 'a');
		}
		if (y >= 'A' && y <= 'Z') {
			y = (unsigned char)(y - 'A' + 'a');
		}
		if (x != y) {
			return false;
		}
	}
	return true;
}

bool check_sender_allowed(const struct check_rules *r, const char *account, size_t n)
{
	for (size_t i = 0; i < r->sender_allow_count; i++) {
		const char *a = r->sender_allow[i];
		if (strlen(a) == n && ascii_eq_nocase(a, account, n)) {
			return true;
		}
	}
	return false;
}

bool check_sender_matches(const char *sender, size_t sn, const char *account, size_t an)
{
	if (sn == 0) {
		return true;
	}
	if (memchr(account, '@', an) == NULL) {
		/* A system login ("alice") sends as alice@<some domain>. */
		const char *at = memchr(sender, '@', sn);
		if (at != NULL) {
			sn = (size_t)(at - sender);
		}
	}
	return sn == an && ascii_eq_nocase(sender, account, an);
}

enum check_status check_judge(uint64_t value, const struct check_level *l)
{
	if (l->crit != 0 && value >= l->crit) {
		return CHECK_CRITICAL;
	}
	if (l->warn != 0 && value >= l->warn) {
		return CHECK_WARNING;
	}
	return CHECK_OK;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

uint64_t check_percentile(uint64_t *v, size_t n, unsigned p)
{
	if (n == 0) {
		return 0;
	}
	if (p == 0) {
		p = 1;
	}
	if (p > 100) {
		p = 100;
	}
	qsort(v, n, sizeof(*v), cmp_u64);
	/* nearest rank: ceil(p/100 * n), 1-based */
	size_t rank = (n * p + 99) / 100;
	if (rank == 0) {
		rank = 1;
	}
	return v[rank - 1];
}

/* The smallest count strictly above factor/100 x p, and at least min; 0 when factor is off. */
static uint64_t baseline_threshold(uint64_t p, uint64_t factor, uint64_t min)
{
	uint64_t prod, t;

	if (factor == 0) {
		return 0;
	}
	if (__builtin_mul_overflow(p, factor, &prod)) {
		return UINT64_MAX;
	}
	t = prod / 100 + 1;
	return t < min ? min : t;
}

enum check_status check_baseline(const struct check_rules *r, uint64_t value, uint64_t *history,
				 size_t nhist, uint64_t *threshold_warn, uint64_t *threshold_crit)
{
	uint64_t p = check_percentile(history, nhist, r->baseline_percentile);
	struct check_level l = {
		.warn = baseline_threshold(p, r->baseline_factor.warn, r->baseline_min),
		.crit = baseline_threshold(p, r->baseline_factor.crit, r->baseline_min),
	};

	*threshold_warn = l.warn;
	*threshold_crit = l.crit;
	return check_judge(value, &l);
}
