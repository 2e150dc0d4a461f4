#ifndef RELAYWATCH_DIGEST_H
#define RELAYWATCH_DIGEST_H

#include <stddef.h>
#include <stdint.h>

/*
 * SHA-256 through OpenSSL's libcrypto (already a dependency of libssh2 and the MySQL client).
 * A chunk is identified by the SHA-256 of its uncompressed bytes.
 */
#define DIGEST_LEN     32
#define DIGEST_HEX_LEN 64

struct digest;

/* NULL on failure (logged). */
struct digest *digest_create(void);
void digest_update(struct digest *d, const void *p, size_t n);
/* Writes the 32-byte digest and resets d for reuse. */
void digest_final(struct digest *d, uint8_t out[static DIGEST_LEN]);
/* Accepts NULL. */
void digest_destroy(struct digest *d);

/* The digest of n bytes at p in one call. 0, or -1 (logged). */
int digest_buf(const void *p, size_t n, uint8_t out[static DIGEST_LEN]);

/* Lowercase hex of a digest, NUL-terminated (65 bytes). */
void digest_hex(const uint8_t in[static DIGEST_LEN], char out[static DIGEST_HEX_LEN + 1]);
/* Parses 64 hex digits (either case); -1 when s is not exactly that. */
int digest_unhex(const char *s, uint8_t out[static DIGEST_LEN]);

#endif
