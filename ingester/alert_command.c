/* close_range (glibc 2.34 and later) */
#define _GNU_SOURCE
#include "alert_command.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "logtime.h"
#include "monoclock.h"

extern char **environ;

/* Words of one alert_command line. */
#define ARGS_MAX 64
/* Output of one run kept for the log; the rest is read and dropped. */
#define OUTPUT_KEEP 2048
/* Lines of that output that reach the log. */
#define OUTPUT_LINES 8
/* How often a run whose output is quiet looks whether the program has exited. */
#define TICK_MS 20

void alert_command_init(struct alert_command *c)
{
	*c = (struct alert_command){.timeout_ms = 30000};
}

static void argv_free(char **argv)
{
	for (size_t i = 0; argv != NULL && argv[i] != NULL; i++) {
		free(argv[i]);
	}
	free(argv);
}

void alert_command_finish(struct alert_command *c)
{
	argv_free(c->argv);
	alert_command_init(c);
}

static int parse_words(const struct config_line *cl, char ***out)
{
	char **argv = calloc(ARGS_MAX + 1, sizeof(*argv));
	const char *p = cl->value, *w;
	size_t n = 0, len;
	int ret = -1;

	if (argv == NULL) {
		log_error("out of memory");
		goto out;
	}
	while ((w = config_word(&p, &len)) != NULL) {
		if (n == ARGS_MAX) {
			config_bad_value(cl, "has more than 64 words");
			goto out;
		}
		argv[n] = strndup(w, len);
		if (argv[n++] == NULL) {
			log_error("out of memory");
			goto out;
		}
	}
	/* No PATH search: cron's and systemd's PATH differ, and a PATH entry may be writable. */
	if (n == 0 || argv[0][0] != '/') {
		config_bad_value(cl, "does not start with an absolute path");
		goto out;
	}
	*out = argv;
	argv = NULL;
	ret = 0;
out:
	argv_free(argv);
	return ret;
}

enum config_set_result alert_command_set(struct alert_command *c, const struct config_line *cl)
{
	if (strcmp(cl->key, "alert_command") == 0) {
		char **argv = NULL;

		if (parse_words(cl, &argv) < 0) {
			return CONFIG_SET_BAD;
		}
		argv_free(c->argv);
		c->argv = argv;
		return CONFIG_SET_APPLIED;
	}
	if (strcmp(cl->key, "alert_timeout") == 0) {
		int64_t s;

		if (logtime_parse_duration(cl->value, &s) < 0 || s > 3600) {
			config_bad_value(cl, "is not a duration from 1s to 1h (e.g. 30s, 2m)");
			return CONFIG_SET_BAD;
		}
		c->timeout_ms = s * 1000;
		return CONFIG_SET_APPLIED;
	}
	return CONFIG_SET_OTHER;
}

/* The caller's environment less RELAYWATCH_*, then env; *owned gets the strings built here. */
static char **env_build(const struct alert_command_env *env, size_t nenv, char ***owned)
{
	size_t n = 0, k = 0;
	char **envp = NULL, **mine = NULL;

	while (environ != NULL && environ[n] != NULL) {
		n++;
	}
	envp = calloc(n + nenv + 1, sizeof(*envp));
	mine = calloc(nenv + 1, sizeof(*mine));
	if (envp == NULL || mine == NULL) {
		goto nomem;
	}
	for (size_t i = 0; i < n; i++) {
		if (strncmp(environ[i], "RELAYWATCH_", 11) != 0) {
			envp[k++] = environ[i];
		}
	}
	for (size_t i = 0; i < nenv; i++) {
		size_t nl = strlen(env[i].name), vl = strlen(env[i].value);
		mine[i] = malloc(nl + vl + 2);
		if (mine[i] == NULL) {
			goto nomem;
		}
		memcpy(mine[i], env[i].name, nl);
		mine[i][nl] = '=';
		memcpy(mine[i] + nl + 1, env[i].value, vl + 1);
		envp[k++] = mine[i];
	}
	*owned = mine;
	return envp;
nomem:
	log_error("out of memory");
	argv_free(mine);
	free(envp);
	return NULL;
}

/*
 * Marks every descriptor above 2 close-on-exec, in the child: execve closes them all, keep (the
 * error pipe, close-on-exec already) with the rest, and a failed execve can still use it. A
 * kernel without the flag (before 5.11: EINVAL) or without close_range (before 5.9: ENOSYS) has
 * them closed one by one but keep. -1 with errno when they could not be.
 */
