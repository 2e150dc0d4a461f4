#ifndef RELAYWATCH_TESTS_UNIT_H
#define RELAYWATCH_TESTS_UNIT_H

/*
 * cmocka glue: each test binary runs every case, or only the one named by argv[1], so that meson
 * registers each case on its own ("chkuser@relaying") and a failure names its case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"

/*
 * Whether tests[0..n) holds a case named name. cmocka runs no case and passes when its filter
 * matches none: a case registered in tests/meson.build under a name the binary lacks (a typo, a
 * case renamed or dropped) would pass without running.
 */
static inline int unit_has_case(const struct CMUnitTest *tests, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(tests[i].name, name) == 0) {
			return 1;
		}
	}
	return 0;
}

/*
 * The main of a test binary, for its file-scope array of cases tests: log lines carry the program
 * name name and only errors are shown (cases provoke refusals and warnings on purpose; a case that
 * reads them sets its own level), and every case runs in UTC whatever the machine's zone (a case
 * that needs another sets TZ itself). With an argument, runs only the case of that name, and fails
 * when there is none. Used without a semicolon after it.
 */
#define UNIT_MAIN(name, tests)                                                                     \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		log_init(name, LOG_ERROR);                                                         \
		setenv("TZ", "UTC", 1);                                                            \
		if (argc > 1) {                                                                    \
			if (!unit_has_case(tests, sizeof(tests) / sizeof(tests[0]), argv[1])) {    \
				fprintf(stderr, "%s: no case named '%s'\n", name, argv[1]);        \
				return 1;                                                          \
			}                                                                          \
			cmocka_set_test_filter(argv[1]);                                           \
		}                                                                                  \
		return cmocka_run_group_tests(tests, NULL, NULL);                                  \
	}

#endif
