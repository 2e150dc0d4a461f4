#include <inttypes.h>
#include <string.h>

#include "escape.h"

size_t escape_utf8(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t v, min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		v = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		v = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		v = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len) {
		return 0;
	}
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80) {
			return 0;
		}
		v = v << 6 | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
		return 0;
	}
	*cp = v;
	return len;
}

bool escape_unsafe_cp(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x61c || cp == 0x200e ||
	       cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
	       cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb);
}

void escape_html(FILE *f, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < n) {
		uint32_t cp;
		size_t len = escape_utf8(s + i, n - i, &cp);
		if (len == 0 || escape_unsafe_cp(cp)) {
			fputs("&#xFFFD;", f);
			i += len ? len : 1;
			continue;
		}
		switch (cp) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fwrite(s + i, 1, len, f);
		}
		i += len;
	}
}

void escape_json(FILE *f, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	fputc('"', f);
	while (i < n) {
		uint32_t cp;
		size_t len = escape_utf8(s + i, n - i, &cp);
		if (len == 0) {
			fputs("\\ufffd", f);
			i++;
			continue;
		}
		if (cp == '"' || cp == '\\') {
			fputc('\\', f);
			fputc((int)cp, f);
		} else if (cp == '\n') {
			fputs("\\n", f);
		} else if (cp == '\r') {
			fputs("\\r", f);
		} else if (cp == '\t') {
			fputs("\\t", f);
		} else if (escape_unsafe_cp(cp)) {
			fprintf(f, "\\u%04" PRIx32, cp);
		} else {
			fwrite(s + i, 1, len, f);
		}
		i += len;
	}
	fputc('"', f);
}

void escape_tsv(FILE *f, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < n) {
		uint32_t cp;
		size_t len = escape_utf8(s + i, n - i, &cp);
		if (len == 1 && cp == '\\') {
			fputs("\\\\", f);
		} else if (len == 1 && cp == '\t') {
			fputs("\\t", f);
		} else if (len == 1 && cp == '\n') {
			fputs("\\n", f);
		} else if (len == 1 && cp == '\r') {
			fputs("\\r", f);
		} else if (len == 0 || escape_unsafe_cp(cp)) {
			size_t k = len ? len : 1;
			for (size_t j = 0; j < k; j++) {
				fprintf(f, "\\x%02x", s[i + j]);
			}
			len = k;
		} else {
			fwrite(s + i, 1, len, f);
		}
		i += len;
	}
}

/* Whether byte c goes out as itself in text (else as \xNN). */
static bool text_plain(unsigned char c, unsigned flags)
{
	if (c == ' ') {
		return !(flags & ESCAPE_NOSPACE);
	}
	if (c == '\\') {
		return flags & ESCAPE_BACKSLASH;
	}
	if (c == '|') {
		return !(flags & ESCAPE_PIPE);
	}
	return c > 0x20 && c < 0x7f;
}

size_t escape_text(char *out, size_t width, const char *str, size_t n, unsigned flags)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t need = 0, col = 0;

	for (size_t i = 0; i < n; i++) {
		need += text_plain(s[i], flags) ? 1 : 4;
	}
	size_t limit = need <= width ? width : width - 3;
	for (size_t i = 0; i < n; i++) {
		bool plain = text_plain(s[i], flags);
		size_t w = plain ? 1 : 4;
		if (col + w > limit) {
			break;
		}
		if (plain) {
			out[col++] = (char)s[i];
		} else {
			out[col++] = '\\';
			out[col++] = 'x';
			out[col++] = hex[s[i] >> 4];
			out[col++] = hex[s[i] & 15];
		}
	}
	if (need > width) {
		memcpy(out + col, "...", 3);
		col += 3;
	}
	out[col] = '\0';
	return col;
}
