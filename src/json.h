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

#endif
