#ifndef RELAYWATCH_ESCAPE_H
#define RELAYWATCH_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Rendering of untrusted bytes, one escaper per output kind: a terminal or log line (text), JSON,
 * HTML and TSV. Accounts, senders, HELO-derived hosts, IPs and domains were chosen by SMTP
 * clients: they may hold markup, quotes, terminal escapes, bidi overrides, NUL or bytes that are
 * not UTF-8. Every such string goes out through exactly one of these; the log module applies the
 * text one to every line it writes.
 */

/*
 * The valid UTF-8 sequence at s[0..n) (n > 0): its length 1..4 and code point, or 0 when s[0]
 * does not start one (stray continuation byte, overlong form, surrogate, above U+10FFFF, cut).
 */
size_t escape_utf8(const unsigned char *s, size_t n, uint32_t *cp);

/*
 * Code points that must not reach a reader as themselves: C0 and C1 controls, DEL, the bidi
 * embedding/override/isolate marks (they reorder what follows, so "gro.elpmaxe@" could display
 * as a trusted name), U+2028/U+2029 (line breaks to JavaScript), U+FEFF and U+FFF9..U+FFFB.
 */
bool escape_unsafe_cp(uint32_t cp);

/* HTML text or quoted attribute: & < > " ' as entities; invalid bytes and unsafe code points as
 * U+FFFD (shown as the replacement character). */
void escape_html(FILE *f, const char *s, size_t n);

/*
 * A JSON string, quotes included: " and \ escaped, controls as \n \r \t or \u00XX, other unsafe
 * code points as \uXXXX, and each byte that is not part of valid UTF-8 as \uFFFD (the JSON
 * output is therefore lossy for such bytes; the TSV output keeps them).
 */
void escape_json(FILE *f, const char *s, size_t n);

/*
 * A TSV field that can be turned back into the exact bytes: "\\" for a backslash, \t \n \r,
 * and \xNN for every other byte below 0x20, DEL, each byte that is not part of valid UTF-8, and
 * the bytes of unsafe code points. Valid, safe UTF-8 passes unchanged.
 */
void escape_tsv(FILE *f, const char *s, size_t n);

/* escape_text's flags. */
enum escape_text_flags {
	ESCAPE_NOSPACE = 1,   /* the space as \x20 too (a field of a space-separated line) */
	ESCAPE_BACKSLASH = 2, /* the backslash as itself: text whose own escapes must survive */
	ESCAPE_PIPE = 4, /* '|' as \x7c too: a monitoring plugin's performance data follow it */
};

/*
 * Text for a terminal, a log line or a cron mail, ASCII only: printable ASCII as itself, except
 * the backslash and (with ESCAPE_NOSPACE) the space, everything else as \xNN; cut to at most
 * width columns, ending in "..." when it was longer (an escape is never split). out holds
 * width + 1 bytes (width >= 3). Returns the number of columns written.
 */
size_t escape_text(char *out, size_t width, const char *s, size_t n, unsigned flags);

#endif
