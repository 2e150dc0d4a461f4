/*
 * relaywatch-gen: writes realistic qmail logs of any size, deterministic for a seed, and the exact
 * aggregates an ingester must produce from them (the expectation files that tests/lib.sh's
 * dump_views output is compared with).
 *
 * Standalone on purpose: it shares no code with the parser it checks, so a parser bug cannot hide
 * in both.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char usage[] =
	"Usage: relaywatch-gen [OPTION...]\n"
	"Writes a qmail log with a known mix of CHKUSER and other lines.\n"
	"\n"
	"  -n, --lines N        total lines (default 10000)\n"
	"  -s, --seed S         random seed (default 1)\n"
	"  -f, --format F       syslog (splogger through syslog), multilog (TAI64N labels) or\n"
	"                       labelled (the labelled CHKUSER variant, syslog framing)\n"
	"  -t, --start EPOCH    time of the first line (default 1390973534)\n"
	"      --step-us N      mean time between lines in microseconds (default 300000)\n"
	"  -H, --host NAME      syslog host (default mail1)\n"
	"  -S, --service LIST   syslog tag of the CHKUSER lines, comma-separated names are\n"
	"                       picked at random (default smtp); multilog takes one name\n"
	"  -o, --out FILE       output file (default stdout)\n"
	"  -e, --expect DIR     write event_hourly.tsv, relay_hourly.tsv, denied_hourly.tsv and\n"
	"                       totals.tsv into DIR (created if missing)\n"
	"  -m, --malformed K    make K of the lines truncated CHKUSER lines (counted as lines and\n"
	"                       malformed, never as events)\n"
	"      --incident[=KIND] plant an incident, a burst of lines among the others (default\n"
	"                       KIND compromised): compromised, an account relaying from many\n"
	"                       networks to many domains as other senders; impersonate, an\n"
	"                       application's account sending as other people; probe, one IP\n"
	"                       trying to relay through the server (rejected relaying)\n"
	"      --burst N        the incident's size: N lines from a fifth of the log on, each\n"
	"                       line one of them at even odds (default: the lines between 40 %\n"
	"                       and 45 % of the log, at even odds)\n"
	"      --people         relaying like people: each account from one or two IPs, as its\n"
	"                       own address, to a few dozen domains a day (default: the worst\n"
	"                       case for the tables, where relay keys hardly repeat)\n"
	"  -h, --help           this text\n";

/* ---- random numbers: splitmix64, the same sequence on every platform ---- */

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint32_t below(struct rng *r, uint32_t n)
{
	return (uint32_t)(((rnd(r) >> 32) * (uint64_t)n) >> 32);
}

/* True with probability per/1000. */
static bool chance(struct rng *r, uint32_t per)
{
	return below(r, 1000) < per;
}

/* ---- output buffer ---- */

#define OUT_CAP   (8u << 20)
#define LINE_ROOM 8192u /* no generated line is longer */

struct out {
	FILE *f;
	char *buf;
	size_t len;
	bool failed;
};

static void out_flush(struct out *o)
{
	if (o->len > 0 && fwrite(o->buf, 1, o->len, o->f) != o->len) {
		o->failed = true;
	}
	o->len = 0;
}

static void out_room(struct out *o)
{
	if (o->len + LINE_ROOM > OUT_CAP) {
		out_flush(o);
	}
}

static void put(struct out *o, const char *s, size_t n)
{
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void putc_(struct out *o, char c)
{
	o->buf[o->len++] = c;
}

static void put_u64(struct out *o, uint64_t v)
{
	char tmp[24];
	int i = 0;
	do {
		tmp[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i > 0) {
		o->buf[o->len++] = tmp[--i];
	}
}

/* v as exactly width digits, zero-padded. */
static void put_dec(struct out *o, uint64_t v, int width)
{
	for (int i = width - 1; i >= 0; i--) {
		o->buf[o->len + (size_t)i] = (char)('0' + v % 10);
		v /= 10;
	}
	o->len += (size_t)width;
}

static void put_hex(struct out *o, uint64_t v, int width)
{
	static const char hex[] = "0123456789abcdef";
	for (int i = width - 1; i >= 0; i--) {
		o->buf[o->len + (size_t)i] = hex[v & 15];
		v >>= 4;
	}
	o->len += (size_t)width;
}

/* ---- expectations: counts keyed by the exact TSV row they print as ---- */

struct entry {
	char *key; /* the row without its count, NUL-terminated */
	uint64_t n;
	uint64_t hash;
};

struct counts {
	struct entry *e;
	size_t cap, used;
};

static uint64_t hash_bytes(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
	}
	return h ^ (h >> 29);
}

static void die_nomem(void)
{
	fputs("relaywatch-gen: out of memory\n", stderr);
	exit(1);
}

static void counts_grow(struct counts *c)
{
	size_t ncap = c->cap ? c->cap * 2 : 4096;
	struct entry *ne = calloc(ncap, sizeof(*ne));
	if (!ne) {
		die_nomem();
	}
	for (size_t i = 0; i < c->cap; i++) {
		if (c->e[i].key) {
			size_t j = c->e[i].hash & (ncap - 1);
			while (ne[j].key) {
				j = (j + 1) & (ncap - 1);
			}
			ne[j] = c->e[i];
		}
	}
	free(c->e);
	c->e = ne;
	c->cap = ncap;
}

static void counts_add(struct counts *c, const char *key, size_t n)
{
	if ((c->used + 1) * 2 > c->cap) {
		counts_grow(c);
	}
	uint64_t h = hash_bytes(key, n);
	size_t j = h & (c->cap - 1);
	while (c->e[j].key) {
		if (c->e[j].hash == h && strlen(c->e[j].key) == n &&
		    memcmp(c->e[j].key, key, n) == 0) {
			c->e[j].n++;
			return;
		}
		j = (j + 1) & (c->cap - 1);
	}
	c->e[j].key = malloc(n + 1);
	if (!c->e[j].key) {
		die_nomem();
	}
	memcpy(c->e[j].key, key, n);
	c->e[j].key[n] = '\0';
	c->e[j].hash = h;
	c->e[j].n = 1;
	c->used++;
}

/*
 * Orders rows as LC_ALL=C sort does over whole lines. Keys of one file have the same number of
 * fields and no byte below ' ' but the tab, so comparing the keys (NUL below tab) agrees with
 * comparing "key\tn" lines.
 */
static void counts_finish(struct counts *c)
{
	for (size_t i = 0; i < c->cap; i++) {
		free(c->e[i].key);
	}
	free(c->e);
	*c = (struct counts){0};
}

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = *(const struct entry *const *)a;
	const struct entry *y = *(const struct entry *const *)b;
	return strcmp(x->key, y->key);
}