static int close_on_exec_all_but(int keep)
{
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0) {
		return 0;
	}
	if (errno != EINVAL && errno != ENOSYS) {
		return -1;
	}
	long max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536) {
		max = 65536;
	}
	for (int fd = 3; fd < max; fd++) {
		if (fd != keep) {
			close(fd);
		}
	}
	return 0;
}

/*
 * In the child, between fork and execve: only async-signal-safe calls. On failure the errno
 * goes to the parent through errfd (close-on-exec, so a successful execve closes it silently).
 */
static void child_exec(char *const argv[], char *const envp[], int in_fd, int out_fd, int errfd)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigset_t none;
	int e;

	/* Its own process group, so that a timeout kills what it started as well. */
	setpgid(0, 0);
	/* Ignored signals stay ignored across execve: give the program a normal SIGPIPE. */
	sigaction(SIGPIPE, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Above 2 first, so that no dup2 below overwrites a descriptor still to be moved. */
	in_fd = fcntl(in_fd, F_DUPFD, 3);
	out_fd = fcntl(out_fd, F_DUPFD, 3);
	if (in_fd < 0 || out_fd < 0 || dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 ||
	    dup2(out_fd, 2) < 0) {
		goto fail;
	}
	/* The database connection and anything else open must not leak into the program. */
	if (close_on_exec_all_but(errfd) != 0) {
		goto fail;
	}
	execve(argv[0], argv, envp);
fail:
	e = errno;
	if (write(errfd, &e, sizeof(e)) < 0) {
		/* nothing more to do: the exit status says it */
	}
	_exit(127);
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

struct run {
	const char *input;
	size_t input_len, input_off;
	int in_fd, out_fd; /* our ends: the program's stdin, its stdout + stderr */
	char kept[OUTPUT_KEEP];
	size_t kept_len;
};

/* Writes what the pipe takes of the input; closes it when all is written or nobody reads. */
static void run_feed(struct run *r)
{
	ssize_t n = write(r->in_fd, r->input + r->input_off, r->input_len - r->input_off);

	if (n > 0) {
		r->input_off += (size_t)n;
	}
	if (r->input_off == r->input_len || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		close_fd(&r->in_fd);
	}
}

/* Reads what is there of the output (keeping the first OUTPUT_KEEP bytes); closes it at EOF. */
static void run_drain(struct run *r)
{
	char buf[4096];

	for (;;) {
		ssize_t n = read(r->out_fd, buf, sizeof(buf));
		if (n > 0) {
			size_t keep = sizeof(r->kept) - r->kept_len;
			keep = (size_t)n < keep ? (size_t)n : keep;
			memcpy(r->kept + r->kept_len, buf, keep);
			r->kept_len += keep;
			continue;
		}
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n == 0 || errno != EAGAIN) {
			close_fd(&r->out_fd);
		}
		return;
	}
}

/* The program's output, line by line and escaped: it may print what the alert held. */
static void run_log_output(const struct run *r, enum log_level level)
{
	const char *p = r->kept, *end = r->kept + r->kept_len;
	char esc[LOG_ESCAPE_SIZE];

	for (int lines = 0; p < end && lines < OUTPUT_LINES; lines++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		log_msg(level, "alert_command: %s", log_escape(esc, sizeof(esc), p, len));
		p += len + (nl != NULL);
	}
}

/*
 * Feeds and drains until the program has exited (then takes what output is already there and
 * stops: a background child of it may hold the pipe for long) or the deadline passed. Returns
 * true with *status when it was reaped, false at the deadline.
 */
