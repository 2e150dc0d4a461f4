/*
 * usage: bench-time OUTFILE COMMAND [ARG...]
 * Runs COMMAND and appends one line to OUTFILE: wall seconds, user CPU seconds, system CPU
 * seconds, peak RSS in kB (the largest of COMMAND and the descendants it waited for) and the
 * exit status. Exits with COMMAND's status. /usr/bin/time is not on every fresh machine.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double seconds(struct timeval tv)
{
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fputs("usage: bench-time OUTFILE COMMAND [ARG...]\n", stderr);
		return 2;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pid_t pid = fork();
	if (pid < 0) {
		perror("bench-time: fork");
		return 2;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		perror("bench-time: exec");
		_exit(127);
	}
	int status;
	struct rusage ru;
	/* The only child: RUSAGE_CHILDREN is its usage (and that of what it waited for). */
	if (waitpid(pid, &status, 0) < 0 || getrusage(RUSAGE_CHILDREN, &ru) != 0) {
		perror("bench-time: wait");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	FILE *f = fopen(argv[1], "a");
	if (f == NULL) {
		perror("bench-time: output");
		return 2;
	}
	fprintf(f, "%.3f %.3f %.3f %ld %d\n",
		(double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
		seconds(ru.ru_utime), seconds(ru.ru_stime), ru.ru_maxrss, code);
	fclose(f);
	return code;
}
