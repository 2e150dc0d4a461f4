#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"

#include "alert_command.h"
#include "ingest_config.h"
#include "log.h"

/* A private directory for one case, removed by the case. */
static char dir[64];

static void dir_make(void)
{
	snprintf(dir, sizeof(dir), "/tmp/rw-alertcmd-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static void dir_remove(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* The whole of a small file, NUL-terminated (static). */
static const char *slurp(const char *name)
{
	static char buf[1 << 16];
	char path[128];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* A command of fixed words (the test's own: no alert byte is in them). */
static void command(struct alert_command *c, int64_t timeout_ms, const char *const *words)
{
	size_t n = 0;

	alert_command_init(c);
	while (words[n] != NULL) {
		n++;
	}
	c->argv = calloc(n + 1, sizeof(*c->argv));
	assert_non_null(c->argv);
	for (size_t i = 0; i < n; i++) {
		c->argv[i] = strdup(words[i]);
		assert_non_null(c->argv[i]);
	}
	c->timeout_ms = timeout_ms;
}

static enum alert_command_result sh(const char *script, int64_t timeout_ms,
				    const struct alert_command_env *env, size_t nenv,
				    const char *input, size_t input_len)
{
	const char *words[] = {"/bin/sh", "-c", script, "sh", dir, NULL};
	struct alert_command c;

	command(&c, timeout_ms, words);
	enum alert_command_result r = alert_command_exec(&c, env, nenv, input, input_len);
	alert_command_finish(&c);
	return r;
}

/* The alert reaches the program in its environment and on its standard input, as data. */
static void env_and_stdin(void **state)
{
	static const char json[] = "{\"rule\":\"relay_rcpt\",\"account\":\"x$(touch p)\"}";
	const struct alert_command_env env[] = {
		{"RELAYWATCH_RULE", "relay_rcpt"},
		{"RELAYWATCH_SUBJECT", "x$(touch\\x20p)@evil.test`touch p`"},
	};

	dir_make();
	/* Inherited RELAYWATCH_ variables (a test's crash point, say) never reach the command. */
	assert_int_equal(setenv("RELAYWATCH_CRASH", "check:1", 1), 0);
	assert_int_equal(setenv("RW_KEEP", "kept", 1), 0);
	assert_int_equal(
		sh("cd \"$1\" && env >env.txt && cat >stdin.txt", 5000, env, 2, json, strlen(json)),
		ALERT_COMMAND_OK);
	assert_string_equal(slurp("stdin.txt"), json);
	const char *e = slurp("env.txt");
	assert_non_null(strstr(e, "\nRELAYWATCH_RULE=relay_rcpt\n"));
	assert_non_null(strstr(e, "\nRELAYWATCH_SUBJECT=x$(touch\\x20p)@evil.test`touch p`\n"));
	assert_non_null(strstr(e, "\nRW_KEEP=kept\n"));
	assert_null(strstr(e, "RELAYWATCH_CRASH"));
	struct stat sb;
	char p[128];
	snprintf(p, sizeof(p), "%s/p", dir);
	assert_int_equal(stat(p, &sb), -1);
	unsetenv("RELAYWATCH_CRASH");
	unsetenv("RW_KEEP");
	dir_remove();
}

/* A word of the configured command is one argument, whatever characters it holds. */
static void words_are_arguments(void **state)
{
	struct ingest_config c;
	char conf[128], script[128];
	FILE *f;

	dir_make();
	snprintf(script, sizeof(script), "%s/args.sh", dir);
	f = fopen(script, "w");
	assert_non_null(f);
	fputs("printf '%s|' \"$@\" >\"${0%/*}/out\"\n", f);
	fclose(f);
	snprintf(conf, sizeof(conf), "%s/ingest.conf", dir);
	f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "alert_command = /bin/sh  %s\ta;b $(touch${IFS}%s/p) `id` >x\n", script, dir);
	fputs("alert_timeout = 2m\n", f);
	fclose(f);
	assert_int_equal(chmod(conf, 0600), 0);
	ingest_config_init(&c);
	assert_int_equal(ingest_config_load(&c, conf, false), 0);
	assert_int_equal(c.alert.timeout_ms, 120000);
	assert_string_equal(c.alert.argv[0], "/bin/sh");
	assert_string_equal(c.alert.argv[1], script);
	assert_null(c.alert.argv[6]);
	assert_int_equal(alert_command_exec(&c.alert, NULL, 0, NULL, 0), ALERT_COMMAND_OK);
	ingest_config_finish(&c);
	char want[256];
	snprintf(want, sizeof(want), "a;b|$(touch${IFS}%s/p)|`id`|>x|", dir);
	assert_string_equal(slurp("out"), want);
	struct stat sb;
	char p[128];
	snprintf(p, sizeof(p), "%s/p", dir);
	assert_int_equal(stat(p, &sb), -1);
	dir_remove();
}

static void config_errors(void **state)
{
	static const char *const bad[] = {
		"alert_command = mail-me\n", "alert_command = ./relative arg\n",
		"alert_command =   \n",      "alert_timeout = 30\n",
		"alert_timeout = 2h\n",      "alert_timeout = soon\n",
		"alert_timeout = 0s\n",      "alert_timeout = 0m\n",
	};
	struct ingest_config c;
	char conf[128], want[192], why[512] = "";

	dir_make();
	snprintf(conf, sizeof(conf), "%s/ingest.conf", dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		FILE *f = fopen(conf, "w");
		assert_non_null(f);
		fputs(bad[i], f);
		fclose(f);
		assert_int_equal(chmod(conf, 0600), 0);
		ingest_config_init(&c);
		log_hold();
		if (ingest_config_load(&c, conf, false) != -1) {
			fail_msg("accepted: %s", bad[i]);
		}
		/* Refused as the other bad values are: the file and line, then the key. */
		snprintf(want, sizeof(want), "%s:1: %.*s: ", conf, (int)strcspn(bad[i], " "),
			 bad[i]);
		if (!log_release(why, sizeof(why)) || strncmp(why, want, strlen(want)) != 0) {
			fail_msg("%s refused with \"%s\", not \"%s...\"", bad[i], why, want);
		}
		ingest_config_finish(&c);
	}
	dir_remove();
}

static void exit_status(void **state)
{
	dir_make();
	assert_int_equal(sh("exit 0", 5000, NULL, 0, NULL, 0), ALERT_COMMAND_OK);
	assert_int_equal(sh("exit 3", 5000, NULL, 0, NULL, 0), ALERT_COMMAND_FAILED);
	assert_int_equal(sh("kill -TERM $$", 5000, NULL, 0, NULL, 0), ALERT_COMMAND_FAILED);
	/* No such program: nothing ran. */
	const char *words[] = {"/nonexistent/relaywatch-alert", NULL};
	struct alert_command c;
	command(&c, 5000, words);
	assert_int_equal(alert_command_exec(&c, NULL, 0, "x", 1), ALERT_COMMAND_ERROR);
	alert_command_finish(&c);
	dir_remove();
}

/* Whether pid is gone or only a zombie waiting for its new parent. */
static bool dead(pid_t pid)
{
	char path[64], buf[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL) {
		return true;
	}
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return p != NULL && p[1] == ' ' && p[2] == 'Z';
}

/* A program that hangs is killed at the timeout, with what it started, and reaped. */
static void timeout_kills(void **state)
{
	struct timespec pause = {0, 10 * 1000 * 1000};

	dir_make();
	assert_int_equal(
		sh("sleep 600 & echo $! >\"$1/pid\"; exec sleep 600", 300, NULL, 0, NULL, 0),
		ALERT_COMMAND_TIMEOUT);
	pid_t grandchild = (pid_t)atol(slurp("pid"));
	assert_true(grandchild > 1);
	/* SIGKILL was sent before we returned; its delivery to the other process is the kernel's.
	 */
	for (int i = 0; i < 500 && !dead(grandchild); i++) {
		nanosleep(&pause, NULL);
	}
	assert_true(dead(grandchild));
	/* Our direct child was reaped: none is left to wait for. */
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	dir_remove();
}

/* Output far beyond a pipe's buffer never blocks the program; input it ignores is no error. */
static void output_and_input_floods(void **state)
{
	size_t big = 4u << 20;
	char *input = malloc(big);

	assert_non_null(input);
	memset(input, 'j', big);
	dir_make();
	struct sigaction before;
	assert_int_equal(sigaction(SIGPIPE, NULL, &before), 0);
	assert_int_equal(sh("head -c 20000000 /dev/zero; echo done", 60000, NULL, 0, NULL, 0),
			 ALERT_COMMAND_OK);
	assert_int_equal(sh("exit 0", 60000, NULL, 0, input, big), ALERT_COMMAND_OK);
	assert_int_equal(sh("exec 0<&-; sleep 0; exit 0", 60000, NULL, 0, input, big),
			 ALERT_COMMAND_OK);
	assert_int_equal(sh("wc -c >\"$1/n\"", 60000, NULL, 0, input, big), ALERT_COMMAND_OK);
	assert_int_equal(atol(slurp("n")), (long)big);
	/* We are still alive: SIGPIPE was ignored, and it is restored afterwards. */
	struct sigaction sa;
	assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
	assert_true(sa.sa_handler == before.sa_handler);
	free(input);
	dir_remove();
}

/* The database connection or any other descriptor of ours is not inherited. */
static void no_descriptor_leaks(void **state)
{
	char path[128];

	dir_make();
	snprintf(path, sizeof(path), "%s/open", dir);
	int fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(dup2(fd, 42), 42);
	assert_int_equal(sh("ls /proc/self/fd >\"$1/fds\"", 5000, NULL, 0, "x", 1),
			 ALERT_COMMAND_OK);
	close(42);
	close(fd);
	/* 0, 1, 2, and the one ls opened to list the directory. */
	assert_string_equal(slurp("fds"), "0\n1\n2\n3\n");
	dir_remove();
}

static const struct CMUnitTest tests[] = {
	cmocka_unit_test(env_and_stdin),       cmocka_unit_test(words_are_arguments),
	cmocka_unit_test(config_errors),       cmocka_unit_test(exit_status),
	cmocka_unit_test(timeout_kills),       cmocka_unit_test(output_and_input_floods),
	cmocka_unit_test(no_descriptor_leaks),
};

UNIT_MAIN("test_alert_command", tests)
