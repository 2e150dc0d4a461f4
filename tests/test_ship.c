#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "chunk.h"
#include "config.h"
#include "log.h"
#include "manifest.h"
#include "shipconf.h"

static void host_label(void **unused)
{
	char out[SHIP_HOST_LABEL_MAX + 1];
	ship_host_label("mail1.example.org", out);
	assert_string_equal(out, "mail1.example.org");
	ship_host_label("a_b/c d\n@e+f", out);
	assert_string_equal(out, "a-b-c-d--e-f");
	ship_host_label(".hidden", out);
	assert_string_equal(out, "xhidden");
	ship_host_label("", out);
	assert_string_equal(out, "unknown");
	char longname[300];
	memset(longname, 'h', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	ship_host_label(longname, out);
	assert_int_equal(strlen(out), SHIP_HOST_LABEL_MAX);
}

/* Names are deterministic, valid drop-directory names, and the temporary one is hidden. */
static void chunk_names(void **unused)
{
	uint8_t fpr[DIGEST_LEN];
	for (size_t i = 0; i < DIGEST_LEN; i++) {
		fpr[i] = (uint8_t)(0xa0 + i);
	}
	char name[SHIP_NAME_MAX], again[SHIP_NAME_MAX], tmp[SHIP_NAME_MAX],
		file[SHIP_NAME_MAX + 16];
	ship_chunk_name("mail1.example.org", fpr, 0, 1048576, name);
	assert_string_equal(name, "mail1.example.org_a0a1a2a3a4a5a6a7_0-1048576");
	ship_chunk_name("mail1.example.org", fpr, 0, 1048576, again);
	assert_string_equal(name, again);
	ship_chunk_name("mail1.example.org", fpr, 0, 1048577, again);
	assert_string_not_equal(name, again);
	snprintf(file, sizeof(file), "%s.gz", name);
	assert_true(manifest_name_valid(file));
	snprintf(file, sizeof(file), "%s.manifest", name);
	assert_true(manifest_name_valid(file));

	/* A pack differs from a chunk of the same bytes by its number of files. */
	ship_pack_name("mail1.example.org", fpr, 0, 1048576, 3, again);
	assert_string_equal(again, "mail1.example.org_a0a1a2a3a4a5a6a7_0-1048576p3");
	snprintf(file, sizeof(file), "%s.manifest", again);
	assert_true(manifest_name_valid(file));

	ship_temp_name("mail1.example.org", fpr, 4096, tmp);
	assert_string_equal(tmp, ".mail1.example.org_a0a1a2a3a4a5a6a7_4096.gz.tmp");
	assert_false(manifest_name_valid(tmp));

	/* The longest possible name still fits the manifest's limit. */
	char host[SHIP_HOST_LABEL_MAX + 1];
	memset(host, 'h', SHIP_HOST_LABEL_MAX);
	host[SHIP_HOST_LABEL_MAX] = '\0';
	ship_chunk_name(host, fpr, UINT64_MAX - 1, UINT64_MAX - 1, name);
	snprintf(file, sizeof(file), "%s.manifest", name);
	assert_true(strlen(file) <= MANIFEST_NAME_MAX);
	assert_true(manifest_name_valid(file));
}

/* Chunks end just past the first '\n' at or after max_chunk - 1 bytes, wherever the buffers
 * happen to split the content. */
static void cut_rule(void **unused)
{
	const unsigned char *text = (const unsigned char *)"aaaa\nbbbb\ncccc\n";
	/* max 6: the first '\n' at or after offset 5 is at 9. */
	assert_int_equal(ship_cut(text, 15, 0, 0, 6), 10);
	/* max 5: the '\n' at offset 4 qualifies. */
	assert_int_equal(ship_cut(text, 15, 0, 0, 5), 5);
	/* The same content delivered from position 3 in two pieces. */
	assert_int_equal(ship_cut(text + 3, 4, 3, 0, 6), SIZE_MAX);
	assert_int_equal(ship_cut(text + 7, 8, 7, 0, 6), 3);
	/* A chunk that started at 10: the cut is relative to its start. */
	assert_int_equal(ship_cut(text + 10, 5, 10, 10, 2), 5);
	/* Not far enough yet. */
	assert_int_equal(ship_cut(text, 15, 0, 0, 100), SIZE_MAX);
	/* A line longer than max_chunk is never split. */
	const unsigned char *longline = (const unsigned char *)"xxxxxxxxxxxxxxxx";
	assert_int_equal(ship_cut(longline, 16, 0, 0, 4), SIZE_MAX);
}

static int load(struct ship_config *c, const char *text)
{
	assert_int_equal(shipconf_init(c), 0);
	return shipconf_load_buffer(c, "ship.conf", text, strlen(text));
}

static void config_keys(void **unused)
{
	struct ship_config c;
	const char *text = "# comment\n"
			   "host = stats.example.org\n"
			   "port = 2222\n"
			   "user = ship-mail1\n"
			   "identity = /etc/relaywatch/id_ed25519\n"
			   "known_hosts = /etc/relaywatch/known_hosts\n"
			   "remote_dir = incoming\n"
			   "state_dir = /var/lib/relaywatch\n"
			   "level = 9\n"
			   "hostname = mail1.example.org\n"
			   "connect_timeout = 5\n"
			   "timeout = 30\n"
			   "parallel = 2\n"
			   "max_chunk = 16M\n"
			   "coalesce_below = 256k\n"
			   "forget_days = 30\n"
			   "source = /var/log/qmail/smtpd multilog service=smtp-mx\n"
			   "source = /var/log/maillog syslog\n";
	assert_int_equal(load(&c, text), 0);
	assert_int_equal(c.nservers, 1);
	assert_string_equal(c.servers[0].host, "stats.example.org");
	assert_int_equal(c.servers[0].port, 2222);
	assert_int_equal(c.port, 2222);
	assert_int_equal(c.level, 9);
	assert_int_equal(c.parallel, 2);
	assert_int_equal(c.max_chunk, 16 * 1024 * 1024);
	assert_int_equal(c.coalesce_below, 256 * 1024);
	assert_int_equal(c.forget_days, 30);
	assert_int_equal(c.nsources, 2);
	assert_int_equal(c.sources[0].kind, SHIP_KIND_MULTILOG);
	assert_string_equal(c.sources[0].service, "smtp-mx");
	assert_int_equal(c.sources[1].kind, SHIP_KIND_SYSLOG);
	assert_string_equal(c.sources[1].service, "");
	assert_string_equal(ship_kind_name(c.sources[1].kind), "syslog");
	shipconf_finish(&c);

	/* Defaults. */
	assert_int_equal(load(&c, "host = h\nuser = u\nidentity = /k\nremote_dir = d\n"
				  "source = /var/log/maillog syslog\n"),
			 0);
	assert_int_equal(c.port, 22);
	assert_int_equal(c.level, 6);
	assert_int_equal(c.coalesce_below, 1024 * 1024);
	assert_non_null(c.hostname);
	shipconf_finish(&c);
}

static void config_errors(void **unused)
{
	static const char *const bad[] = {
		/* missing required keys */
		"host = h\n",
		"host = h\nuser = u\nidentity = /k\nremote_dir = d\n",
		/* bad values */
		"host = h\nuser = u\nidentity = /k\nremote_dir = d\nsource = /a syslog\nport = 0\n",
		"host = h\nuser = u\nidentity = /k\nremote_dir = d\nsource = /a syslog\nlevel = "
		"10\n",
		"host = h\nuser = u\nidentity = /k\nremote_dir = d\nsource = /a syslog\nmax_chunk "
		"= 1T\n",
		"host = h\nuser = u\nidentity = /k\nremote_dir = d\nsource = /a syslog\n"
		"coalesce_below = -1\n",
		"host = h\nuser = u\nidentity = /k\nremote_dir = d\nsource = /a syslog\nfrobnicate "
		"= 1\n",
		"host = h\nuser = u\nidentity = /k\nremote_dir = d\nsource = relative syslog\n",
		"host = h\nuser = u\nidentity = /k\nremote_dir = d\nsource = /a journald\n",
		"host = h\nuser = u\nidentity = /k\nremote_dir = d\nsource = /a syslog smtp\n",
		"host = h\nuser = u\nidentity = /k\nremote_dir = d\nsource = /a\n",
		"host = h\nuser = u\nidentity = /k\nremote_dir = d\nsource = /a syslog service=x "
		"y\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ship_config c;
		assert_int_equal(load(&c, bad[i]), -1);
		shipconf_finish(&c);
	}

	/* The bounds relaywatch-ship.conf(5) gives: a path of at most 992 bytes, a service of at
	 * most 64; one byte more is refused, and the error says which. */
	static const struct {
		size_t path, service;
		const char *error; /* NULL: loaded */
	} sized[] = {
		{992, 64, NULL},
		{993, 64, "ship.conf:5: source: path too long"},
		{992, 65, "ship.conf:5: source: service name longer than 64 bytes"},
	};
	for (size_t i = 0; i < sizeof(sized) / sizeof(sized[0]); i++) {
		char path[1000], service[70], text[1200], msg[256];
		struct ship_config c;
		memset(path, 'p', sized[i].path);
		path[0] = '/';
		path[sized[i].path] = '\0';
		memset(service, 's', sized[i].service);
		service[sized[i].service] = '\0';
		snprintf(text, sizeof(text),
			 "host = h\nuser = u\nidentity = /k\nremote_dir = d\n"
			 "source = %s syslog service=%s\n",
			 path, service);
		log_hold();
		int ret = load(&c, text);
		bool logged = log_release(msg, sizeof(msg));
		if (sized[i].error == NULL) {
			assert_int_equal(ret, 0);
			assert_false(logged);
			assert_string_equal(c.sources[0].path, path);
			assert_string_equal(c.sources[0].service, service);
		} else {
			assert_int_equal(ret, -1);
			assert_true(logged);
			assert_string_equal(msg, sized[i].error);
		}
		shipconf_finish(&c);
	}
}

/*
 * A source's words are split as config_word() splits every list of words (alert_command,
 * check_sender_allow): at blanks, spaces and tabs, however many; a config must not read one way
 * here and another there.
 */
static void config_words(void **unused)
{
	static const char *const values[] = {
		"/var/log/a syslog service=smtp",
		"/var/log/a\tsyslog\tservice=smtp",
		"/var/log/a  \t syslog\t\t service=smtp",
		"/var/log/a \t\t  syslog   \t service=smtp",
	};
	static const char *const want[] = {"/var/log/a", "syslog", "service=smtp"};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char text[256];
		struct ship_config c;
		snprintf(text, sizeof(text),
			 "host = h\nuser = u\nidentity = /k\nremote_dir = d\nsource = %s\n",
			 values[i]);
		assert_int_equal(load(&c, text), 0);
		assert_int_equal(c.nsources, 1);
		assert_string_equal(c.sources[0].path, "/var/log/a");
		assert_int_equal(c.sources[0].kind, SHIP_KIND_SYSLOG);
		assert_string_equal(c.sources[0].service, "smtp");
		shipconf_finish(&c);

		const char *p = values[i], *w;
		size_t n, k = 0;
		while ((w = config_word(&p, &n)) != NULL) {
			assert_true(k < 3);
			assert_int_equal(n, strlen(want[k]));
			assert_memory_equal(w, want[k], n);
			k++;
		}
		assert_int_equal(k, 3);
	}
	/* A tab is a blank, not part of a word: "syslog\tx" is two words, one too many. */
	struct ship_config c;
	assert_int_equal(load(&c, "host = h\nuser = u\nidentity = /k\nremote_dir = d\n"
				  "source = /a syslog\tservice=x\ty\n"),
			 -1);
	shipconf_finish(&c);
}

