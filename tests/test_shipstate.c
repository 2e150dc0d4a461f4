#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

#include "ship_state.h"

static void fpr_of(uint8_t fpr[DIGEST_LEN], unsigned char seed)
{
	for (size_t i = 0; i < DIGEST_LEN; i++) {
		fpr[i] = (uint8_t)(seed * 31 + i);
	}
}

static char *tmpdir(void)
{
	char tmpl[] = "/tmp/rw-shipstate.XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return strdup(d);
}

static void rmtree(const char *dir)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* Every kind of entry survives save + load unchanged. */
static void round_trip(void **unused)
{
	struct ship_state a, b;
	uint8_t f1[DIGEST_LEN], f2[DIGEST_LEN], f3[DIGEST_LEN], f4[DIGEST_LEN];
	ship_state_init(&a);
	ship_state_init(&b);
	fpr_of(f1, 1);
	fpr_of(f2, 2);
	fpr_of(f3, 3);
	fpr_of(f4, 4);

	struct ship_entry *e = ship_state_add(&a, f1);
	e->offset = 1234;
	e->seen = 1700000000;
	e->done = true;
	e = ship_state_add(&a, f2);
	e->offset = 99;
	e->seen = 1700000001;
	e = ship_state_add(&a, f3);
	e->offset = 10;
	e->seen = 5;
	assert_true(ship_entry_plan(e, 20));
	assert_true(ship_entry_plan(e, 30));
	assert_true(ship_entry_plan(e, SHIP_STATE_EOF));
	e->max_chunk = 65536;
	e = ship_state_add(&a, f4);
	assert_true(ship_entry_plan(e, 7));
	e->max_chunk = 1;

	char *dir = tmpdir();
	char path[256];
	snprintf(path, sizeof(path), "%s/state", dir);
	assert_int_equal(ship_state_save(&a, path), 0);
	assert_int_equal(ship_state_load(&b, path), 0);
	assert_int_equal(b.n, 4);

	size_t la, lb;
	char *ta = ship_state_format(&a, &la);
	char *tb = ship_state_format(&b, &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(ta, tb, la);

	e = ship_state_find(&b, f3);
	assert_non_null(e);
	assert_int_equal(e->offset, 10);
	assert_int_equal(e->nbounds, 3);
	assert_true(e->bounds[2] == SHIP_STATE_EOF);
	assert_int_equal(e->max_chunk, 65536);
	assert_true(ship_state_find(&b, f1)->done);
	assert_int_equal(ship_state_find(&b, f2)->seen, 1700000001);
	/* No temporary file is left behind. */
	char tmp[300];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_not_equal(access(tmp, F_OK), 0);

	free(ta);
	free(tb);
	ship_state_finish(&a);
	ship_state_finish(&b);
	rmtree(dir);
	free(dir);
}

/* A first run has no state file: that is an empty state, not an error. */
static void missing_is_empty(void **unused)
{
	struct ship_state st;
	ship_state_init(&st);
	assert_int_equal(ship_state_load(&st, "/nonexistent/relaywatch/state"), 0);
	assert_int_equal(st.n, 0);
	ship_state_finish(&st);
}

/* A damaged state must stop the run rather than ship everything again. */
static void damaged_refused(void **unused)
{
	static const char *const bad[] = {
		"",
		"something else\n",
		"relaywatch-ship-state 1\n0123 5 5 open\n",
		"relaywatch-ship-state 1\n"
		"0101010101010101010101010101010101010101010101010101010101010101 5 5 open",
		"relaywatch-ship-state 1\n"
		"0101010101010101010101010101010101010101010101010101010101010101 5 5 maybe\n",
		"relaywatch-ship-state 1\n"
		"0101010101010101010101010101010101010101010101010101010101010101 5 5 plan\n",
		"relaywatch-ship-state 1\n"
		"0101010101010101010101010101010101010101010101010101010101010101 9 5 plan 3 9\n",
		"relaywatch-ship-state 1\n"
		"0101010101010101010101010101010101010101010101010101010101010101 1 5 plan 3\n",
		"relaywatch-ship-state 1\n"
		"0101010101010101010101010101010101010101010101010101010101010101 1 5 plan 4,3 9\n",
		"relaywatch-ship-state 1\n"
		"0101010101010101010101010101010101010101010101010101010101010101 1 5 open\n"
		"0101010101010101010101010101010101010101010101010101010101010101 1 5 open\n",
		"relaywatch-ship-state 1\n"
		"0101010101010101010101010101010101010101010101010101010101010101 x 5 open\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ship_state st;
		ship_state_init(&st);
		assert_int_equal(ship_state_parse(&st, "t", bad[i], strlen(bad[i])), -1);
		ship_state_finish(&st);
	}
	const char *good = "relaywatch-ship-state 1\n"
			   "0101010101010101010101010101010101010101010101010101010101010101 1 5 "
			   "plan 4,9,eof 65536\n";
	struct ship_state st;
	ship_state_init(&st);
	assert_int_equal(ship_state_parse(&st, "t", good, strlen(good)), 0);
	ship_state_finish(&st);
}

/* Bounds: strictly increasing, EOF last, full list refuses more. */
static void plan_and_advance(void **unused)
{
	struct ship_entry e = {.offset = 100};
	assert_false(ship_entry_plan(&e, 100));
	assert_true(ship_entry_plan(&e, 200));
	assert_false(ship_entry_plan(&e, 150));
	assert_true(ship_entry_plan(&e, 300));
	assert_int_equal(ship_entry_next_bound(&e, 100), 200);
	assert_int_equal(ship_entry_next_bound(&e, 200), 300);
	assert_int_equal(ship_entry_next_bound(&e, 300), 0);

	/* A chunk cut by max_chunk before the first bound keeps both bounds. */
	ship_entry_advance(&e, 180, false);
	assert_int_equal(e.offset, 180);
	assert_int_equal(e.nbounds, 2);
	ship_entry_advance(&e, 200, false);
	assert_int_equal(e.nbounds, 1);
	assert_true(ship_entry_plan(&e, SHIP_STATE_EOF));
	assert_false(ship_entry_plan(&e, 400));
	ship_entry_advance(&e, 300, false);
	assert_int_equal(e.nbounds, 1);
	assert_false(e.done);
	e.max_chunk = 5;
	ship_entry_advance(&e, 350, true);
	assert_true(e.done);
	assert_int_equal(e.max_chunk, 0);
	assert_int_equal(e.nbounds, 0);
	assert_int_equal(e.offset, 350);
	assert_false(ship_entry_plan(&e, 400));

	struct ship_entry f = {0};
	for (unsigned i = 1; i <= SHIP_STATE_MAX_BOUNDS; i++) {
		assert_true(ship_entry_plan(&f, i * 10));
	}
	assert_false(ship_entry_plan(&f, 10000));
	ship_entry_reset(&f, 0);
	assert_int_equal(f.nbounds, 0);
	assert_true(ship_entry_plan(&f, 5));
}

/* A pack member's plan survives save + load; its delivery (or a reset) ends its membership. */
static void pack_members(void **unused)
{
	struct ship_state a, b;
	uint8_t f1[DIGEST_LEN], f2[DIGEST_LEN];
	ship_state_init(&a);
	ship_state_init(&b);
	fpr_of(f1, 1);
	fpr_of(f2, 2);
	struct ship_entry *e = ship_state_add(&a, f2);
	e->offset = 7;
	assert_true(ship_entry_pack(e, f1, 3));
	assert_false(ship_entry_pack(e, f1, 4));
	e->max_chunk = 65536;
	size_t len;
	char *text = ship_state_format(&a, &len);
	assert_non_null(text);
	assert_non_null(strstr(text, " plan eof 65536 pack="));
	assert_int_equal(ship_state_parse(&b, "t", text, len), 0);
	free(text);
	struct ship_entry *g = ship_state_find(&b, f2);
	assert_non_null(g);
	assert_true(g->packed);
	assert_int_equal(g->pack_index, 3);
	assert_memory_equal(g->pack, f1, DIGEST_LEN);
	assert_int_equal(g->offset, 7);
	ship_entry_advance(g, 70, true);
	assert_true(g->done);
	assert_false(g->packed);
	assert_false(ship_entry_pack(g, f1, 0));

	/* Only "plan eof" may name a pack, with a whole fingerprint and an index. */
	static const char *const bad[] = {
		"plan 4,eof 9 "
		"pack=0101010101010101010101010101010101010101010101010101010101010101:0",
		"plan eof 9 pack=01010101:0",
		"plan eof 9 pack=0101010101010101010101010101010101010101010101010101010101010101",
		"plan eof 9 "
		"pack=0101010101010101010101010101010101010101010101010101010101010101:x",
		"plan eof 9 "
		"pick=0101010101010101010101010101010101010101010101010101010101010101:0",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char buf[512];
		int n = snprintf(
			buf, sizeof(buf),
			"relaywatch-ship-state 1\n"
			"0202020202020202020202020202020202020202020202020202020202020202 1 5 "
			"%s\n",
			bad[i]);
		struct ship_state st;
		ship_state_init(&st);
		assert_int_equal(ship_state_parse(&st, "t", buf, (size_t)n), -1);
		ship_state_finish(&st);
	}
	ship_state_finish(&a);
	ship_state_finish(&b);
}

/* Old entries go, recent ones stay, and lookups still work after the index is rebuilt. */
static void prune(void **unused)
{
	struct ship_state st;
	ship_state_init(&st);
	for (unsigned i = 0; i < 300; i++) {
		uint8_t f[DIGEST_LEN];
		fpr_of(f, (unsigned char)i);
		f[0] = (uint8_t)(i >> 8);
		struct ship_entry *e = ship_state_add(&st, f);
		assert_non_null(e);
		e->seen = i % 2 ? 1000 : 10;
	}
	assert_int_equal(ship_state_prune(&st, 500), 150);
	assert_int_equal(st.n, 150);
	for (unsigned i = 0; i < 300; i++) {
		uint8_t f[DIGEST_LEN];
		fpr_of(f, (unsigned char)i);
		f[0] = (uint8_t)(i >> 8);
		struct ship_entry *e = ship_state_find(&st, f);
		if (i % 2) {
			assert_non_null(e);
		} else {
			assert_null(e);
		}
	}
	ship_state_finish(&st);
}

/* The state file is written to a temporary name and renamed: an unwritable directory leaves
 * the old state intact. */
static void save_keeps_old_on_failure(void **unused)
{
	struct ship_state st;
	ship_state_init(&st);
	uint8_t f[DIGEST_LEN];
	fpr_of(f, 9);
	ship_state_add(&st, f)->offset = 42;
	char *dir = tmpdir();
	char path[256];
	snprintf(path, sizeof(path), "%s/sub/state", dir);
	assert_int_equal(ship_state_save(&st, path), -1);
	ship_state_finish(&st);
	rmtree(dir);
	free(dir);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(round_trip),      cmocka_unit_test(missing_is_empty),
	cmocka_unit_test(damaged_refused), cmocka_unit_test(plan_and_advance),
	cmocka_unit_test(prune),           cmocka_unit_test(save_keeps_old_on_failure),
	cmocka_unit_test(pack_members),
};

UNIT_MAIN("test_shipstate", tests)
