/*
 * Strict RFC 8259 validation of untrusted bytes, before cJSON sees them.
 * One forward pass over buf[0..len) with an explicit stack of at most
 * JSON_MAX_DEPTH containers: no recursion, linear time, no allocation, and
 * no read at or past len (the body is not NUL-terminated in general).
 *
 * On a text that passed validation, the same scanner also finds where a
 * member's value is written, so that a value can be stored exactly as the
 * sender wrote it instead of as cJSON would print it again (cJSON turns
 * 1234567890123456789 into 1.2345678901234568e+18, and 1e400 into null).
 */
#include <stdint.h>

#include "json.h"

/* What an open container on the stack is. */
enum container { IN_ARRAY, IN_OBJECT };

/* The scanner's position in the input; every read is checked against len. */
struct scanner {
	const unsigned char *s; /* the input */
	size_t len;             /* its length, bytes */
	size_t pos;             /* next byte to read */
	bool has_nul_escape;    /* a string held \u0000 */
};

/* Returns the next byte, or -1 at the end of the input. */
static int peek(const struct scanner *sc)
{
	return sc->pos < sc->len ? sc->s[sc->pos] : -1;
}

/* RFC 8259 section 2: ws = *( %x20 / %x09 / %x0A / %x0D ); nothing else, not NUL. */
static void skip_ws(struct scanner *sc)
{
	while (sc->pos < sc->len) {
		unsigned char c = sc->s[sc->pos];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
			break;
		sc->pos++;
	}
}

/* Consumes c when it is the next byte; returns whether it was. */
static bool accept(struct scanner *sc, unsigned char c)
{
	if (sc->pos < sc->len && sc->s[sc->pos] == c) {
		sc->pos++;
		return true;
	}
	return false;
}

/* Value of one hex digit, or -1. */
static int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Reads the four hex digits of a \u escape (the "\u" already consumed) into
 * *out.  Returns false when fewer than four hex digits follow.
 */
static bool read_hex4(struct scanner *sc, unsigned *out)
{
	unsigned v = 0;

	if (sc->len - sc->pos < 4)
		return false;
	for (int i = 0; i < 4; i++) {
		int d = hex_digit(sc->s[sc->pos + (size_t)i]);
		if (d < 0)
			return false;
		v = v * 16 + (unsigned)d;
	}
	sc->pos += 4;
	*out = v;
	return true;
}

/*
 * One escape sequence, the backslash already consumed (RFC 8259 section 7).
 * A \u escape of a high surrogate (D800-DBFF) must be followed at once by a
 * \u escape of a low surrogate (DC00-DFFF); a low surrogate on its own is
 * refused, since it names no character and cJSON would mangle it.
 */
static bool scan_escape(struct scanner *sc)
{
	unsigned cp, lo;

	switch (peek(sc)) {
	case '"':
	case '\\':
	case '/':
	case 'b':
	case 'f':
	case 'n':
	case 'r':
	case 't':
		sc->pos++;
		return true;
	case 'u':
		sc->pos++;
		break;
	default:
		return false;
	}
	if (!read_hex4(sc, &cp))
		return false;
	if (cp == 0)
		sc->has_nul_escape = true;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return false;
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (!accept(sc, '\\') || !accept(sc, 'u') || !read_hex4(sc, &lo))
			return false;
		if (lo < 0xdc00 || lo > 0xdfff)
			return false;
	}
	return true;
}

/*
 * One multi-byte UTF-8 sequence starting at the current byte (>= 0x80),
 * per the well-formed byte sequences table of RFC 3629 section 4: no
 * overlong forms, no encoded surrogates (ED A0..BF), nothing above
 * U+10FFFF.
 */
static bool scan_utf8(struct scanner *sc)
{
	unsigned char c = sc->s[sc->pos];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need;

	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return false;
	}
	if (sc->len - sc->pos <= need)
		return false;
	if (sc->s[sc->pos + 1] < lo || sc->s[sc->pos + 1] > hi)
		return false;
	for (size_t k = 2; k <= need; k++) {
		unsigned char t = sc->s[sc->pos + k];
		if (t < 0x80 || t > 0xbf)
			return false;
	}
	sc->pos += need + 1;
	return true;
}

/*
 * A string (RFC 8259 section 7), the next byte being its opening quote.
 * Raw bytes below 0x20 (NUL included) must be escaped and are refused.
 */
