/*
 * Sender authentication (cfimages-webhook(8) AUTHENTICATION), pure: no I/O, no globals, no
 * allocation.
 *
 * auth_verify() works in two steps.  First every present signature header
 * is parsed, once, into fixed-size arrays of candidate digests: this is
 * public data, and hard limits (header length, candidates per header,
 * Stream time groups) bound what a hostile header can cost.  Then, for
 * every configured secret, the expected digest of each scheme is computed
 * and compared with every candidate of that scheme with ct_equal() over
 * the full SHA256_BYTES.  The results are OR-ed together and nothing stops
 * early, so the time taken depends on the shape of the headers and the
 * number of secrets, never on how much of a forged signature was right.
 *
 * A header sent twice usually reaches us joined with ", " (RFC 9110
 * section 5.3).  Each scheme deals with that as follows:
 *  - hex headers: the value is split on ',' and every piece, trimmed of
 *    spaces and tabs, is a candidate: "sha256=abc, sha256=def" tries both;
 *    empty pieces are skipped, other malformed pieces never verify.
 *  - cf-webhook-auth: never split, because a secret may itself contain a
 *    comma; a joined value is compared whole and so does not verify.
 *  - Stream (Webhook-Signature starting "time="): elements are split on
 *    ','; each "time=T" starts a group and the "sig1=HEX" elements after it
 *    are checked against "T." + body, so "time=1,sig1=A, time=2,sig1=B"
 *    tries both pairs.  Unknown elements are skipped.
 *  - Standard Webhooks: entries are split on spaces and one trailing ','
 *    left by joining is dropped, so "v1,A=, v1,B=" tries both.
 *    webhook-id and webhook-timestamp are never split: joined, they are
 *    malformed and the scheme does not verify.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth.h"
#include "util.h"

/* Longest header value looked at; a longer one is present but never verifies. */
#define AUTH_HEADER_MAX_BYTES 8192
/* Signatures kept from one header (hex, sig1, v1 entries); later ones are ignored. */
#define AUTH_MAX_CANDIDATES 16
/* "time=" groups kept from one Stream header; later ones are ignored. */
#define AUTH_STREAM_MAX_TIMES 4
/* Longest timestamp in digits: INT64_MAX has 19. */
#define AUTH_TIMESTAMP_MAX_DIGITS 19
/* Largest key decoded from a whsec_ secret, in bytes. */
#define AUTH_KEY_MAX_BYTES 1024

/* The four hex HMAC headers of struct auth_headers. */
#define AUTH_HEX_HEADERS 4

#define HEX_DIGEST_CHARS (2 * SHA256_BYTES)
#define BASE64_DIGEST_CHARS BASE64_ENCODED_LEN(SHA256_BYTES)

#define HEX_PREFIX "sha256="
#define STREAM_PREFIX "time="
#define STREAM_TIME_KEY "time"
#define STREAM_SIG_KEY "sig1"
#define STANDARD_VERSION "v1,"
#define STANDARD_SECRET_PREFIX "whsec_"

/* "." T "." with T at most AUTH_TIMESTAMP_MAX_DIGITS digits, plus the NUL. */
#define STANDARD_DOTS_SIZE (AUTH_TIMESTAMP_MAX_DIGITS + 3)
/* Decimal text of a non-negative int64_t, plus the NUL. */
#define TIMESTAMP_TEXT_SIZE (AUTH_TIMESTAMP_MAX_DIGITS + 1)

/* A piece of a header value: not NUL-terminated. */
struct span {
	const char *s;
	size_t len;
};

/* Candidates from all four hex headers, each a decoded HMAC. */
struct hex_sigs {
	unsigned char mac[AUTH_HEX_HEADERS * AUTH_MAX_CANDIDATES][SHA256_BYTES];
	size_t n;
};

/* One "time=T" of a Stream header: the text as sent (that is what is signed). */
struct stream_time {
	struct span text;
	bool in_window; /* |now - T| <= tolerance */
};

