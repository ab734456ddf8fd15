/*
 * Shared helpers: logging funnel, time, RFC 3339, hex and base64, hashing,
 * constant-time comparison, UTF-8 and the image id rules.  See util.h.
 */
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* SHA-256 through OpenSSL's low-level SHA256_* calls (deprecated by
 * OpenSSL 3, not removed): they hash directly, where the EVP interface
 * first loads the configuration file and sets up the default provider,
 * which costs a CGI request (one exec per delivery) about 2 ms of CPU. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "util.h"

/* Longest log line written, bytes; longer messages are cut. */
#define LOG_LINE_BYTES 2048

static enum log_level log_threshold = LOG_LEVEL_INFO;

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

bool log_level_parse(const char *s, enum log_level *out)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

/*
 * Formats and writes one line with a single write(2), so lines from several
 * FastCGI processes sharing the server's error log do not interleave.
 */
static void log_line(enum log_level level, const char *fmt, va_list ap)
{
	static const char *const labels[] = {"error", "warning", "info", "debug"};
	char line[LOG_LINE_BYTES];
	int head, n;
	size_t len;

	if (level > log_threshold)
		return;
	head = snprintf(line, sizeof line, "%s[%ld]: %s: ", PROGRAM_NAME, (long)getpid(),
	                labels[level]);
	if (head < 0)
		return;
	n = vsnprintf(line + head, sizeof line - (size_t)head - 1, fmt, ap);
	if (n < 0)
		return;
	len = strlen(line);
	for (size_t i = (size_t)head; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 0x20 || c == 0x7f)
			line[i] = '?';
	}
	line[len++] = '\n';
	while (write(STDERR_FILENO, line, len) < 0 && errno == EINTR)
		;
}

#define LOG_FUNCTION(name, level)                \
	void name(const char *fmt, ...)          \
	{                                        \
		va_list ap;                      \
		va_start(ap, fmt);               \
		log_line(level, fmt, ap);        \
		va_end(ap);                      \
	}
LOG_FUNCTION(log_error, LOG_LEVEL_ERROR)
LOG_FUNCTION(log_warn, LOG_LEVEL_WARN)
LOG_FUNCTION(log_info, LOG_LEVEL_INFO)
LOG_FUNCTION(log_debug, LOG_LEVEL_DEBUG)

int64_t time_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil algorithm), so no timegm() and no time zone is involved.
 */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;
	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;
	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

void time_format_ms(int64_t ms, char out[TIME_TEXT_SIZE])
{
	int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
	int64_t msec = ms - secs * 1000;
	int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
	int64_t sod = secs - days * 86400;
	int64_t y;
	int m, d;

	civil_from_days(days, &y, &m, &d);
	if (y < 0 || y > 9999) { /* outside RFC 3339's four-digit years */
		y = y < 0 ? 0 : 9999;
	}
	snprintf(out, TIME_TEXT_SIZE, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (int)y, m, d,
	         (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), (int)msec);
}

/* Reads n decimal digits at s into *out; false if any is not a digit. */
static bool read_digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

static bool is_leap_year(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/*
 * RFC 3339 section 5.6:
 *   date-time = full-date "T" full-time
 *   full-date = YYYY "-" MM "-" DD; full-time = HH ":" MM ":" SS [frac] offset
 *   offset    = "Z" / ("+" / "-") HH ":" MM
 * Section 5.6's note allows "t" and "z" in lower case.  Fractions beyond
 * milliseconds are accepted and truncated.
 */
bool rfc3339_parse(const char *s, size_t len, int64_t *out_ms)
{
	static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int year, mon, day, hour, min, sec, msec = 0, off_h = 0, off_m = 0, sign = 0;
	size_t i;

	if (len < 20)
		return false;
	if (!read_digits(s, 4, &year) || s[4] != '-' || !read_digits(s + 5, 2, &mon) ||
	    s[7] != '-' || !read_digits(s + 8, 2, &day) || (s[10] != 'T' && s[10] != 't') ||
	    !read_digits(s + 11, 2, &hour) || s[13] != ':' || !read_digits(s + 14, 2, &min) ||
	    s[16] != ':' || !read_digits(s + 17, 2, &sec))
		return false;
	i = 19;
	if (s[i] == '.') {
		size_t start = ++i;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			if (i - start < 3)
				msec = msec * 10 + (s[i] - '0');
			i++;
		}
		if (i == start)
			return false;
		for (size_t k = i - start; k < 3; k++)
			msec *= 10;
	}
	if (i >= len)
		return false;
	if (s[i] == 'Z' || s[i] == 'z') {
		i++;
	} else if (s[i] == '+' || s[i] == '-') {
		sign = s[i] == '+' ? 1 : -1;
		if (len - i < 6 || !read_digits(s + i + 1, 2, &off_h) || s[i + 3] != ':' ||
		    !read_digits(s + i + 4, 2, &off_m) || off_h > 23 || off_m > 59)
			return false;
		i += 6;
	} else {
		return false;
	}
	if (i != len)
		return false;
	if (mon < 1 || mon > 12 || day < 1 || hour > 23 || min > 59 || sec > 60)
		return false;
	if (day > month_days[mon - 1] + (mon == 2 && is_leap_year(year)))
		return false;
	if (sec == 60)
		sec = 59; /* a leap second is stored as the second before it */
	*out_ms = ((days_from_civil(year, mon, day) * 86400 + hour * 3600 + min * 60 + sec) -
	           (int64_t)sign * (off_h * 3600 + off_m * 60)) *
	                  1000 +
	          msec;
	return true;
}