static bool scan_string(struct scanner *sc)
{
	if (!accept(sc, '"'))
		return false;
	while (sc->pos < sc->len) {
		unsigned char c = sc->s[sc->pos];
		if (c == '"') {
			sc->pos++;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			sc->pos++;
			if (!scan_escape(sc))
				return false;
		} else if (c >= 0x80) {
			if (!scan_utf8(sc))
				return false;
		} else {
			sc->pos++;
		}
	}
	return false;
}

/* Consumes one or more decimal digits; false when there is none. */
static bool scan_digits(struct scanner *sc)
{
	size_t start = sc->pos;

	while (sc->pos < sc->len && sc->s[sc->pos] >= '0' && sc->s[sc->pos] <= '9')
		sc->pos++;
	return sc->pos > start;
}

/*
 * A number (RFC 8259 section 6):
 *   -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE][+-]?[0-9]+)?
 * A leading zero ends the integer part, so "01" leaves "1" unconsumed and
 * the caller refuses it as a stray byte.
 */
static bool scan_number(struct scanner *sc)
{
	int c;

	accept(sc, '-');
	c = peek(sc);
	if (c == '0')
		sc->pos++;
	else if (c >= '1' && c <= '9')
		scan_digits(sc);
	else
		return false;
	if (accept(sc, '.') && !scan_digits(sc))
		return false;
	if (accept(sc, 'e') || accept(sc, 'E')) {
		if (!accept(sc, '+'))
			accept(sc, '-');
		if (!scan_digits(sc))
			return false;
	}
	return true;
}

/* Consumes the literal word (true, false, null) exactly. */
static bool scan_literal(struct scanner *sc, const char *word)
{
	for (; *word != '\0'; word++)
		if (!accept(sc, (unsigned char)*word))
			return false;
	return true;
}

/*
 * A scalar value: string, number or literal.  Containers are handled by the
 * caller's loop, which keeps the nesting on its own bounded stack.
 */
static bool scan_scalar(struct scanner *sc)
{
	int c = peek(sc);

	if (c == '"')
		return scan_string(sc);
	if (c == '-' || (c >= '0' && c <= '9'))
		return scan_number(sc);
	if (c == 't')
		return scan_literal(sc, "true");
	if (c == 'f')
		return scan_literal(sc, "false");
	if (c == 'n')
		return scan_literal(sc, "null");
	return false;
}

/* An object member's name and the colon after it, surrounding whitespace included. */
static bool scan_member_name(struct scanner *sc)
{
	skip_ws(sc);
	if (!scan_string(sc))
		return false;
	skip_ws(sc);
	return accept(sc, ':');
}

/*
 * The grammar of RFC 8259 section 2 driven by a loop with two states:
 * expecting a value, and having just finished one.  Opening a container
 * pushes it on stack[] (refused past JSON_MAX_DEPTH); closing pops it.
 * Every byte is consumed at most once, so the time is linear in len.
 */
bool json_validate(const char *buf, size_t len, struct json_check *info)
{
	enum container stack[JSON_MAX_DEPTH];
	struct scanner sc = {(const unsigned char *)buf, len, 0, false};
	size_t depth = 0;
	bool want_value = true, ok = false;

	if (buf == NULL)
		goto out;
	for (;;) {
		skip_ws(&sc);
		if (want_value) {
			int c = peek(&sc);
			if (c == '[' || c == '{') {
				if (depth == JSON_MAX_DEPTH)
					goto out;
				sc.pos++;
				stack[depth++] = c == '[' ? IN_ARRAY : IN_OBJECT;
				skip_ws(&sc);
				if (accept(&sc, c == '[' ? ']' : '}')) {
					depth--;
					want_value = false;
				} else if (c == '{' && !scan_member_name(&sc)) {
					goto out;
				}
			} else {
				if (!scan_scalar(&sc))
					goto out;
				want_value = false;
			}
			continue;
		}
		if (depth == 0)
			break;
		if (accept(&sc, ',')) {
			if (stack[depth - 1] == IN_OBJECT && !scan_member_name(&sc))
				goto out;
			want_value = true;
		} else if (accept(&sc, stack[depth - 1] == IN_ARRAY ? ']' : '}')) {
			depth--;
		} else {
			goto out;
		}
	}
	ok = sc.pos == sc.len;
out:
	if (info != NULL)
		info->has_nul_escape = ok && sc.has_nul_escape;
	return ok;
}