/* A Stream header: time groups and the sig1 digests that follow each. */
struct stream_sigs {
	struct stream_time times[AUTH_STREAM_MAX_TIMES];
	size_t n_times;
	unsigned char mac[AUTH_MAX_CANDIDATES][SHA256_BYTES];
	size_t time_of[AUTH_MAX_CANDIDATES]; /* index into times[] */
	size_t n;
};

/* A Standard Webhooks delivery: the signed prefix parts and the v1 digests. */
struct standard_sigs {
	bool usable;                   /* id and timestamp well-formed */
	bool in_window;                /* |now - timestamp| <= tolerance */
	struct span id;                /* webhook-id as sent */
	char dots[STANDARD_DOTS_SIZE]; /* "." timestamp "." */
	size_t dots_len;
	unsigned char mac[AUTH_MAX_CANDIDATES][SHA256_BYTES];
	size_t n;
};

/* Everything auth_verify() learns from the headers before touching a secret. */
struct parsed {
	bool present; /* some signature header is present, even empty */
	struct hex_sigs hex;
	bool cf_usable; /* cf-webhook-auth present, non-empty, not too long */
	unsigned char cf_digest[SHA256_BYTES];
	struct stream_sigs stream;
	struct standard_sigs standard;
};

/*
 * Length of s, looking at no more than max + 1 bytes: a result above max
 * means "too long" without scanning a hostile 100 KiB value.
 */
static size_t bounded_len(const char *s, size_t max)
{
	size_t n = 0;

	while (n <= max && s[n] != '\0')
		n++;
	return n;
}

/* True when the HTTP optional whitespace (RFC 9110 section 5.6.3) contains c. */
static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Removes leading and trailing spaces and tabs. */
static struct span trim(struct span p)
{
	while (p.len > 0 && is_ows(p.s[0])) {
		p.s++;
		p.len--;
	}
	while (p.len > 0 && is_ows(p.s[p.len - 1]))
		p.len--;
	return p;
}

/*
 * Cuts the next sep-separated piece off *rest into *piece; returns false
 * when *rest is used up.  Pieces may be empty ("a,,b" has three).
 */
static bool next_piece(struct span *rest, char sep, struct span *piece)
{
	size_t i = 0;

	if (rest->s == NULL)
		return false;
	while (i < rest->len && rest->s[i] != sep)
		i++;
	piece->s = rest->s;
	piece->len = i;
	if (i < rest->len) {
		rest->s += i + 1;
		rest->len -= i + 1;
	} else {
		rest->s = NULL;
		rest->len = 0;
	}
	return true;
}

/* True when p starts with the NUL-terminated prefix; then strips it. */
static bool strip_prefix(struct span *p, const char *prefix)
{
	size_t n = strlen(prefix);

	if (p->len < n || memcmp(p->s, prefix, n) != 0)
		return false;
	p->s += n;
	p->len -= n;
	return true;
}

/*
 * Parses a timestamp as cfimages-webhook(8) AUTHENTICATION defines it: ASCII digits only (no
 * sign, no spaces), 1 to AUTH_TIMESTAMP_MAX_DIGITS of them, fitting an
 * int64_t.  Anything else, including overflow, returns false.
 */
static bool parse_timestamp(struct span p, int64_t *out)
{
	char text[TIMESTAMP_TEXT_SIZE];
	size_t i;

	if (p.len == 0 || p.len > AUTH_TIMESTAMP_MAX_DIGITS)
		return false;
	for (i = 0; i < p.len; i++)
		if (p.s[i] < '0' || p.s[i] > '9')
			return false;
	memcpy(text, p.s, p.len);
	text[p.len] = '\0';
	return parse_int64(text, 0, INT64_MAX, out);
}

/*
 * True when |now - t| <= tolerance, in both directions (a timestamp from
 * the future is as suspect as an old one).  The difference of two int64_t
 * always fits a uint64_t, so this cannot overflow.  A negative tolerance
 * accepts nothing.
 */
static bool in_window(int64_t t, int64_t now, int64_t tolerance)
{
	uint64_t diff;

	if (tolerance < 0)
		return false;
	diff = t >= now ? (uint64_t)t - (uint64_t)now : (uint64_t)now - (uint64_t)t;
	return diff <= (uint64_t)tolerance;
}