static int counts_write(struct counts *c, const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "relaywatch-gen: %s: %s\n", path, strerror(errno));
		return -1;
	}
	struct entry **v = malloc((c->used ? c->used : 1) * sizeof(*v));
	if (!v) {
		die_nomem();
	}
	size_t k = 0;
	for (size_t i = 0; i < c->cap; i++) {
		if (c->e[i].key) {
			v[k++] = &c->e[i];
		}
	}
	qsort(v, k, sizeof(*v), entry_cmp);
	for (size_t i = 0; i < k; i++) {
		fprintf(f, "%s\t%llu\n", v[i]->key, (unsigned long long)v[i]->n);
	}
	free(v);
	if (fclose(f) != 0) {
		fprintf(stderr, "relaywatch-gen: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* A row key under construction. */
struct key {
	char b[2048];
	size_t n;
};

static void key_start(struct key *k, const char *hour)
{
	k->n = strlen(hour);
	memcpy(k->b, hour, k->n);
}

static void key_add(struct key *k, const char *s)
{
	size_t n = strlen(s);
	k->b[k->n++] = '\t';
	memcpy(k->b + k->n, s, n);
	k->n += n;
}

/* ---- the world the log describes ---- */

static const char *const local_domains[] = {"example.com", "example.org", "shop.example",
					    "studio-rossi.example"};
#define N_LOCAL (sizeof(local_domains) / sizeof(local_domains[0]))

static const char *const first_names[] = {
	"alice",  "bob",     "carol",   "dave",      "erin",       "frank",  "grace",
	"heidi",  "ivan",    "judy",    "mallory",   "oscar",      "peggy",  "trent",
	"victor", "walter",  "m.rossi", "g.bianchi", "info",       "sales",  "billing",
	"office", "support", "admin",   "hr",        "newsletter", "noreply"};
#define N_FIRST (sizeof(first_names) / sizeof(first_names[0]))

static const char *const words[] = {
	"acme",       "globex",    "initech",   "umbrella",  "hooli",    "vandelay",
	"wayne",      "stark",     "tyrell",    "soylent",   "wonka",    "cyberdyne",
	"oceanic",    "monarch",   "gringotts", "duff",      "krusty",   "ollivander",
	"pied-piper", "dunder",    "sterling",  "prestige",  "massive",  "nakatomi",
	"bluth",      "buynlarge", "aperture",  "blackmesa", "virtucon", "spacely"};
#define N_WORDS (sizeof(words) / sizeof(words[0]))

static const char *const tlds[] = {"example",       "test",       "example.net",
				   "example.co.uk", "example.de", "example.it"};
#define N_TLDS (sizeof(tlds) / sizeof(tlds[0]))

/* Client-chosen strings with the separators the parser must survive (no tab, '\\', newline). */
static const char *const odd_senders[] = {"we:ird|a@b.example",     "x>y@example.net",
					  "o'brien@example.org",    "\"quoted:name\"@example.com",
					  "a|b|c@pipe.example",     "semi;colon@example.net",
					  "' OR 1=1 --@sql.example"};
#define N_ODD_SENDERS (sizeof(odd_senders) / sizeof(odd_senders[0]))

static const char *const helos[] = {
	"mail.example.net",          "[192.0.2.3]",  "localhost",         "WIN-7Q2L9A", "a:b|c>d",
	"\"; DROP TABLE chunks; --", "my helo name", "smtp.acme.example", "",           "ylmf-pc"};
#define N_HELOS (sizeof(helos) / sizeof(helos[0]))

#define N_DOMAINS  240
#define N_ACCOUNTS 60
#define N_APPS     5
#define N_NOISY    5
#define N_BURST_IP 40

struct account {
	char name[80];   /* the AUTH login */
	char addr[80];   /* the address it usually sends as */
	char alias[80];  /* a second address it may send as (a shared box) */
	char ips[3][48]; /* where it usually logs in from */
	unsigned nips;
};

struct world {
	char domains[N_DOMAINS][64]; /* lowercase */
	struct account acc[N_ACCOUNTS];
	char app_ips[N_APPS][48];
	char app_senders[N_APPS][80];
	char noisy[N_NOISY][48];
	char burst_ips[N_BURST_IP][48];
};

static void make_ipv4(struct rng *r, char *out, size_t cap)
{
	static const char *const nets[] = {"192.0.2", "198.51.100", "203.0.113"};
	snprintf(out, cap, "%s.%u", nets[below(r, 3)], 1 + below(r, 254));
}

static void make_ipv6(struct rng *r, char *out, size_t cap)
{
	switch (below(r, 3)) {
	case 0:
		snprintf(out, cap, "2001:db8::%x", 1 + below(r, 0xfffe));
		break;
	case 1:
		snprintf(out, cap, "2001:db8:%x:%x::%x", below(r, 0xffff), below(r, 0xffff),
			 1 + below(r, 0xff));
		break;
	default:
		/* an IPv4 client on a dual-stack listener */
		snprintf(out, cap, "::ffff:198.51.100.%u", 1 + below(r, 254));
		break;
	}
}

static void make_ip(struct rng *r, char *out, size_t cap)
{
	if (chance(r, 150)) {
		make_ipv6(r, out, cap);
	} else {
		make_ipv4(r, out, cap);
	}
}

static void world_init(struct world *w)
{
	/* The same world for every seed: hosts logged with different seeds share their users. */
	struct rng r = {0x5eed5eed12345678ULL};
	for (unsigned i = 0; i < N_DOMAINS; i++) {
		const char *tld = tlds[below(&r, N_TLDS)];
		if (i < N_WORDS) {
			snprintf(w->domains[i], sizeof(w->domains[i]), "%s.%s", words[i], tld);
		} else {
			snprintf(w->domains[i], sizeof(w->domains[i]), "%s-%u.%s",
				 words[i % N_WORDS], (unsigned)(i / N_WORDS), tld);
		}
	}
	for (unsigned i = 0; i < N_ACCOUNTS; i++) {
		struct account *a = &w->acc[i];
		if (i % 13 == 7) {
			/* a plain login without a domain */
			snprintf(a->name, sizeof(a->name), "%s%u", first_names[i % N_FIRST], i);
		} else {
			snprintf(a->name, sizeof(a->name), "%s%s@%s", first_names[i % N_FIRST],
				 i < N_FIRST ? "" : "2", local_domains[i % N_LOCAL]);
		}
		const char *dom = local_domains[i % N_LOCAL];
		if (strchr(a->name, '@')) {
			snprintf(a->addr, sizeof(a->addr), "%s", a->name);
		} else {
			snprintf(a->addr, sizeof(a->addr), "%s@%s", first_names[i % N_FIRST], dom);
		}
		snprintf(a->alias, sizeof(a->alias), "%s@%s", first_names[below(&r, N_FIRST)], dom);
		a->nips = 1 + below(&r, 3);
		for (unsigned j = 0; j < a->nips; j++) {
			make_ip(&r, a->ips[j], sizeof(a->ips[j]));
		}
	}
	static const char *const apps[] = {"noreply@shop.example", "webmail@example.com",
					   "alerts@example.org", "", "crm@studio-rossi.example"};
	for (unsigned i = 0; i < N_APPS; i++) {
		make_ip(&r, w->app_ips[i], sizeof(w->app_ips[i]));
		snprintf(w->app_senders[i], sizeof(w->app_senders[i]), "%s", apps[i]);
	}
	snprintf(w->app_ips[1], sizeof(w->app_ips[1]), "2001:db8:10::25");
	static const char *const noisy[] = {"203.0.113.5", "198.51.100.77", "2001:db8:bad::7",
					    "203.0.113.200", "192.0.2.66"};
	for (unsigned i = 0; i < N_NOISY; i++) {
		snprintf(w->noisy[i], sizeof(w->noisy[i]), "%s", noisy[i]);
	}
	/* A stolen password is used from hosts scattered over many networks (a botnet, proxies). */
	for (unsigned i = 0; i < N_BURST_IP; i++) {
		snprintf(w->burst_ips[i], sizeof(w->burst_ips[i]), "198.%u.%u.%u", 18 + i % 2,
			 i * 6 % 256, 1 + below(&r, 254));
	}
}

/* ---- one CHKUSER line ---- */

enum fmt { FMT_SYSLOG, FMT_MULTILOG, FMT_LABELLED };

struct chk {
	const char *title;
	const char *desc;
	char sender[160];
	const char *auth;
	const char *identify;
	const char *helo;
	char rhost[80];
	char ip[48];
	char rcpt[200];
	const char *rcpt_domain; /* lowercase domain for the expectations; NULL = none */
	bool relay, denied;
};

static void mixed_case(struct rng *r, char *s)
{
	/* Some clients shout: Example.COM. The ingester must lowercase the domain. */
	if (chance(r, 100)) {
		for (char *p = s; *p; p++) {
			if (*p >= 'a' && *p <= 'z' && (p == s || p[-1] == '.' || chance(r, 300))) {
				*p = (char)(*p - 'a' + 'A');
			}
		}
	}
}

static void rcpt_at(struct rng *r, struct chk *c, const char *local, const char *domain)
{
	char dom[80];
	snprintf(dom, sizeof(dom), "%s", domain);
	mixed_case(r, dom);
	snprintf(c->rcpt, sizeof(c->rcpt), "%s@%s", local, dom);
	c->rcpt_domain = domain;
}

static void remote_ext(struct rng *r, struct chk *c)
{
	c->helo = helos[below(r, N_HELOS)];
	if (chance(r, 400)) {
		snprintf(c->rhost, sizeof(c->rhost), "unknown");
	} else {
		snprintf(c->rhost, sizeof(c->rhost), "mx%u.%s", below(r, 9),
			 words[below(r, N_WORDS)]);
		strcat(c->rhost, ".example.net");
	}
	make_ip(r, c->ip, sizeof(c->ip));
}

static void ext_sender(struct rng *r, struct chk *c, const struct world *w)
{
	uint32_t k = below(r, 100);
	if (k < 8) {
		c->sender[0] = '\0';
	} else if (k < 12) {
		snprintf(c->sender, sizeof(c->sender), "%s", odd_senders[below(r, N_ODD_SENDERS)]);
	} else {
		snprintf(c->sender, sizeof(c->sender), "%s@%s", first_names[below(r, N_FIRST)],
			 w->domains[below(r, N_DOMAINS)]);
	}
}

static void local_rcpt(struct rng *r, struct chk *c)
{
	rcpt_at(r, c, first_names[below(r, N_FIRST)], local_domains[below(r, N_LOCAL)]);
}

static void ext_rcpt(struct rng *r, struct chk *c, const struct world *w)
{
	uint32_t k = below(r, 1000);
	if (k < 5) {
		/* the recipient's domain is after the LAST '@' */
		rcpt_at(r, c, "\"odd@local\"", w->domains[below(r, N_DOMAINS)]);
	} else {
		rcpt_at(r, c, first_names[below(r, N_FIRST)], w->domains[below(r, N_DOMAINS)]);
	}
}

struct pick {
	const char *title;
	const char *desc;
	unsigned weight;
	int kind;
};

enum {
	K_INBOUND,
	K_RELAY,
	K_DENIED,
	K_REJRCPT,
	K_INTRUSION,
	K_MUSTAUTH,
	K_SENDER,
	K_NULLSENDER,
	K_DOUBLEBOUNCE,
	K_BADSENDER,
	K_OTHER,
};

/* Every title/description of log-formats.md, with a realistic weight (per mille). */
static const struct pick picks[] = {
	{"accepted rcpt", "found existing recipient", 320, K_INBOUND},
	{"accepted any rcpt", "accepted any recipient for any rcpt domain", 10, K_INBOUND},
	{"accepted any rcpt", "accepted any recipient for this domain", 10, K_INBOUND},
	{"relaying rcpt", "client allowed to relay", 250, K_RELAY},
	{"rejected relaying", "client not allowed to relay", 100, K_DENIED},
	{"rejected rcpt", "not existing recipient", 60, K_REJRCPT},
	{"rejected rcpt", "max number of recipients", 8, K_REJRCPT},
	{"rejected rcpt", "invalid rcpt address format", 8, K_REJRCPT},
	{"rejected rcpt", "invalid rcpt MX domain", 8, K_REJRCPT},
	{"rejected rcpt", "temporary DNS problem", 6, K_REJRCPT},
	{"intrusion threshold", "max number of allowed rcpt", 5, K_INTRUSION},
	{"intrusion threshold", "max number of allowed invalid rcpt", 5, K_INTRUSION},
	{"rejected intrusion", "rcpt ignored, session over intrusion threshold", 9, K_INTRUSION},
	{"rejected intrusion", "rcpt ignored, session over INTRUSION threshold", 3, K_INTRUSION},
	{"no auth resource", "no auth resource available", 3, K_INBOUND},
	{"must auth", "sender not authenticated/authorized", 15, K_MUSTAUTH},
	{"mbx overquota", "rcpt mailbox is overquota", 10, K_INBOUND},
	{"accepted sender", "sender accepted", 80, K_SENDER},
	{"accepted sender", "accepted any sender always", 25, K_SENDER},
	{"accepted sender", "accepted null sender always", 15, K_NULLSENDER},
	{"accepted null sender", "accepted null sender always", 5, K_NULLSENDER},
	{"accepted doublebounce", "accepted qmail doublebounce #@[]", 5, K_DOUBLEBOUNCE},
	{"rejected sender", "invalid sender address format", 8, K_BADSENDER},
	{"rejected sender", "invalid sender MX domain", 7, K_BADSENDER},
	{"rejected sender", "temporary DNS problem", 5, K_BADSENDER},
	/* not in the table: counted under their own text */
	{"rejected greylisting", "try again later", 5, K_OTHER},
	{"accepted rcpt", "found existing recipient in cache", 5, K_INBOUND},
};
#define N_PICKS (sizeof(picks) / sizeof(picks[0]))

static const struct pick *pick_one(struct rng *r)
{
	static unsigned total;
	if (total == 0) {
		for (size_t i = 0; i < N_PICKS; i++) {
			total += picks[i].weight;
		}
	}
	uint32_t k = below(r, total);
	for (size_t i = 0; i < N_PICKS; i++) {
		if (k < picks[i].weight) {
			return &picks[i];
		}
		k -= picks[i].weight;
	}
	return &picks[0];
}

/*
 * --people: the UTC hour of the line being made, and the domains an account (or application,
 * after the accounts) writes to: PEOPLE_DOMAINS a day, drawn from the day and the account
 * alone, of which PEOPLE_HOURLY in any one hour (people answer a few threads at a time).
 */
static bool people;
static int64_t people_hour;
#define PEOPLE_DOMAINS 30
#define PEOPLE_HOURLY  4

static const char *people_domain(struct rng *r, const struct world *w, unsigned who)
{
	uint64_t day = (uint64_t)(people_hour / 24);
	uint64_t k = ((uint64_t)people_hour * 7 + below(r, PEOPLE_HOURLY)) % PEOPLE_DOMAINS;
	struct rng d = {day * 0x9e3779b97f4a7c15ULL ^ (uint64_t)who << 32 ^ k};
	return w->domains[below(&d, N_DOMAINS)];
}

static void make_relay_person(struct rng *r, struct chk *c, const struct world *w)
{
	c->relay = true;
	c->helo = helos[below(r, N_HELOS)];
	snprintf(c->rhost, sizeof(c->rhost), "dsl.isp.example");
	unsigned who;
	if (chance(r, 800)) {
		who = below(r, N_ACCOUNTS);
		const struct account *a = &w->acc[who];
		c->auth = a->name;
		/* At home one day, at the office another: one IP a day, of at most two. */
		unsigned ip =
			(unsigned)((uint64_t)people_hour / 24 + who) % (a->nips < 2 ? a->nips : 2);
		snprintf(c->ip, sizeof(c->ip), "%s", a->ips[ip]);
		snprintf(c->sender, sizeof(c->sender), "%s", chance(r, 980) ? a->addr : a->alias);
	} else {
		unsigned i = below(r, N_APPS);
		who = N_ACCOUNTS + i;
		snprintf(c->ip, sizeof(c->ip), "%s", w->app_ips[i]);
		snprintf(c->sender, sizeof(c->sender), "%s", w->app_senders[i]);
	}
	rcpt_at(r, c, first_names[below(r, N_FIRST)], people_domain(r, w, who));
}

static void make_relay(struct rng *r, struct chk *c, const struct world *w)
{
	if (people) {
		make_relay_person(r, c, w);
		return;
	}
	c->relay = true;
	c->helo = chance(r, 500) ? "" : helos[below(r, N_HELOS)];
	snprintf(c->rhost, sizeof(c->rhost), "%s", chance(r, 600) ? "unknown" : "dsl.isp.example");
	if (chance(r, 650)) {
		const struct account *a = &w->acc[below(r, N_ACCOUNTS)];
		c->auth = a->name;
		if (chance(r, 970)) {
			snprintf(c->ip, sizeof(c->ip), "%s", a->ips[below(r, a->nips)]);
		} else {
			make_ip(r, c->ip, sizeof(c->ip)); /* roaming */
		}
		uint32_t k = below(r, 100);
		if (k < 92) {
			snprintf(c->sender, sizeof(c->sender), "%s", a->addr);
		} else if (k < 97) {
			snprintf(c->sender, sizeof(c->sender), "%s", a->alias);
		} else if (k < 99) {
			snprintf(c->sender, sizeof(c->sender), "%s",
				 odd_senders[below(r, N_ODD_SENDERS)]);
		} else {
			c->sender[0] = '\0';
		}
	} else {
		unsigned i = below(r, N_APPS);
		snprintf(c->ip, sizeof(c->ip), "%s", w->app_ips[i]);
		snprintf(c->sender, sizeof(c->sender), "%s", w->app_senders[i]);
	}
	ext_rcpt(r, c, w);
}

static void make_chk(struct rng *r, struct chk *c, const struct world *w)
{
	const struct pick *p = pick_one(r);
	memset(c, 0, sizeof(*c));
	c->title = p->title;
	c->desc = p->desc;
	c->auth = "";
	c->identify = chance(r, 20) ? "smtp-auth" : "";
	c->rcpt_domain = NULL;
	switch (p->kind) {
	case K_INBOUND:
	case K_REJRCPT:
		remote_ext(r, c);
		ext_sender(r, c, w);
		if (p->kind == K_REJRCPT && chance(r, 100)) {
			/* no domain at all */
			snprintf(c->rcpt, sizeof(c->rcpt), "postmaster");
		} else {
			local_rcpt(r, c);
		}
		break;
	case K_RELAY:
		make_relay(r, c, w);
		break;
	case K_DENIED:
		c->denied = true;
		remote_ext(r, c);
		if (chance(r, 700)) {
			snprintf(c->ip, sizeof(c->ip), "%s", w->noisy[below(r, N_NOISY)]);
		}
		if (chance(r, 300)) {
			/* spoofing one of ours */
			snprintf(c->sender, sizeof(c->sender), "%s@%s",
				 first_names[below(r, N_FIRST)], local_domains[below(r, N_LOCAL)]);
		} else {
			ext_sender(r, c, w);
		}
		if (chance(r, 10)) {
			rcpt_at(r, c, "a@b", w->domains[below(r, N_DOMAINS)]);
		} else {
			ext_rcpt(r, c, w);
		}
		break;
	case K_INTRUSION:
		remote_ext(r, c);
		snprintf(c->ip, sizeof(c->ip), "%s", w->noisy[below(r, N_NOISY)]);
		ext_sender(r, c, w);
		local_rcpt(r, c);
		break;
	case K_MUSTAUTH:
		remote_ext(r, c);
		snprintf(c->sender, sizeof(c->sender), "%s@%s", first_names[below(r, N_FIRST)],
			 local_domains[below(r, N_LOCAL)]);
		ext_rcpt(r, c, w);
		break;
	case K_SENDER:
		remote_ext(r, c);
		ext_sender(r, c, w);
		break;
	case K_NULLSENDER:
		remote_ext(r, c);
		c->sender[0] = '\0';
		break;
	case K_DOUBLEBOUNCE:
		remote_ext(r, c);
		snprintf(c->sender, sizeof(c->sender), "#@[]");
		break;
	case K_BADSENDER:
		remote_ext(r, c);
		snprintf(c->sender, sizeof(c->sender), "%s",
			 chance(r, 500) ? "not-an-address" : "user@nonexistent.invalid");
		break;
	default:
		remote_ext(r, c);
		ext_sender(r, c, w);
		local_rcpt(r, c);
		break;
	}
}

/* The compromised account: logins from everywhere, many domains, forged senders. */
static void make_burst(struct rng *r, struct chk *c, const struct world *w)
{
	memset(c, 0, sizeof(*c));
	c->title = "relaying rcpt";
	c->desc = "client allowed to relay";
	c->relay = true;
	c->auth = w->acc[3].name;
	c->identify = "";
	c->helo = "WIN-7Q2L9A";
	snprintf(c->rhost, sizeof(c->rhost), "unknown");
	snprintf(c->ip, sizeof(c->ip), "%s", w->burst_ips[below(r, N_BURST_IP)]);
	snprintf(c->sender, sizeof(c->sender), "%s@%s", chance(r, 500) ? "billing" : "security",
		 w->domains[below(r, N_DOMAINS)]);
	ext_rcpt(r, c, w);
}

/* An application's account that sends as the people it writes for (or as anyone). */
static void make_impersonate(struct rng *r, struct chk *c, const struct world *w)
{
	memset(c, 0, sizeof(*c));
	c->title = "relaying rcpt";
	c->desc = "client allowed to relay";
	c->relay = true;
	c->auth = "crm@studio-rossi.example";
	c->identify = "";
	c->helo = "crm.studio-rossi.example";
	snprintf(c->rhost, sizeof(c->rhost), "crm.studio-rossi.example");
	snprintf(c->ip, sizeof(c->ip), "%s", w->app_ips[4]);
	snprintf(c->sender, sizeof(c->sender), "%s@%s", first_names[below(r, N_FIRST)],
		 w->domains[below(r, N_DOMAINS)]);
	/* its usual correspondents: the clients of the firm */
	rcpt_at(r, c, first_names[below(r, N_FIRST)], w->domains[below(r, 30)]);
}

/* One address trying the server as an open relay: rejected relaying, over and over. */
static void make_probe(struct rng *r, struct chk *c, const struct world *w)
{
	memset(c, 0, sizeof(*c));
	c->title = "rejected relaying";
	c->desc = "client not allowed to relay";
	c->denied = true;
	c->auth = "";
	c->identify = "";
	c->helo = "ylmf-pc";
	snprintf(c->rhost, sizeof(c->rhost), "unknown");
	snprintf(c->ip, sizeof(c->ip), "203.0.113.250");
	ext_sender(r, c, w);
	ext_rcpt(r, c, w);
}

static void put_chk(struct out *o, const struct chk *c, bool labelled, bool truncate)
{
	puts_(o, "CHKUSER ");
	puts_(o, c->title);
	puts_(o, ": from <");
	puts_(o, c->sender);
	puts_(o, labelled ? "|remoteinfo/auth:" : ":");
	puts_(o, c->auth);
	puts_(o, labelled ? "|chkuser-identify:" : ":");
	puts_(o, c->identify);
	puts_(o, labelled ? "> remote <helo:" : "> remote <");
	puts_(o, c->helo);
	puts_(o, labelled ? "|remotehostname:" : ":");
	puts_(o, c->rhost);
	puts_(o, labelled ? "|remotehostip:" : ":");
	puts_(o, c->ip);
	puts_(o, "> rcpt <");
	puts_(o, c->rcpt);
	if (truncate) {
		/* cut where a line split or a full disk would: the "> : description" never came */
		return;
	}
	puts_(o, "> : ");
	puts_(o, c->desc);
}

/* ---- noise: everything else a qmail log holds ---- */

/* Returns the syslog tag the line would carry ("qmail" for qmail-send, else the service). */
static bool put_noise(struct out *o, struct rng *r, const struct world *w, uint64_t *msgno)
{
	char ip[48];
	make_ipv4(r, ip, sizeof(ip));
	uint32_t pid = 1000 + below(r, 60000);
	uint32_t k = below(r, 100);
	if (k < 12) {
		puts_(o, "tcpserver: status: ");
		put_u64(o, below(r, 40));
		puts_(o, "/40");
	} else if (k < 22) {
		puts_(o, "tcpserver: pid ");
		put_u64(o, pid);
		puts_(o, " from ");
		puts_(o, ip);
	} else if (k < 32) {
		puts_(o, "tcpserver: ok ");
		put_u64(o, pid);
		puts_(o, " mail.example.com:192.0.2.1:25 :");
		puts_(o, ip);
		puts_(o, "::");
		put_u64(o, 1024 + below(r, 60000));
	} else if (k < 42) {
		puts_(o, "tcpserver: end ");
		put_u64(o, pid);
		puts_(o, " status 0");
	} else if (k < 46) {
		puts_(o, "rblsmtpd: ");
		puts_(o, ip);
		puts_(o, " pid ");
		put_u64(o, pid);
		puts_(o, ": 451 http://www.spamhaus.org/query/bl?ip=");
		puts_(o, ip);
	} else if (k < 52) {
		puts_(o, "simscan:[");
		put_u64(o, pid);
		puts_(o, "]:CLEAN (0.00/0.00):");
		put_u64(o, below(r, 5));
		puts_(o, ".");
		put_dec(o, below(r, 10000), 4);
		puts_(o, "s:Re: meeting:");
		puts_(o, ip);
		puts_(o, ":");
		puts_(o, first_names[below(r, N_FIRST)]);
		puts_(o, "@");
		puts_(o, w->domains[below(r, N_DOMAINS)]);
		puts_(o, ":info@example.com");
	} else if (k < 56) {
		puts_(o, "spamdyke[");
		put_u64(o, pid);
		puts_(o, "]: ALLOWED from: ");
		puts_(o, first_names[below(r, N_FIRST)]);
		puts_(o, "@");
		puts_(o, w->domains[below(r, N_DOMAINS)]);
		puts_(o, " to: info@example.com origin_ip: ");
		puts_(o, ip);
		puts_(o, " origin_rdns: (unknown) auth: (unknown) encryption: TLS reason: 250");
	} else if (k < 60) {
		puts_(o, "qmail-smtpd: pid ");
		put_u64(o, pid);
		puts_(o, " from ");
		puts_(o, ip);
		puts_(o, " RCPT TO: <");
		puts_(o, first_names[below(r, N_FIRST)]);
		puts_(o, "@example.com>");
	} else if (k < 61) {
		/* mentions CHKUSER, but the message does not begin with it: not a CHKUSER line */
		puts_(o, "qmail-smtpd: pid ");
		put_u64(o, pid);
		puts_(o, " log: CHKUSER relaying rcpt: from <a@b.example::> remote "
			 "<h:unknown:192.0.2.9> rcpt <c@d.example> : client allowed to relay");
	} else {
		/* qmail-send, logged under its own tag */
		uint64_t m = ++*msgno;
		uint32_t d = below(r, 5);
		if (d == 0) {
			puts_(o, "new msg ");
			put_u64(o, m);
		} else if (d == 1) {
			puts_(o, "info msg ");
			put_u64(o, m);
			puts_(o, ": bytes ");
			put_u64(o, 500 + below(r, 200000));
			puts_(o, " from <");
			puts_(o, w->acc[below(r, N_ACCOUNTS)].name);
			puts_(o, "> qp ");
			put_u64(o, pid);
			puts_(o, " uid 89");
		} else if (d == 2) {
			puts_(o, "starting delivery ");
			put_u64(o, m);
			puts_(o, ": msg ");
			put_u64(o, m);
			puts_(o, " to remote ");
			puts_(o, first_names[below(r, N_FIRST)]);
			puts_(o, "@");
			puts_(o, w->domains[below(r, N_DOMAINS)]);
		} else if (d == 3) {
			puts_(o, "delivery ");
			put_u64(o, m);
			puts_(o, ": success: "
				 "192.0.2.25_accepted_message./Remote_host_said:_250_2.0.0_OK/");
		} else {
			puts_(o, "end msg ");
			put_u64(o, m);
		}
		return true;
	}
	return false;
}

/* ---- stamps ---- */

static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

struct stamp_cache {
	int64_t sec;
	char date[32]; /* "Mon DD HH:MM:SS" */
	int64_t hour;
	char hour_s[64]; /* "YYYY-MM-DD HH:00:00" */
};

static void stamp_update(struct stamp_cache *sc, int64_t sec)
{
	if (sc->sec == sec) {
		return;
	}
	sc->sec = sec;
	time_t t = (time_t)sec;
	struct tm tm;
	gmtime_r(&t, &tm);
	/* splogger's syslog header in local time: we write UTC (the ingester prefers the epoch). */
	snprintf(sc->date, sizeof(sc->date), "%s %2d %02d:%02d:%02d", months[tm.tm_mon], tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec);
	int64_t hour = sec - (sec % 3600 + 3600) % 3600;
	if (hour != sc->hour) {
		sc->hour = hour;
		snprintf(sc->hour_s, sizeof(sc->hour_s), "%04d-%02d-%02d %02d:00:00",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour);
	}
}

/* ---- main ---- */

struct opts {
	uint64_t lines;
	uint64_t seed;
	enum fmt fmt;
	int64_t start;
	uint64_t step_us;
	const char *host;
	char *services[16];
	unsigned nservices;
	const char *out;
	const char *expect;
	uint64_t malformed;
	enum { INC_NONE, INC_COMPROMISED, INC_IMPERSONATE, INC_PROBE } incident;
	uint64_t burst; /* 0: the default window */
};

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-') {
		return -1;
	}
	*v = x;
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{"lines", required_argument, NULL, 'n'},
		{"seed", required_argument, NULL, 's'},
		{"format", required_argument, NULL, 'f'},
		{"start", required_argument, NULL, 't'},
		{"step-us", required_argument, NULL, 'u'},
		{"host", required_argument, NULL, 'H'},
		{"service", required_argument, NULL, 'S'},
		{"out", required_argument, NULL, 'o'},
		{"expect", required_argument, NULL, 'e'},
		{"malformed", required_argument, NULL, 'm'},
		{"incident", optional_argument, NULL, 'i'},
		{"burst", required_argument, NULL, 'b'},
		{"people", no_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	static char default_service[] = "smtp";
	uint64_t v;
	int c;
	*o = (struct opts){.lines = 10000,
			   .seed = 1,
			   .fmt = FMT_SYSLOG,
			   .start = 1390973534,
			   .step_us = 300000,
			   .host = "mail1"};
	while ((c = getopt_long(argc, argv, "n:s:f:t:H:S:o:e:m:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (parse_u64(optarg, &o->lines) != 0) {
				goto bad;
			}
			break;
		case 's':
			if (parse_u64(optarg, &o->seed) != 0) {
				goto bad;
			}
			break;
		case 'f':
			if (strcmp(optarg, "syslog") == 0) {
				o->fmt = FMT_SYSLOG;
			} else if (strcmp(optarg, "multilog") == 0) {
				o->fmt = FMT_MULTILOG;
			} else if (strcmp(optarg, "labelled") == 0) {
				o->fmt = FMT_LABELLED;
			} else {
				goto bad;
			}
			break;
		case 't':
			if (parse_u64(optarg, &v) != 0 || v > (uint64_t)1 << 40) {
				goto bad;
			}
			o->start = (int64_t)v;
			break;
		case 'u':
			if (parse_u64(optarg, &o->step_us) != 0 || o->step_us > 3600000000ULL) {
				goto bad;
			}
			break;
		case 'H':
			o->host = optarg;
			break;
		case 'S':
			o->nservices = 0;
			for (char *save = NULL, *t = strtok_r(optarg, ",", &save); t;
			     t = strtok_r(NULL, ",", &save)) {
				if (o->nservices == 16) {
					goto bad;
				}
				o->services[o->nservices++] = t;
			}
			break;
		case 'o':
			o->out = optarg;
			break;
		case 'e':
			o->expect = optarg;
			break;
		case 'm':
			if (parse_u64(optarg, &o->malformed) != 0) {
				goto bad;
			}
			break;
		case 'i':
			if (optarg == NULL || strcmp(optarg, "compromised") == 0) {
				o->incident = INC_COMPROMISED;
			} else if (strcmp(optarg, "impersonate") == 0) {
				o->incident = INC_IMPERSONATE;
			} else if (strcmp(optarg, "probe") == 0) {
				o->incident = INC_PROBE;
			} else {
				goto bad;
			}
			break;
		case 'b':
			if (parse_u64(optarg, &o->burst) != 0 || o->burst == 0) {
				goto bad;
			}
			break;
		case 'p':
			people = true;
			break;
		case 'h':
			fputs(usage, stdout);
			exit(0);
		default:
			fputs(usage, stderr);
			return -1;
		}
	}
	if (optind != argc) {
		goto bad;
	}
	if (o->nservices == 0) {
		o->services[o->nservices++] = default_service;
	}
	if (o->malformed > o->lines) {
		fputs("relaywatch-gen: --malformed is larger than --lines\n", stderr);
		return -1;
	}
	if (o->fmt == FMT_MULTILOG && o->nservices != 1) {
		fputs("relaywatch-gen: a multilog file has one service\n", stderr);
		return -1;
	}
	for (const char *p = o->host; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\\' || *p == '\n') {
			fputs("relaywatch-gen: --host must not contain blanks or backslashes\n",
			      stderr);
			return -1;
		}
	}
	return 0;
bad:
	fprintf(stderr, "relaywatch-gen: bad arguments (try --help)\n");
	return -1;
}