/* "host" repeated: every server in order, each NAME, NAME:PORT, [v6]:PORT or a bare v6. */
static void config_hosts(void **unused)
{
	struct ship_config c;
	assert_int_equal(load(&c, "host = a.example.org\nhost = b.example.org:2222\n"
				  "host = [2001:db8::1]:2200\nhost = 2001:db8::2\nhost = [::1]\n"
				  "port = 2022\nuser = u\nidentity = /k\nremote_dir = d\n"
				  "source = /a syslog\n"),
			 0);
	assert_int_equal(c.nservers, 5);
	assert_string_equal(c.servers[0].host, "a.example.org");
	assert_int_equal(c.servers[0].port, 2022); /* "port" applies, even when it comes later */
	assert_string_equal(c.servers[1].host, "b.example.org");
	assert_int_equal(c.servers[1].port, 2222);
	assert_string_equal(c.servers[2].host, "2001:db8::1");
	assert_int_equal(c.servers[2].port, 2200);
	assert_string_equal(c.servers[3].host, "2001:db8::2");
	assert_int_equal(c.servers[3].port, 2022);
	assert_string_equal(c.servers[4].host, "::1");
	assert_int_equal(c.servers[4].port, 2022);
	shipconf_finish(&c);
	/* Without a "port" key, 22. */
	assert_int_equal(load(&c, "host = a.example.org\nhost = b.example.org:2222\nuser = u\n"
				  "identity = /k\nremote_dir = d\nsource = /a syslog\n"),
			 0);
	assert_int_equal(c.servers[0].port, 22);
	assert_int_equal(c.servers[1].port, 2222);
	shipconf_finish(&c);

	static const char *const bad[] = {
		"host = a:0\n",    "host = a:65536\n", "host = a:\n",  "host = [::1\n",
		"host = [::1]x\n", "host = []:22\n",   "host = a b\n", "host = a;b\n",
		"host = :22\n",    "host = [::1]:x\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[256];
		snprintf(text, sizeof(text),
			 "%suser = u\nidentity = /k\nremote_dir = d\nsource = /a syslog\n", bad[i]);
		assert_int_equal(load(&c, text), -1);
		shipconf_finish(&c);
	}
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(host_label),    cmocka_unit_test(chunk_names),
	cmocka_unit_test(cut_rule),      cmocka_unit_test(config_keys),
	cmocka_unit_test(config_errors), cmocka_unit_test(config_hosts),
	cmocka_unit_test(config_words),
};

UNIT_MAIN("test_ship", tests)