/*
 * Decodes one hex header candidate: an optional "sha256=" prefix, then
 * exactly HEX_DIGEST_CHARS hex digits of either case.
 */
static bool parse_hex_candidate(struct span p, unsigned char out[SHA256_BYTES])
{
	strip_prefix(&p, HEX_PREFIX);
	if (p.len != HEX_DIGEST_CHARS)
		return false;
	return hex_decode(p.s, SHA256_BYTES, out);
}

/*
 * Adds the candidates of one hex header (absent, empty, too long or
 * malformed ones add nothing) to *sigs, at most AUTH_MAX_CANDIDATES.
 */
static void parse_hex_header(const char *value, struct hex_sigs *sigs)
{
	struct span rest, piece;
	size_t kept = 0;

	rest.s = value;
	rest.len = bounded_len(value, AUTH_HEADER_MAX_BYTES);
	if (rest.len == 0 || rest.len > AUTH_HEADER_MAX_BYTES)
		return;
	while (kept < AUTH_MAX_CANDIDATES && next_piece(&rest, ',', &piece)) {
		piece = trim(piece);
		if (piece.len == 0)
			continue;
		if (parse_hex_candidate(piece, sigs->mac[sigs->n])) {
			sigs->n++;
			kept++;
		}
	}
}

/*
 * Parses a Stream header, "time=T,sig1=HEX[,...]".  Each element is
 * "key=value" once trimmed; "time" opens a group (ignored with all its
 * sig1 elements when T is malformed or there are already
 * AUTH_STREAM_MAX_TIMES groups), "sig1" adds a digest to the open group,
 * any other element is skipped.
 */
static void parse_stream(const char *value, size_t len, int64_t now, int64_t tolerance,
                         struct stream_sigs *sigs)
{
	struct span rest = {value, len}, piece, key, val;
	bool group_open = false;
	int64_t t;

	while (next_piece(&rest, ',', &piece)) {
		piece = trim(piece);
		val = piece;
		if (!next_piece(&val, '=', &key) || val.s == NULL)
			continue;
		if (key.len == strlen(STREAM_TIME_KEY) &&
		    memcmp(key.s, STREAM_TIME_KEY, key.len) == 0) {
			group_open =
			    sigs->n_times < AUTH_STREAM_MAX_TIMES && parse_timestamp(val, &t);
			if (group_open) {
				sigs->times[sigs->n_times].text = val;
				sigs->times[sigs->n_times].in_window = in_window(t, now, tolerance);
				sigs->n_times++;
			}
		} else if (key.len == strlen(STREAM_SIG_KEY) &&
		           memcmp(key.s, STREAM_SIG_KEY, key.len) == 0) {
			if (!group_open || sigs->n >= AUTH_MAX_CANDIDATES ||
			    val.len != HEX_DIGEST_CHARS ||
			    !hex_decode(val.s, SHA256_BYTES, sigs->mac[sigs->n]))
				continue;
			sigs->time_of[sigs->n] = sigs->n_times - 1;
			sigs->n++;
		}
	}
}

/*
 * Parses a Standard Webhooks delivery.  The signature header holds
 * space-separated "version,BASE64" entries; only "v1" entries whose
 * base64 decodes to exactly SHA256_BYTES are kept, anything else (other
 * versions such as "v1a", bad base64) is skipped.  The delivery is usable
 * only with a non-empty webhook-id and a well-formed webhook-timestamp,
 * both within AUTH_HEADER_MAX_BYTES.
 */
