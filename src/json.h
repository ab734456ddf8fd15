/*
 * Strict RFC 8259 validation of untrusted bytes, done before cJSON sees
 * them, because cJSON 1.7.15 accepts invalid UTF-8, raw control characters
 * in strings, NUL as whitespace, leading zeros and trailing garbage.  Pure.
 */
#ifndef CFW_JSON_H
#define CFW_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* Deepest nesting of arrays and objects accepted (RFC 8259 section 9 permits a limit). */
#define JSON_MAX_DEPTH 64

struct json_check {
	bool has_nul_escape; /* some string contains \u0000, which cJSON would truncate */
};

/*
 * Returns true when buf[0..len) is exactly one JSON text per RFC 8259:
 * optional whitespace, one value, optional whitespace, nothing else; UTF-8
 * well-formed; no raw control characters in strings; valid escapes
 * (including surrogate pairs in \u escapes); numbers per the grammar; depth at
 * most JSON_MAX_DEPTH.  An empty buffer is not valid.  Fills *info.
 */
bool json_validate(const char *buf, size_t len, struct json_check *info);

/* A byte range of a JSON text: the bytes buf[start..end). */
struct json_span {
	size_t start; /* offset of the first byte */
	size_t end;   /* offset just past the last byte */
};

/*
 * The span of the one value of buf[0..len), without the whitespace around
 * it.  buf must be a text json_validate() accepted.
 */
struct json_span json_text_span(const char *buf, size_t len);

/*
 * Finds the member named key in the object spanning obj of buf, a text
 * json_validate() accepted.  Names are compared after their escapes are
 * decoded (RFC 8259 section 8.3), byte for byte, so "\u0061" is the name
 * "a", as cJSON sees it.  Stores the span of the member's value, exactly
 * as written (whitespace inside a container included, none around it),
 * in *out and returns true; returns false when obj is not an object or
 * has no such member.  With a repeated name, the first member is found.
 * Reads nothing outside obj; linear in its length.
 */
bool json_member_span(const char *buf, struct json_span obj, const char *key,
                      struct json_span *out);

/*
 * Copies buf[0..len), a text json_validate() accepted, into out without
 * the whitespace between tokens (RFC 8259 section 2 calls it
 * insignificant): strings, numbers and literals are copied byte for byte,
 * so nothing is reinterpreted.  out must hold len + 1 bytes; it is
 * NUL-terminated.  Returns the number of bytes written before the NUL.
 */
size_t json_compact(const char *buf, size_t len, char *out);

#endif
