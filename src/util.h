/*
 * Small helpers shared by every module: logging to stderr, UTC time in
 * the one format the database uses, RFC 3339 parsing, hex and base64,
 * SHA-256 and HMAC-SHA256, constant-time comparison, and the id rules of
 * cfimages-webhook(8) PAYLOADS.  Everything here except the log_* family is pure.
 */
#ifndef CFW_UTIL_H
#define CFW_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROGRAM_NAME "cfimages-webhook"

/* Log levels, lowest number = most severe. */
enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* Sets the most verbose level that is still written (default INFO). */
void log_set_level(enum log_level level);
/* Parses "error", "warn", "info", "debug"; returns false for anything else. */
bool log_level_parse(const char *s, enum log_level *out);
/*
 * One line to stderr: "cfimages-webhook[PID]: LEVEL: message".  Never pass
 * a secret.  Control characters in the formatted text are replaced with
 * '?' so request data cannot forge log lines.
 */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Milliseconds since the epoch, from CLOCK_REALTIME. */
int64_t time_now_ms(void);

/* Size of a buffer for time_format_ms, including the NUL. */
#define TIME_TEXT_SIZE 32
/* Writes "YYYY-MM-DDTHH:MM:SS.sssZ" (UTC) for ms since the epoch. */
void time_format_ms(int64_t ms, char out[TIME_TEXT_SIZE]);

/*
 * Parses an RFC 3339 date-time (section 5.6: full-date "T" full-time, with
 * optional fractional seconds and a "Z" or +-HH:MM offset; "t" and "z" may
 * be lower case) of exactly len bytes.  Field ranges are checked (month
 * lengths, leap years, second 60 accepted as a leap second).  On success
 * stores milliseconds since the epoch (UTC) and returns true.
 */
bool rfc3339_parse(const char *s, size_t len, int64_t *out_ms);

/* Lower-case hex of n bytes into out (2n+1 bytes, NUL-terminated). */
void hex_encode(const unsigned char *in, size_t n, char *out);
/*
 * Decodes exactly 2*n hex digits (either case) from s into out[n].  Returns
 * false on any non-hex digit.  Reads exactly 2*n bytes of s.
 */
bool hex_decode(const char *s, size_t n, unsigned char *out);

/* Length of the base64 text (with padding) for n bytes, excluding NUL. */
#define BASE64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)
/* Standard base64 (RFC 4648 section 4) with padding; out gets a NUL. */
void base64_encode(const unsigned char *in, size_t n, char *out);
/*
 * Decodes standard base64 (RFC 4648 section 4) of len bytes; len must be a
 * multiple of 4 and padding, when present, only at the end.  Writes at most
 * cap bytes; returns the decoded length, or -1 on a bad
 * character, bad padding, or a result longer than cap.
 */
long base64_decode(const char *s, size_t len, unsigned char *out, size_t cap);

#define SHA256_BYTES 32
void sha256(const void *data, size_t len, unsigned char out[SHA256_BYTES]);
void hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                 unsigned char out[SHA256_BYTES]);
/*
 * HMAC-SHA256 over the concatenation of up to three parts (NULL/0 parts
 * are skipped): used for "T." + body and "id.ts." + body without copying
 * the body.
 */
void hmac_sha256_parts(const void *key, size_t key_len, const void *p1, size_t n1,
                       const void *p2, size_t n2, const void *p3, size_t n3,
                       unsigned char out[SHA256_BYTES]);

/* Constant-time equality of two n-byte buffers (CRYPTO_memcmp). */
bool ct_equal(const void *a, const void *b, size_t n);

/*
 * Checks that s[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF).  Returns the number of code
 * points, or -1 when it is not valid.
 */
long utf8_count(const char *s, size_t len);

/* Longest image id, in UTF-8 characters (cfimages-webhook(8) PAYLOADS). */
#define IMAGE_ID_MAX_CHARS 1024
/*
 * Applies the id rules of cfimages-webhook(8) PAYLOADS to a NUL-terminated string: non-empty,
 * valid UTF-8, at most IMAGE_ID_MAX_CHARS characters, no control
 * characters (C0, DEL, C1), '/'-separated segments none of which is empty,
 * "." or "..".  Returns NULL when valid, else a short static reason.
 */
const char *image_id_problem(const char *id);

/* The status names of cfimages-webhook(8) STATUSES. */
#define STATUS_COUNT 7
extern const char *const status_names[STATUS_COUNT];
/* True when s is one of them. */
bool status_is_known(const char *s);

/*
 * Parses a decimal integer in [min, max] from the whole string (no sign
 * unless min < 0, no spaces, no trailing bytes).  Returns false otherwise.
 */
bool parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);

/*
 * Long-lived processes (a responder, a runner): freed memory at the top of
 * the heap stays there, up to MALLOC_KEEP_BYTES, instead of going back to
 * the kernel at once (glibc only; elsewhere nothing).  SQLite frees its
 * whole page cache whenever another process has committed and fills it
 * again at the next transaction: with glibc's 128 KiB default that was a
 * brk() and fresh page faults about once per delivery.
 */
#define MALLOC_KEEP_BYTES (1024 * 1024)
void malloc_keep_heap(void);

/* Closes every descriptor >= lowfd, with system calls only (compat.c). */
void close_from(int lowfd);
/* Its fallbacks, each alone (for tests): through /proc/self/fd (false
 * when it cannot be read), and every number up to the limit. */
bool close_from_proc(int lowfd);
void close_from_each(int lowfd);

#endif
