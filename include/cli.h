#ifndef RELAYWATCH_CLI_H
#define RELAYWATCH_CLI_H

#include <stdbool.h>

/*
 * Command-line errors of both programs, one line each, with the user's text escaped. The
 * getopt_long option string must start with ':' so that a missing value is told apart.
 */

/* After getopt_long returned ':' (missing value) or '?' (unknown option): logs which. */
void cli_bad_option(int c, char **argv);

/* True when getopt left no operand; else logs "unexpected argument '...'" and returns false. */
bool cli_no_operands(int argc, char **argv);

#endif
