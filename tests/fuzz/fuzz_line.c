/* libFuzzer target: the log-line header and CHKUSER parsers, on lines an attacker shapes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chkuser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A private copy, so reads past the end are caught by ASan. */
	char *line = malloc(size ? size : 1);
	if (!line) {
		return 0;
	}
	memcpy(line, data, size);
	struct logtime lt;
	struct log_header h;
	logtime_init(&lt, 1393632000);
	log_header_parse(line, size, &lt, &h);
	if (h.msg.p < line || h.msg.p + h.msg.n > line + size) {
		abort();
	}
	struct span m = h.msg;
	if (!chkuser_is(m)) {
		/* Reach the message parser whatever the header. */
		m = (struct span){line, size};
		if (!chkuser_is(m)) {
			free(line);
			return 0;
		}
	}
	struct chk_event ev;
	if (chk_parse(m, &ev) == CHK_EVENT) {
		const struct span *f[] = {
			&ev.title, &ev.desc,        &ev.sender,    &ev.auth_user, &ev.identify,
			&ev.helo,  &ev.remote_host, &ev.remote_ip, &ev.rcpt,      &ev.rcpt_domain};
		for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
			/* Every field lies inside the message. */
			if (f[i]->p < m.p || f[i]->p + f[i]->n > m.p + m.n) {
				abort();
			}
		}
	}
	free(line);
	return 0;
}
