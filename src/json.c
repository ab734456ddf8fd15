/*
 * Strict RFC 8259 validation of untrusted bytes, before cJSON sees them.
 * One forward pass over buf[0..len) with an explicit stack of at most
 * JSON_MAX_DEPTH containers: no recursion, linear time, no allocation, and
 * no read at or past len (the body is not NUL-terminated in general).
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