int main(int argc, char **argv)
{
	struct opts o;
	if (parse_args(argc, argv, &o) != 0) {
		return 2;
	}
	static struct world w;
	world_init(&w);

	struct out out = {.f = stdout};
	if (o.out && !(out.f = fopen(o.out, "w"))) {
		fprintf(stderr, "relaywatch-gen: %s: %s\n", o.out, strerror(errno));
		return 1;
	}
	out.buf = malloc(OUT_CAP);
	if (!out.buf) {
		die_nomem();
	}

	bool expect = o.expect != NULL;
	struct counts ev = {0}, relay = {0}, denied = {0};
	uint64_t n_events = 0, n_malformed = 0;
	struct rng r = {o.seed * 0x2545f4914f6cdd1dULL + 0x1234567ULL};
	struct stamp_cache sc = {.sec = -1, .hour = -1};
	int64_t t_us = o.start * 1000000;
	uint64_t msgno = 10000 + below(&r, 80000);
	uint64_t burst_from = o.lines / 5 * 2, burst_to = burst_from + o.lines / 20, bursts = 0;
	if (o.burst > 0) {
		burst_from = o.lines / 5;
		burst_to = o.lines;
	}
	struct chk c;
	struct key k;

	for (uint64_t i = 0; i < o.lines; i++) {
		int64_t sec = t_us / 1000000;
		uint32_t usec = (uint32_t)(t_us % 1000000);
		stamp_update(&sc, sec);
		out_room(&out);

		/* Exactly o.malformed lines, spread evenly. */
		bool malformed = o.malformed > 0 &&
				 ((i + 1) * o.malformed / o.lines) > (i * o.malformed / o.lines);
		bool is_chk = malformed;
		bool burst = false;
		if (!is_chk) {
			if (o.incident != INC_NONE && i >= burst_from && i < burst_to &&
			    (o.burst == 0 || bursts < o.burst) && chance(&r, 500)) {
				burst = is_chk = true;
				bursts++;
			} else {
				is_chk = chance(&r, 250);
			}
		}
		const char *service = o.services[below(&r, o.nservices)];

		/* Stamps. Noise lines keep the room for their tag decided later. */
		if (o.fmt == FMT_MULTILOG) {
			putc_(&out, '@');
			put_hex(&out, 0x400000000000000aULL + (uint64_t)sec, 16);
			put_hex(&out, (uint64_t)usec * 1000, 8);
			putc_(&out, ' ');
		}

		if (is_chk) {
			if (burst && o.incident == INC_IMPERSONATE) {
				make_impersonate(&r, &c, &w);
			} else if (burst && o.incident == INC_PROBE) {
				make_probe(&r, &c, &w);
			} else if (burst) {
				make_burst(&r, &c, &w);
			} else {
				people_hour = sec / 3600;
				make_chk(&r, &c, &w);
			}
			if (o.fmt != FMT_MULTILOG) {
				put(&out, sc.date, 15);
				putc_(&out, ' ');
				puts_(&out, o.host);
				putc_(&out, ' ');
				puts_(&out, service);
				if (chance(&r, 15)) {
					/* a logger that adds the pid: the service is still the tag
					 */
					putc_(&out, '[');
					put_u64(&out, 1000 + below(&r, 30000));
					putc_(&out, ']');
				}
				puts_(&out, ": ");
				put_u64(&out, (uint64_t)sec);
				putc_(&out, '.');
				put_dec(&out, usec, 6);
				putc_(&out, ' ');
			}
			put_chk(&out, &c, o.fmt == FMT_LABELLED, malformed);
			putc_(&out, '\n');
			if (malformed) {
				n_malformed++;
			} else {
				n_events++;
			}
			if (expect && !malformed) {
				key_start(&k, sc.hour_s);
				key_add(&k, o.host);
				key_add(&k, service);
				key_add(&k, c.title);
				key_add(&k, c.desc);
				counts_add(&ev, k.b, k.n);
				if (c.relay) {
					key_start(&k, sc.hour_s);
					key_add(&k, o.host);
					key_add(&k, service);
					key_add(&k, c.auth);
					key_add(&k, c.sender);
					key_add(&k, c.ip);
					key_add(&k, c.rcpt_domain ? c.rcpt_domain : "");
					counts_add(&relay, k.b, k.n);
				} else if (c.denied) {
					key_start(&k, sc.hour_s);
					key_add(&k, o.host);
					key_add(&k, service);
					key_add(&k, c.ip);
					key_add(&k, c.sender);
					key_add(&k, c.rcpt_domain ? c.rcpt_domain : "");
					counts_add(&denied, k.b, k.n);
				}
			}
		} else {
			/* The message first (it decides the tag), then the header moved in front.
			 */
			char msg[1024];
			size_t mark = out.len;
			bool send = put_noise(&out, &r, &w, &msgno);
			size_t mlen = out.len - mark;
			memcpy(msg, out.buf + mark, mlen);
			out.len = mark;
			if (o.fmt != FMT_MULTILOG) {
				put(&out, sc.date, 15);
				putc_(&out, ' ');
				puts_(&out, o.host);
				putc_(&out, ' ');
				puts_(&out, send ? "qmail" : service);
				puts_(&out, ": ");
				put_u64(&out, (uint64_t)sec);
				putc_(&out, '.');
				put_dec(&out, usec, 6);
				putc_(&out, ' ');
			}
			put(&out, msg, mlen);
			putc_(&out, '\n');
		}
		t_us += (int64_t)(rnd(&r) % (2 * o.step_us + 1));
	}
	out_flush(&out);
	if (fflush(out.f) != 0 || ferror(out.f)) {
		out.failed = true;
	}
	if (o.out && fclose(out.f) != 0) {
		out.failed = true;
	}
	if (out.failed) {
		fprintf(stderr, "relaywatch-gen: %s: write error: %s\n", o.out ? o.out : "stdout",
			strerror(errno));
		return 1;
	}
	free(out.buf);

	if (expect) {
		if (mkdir(o.expect, 0777) != 0 && errno != EEXIST) {
			fprintf(stderr, "relaywatch-gen: %s: %s\n", o.expect, strerror(errno));
			return 1;
		}
		int bad = counts_write(&ev, o.expect, "event_hourly.tsv") != 0 ||
			  counts_write(&relay, o.expect, "relay_hourly.tsv") != 0 ||
			  counts_write(&denied, o.expect, "denied_hourly.tsv") != 0;
		counts_finish(&ev);
		counts_finish(&relay);
		counts_finish(&denied);
		if (bad) {
			return 1;
		}
		char path[4096];
		snprintf(path, sizeof(path), "%s/totals.tsv", o.expect);
		FILE *f = fopen(path, "w");
		if (!f) {
			fprintf(stderr, "relaywatch-gen: %s: %s\n", path, strerror(errno));
			return 1;
		}
		fprintf(f, "lines\t%llu\nevents\t%llu\nmalformed\t%llu\n",
			(unsigned long long)o.lines, (unsigned long long)n_events,
			(unsigned long long)n_malformed);
		if (fclose(f) != 0) {
			fprintf(stderr, "relaywatch-gen: %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	return 0;
}
