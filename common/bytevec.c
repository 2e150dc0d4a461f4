#include "bytevec.h"

size_t bytevec_newlines(const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t c = 0, i = 0;

	while (i + BYTEVEC_LEN <= n) {
		bytevec acc = {0};
		/* A byte lane of acc counts up to 255 newlines before it is summed. */
		for (unsigned k = 0; k < 255 && i + BYTEVEC_LEN <= n; k++, i += BYTEVEC_LEN) {
			bytevec a;
			bytevec_load(&a, b + i);
			acc -= (bytevec)(a == '\n');
		}
		c += bytevec_sum(&acc);
	}
	for (; i < n; i++) {
		c += b[i] == '\n';
	}
	return c;
}
