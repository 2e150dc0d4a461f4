#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "unit.h"

#include "log.h"
#include "sources.h"

static char dir[64];
/* dir, open as a run's listed directory is: file() names its files in it. */
static struct source_dir dir_open = {.fd = -1};

static int setup(void **unused)
{
	strcpy(dir, "/tmp/rw-sources.XXXXXX");
	if (!mkdtemp(dir)) {
		return -1;
	}
	dir_open.fd = sources_open_dir(dir);
	return dir_open.fd >= 0 ? 0 : -1;
}

static int teardown(void **unused)
{
	char cmd[128];
	close(dir_open.fd);
	dir_open.fd = -1;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void put(const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void put_gz(const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	gzFile g = gzopen(path, "wb6");
	assert_non_null(g);
	assert_int_equal(gzwrite(g, text, (unsigned)strlen(text)), (int)strlen(text));
	gzclose(g);
}

/* The names logrotate and its dateext produce, and what is not ours. */
static void syslog_classify(void **unused)
{
	uint64_t num = 0;
	const char *suffix = NULL;
	size_t slen = 0;
	bool gz;
	assert_int_equal(sources_syslog_classify("maillog", "maillog", &num, &suffix, &slen, &gz),
			 0);
	assert_int_equal(sources_syslog_classify("maillog", "maillog.1", &num, &suffix, &slen, &gz),
			 1);
	assert_int_equal(num, 1);
	assert_false(gz);
	assert_int_equal(
		sources_syslog_classify("maillog", "maillog.12.gz", &num, &suffix, &slen, &gz), 1);
	assert_int_equal(num, 12);
	assert_true(gz);
	assert_int_equal(
		sources_syslog_classify("maillog", "maillog-20140128", &num, &suffix, &slen, &gz),
		2);
	assert_int_equal(slen, 8);
	assert_memory_equal(suffix, "20140128", 8);
	assert_int_equal(sources_syslog_classify("maillog", "maillog-2014-01-28.gz", &num, &suffix,
						 &slen, &gz),
			 2);
	assert_true(gz);
	static const char *const others[] = {
		"maillog.",   "maillog.1.bz2", "maillog.old", "maillog-",   "maillog-x1",
		"maillog.gz", "mail",          "maillog~",    "xmaillog.1", "maillog.1.xz",
	};
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		assert_int_equal(
			sources_syslog_classify("maillog", others[i], &num, &suffix, &slen, &gz),
			-1);
	}
}

static void multilog_names(void **unused)
{
	assert_true(sources_multilog_finished("@400000005e0000000000000a.s"));
	assert_true(sources_multilog_finished("@400000005e0000000000000a.u"));
	assert_false(sources_multilog_finished("@400000005e0000000000000a.x"));
	assert_false(sources_multilog_finished("@400000005E0000000000000a.s"));
	assert_false(sources_multilog_finished("@400000005e000000000000a.s"));
	assert_false(sources_multilog_finished("current"));
	assert_false(sources_multilog_finished("state"));
}

static void expect_order(struct source_list *l, const char *const *names, size_t n)
{
	assert_int_equal(l->n, n);
	for (size_t i = 0; i < n; i++) {
		const char *base = strrchr(l->v[i].path, '/') + 1;
		assert_string_equal(base, names[i]);
		assert_int_equal(l->v[i].live, i == n - 1 && names[i][0] != '@');
	}
}

/* Oldest first: numbered by falling N, then dateext by date, then the live file. */
static void syslog_order(void **unused)
{
	static const char *const files[] = {
		"maillog",   "maillog.1",        "maillog.2.gz",        "maillog.10.gz",
		"maillog.2", "maillog-20140201", "maillog-20140128.gz", "maillog.1.bz2",
		"other.log",
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		put(files[i], "x\n");
	}
	char path[128];
	snprintf(path, sizeof(path), "%s/maillog", dir);
	struct ship_source src = {.path = path, .kind = SHIP_KIND_SYSLOG, .service = ""};
	struct source_list l;
	source_list_init(&l);
	assert_int_equal(sources_discover(&src, &l), 0);
	static const char *const want[] = {
		"maillog.10.gz",       "maillog.2",        "maillog.2.gz", "maillog.1",
		"maillog-20140128.gz", "maillog-20140201", "maillog",
	};
	expect_order(&l, want, sizeof(want) / sizeof(want[0]));
	source_list_finish(&l);
}

static void multilog_order(void **unused)
{
	static const char *const files[] = {
		"current", "@400000005e0000020000000a.u", "@400000005e0000000000000a.s", "lock",
		"state",   "@400000005e0000010000000a.s",
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		put(files[i], "x\n");
	}
	struct ship_source src = {.path = dir, .kind = SHIP_KIND_MULTILOG, .service = "smtp"};
	struct source_list l;
	source_list_init(&l);
	assert_int_equal(sources_discover(&src, &l), 0);
	static const char *const want[] = {
		"@400000005e0000000000000a.s",
		"@400000005e0000010000000a.s",
		"@400000005e0000020000000a.u",
		"current",
	};
	expect_order(&l, want, 4);
	assert_true(l.v[3].live);
	source_list_finish(&l);
}

/* The file name in dir as sources_discover() would list it, whether it exists or not. */
static struct source_file file(const char *name, bool live)
{
	static char path[8][128];
	static int k;
	k = (k + 1) % 8;
	snprintf(path[k], sizeof(path[k]), "%s/%s", dir, name);
	return (struct source_file){
		.path = path[k], .dir = &dir_open, .name = path[k] + strlen(dir) + 1, .live = live};
}

/* Fingerprints a file of no list, as a run's list of its own would. */
static int fingerprint(struct source_file *f)
{
	struct source_list l;
	source_list_init(&l);
	int ret = sources_fingerprint(&l, f);
	source_list_finish(&l);
	return ret;
}

/* The same content plain, gzipped, renamed, or grown, has the same identity. */
static void fingerprint_identity(void **unused)
{
	put("a", "first line\nsecond line\n");
	put_gz("a.gz", "first line\nsecond line\n");
	put("a-grown", "first line\nsecond line\nthird\n");
	put("b", "another first line\n");
	struct source_file a = file("a", true), agz = file("a.gz", false),
			   grown = file("a-grown", false), b = file("b", false);
	assert_int_equal(fingerprint(&a), 0);
	assert_int_equal(fingerprint(&agz), 0);
	assert_int_equal(fingerprint(&grown), 0);
	assert_int_equal(fingerprint(&b), 0);
	assert_true(a.has_fpr && agz.has_fpr && grown.has_fpr && b.has_fpr);
	assert_false(a.gz);
	assert_true(agz.gz);
	assert_memory_equal(a.fpr, agz.fpr, DIGEST_LEN);
	assert_memory_equal(a.fpr, grown.fpr, DIGEST_LEN);
	assert_memory_not_equal(a.fpr, b.fpr, DIGEST_LEN);
	/* The live file's complete lines end here. */
	assert_int_equal(a.line_end, 23);
}

/* No complete line: nothing to ship from a live file; a finished one is named by its content. */
static void fingerprint_partial(void **unused)
{
	put("p", "no newline yet");
	put("e", "");
	struct source_file live = file("p", true), fin = file("p", false), empty = file("e", true),
			   gone = file("does-not-exist", true);
	assert_int_equal(fingerprint(&live), 0);
	assert_false(live.has_fpr);
	assert_int_equal(fingerprint(&fin), 0);
	assert_true(fin.has_fpr);
	assert_int_equal(fingerprint(&empty), 0);
	assert_false(empty.has_fpr);
	/* Rotated away between listing and reading: not an error. */
	assert_int_equal(fingerprint(&gone), 0);
	assert_false(gone.has_fpr);

	/* The whole-content name never equals a line's (which includes the '\n'). */
	put("q", "no newline yet\n");
	struct source_file q = file("q", false);
	assert_int_equal(fingerprint(&q), 0);
	assert_memory_not_equal(q.fpr, fin.fpr, DIGEST_LEN);
}

/* A first line longer than any read buffer. */
static void fingerprint_long_line(void **unused)
{
	size_t n = 300 * 1024;
	char *big = malloc(n + 8);
	assert_non_null(big);
	memset(big, 'x', n);
	strcpy(big + n, "\nend\n");
	put("long", big);
	put_gz("long.gz", big);
	struct source_file a = file("long", true), b = file("long.gz", false);
	assert_int_equal(fingerprint(&a), 0);
	assert_int_equal(fingerprint(&b), 0);
	assert_true(a.has_fpr && b.has_fpr);
	assert_memory_equal(a.fpr, b.fpr, DIGEST_LEN);
	assert_int_equal(a.line_end, n + 5);
	free(big);
}

/*
 * Listed files are opened in the directory they were listed in, by name, never through a link:
 * the directory moved away since is still the one read, and a symlink or a hard link put under a
 * listed name is refused. The pack test's last byte is read only when asked, from the file that
 * was fingerprinted.
 */
static void fingerprint_listed(void **unused)
{
	static const char a[] = "@400000005e0000000000000a.s", b[] = "@400000005e0000010000000a.s";
	put(a, "one\ntwo\n");
	put(b, "three\nno newline at the end");
	put("current", "live\n");
	put("secret", "not a log\n");
	struct ship_source src = {.path = dir, .kind = SHIP_KIND_MULTILOG, .service = "smtp"};
	struct source_list l;
	source_list_init(&l);
	assert_int_equal(sources_discover(&src, &l), 0);
	assert_int_equal(l.n, 3);
	for (size_t i = 0; i < l.n; i++) {
		assert_non_null(l.v[i].dir);
		assert_string_equal(l.v[i].name, strrchr(l.v[i].path, '/') + 1);
		assert_int_equal(sources_fingerprint(&l, &l.v[i]), 0);
		assert_true(l.v[i].has_fpr);
	}
	assert_true(sources_ends_nl(&l.v[0]));
	assert_false(sources_ends_nl(&l.v[1]));
	assert_false(sources_ends_nl(&l.v[2])); /* live: never packed */

	char moved[128], path[256], target[256];
	snprintf(moved, sizeof(moved), "%s.moved", dir);
	assert_int_equal(rename(dir, moved), 0);
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(sources_fingerprint(&l, &l.v[0]), 0);
	assert_true(l.v[0].has_fpr);
	assert_true(sources_ends_nl(&l.v[0]));

	/* Another file under the name since it was fingerprinted: not the one to pack. */
	snprintf(path, sizeof(path), "%s/%s", moved, a);
	snprintf(target, sizeof(target), "%s/secret", moved);
	char other[300];
	snprintf(other, sizeof(other), "%s.new", path);
	FILE *o = fopen(other, "w");
	assert_non_null(o);
	fputs("one\ntwo\n", o);
	assert_int_equal(fclose(o), 0);
	assert_int_equal(rename(other, path), 0);
	assert_false(sources_ends_nl(&l.v[0]));

	/* The log user swaps a link in under a listed name. */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(sources_fingerprint(&l, &l.v[0]), 0);
	assert_false(l.v[0].has_fpr);
	assert_int_equal(l.nrefused, 1); /* refused and warned about, not taken for gone */
	struct stat sb;
	assert_int_equal(sources_open_file(&l.v[0], &sb), -1);
	assert_int_equal(errno, ELOOP);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(link(target, path), 0);
	assert_int_equal(sources_fingerprint(&l, &l.v[0]), 0);
	assert_false(l.v[0].has_fpr);
	assert_int_equal(sources_open_file(&l.v[0], &sb), -1);
	assert_int_equal(errno, EMLINK);
	source_list_finish(&l);

	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", moved);
	assert_int_equal(system(cmd), 0);
}

/*
 * sources_refused(l, path, err) returns refused and warns with a line that holds want, or warns
 * nothing when want is NULL.
 */
static void refuse(struct source_list *l, const char *path, int err, bool refused, const char *want)
{
	char msg[1024];
	log_hold();
	assert_int_equal(sources_refused(l, path, err), refused);
	bool warned = log_release(msg, sizeof(msg));
	if (want) {
		assert_true(warned);
		assert_non_null(strstr(msg, want));
	} else {
		assert_false(warned);
	}
}

/*
 * A refused path is warned about once per run, by the run's list: the same path again (another
 * refusal of it too) is not, another path is, and the next run's list warns anew (nothing is
 * kept between runs). Other errors are not refusals.
 */
static void refused_once(void **unused)
{
	struct source_list run1, run2;
	source_list_init(&run1);
	source_list_init(&run2);
	log_set_level(LOG_WARN);

	refuse(&run1, "/var/log/x", ELOOP, true, "/var/log/x: a symbolic link");
	refuse(&run1, "/var/log/x", EMLINK, true, NULL);
	refuse(&run1, "/var/log/x", ELOOP, true, NULL);
	refuse(&run1, "/var/log/y", EMLINK, true,
	       "/var/log/y: a file with more than one hard link");
	refuse(&run1, "/var/log/z", ENOENT, false, NULL);
	assert_int_equal(run1.nrefused, 2);

	refuse(&run2, "/var/log/x", ELOOP, true, "/var/log/x: a symbolic link");

	log_set_level(LOG_ERROR);
	source_list_finish(&run1);
	source_list_finish(&run2);
}

static void last_line_end(void **unused)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/t", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	/* The last '\n' lies more than one tail buffer before the end. */
	fputs("a\nbb\n", f);
	for (int i = 0; i < 100000; i++) {
		fputc('z', f);
	}
	fclose(f);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	uint64_t end = 99;
	assert_int_equal(sources_last_line_end(fd, 100005, path, &end), 0);
	assert_int_equal(end, 5);
	assert_int_equal(sources_last_line_end(fd, 4, path, &end), 0);
	assert_int_equal(end, 2);
	assert_int_equal(sources_last_line_end(fd, 1, path, &end), 0);
	assert_int_equal(end, 0);
	close(fd);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(syslog_classify),
	cmocka_unit_test(multilog_names),
	cmocka_unit_test_setup_teardown(syslog_order, setup, teardown),
	cmocka_unit_test_setup_teardown(multilog_order, setup, teardown),
	cmocka_unit_test_setup_teardown(fingerprint_identity, setup, teardown),
	cmocka_unit_test_setup_teardown(fingerprint_partial, setup, teardown),
	cmocka_unit_test_setup_teardown(fingerprint_long_line, setup, teardown),
	cmocka_unit_test_setup_teardown(fingerprint_listed, setup, teardown),
	cmocka_unit_test_setup_teardown(last_line_end, setup, teardown),
	cmocka_unit_test(refused_once),
};

UNIT_MAIN("test_sources", tests)