static void parse_standard(const char *sig, size_t sig_len, const char *id, const char *ts,
                           int64_t now, int64_t tolerance, struct standard_sigs *std)
{
	struct span rest = {sig, sig_len}, piece, ts_span;
	int64_t t;

	while (std->n < AUTH_MAX_CANDIDATES && next_piece(&rest, ' ', &piece)) {
		if (piece.len > 0 && piece.s[piece.len - 1] == ',')
			piece.len--;
		if (!strip_prefix(&piece, STANDARD_VERSION) || piece.len != BASE64_DIGEST_CHARS)
			continue;
		if (base64_decode(piece.s, piece.len, std->mac[std->n], SHA256_BYTES) ==
		    SHA256_BYTES)
			std->n++;
	}

	if (id == NULL || ts == NULL)
		return;
	std->id.s = id;
	std->id.len = bounded_len(id, AUTH_HEADER_MAX_BYTES);
	ts_span.s = ts;
	ts_span.len = bounded_len(ts, AUTH_TIMESTAMP_MAX_DIGITS);
	if (std->id.len == 0 || std->id.len > AUTH_HEADER_MAX_BYTES ||
	    !parse_timestamp(ts_span, &t))
		return;
	std->dots[0] = '.';
	memcpy(std->dots + 1, ts_span.s, ts_span.len);
	std->dots[ts_span.len + 1] = '.';
	std->dots_len = ts_span.len + 2;
	std->in_window = in_window(t, now, tolerance);
	std->usable = true;
}

/*
 * Parses every signature header of *h into *p.  A header counts as
 * present when it is non-NULL, even if empty, too long or malformed.
 * webhook-id and webhook-timestamp alone are not signatures and do not
 * make a delivery "present".
 */
static void parse_headers(const struct auth_headers *h, int64_t now, int64_t tolerance,
                          struct parsed *p)
{
	const char *hex_headers[AUTH_HEX_HEADERS] = {h->x_signature, h->x_cloudflare_signature,
	                                             h->x_imggo_signature, h->x_hub_signature_256};
	size_t i, len;

	memset(p, 0, sizeof(*p));
	for (i = 0; i < AUTH_HEX_HEADERS; i++) {
		if (hex_headers[i] == NULL)
			continue;
		p->present = true;
		parse_hex_header(hex_headers[i], &p->hex);
	}

	if (h->cf_webhook_auth != NULL) {
		p->present = true;
		len = bounded_len(h->cf_webhook_auth, AUTH_HEADER_MAX_BYTES);
		if (len > 0 && len <= AUTH_HEADER_MAX_BYTES) {
			sha256(h->cf_webhook_auth, len, p->cf_digest);
			p->cf_usable = true;
		}
	}

	if (h->webhook_signature != NULL) {
		p->present = true;
		len = bounded_len(h->webhook_signature, AUTH_HEADER_MAX_BYTES);
		if (len > AUTH_HEADER_MAX_BYTES)
			return;
		if (strncmp(h->webhook_signature, STREAM_PREFIX, strlen(STREAM_PREFIX)) == 0)
			parse_stream(h->webhook_signature, len, now, tolerance, &p->stream);
		else
			parse_standard(h->webhook_signature, len, h->webhook_id,
			               h->webhook_timestamp, now, tolerance, &p->standard);
	}
}

/* True when expected equals any of the n candidates; always compares all n. */
static bool match_any(const unsigned char expected[SHA256_BYTES],
                      const unsigned char (*candidates)[SHA256_BYTES], size_t n)
{
	bool hit = false;
	size_t i;

	for (i = 0; i < n; i++)
		hit |= ct_equal(expected, candidates[i], SHA256_BYTES);
	return hit;
}

/*
 * The Standard Webhooks key of a secret: the base64 decoding of what
 * follows "whsec_", else the secret's bytes as they are.  Stores a pointer
 * to the key (into buf or into the secret) and returns its length, or -1
 * when a whsec_ secret is not valid base64, decodes to nothing or to more
 * than AUTH_KEY_MAX_BYTES.  The caller wipes buf.
 */
static long standard_key(const struct auth_secret *secret, unsigned char buf[AUTH_KEY_MAX_BYTES],
                         const void **key)
{
	size_t n = strlen(STANDARD_SECRET_PREFIX);
	long len;

	if (secret->len < n || memcmp(secret->bytes, STANDARD_SECRET_PREFIX, n) != 0) {
		*key = secret->bytes;
		return (long)secret->len;
	}
	len = base64_decode(secret->bytes + n, secret->len - n, buf, AUTH_KEY_MAX_BYTES);
	if (len <= 0)
		return -1;
	*key = buf;
	return len;
}

/*
 * Checks every parsed signature against one secret and returns a bit mask
 * of the schemes (1u << enum auth_scheme) that verified.  The expected
 * digests are wiped before returning: they are valid signatures.
 */
