#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdlib.h>

#include "digest.h"
#include "log.h"

struct digest {
	EVP_MD_CTX *ctx;
};

struct digest *digest_create(void)
{
	struct digest *d = calloc(1, sizeof(*d));
	if (!d) {
		log_error("out of memory");
		return NULL;
	}
	d->ctx = EVP_MD_CTX_new();
	if (!d->ctx || EVP_DigestInit_ex(d->ctx, EVP_sha256(), NULL) != 1) {
		log_error("SHA-256: %s", ERR_reason_error_string(ERR_get_error()));
		digest_destroy(d);
		return NULL;
	}
	return d;
}

void digest_update(struct digest *d, const void *p, size_t n)
{
	/* EVP_DigestUpdate only fails on a NULL context, which create rules out. */
	EVP_DigestUpdate(d->ctx, p, n);
}

void digest_final(struct digest *d, uint8_t out[static DIGEST_LEN])
{
	unsigned len = DIGEST_LEN;
	EVP_DigestFinal_ex(d->ctx, out, &len);
	EVP_DigestInit_ex(d->ctx, EVP_sha256(), NULL);
}

void digest_destroy(struct digest *d)
{
	if (!d) {
		return;
	}
	EVP_MD_CTX_free(d->ctx);
	free(d);
}

void digest_hex(const uint8_t in[static DIGEST_LEN], char out[static DIGEST_HEX_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < DIGEST_LEN; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[DIGEST_HEX_LEN] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

int digest_unhex(const char *s, uint8_t out[static DIGEST_LEN])
{
	for (size_t i = 0; i < DIGEST_LEN; i++) {
		int hi = hexval(s[2 * i]);
		int lo = hi < 0 ? -1 : hexval(s[2 * i + 1]);
		if (lo < 0) {
			return -1;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return s[DIGEST_HEX_LEN] == '\0' ? 0 : -1;
}

int digest_buf(const void *p, size_t n, uint8_t out[static DIGEST_LEN])
{
	unsigned len = 0;
	if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1 || len != DIGEST_LEN) {
		log_error("SHA-256: %s", ERR_reason_error_string(ERR_get_error()));
		return -1;
	}
	return 0;
}
