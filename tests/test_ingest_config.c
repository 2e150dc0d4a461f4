#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

#include "ingest_config.h"
#include "log.h"

/* Writes text to a fresh file with the given mode; returns its path (static). */
static const char *write_conf(const char *text, mode_t mode)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/rw-iconf-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static void keys(void **state)
{
	struct ingest_config c;
	const char *p = write_conf("# comment\n"
				   "defaults_file = /etc/relaywatch/my.cnf\n"
				   "incoming = /srv/drop dir\n"
				   "incoming = /srv/mx1 host=mx1.example.org\n"
				   "max_chunk = 2G\n"
				   "max_keys = 12345\n"
				   "archive = no\n"
				   "tz = Europe/Rome\n"
				   "check_relay_rcpt_warn = 7\n"
				   "check_sender_allow = app@x\t\t b@y \n"
				   "alert_command = /bin/echo\t\t b@y \n",
				   0600);

	ingest_config_init(&c);
	assert_true(c.archive);
	assert_int_equal(ingest_config_load(&c, p, false), 0);
	assert_string_equal(c.defaults_file, "/etc/relaywatch/my.cnf");
	assert_int_equal(c.nincoming, 2);
	assert_string_equal(c.incoming[0].dir, "/srv/drop dir");
	assert_null(c.incoming[0].host);
	assert_string_equal(c.incoming[1].dir, "/srv/mx1");
	assert_string_equal(c.incoming[1].host, "mx1.example.org");
	assert_int_equal(c.max_chunk, (uint64_t)2 << 30);
	assert_int_equal(c.max_keys, 12345);
	assert_false(c.archive);
	assert_string_equal(c.tz, "Europe/Rome");
	assert_int_equal(c.rules.relay_rcpt.warn, 7);
	/* Both lists of words are split alike: blanks, spaces or tabs, however many. */
	assert_int_equal(c.rules.sender_allow_count, 2);
	assert_string_equal(c.rules.sender_allow[0], "app@x");
	assert_string_equal(c.rules.sender_allow[1], "b@y");
	assert_string_equal(c.alert.argv[0], "/bin/echo");
	assert_string_equal(c.alert.argv[1], "b@y");
	assert_null(c.alert.argv[2]);
	ingest_config_finish(&c);
	unlink(p);
}

static void errors(void **state)
{
	static const char *const bad[] = {
		"bogus = 1\n",
		"archive = maybe\n",
		"tz = Mars/Olympus\n",
		"tz = ../../etc/passwd\n",
		"incoming =\n",
		"check_relay_rcpt_warn = lots\n",
		"incoming = /srv/d host=\n",
		"max_chunk = 1k\n",
		"max_keys = 0\n",
		"no equals sign\n",
	};
	struct ingest_config c;
	char want[96], why[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *p = write_conf(bad[i], 0600);

		ingest_config_init(&c);
		log_hold();
		assert_int_equal(ingest_config_load(&c, p, false), -1);
		/* Each refusal names the file and the line. */
		snprintf(want, sizeof(want), "%s:1: ", p);
		if (!log_release(why, sizeof(why)) || strncmp(why, want, strlen(want)) != 0) {
			fail_msg("%s refused with \"%s\", not \"%s...\"", bad[i], why, want);
		}
		ingest_config_finish(&c);
		unlink(p);
	}
}

/* A config others can write is refused: it names the database credentials. */
static void insecure(void **state)
{
	struct ingest_config c;
	const char *p = write_conf("archive = yes\n", 0620);

	ingest_config_init(&c);
	assert_int_equal(ingest_config_load(&c, p, false), -1);
	ingest_config_finish(&c);
	unlink(p);
}

/* The default path may be missing; a path given on the command line may not. */
static void missing(void **state)
{
	struct ingest_config c;

	ingest_config_init(&c);
	assert_int_equal(ingest_config_load(&c, "/nonexistent/ingest.conf", true), 0);
	assert_int_equal(c.nincoming, 0);
	assert_int_equal(ingest_config_load(&c, "/nonexistent/ingest.conf", false), -1);
	ingest_config_finish(&c);
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(keys),
	cmocka_unit_test(errors),
	cmocka_unit_test(insecure),
	cmocka_unit_test(missing),
};

UNIT_MAIN("test_ingest_config", tests)