void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool hex_decode(const char *s, size_t n, unsigned char *out)
{
	bool ok = true;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
		ok &= hi >= 0 && lo >= 0;
		out[i] = (unsigned char)(((hi & 15) << 4) | (lo & 15));
	}
	return ok;
}

static const char base64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void base64_encode(const unsigned char *in, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < n)
			v |= in[i + 2];
		out[o++] = base64_alphabet[(v >> 18) & 63];
		out[o++] = base64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < n ? base64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? base64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
}

static int base64_value(char c)
{
	const char *p;
	if (c == '\0')
		return -1;
	p = strchr(base64_alphabet, c);
	return p ? (int)(p - base64_alphabet) : -1;
}

long base64_decode(const char *s, size_t len, unsigned char *out, size_t cap)
{
	size_t o = 0;
	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;
		bool last = i + 4 == len;
		for (int k = 0; k < 4; k++) {
			if (s[i + k] == '=' && last && k >= 2) {
				pad++;
				v[k] = 0;
				continue;
			}
			if (pad)
				return -1; /* data after '=' */
			v[k] = base64_value(s[i + k]);
			if (v[k] < 0)
				return -1;
		}
		unsigned bits = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 |
		                (unsigned)v[3];
		if ((size_t)(3 - pad) > cap - o)
			return -1;
		out[o++] = (unsigned char)(bits >> 16);
		if (pad < 2)
			out[o++] = (unsigned char)(bits >> 8);
		if (pad < 1)
			out[o++] = (unsigned char)bits;
	}
	return (long)o;
}

void sha256(const void *data, size_t len, unsigned char out[SHA256_BYTES])
{
	SHA256_CTX ctx;

	SHA256_Init(&ctx);
	SHA256_Update(&ctx, data, len);
	SHA256_Final(out, &ctx);
	OPENSSL_cleanse(&ctx, sizeof ctx);
}

void hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                 unsigned char out[SHA256_BYTES])
{
	hmac_sha256_parts(key, key_len, data, len, NULL, 0, NULL, 0, out);
}

/*
 * HMAC (RFC 2104) over SHA-256: H((K ^ opad) || H((K ^ ipad) || m)), where
 * a key longer than the 64-byte block is first hashed.  The padded keys
 * and the hash states are wiped before returning.
 */
