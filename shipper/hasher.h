#ifndef RELAYWATCH_HASHER_H
#define RELAYWATCH_HASHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "digest.h"

/*
 * A chunk's SHA-256 and line count, computed by a thread beside the producer: on two cores the
 * hash of a slice runs while the producer deflates the same slice, instead of before it. One
 * slice at a time: the producer posts a slice, deflates it, then waits for it before it changes
 * those bytes or ends the chunk. A small slice is hashed at once in the caller's thread (a
 * thread hand-off would cost more). When the thread cannot be started, everything is hashed in
 * the caller's thread. Errors are logged; errno is not part of the contract.
 */

struct hasher;

/* A hasher with a fresh digest, and its thread when threaded (false: everything is hashed in
 * the caller's thread, when nothing would run beside it, as in a dry run, which deflates
 * nothing); NULL when out of memory (logged). */
struct hasher *hasher_create(bool threaded);

/* Hashes and counts the lines of p[0..n): p must stay unchanged until hasher_wait(). No other
 * slice may be in flight. */
void hasher_post(struct hasher *h, const unsigned char *p, size_t n);

/* Waits for the slice posted last; returns its count of '\n' (0 when none is in flight). */
uint64_t hasher_wait(struct hasher *h);

/* The SHA-256 of everything posted since the last final (none may be in flight); starts anew. */
void hasher_final(struct hasher *h, uint8_t out[static DIGEST_LEN]);

/* Stops the thread and frees. Accepts NULL. */
void hasher_destroy(struct hasher *h);

#endif
