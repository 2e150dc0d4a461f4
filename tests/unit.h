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

#include <cmocka.h>

#define UNIT_MAIN(tests)                                                                           \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		if (argc > 1) {                                                                    \
			cmocka_set_test_filter(argv[1]);                                           \
		}                                                                                  \
		return cmocka_run_group_tests(tests, NULL, NULL);                                  \
	}

#endif