static unsigned verify_secret(const struct parsed *p, const struct auth_secret *secret,
                              const unsigned char *body, size_t body_len)
{
	unsigned char expected[SHA256_BYTES];
	unsigned char keybuf[AUTH_KEY_MAX_BYTES];
	const void *key;
	long key_len;
	unsigned verified = 0;
	bool hit;
	size_t g, i;

	if (p->hex.n > 0) {
		hmac_sha256(secret->bytes, secret->len, body, body_len, expected);
		if (match_any(expected, p->hex.mac, p->hex.n))
			verified |= 1u << AUTH_SCHEME_HEX;
	}

	if (p->cf_usable) {
		sha256(secret->bytes, secret->len, expected);
		if (ct_equal(expected, p->cf_digest, SHA256_BYTES))
			verified |= 1u << AUTH_SCHEME_CF;
	}

	for (g = 0; g < p->stream.n_times; g++) {
		hmac_sha256_parts(secret->bytes, secret->len, p->stream.times[g].text.s,
		                  p->stream.times[g].text.len, ".", 1, body, body_len, expected);
		hit = false;
		for (i = 0; i < p->stream.n; i++)
			hit |= (p->stream.time_of[i] == g) &
			       ct_equal(expected, p->stream.mac[i], SHA256_BYTES);
		if (hit && p->stream.times[g].in_window)
			verified |= 1u << AUTH_SCHEME_STREAM;
	}

	if (p->standard.usable && p->standard.n > 0) {
		key_len = standard_key(secret, keybuf, &key);
		if (key_len > 0) {
			hmac_sha256_parts(key, (size_t)key_len, p->standard.id.s,
			                  p->standard.id.len, p->standard.dots,
			                  p->standard.dots_len, body, body_len, expected);
			if (match_any(expected, p->standard.mac, p->standard.n) &&
			    p->standard.in_window)
				verified |= 1u << AUTH_SCHEME_STANDARD;
		}
	}

	OPENSSL_cleanse(expected, sizeof(expected));
	OPENSSL_cleanse(keybuf, sizeof(keybuf));
	return verified;
}

/*
 * See auth.h.  Further decisions this implementation makes:
 *  - with no secret configured every delivery is AUTH_OK with
 *    AUTH_SCHEME_NONE (cfimages-webhook(8) AUTHENTICATION: accepted; the caller warns);
 *  - an empty secret (or one with NULL bytes) never verifies anything, so
 *    an empty cf-webhook-auth can never match it;
 *  - when several schemes verify, *scheme names the one that proves most:
 *    standard (authenticates webhook-id and a timestamp), then stream,
 *    then hex, then cf-webhook-auth;
 *  - scheme may be NULL; headers may be NULL (nothing present); body may
 *    be NULL when body_len is 0.
 */
enum auth_result auth_verify(const struct auth_headers *headers, const unsigned char *body,
                             size_t body_len, const struct auth_secret *secrets, size_t n_secrets,
                             int64_t now, int64_t tolerance, enum auth_scheme *scheme)
{
	static const struct auth_headers none;
	static const enum auth_scheme preference[] = {AUTH_SCHEME_STANDARD, AUTH_SCHEME_STREAM,
	                                              AUTH_SCHEME_HEX, AUTH_SCHEME_CF};
	struct parsed p;
	unsigned verified = 0;
	enum auth_result result;
	size_t i;

	if (scheme != NULL)
		*scheme = AUTH_SCHEME_NONE;
	if (n_secrets == 0 || secrets == NULL)
		return AUTH_OK;
	if (body == NULL)
		body = (const unsigned char *)"";

	parse_headers(headers != NULL ? headers : &none, now, tolerance, &p);
	for (i = 0; i < n_secrets; i++) {
		if (secrets[i].bytes == NULL || secrets[i].len == 0)
			continue;
		verified |= verify_secret(&p, &secrets[i], body, body_len);
	}

	if (verified != 0) {
		result = AUTH_OK;
		for (i = 0; i < sizeof(preference) / sizeof(preference[0]); i++) {
			if (verified & (1u << preference[i])) {
				if (scheme != NULL)
					*scheme = preference[i];
				break;
			}
		}
	} else {
		result = p.present ? AUTH_INVALID : AUTH_MISSING;
	}
	return result;
}