/* True for the four whitespace bytes of RFC 8259 section 2. */
static bool is_ws(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

struct json_span json_text_span(const char *buf, size_t len)
{
	struct json_span span = {0, len};

	while (span.start < span.end && is_ws((unsigned char)buf[span.start]))
		span.start++;
	while (span.end > span.start && is_ws((unsigned char)buf[span.end - 1]))
		span.end--;
	return span;
}

/*
 * Skips one value of a validated text, containers included: strings are
 * scanned as strings (so brackets inside them do not count), brackets are
 * counted.  Always advances at least one byte, whatever the input, so a
 * caller's loop ends even on text that was not validated.
 */
static void skip_value(struct scanner *sc)
{
	size_t depth = 0;

	do {
		size_t before = sc->pos;
		int c = peek(sc);

		if (c == '"') {
			scan_string(sc);
		} else if (c == '{' || c == '[') {
			depth++;
			sc->pos++;
		} else if ((c == '}' || c == ']') && depth > 0) {
			depth--;
			sc->pos++;
		} else if (c == ',' || c == ':' || is_ws(c)) {
			sc->pos++;
		} else {
			scan_scalar(sc);
		}
		if (sc->pos == before)
			sc->pos++;
	} while (depth > 0 && sc->pos < sc->len);
}

/* Appends code point cp as UTF-8 (RFC 3629) to out; returns the byte count. */
static size_t utf8_encode(unsigned cp, unsigned char out[4])
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | (cp >> 6));
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | (cp >> 12));
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (unsigned char)(0xf0 | (cp >> 18));
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Decodes the escape after a backslash (already consumed) of a validated
 * string into UTF-8 bytes; returns their count, or 0 when the escape is
 * malformed.
 */
static size_t decode_escape(struct scanner *sc, unsigned char out[4])
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	unsigned cp, lo;
	int c = peek(sc);

	for (size_t i = 0; from[i] != '\0'; i++) {
		if (c == from[i]) {
			sc->pos++;
			out[0] = (unsigned char)to[i];
			return 1;
		}
	}
	if (!accept(sc, 'u') || !read_hex4(sc, &cp))
		return 0;
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (!accept(sc, '\\') || !accept(sc, 'u') || !read_hex4(sc, &lo) || lo < 0xdc00 ||
		    lo > 0xdfff)
			return 0;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	return utf8_encode(cp, out);
}

/*
 * Consumes the string at the scanner (a validated one) and tells whether
 * its decoded bytes are exactly key.  A decoded NUL never matches, since
 * key ends at its first NUL.
 */
static bool string_equals(struct scanner *sc, const char *key)
{
	const unsigned char *k = (const unsigned char *)key;
	unsigned char bytes[4];
	bool same = true;

	if (!accept(sc, '"'))
		return false;
	while (sc->pos < sc->len) {
		unsigned char c = sc->s[sc->pos++];
		size_t n = 1;

		if (c == '"')
			return same && *k == '\0';
		bytes[0] = c;
		if (c == '\\' && (n = decode_escape(sc, bytes)) == 0)
			return false;
		for (size_t i = 0; i < n && same; i++) {
			if (*k == '\0' || *k != bytes[i])
				same = false;
			else
				k++;
		}
	}
	return false;
}

bool json_member_span(const char *buf, struct json_span obj, const char *key, struct json_span *out)
{
	struct scanner sc = {(const unsigned char *)buf, obj.end, obj.start, false};
	size_t start;
	bool found;

	if (buf == NULL || !accept(&sc, '{'))
		return false;
	for (;;) {
		skip_ws(&sc);
		if (peek(&sc) != '"')
			return false; /* "}" of an empty object, or not validated */
		found = string_equals(&sc, key);
		skip_ws(&sc);
		if (!accept(&sc, ':'))
			return false;
		skip_ws(&sc);
		start = sc.pos;
		skip_value(&sc);
		if (found) {
			out->start = start;
			out->end = sc.pos;
			return true;
		}
		skip_ws(&sc);
		if (!accept(&sc, ','))
			return false;
	}
}

size_t json_compact(const char *buf, size_t len, char *out)
{
	struct scanner sc = {(const unsigned char *)buf, len, 0, false};
	size_t n = 0;

	while (sc.pos < sc.len) {
		size_t start = sc.pos;
		int c = peek(&sc);

		if (is_ws(c)) {
			sc.pos++;
			continue;
		}
		if (c == '"')
			scan_string(&sc);
		if (sc.pos == start)
			sc.pos++;
		for (size_t i = start; i < sc.pos && i < sc.len; i++)
			out[n++] = buf[i];
	}
	out[n] = '\0';
	return n;
}
