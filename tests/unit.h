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
#include <stdlib.h>

#include <cmocka.h>

#include "log.h"

/*
 * The main of a test binary, for its file-scope array of cases tests: log lines carry the program
 * name name and only errors are shown (cases provoke refusals and warnings on purpose; a case that
 * reads them sets its own level), and every case runs in UTC whatever the machine's zone (a case
 * that needs another sets TZ itself). Used without a semicolon after it.
 */
#define UNIT_MAIN(name, tests)                                                                     \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		log_init(name, LOG_ERROR);                                                         \
		setenv("TZ", "UTC", 1);                                                            \
		if (argc > 1) {                                                                    \
			cmocka_set_test_filter(argv[1]);                                           \
		}                                                                                  \
		return cmocka_run_group_tests(tests, NULL, NULL);                                  \
	}

#endif