static bool run_wait(struct run *r, pid_t pid, double deadline, int *status)
{
	for (;;) {
		pid_t w = waitpid(pid, status, WNOHANG);
		if (w == pid || (w < 0 && errno == ECHILD)) {
			if (r->out_fd >= 0) {
				run_drain(r);
			}
			return true;
		}
		int64_t left = (int64_t)((deadline - monoclock_now()) * 1000);
		if (left <= 0) {
			return false;
		}
		struct pollfd pfd[2];
		nfds_t n = 0;
		if (r->in_fd >= 0) {
			pfd[n++] = (struct pollfd){.fd = r->in_fd, .events = POLLOUT};
		}
		if (r->out_fd >= 0) {
			pfd[n++] = (struct pollfd){.fd = r->out_fd, .events = POLLIN};
		}
		/* Both pipes closed: nothing wakes us when it exits, so look every tick. */
		if (poll(pfd, n, (int)(left < TICK_MS ? left : TICK_MS)) <= 0) {
			continue;
		}
		for (nfds_t i = 0; i < n; i++) {
			if (pfd[i].revents == 0) {
				continue;
			}
			if (pfd[i].fd == r->in_fd) {
				run_feed(r);
			} else {
				run_drain(r);
			}
		}
	}
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

enum alert_command_result alert_command_exec(const struct alert_command *c,
					     const struct alert_command_env *env, size_t nenv,
					     const void *input, size_t input_len)
{
	enum alert_command_result res = ALERT_COMMAND_ERROR;
	struct run *r = NULL;
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	char **envp = NULL, **owned = NULL;
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
	bool pipe_saved = false;
	char prog[LOG_ESCAPE_SIZE];
	pid_t pid = -1;
	int status = 0, e = 0;

	if (c->argv == NULL) {
		log_error("alert_command: not configured");
		return ALERT_COMMAND_ERROR;
	}
	log_escape(prog, sizeof(prog), c->argv[0], strlen(c->argv[0]));
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		log_error("out of memory");
		goto out;
	}
	envp = env_build(env, nenv, &owned);
	if (envp == NULL) {
		goto out;
	}
	*r = (struct run){.input = input, .input_len = input_len, .in_fd = -1, .out_fd = -1};
	if (pipe(in) < 0 || pipe(out) < 0 || pipe(err) < 0) {
		log_error("alert_command: pipe: %s", strerror(errno));
		goto out;
	}
	/* Our ends stay ours: no other program we start may inherit them. */
	if (fcntl(in[1], F_SETFD, FD_CLOEXEC) < 0 || fcntl(out[0], F_SETFD, FD_CLOEXEC) < 0 ||
	    fcntl(err[0], F_SETFD, FD_CLOEXEC) < 0 || fcntl(err[1], F_SETFD, FD_CLOEXEC) < 0 ||
	    set_nonblock(in[1]) < 0 || set_nonblock(out[0]) < 0) {
		log_error("alert_command: fcntl: %s", strerror(errno));
		goto out;
	}
	/* A program that exits without reading its input must not kill us with SIGPIPE. */
	if (sigaction(SIGPIPE, &ign, &old_pipe) == 0) {
		pipe_saved = true;
	}
	pid = fork();
	if (pid < 0) {
		log_error("alert_command: fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0) {
		child_exec(c->argv, envp, in[0], out[1], err[1]);
	}
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&err[1]);
	r->in_fd = in[1];
	r->out_fd = out[0];
	in[1] = out[0] = -1;
	/* EOF: execve succeeded; an int: the errno of what failed before it. */
	ssize_t n;
	while ((n = read(err[0], &e, sizeof(e))) < 0 && errno == EINTR) {
	}
	if (n == (ssize_t)sizeof(e)) {
		waitpid(pid, &status, 0);
		log_error("alert_command: %s: %s", prog, strerror(e));
		goto out;
	}
	if (input_len == 0) {
		close_fd(&r->in_fd);
	}
	if (!run_wait(r, pid, monoclock_now() + (double)c->timeout_ms / 1000, &status)) {
		/* The group first: a shell script's sendmail or curl goes with it. */
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
		}
		log_error("alert_command: %s did not finish within %" PRId64 " ms: killed", prog,
			  c->timeout_ms);
		res = ALERT_COMMAND_TIMEOUT;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		res = ALERT_COMMAND_OK;
	} else if (WIFEXITED(status)) {
		log_error("alert_command: %s exited with status %d", prog, WEXITSTATUS(status));
		res = ALERT_COMMAND_FAILED;
	} else {
		log_error("alert_command: %s was killed by signal %d", prog,
			  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		res = ALERT_COMMAND_FAILED;
	}
	run_log_output(r, res == ALERT_COMMAND_OK ? LOG_INFO : LOG_WARN);
out:
	if (pipe_saved) {
		sigaction(SIGPIPE, &old_pipe, NULL);
	}
	if (r != NULL) {
		close_fd(&r->in_fd);
		close_fd(&r->out_fd);
	}
	for (int i = 0; i < 2; i++) {
		close_fd(&in[i]);
		close_fd(&out[i]);
		close_fd(&err[i]);
	}
	argv_free(owned);
	free(envp);
	free(r);
	return res;
}
