#ifndef RELAYWATCH_TESTS_NAIVE_SCAN_H
#define RELAYWATCH_TESTS_NAIVE_SCAN_H

/*
 * What scan_chunk must find in p[0..n), read the slow way, one line at a time: its lines, events
 * and malformed CHKUSER lines. The test of the scan and its fuzz target compare the two.
 */
#include <stdint.h>
#include <string.h>

#include "chkuser.h"
#include "scan.h"

static inline void naive_scan_count(const char *p, size_t n, uint64_t *lines, uint64_t *events,
				    uint64_t *malformed)
{
	struct logtime lt;
	logtime_init(&lt, 1393632000);
	*lines = *events = *malformed = 0;
	for (size_t i = 0; i < n;) {
		const char *nl = memchr(p + i, '\n', n - i);
		size_t len = nl ? (size_t)(nl - (p + i)) : n - i;
		const char *line = p + i;
		(*lines)++;
		i += len + 1;
		struct log_header h;
		struct chk_event ev;
		if (!memmem(line, len, "CHKUSER ", 8)) {
			continue;
		}
		log_header_parse(line, len, &lt, &h);
		if (!chkuser_is(h.msg)) {
			continue;
		}
		if (len > SCAN_LINE_MAX || chk_parse(h.msg, &ev) != CHK_EVENT) {
			(*malformed)++;
		} else {
			(*events)++;
		}
	}
}

#endif