/* See auth.h; an out-of-range value reads as "none". */
const char *auth_scheme_token(enum auth_scheme scheme)
{
	switch (scheme) {
	case AUTH_SCHEME_HEX:
		return "hex";
	case AUTH_SCHEME_CF:
		return "cf-webhook-auth";
	case AUTH_SCHEME_STREAM:
		return "stream";
	case AUTH_SCHEME_STANDARD:
		return "standard";
	case AUTH_SCHEME_NONE:
	default:
		return "none";
	}
}

/*
 * See auth.h.  The value carries no "sha256=" prefix; every hex header
 * accepts it as it is.
 */
int auth_sign_hex(const struct auth_secret *secret, const unsigned char *body, size_t body_len,
                  char *out, size_t cap)
{
	unsigned char mac[SHA256_BYTES];

	if (secret == NULL || secret->bytes == NULL || out == NULL || cap < HEX_DIGEST_CHARS + 1)
		return -1;
	hmac_sha256(secret->bytes, secret->len, body != NULL ? body : (const unsigned char *)"",
	            body_len, mac);
	hex_encode(mac, SHA256_BYTES, out);
	OPENSSL_cleanse(mac, sizeof(mac));
	return 0;
}

/* See auth.h.  t must be non-negative: timestamps are digits only. */
int auth_sign_stream(const struct auth_secret *secret, int64_t t, const unsigned char *body,
                     size_t body_len, char *out, size_t cap)
{
	unsigned char mac[SHA256_BYTES];
	char hex[HEX_DIGEST_CHARS + 1];
	char text[TIMESTAMP_TEXT_SIZE];
	int n, rc = -1;

	if (secret == NULL || secret->bytes == NULL || out == NULL || t < 0)
		goto out;
	n = snprintf(text, sizeof(text), "%" PRId64, t);
	if (n < 0 || (size_t)n >= sizeof(text))
		goto out;
	if (cap < strlen(STREAM_PREFIX) + (size_t)n + strlen(",sig1=") + HEX_DIGEST_CHARS + 1)
		goto out;
	hmac_sha256_parts(secret->bytes, secret->len, text, (size_t)n, ".", 1, body, body_len, mac);
	hex_encode(mac, SHA256_BYTES, hex);
	snprintf(out, cap, STREAM_PREFIX "%s," STREAM_SIG_KEY "=%s", text, hex);
	rc = 0;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	OPENSSL_cleanse(hex, sizeof(hex));
	return rc;
}

/*
 * See auth.h.  id must be non-empty and t non-negative; the key is derived
 * as auth_verify() derives it (standard_key()).
 */
int auth_sign_standard(const struct auth_secret *secret, const char *id, int64_t t,
                       const unsigned char *body, size_t body_len, char *out, size_t cap)
{
	unsigned char mac[SHA256_BYTES];
	unsigned char keybuf[AUTH_KEY_MAX_BYTES];
	char dots[STANDARD_DOTS_SIZE];
	const void *key;
	long key_len;
	int n, rc = -1;

	if (secret == NULL || secret->bytes == NULL || id == NULL || id[0] == '\0' || out == NULL ||
	    t < 0 || cap < strlen(STANDARD_VERSION) + BASE64_DIGEST_CHARS + 1)
		goto out;
	key_len = standard_key(secret, keybuf, &key);
	if (key_len < 0)
		goto out;
	n = snprintf(dots, sizeof(dots), ".%" PRId64 ".", t);
	if (n < 0 || (size_t)n >= sizeof(dots))
		goto out;
	hmac_sha256_parts(key, (size_t)key_len, id, strlen(id), dots, (size_t)n, body, body_len,
	                  mac);
	memcpy(out, STANDARD_VERSION, strlen(STANDARD_VERSION));
	base64_encode(mac, SHA256_BYTES, out + strlen(STANDARD_VERSION));
	rc = 0;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	OPENSSL_cleanse(keybuf, sizeof(keybuf));
	return rc;
}