void hmac_sha256_parts(const void *key, size_t key_len, const void *p1, size_t n1,
                       const void *p2, size_t n2, const void *p3, size_t n3,
                       unsigned char out[SHA256_BYTES])
{
	enum { BLOCK = 64 };
	unsigned char k[BLOCK] = {0}, pad[BLOCK], inner[SHA256_BYTES];
	SHA256_CTX ctx;

	if (key_len > BLOCK)
		sha256(key, key_len, k);
	else if (key_len)
		memcpy(k, key, key_len);
	for (size_t i = 0; i < BLOCK; i++)
		pad[i] = k[i] ^ 0x36;
	SHA256_Init(&ctx);
	SHA256_Update(&ctx, pad, BLOCK);
	if (p1 != NULL)
		SHA256_Update(&ctx, p1, n1);
	if (p2 != NULL)
		SHA256_Update(&ctx, p2, n2);
	if (p3 != NULL)
		SHA256_Update(&ctx, p3, n3);
	SHA256_Final(inner, &ctx);
	for (size_t i = 0; i < BLOCK; i++)
		pad[i] = k[i] ^ 0x5c;
	SHA256_Init(&ctx);
	SHA256_Update(&ctx, pad, BLOCK);
	SHA256_Update(&ctx, inner, sizeof inner);
	SHA256_Final(out, &ctx);
	OPENSSL_cleanse(&ctx, sizeof ctx);
	OPENSSL_cleanse(k, sizeof k);
	OPENSSL_cleanse(pad, sizeof pad);
	OPENSSL_cleanse(inner, sizeof inner);
}

bool ct_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

long utf8_count(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	long count = 0;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t need;
		unsigned lo = 0x80, hi = 0xbf;

		if (c < 0x80) {
			i++;
			count++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			need = 1;
		} else if (c >= 0xe0 && c <= 0xef) {
			need = 2;
			if (c == 0xe0)
				lo = 0xa0; /* overlong */
			if (c == 0xed)
				hi = 0x9f; /* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			need = 3;
			if (c == 0xf0)
				lo = 0x90; /* overlong */
			if (c == 0xf4)
				hi = 0x8f; /* above U+10FFFF */
		} else {
			return -1;
		}
		if (len - i <= need)
			return -1;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return -1;
		for (size_t k = 2; k <= need; k++)
			if (s[i + k] < 0x80 || s[i + k] > 0xbf)
				return -1;
		i += need + 1;
		count++;
	}
	return count;
}

const char *image_id_problem(const char *id)
{
	size_t len = strlen(id), seg_start = 0;
	long chars;

	if (len == 0)
		return "empty id";
	chars = utf8_count(id, len);
	if (chars < 0)
		return "id is not valid UTF-8";
	if (chars > IMAGE_ID_MAX_CHARS)
		return "id longer than 1024 characters";
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)id[i];
		if (i < len && (c < 0x20 || c == 0x7f))
			return "id contains a control character";
		/* C1 controls U+0080..U+009F are encoded as C2 80..C2 9F. */
		if (i + 1 < len && c == 0xc2 && (unsigned char)id[i + 1] <= 0x9f)
			return "id contains a control character";
		if (i == len || c == '/') {
			size_t n = i - seg_start;
			if (n == 0)
				return "id has an empty path segment";
			if ((n == 1 && id[seg_start] == '.') ||
			    (n == 2 && id[seg_start] == '.' && id[seg_start + 1] == '.'))
				return "id has a '.' or '..' path segment";
			seg_start = i + 1;
		}
	}
	return NULL;
}

const char *const status_names[STATUS_COUNT] = {"pending",   "draft",  "queued", "uploaded",
                                                "completed", "failed", "expired"};

bool status_is_known(const char *s)
{
	for (size_t i = 0; i < STATUS_COUNT; i++)
		if (strcmp(s, status_names[i]) == 0)
			return true;
	return false;
}

bool parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	int64_t v = 0;
	bool neg = false;
	size_t i = 0;

	if (s == NULL || s[0] == '\0')
		return false;
	if (s[0] == '-') {
		if (min >= 0)
			return false;
		neg = true;
		i = 1;
	}
	if (s[i] == '\0')
		return false;
	for (; s[i] != '\0'; i++) {
		int digit;
		if (s[i] < '0' || s[i] > '9')
			return false;
		digit = s[i] - '0';
		if (v > (INT64_MAX - digit) / 10)
			return false;
		v = v * 10 + digit;
	}
	if (neg)
		v = -v;
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

/*
 * Setting the trim threshold also freezes glibc's mmap threshold (which
 * otherwise follows the largest block freed), at 128 KiB: the page cache
 * bound is given to both, so that no block below it is mapped and
 * unmapped each time either.
 */
void malloc_keep_heap(void)
{
#if defined(__GLIBC__) && defined(M_TRIM_THRESHOLD) && defined(M_MMAP_THRESHOLD)
	mallopt(M_TRIM_THRESHOLD, MALLOC_KEEP_BYTES);
	mallopt(M_MMAP_THRESHOLD, MALLOC_KEEP_BYTES);
#endif
}
