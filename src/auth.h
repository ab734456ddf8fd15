/*
 * Sender authentication (cfimages-webhook(8) AUTHENTICATION), pure: a function of the
 * signature headers, the raw body, the configured secrets and the current
 * time passed in.  No I/O, no globals, no allocation.
 */
#ifndef CFW_AUTH_H
#define CFW_AUTH_H

#include <stddef.h>
#include <stdint.h>

enum auth_result {
	AUTH_OK = 0,  /* some present header verified against some secret */
	AUTH_MISSING, /* no header of any scheme is present */
	AUTH_INVALID  /* headers present, none verified (or timestamp out of window) */
};

/* Which scheme verified; its token is what webhook_deliveries.scheme holds. */
enum auth_scheme {
	AUTH_SCHEME_NONE = 0, /* nothing verified (or no secret configured) */
	AUTH_SCHEME_HEX,      /* "hex": X-Signature & co., HMAC-SHA256 of the body */
	AUTH_SCHEME_CF,       /* "cf-webhook-auth": header equals the secret */
	AUTH_SCHEME_STREAM,   /* "stream": Webhook-Signature time=T,sig1=HEX */
	AUTH_SCHEME_STANDARD  /* "standard": Standard Webhooks v1 */
};

/*
 * The signature headers of one request, NULL when absent.  Values are as
 * the web server gives them (CGI HTTP_* variables); a header sent twice
 * usually arrives joined with ", ".
 */
struct auth_headers {
	const char *x_signature;            /* X-Signature */
	const char *x_cloudflare_signature; /* X-Cloudflare-Signature */
	const char *x_imggo_signature;      /* X-ImgGo-Signature */
	const char *x_hub_signature_256;    /* X-Hub-Signature-256 */
	const char *cf_webhook_auth;        /* cf-webhook-auth */
	const char *webhook_signature;      /* Webhook-Signature / webhook-signature */
	const char *webhook_id;             /* webhook-id */
	const char *webhook_timestamp;      /* webhook-timestamp */
};

/* One configured secret, exactly the bytes given (no trailing newline). */
struct auth_secret {
	const char *bytes;
	size_t len;
};

/*
 * Verifies a delivery.  Every present header of every scheme is tried
 * against every secret; all comparisons are constant-time and the work
 * done does not depend on which part of a signature differs.  Stream and
 * Standard Webhooks timestamps must satisfy |now - T| <= tolerance.
 * Malformed headers never verify and never crash; a present but empty or
 * malformed header counts as present (AUTH_INVALID, not AUTH_MISSING).
 * On AUTH_OK *scheme names the scheme that verified.
 */
enum auth_result auth_verify(const struct auth_headers *headers, const unsigned char *body,
                             size_t body_len, const struct auth_secret *secrets,
                             size_t n_secrets, int64_t now, int64_t tolerance,
                             enum auth_scheme *scheme);

/* The token stored for a scheme: "none", "hex", "cf-webhook-auth", "stream", "standard". */
const char *auth_scheme_token(enum auth_scheme scheme);

/*
 * Header values a sender would send, for the `sign` command and tests.
 * Each writes a NUL-terminated value into out (cap bytes) and returns 0,
 * or -1 when out is too small or (standard) the whsec_ key is not base64.
 *   hex:      64 lower-case hex digits of HMAC-SHA256(secret, body)
 *   stream:   "time=T,sig1=HEX" over "T." + body
 *   standard: "v1,BASE64" over "id.T." + body, key per cfimages-webhook(8) AUTHENTICATION
 */
int auth_sign_hex(const struct auth_secret *secret, const unsigned char *body, size_t body_len,
                  char *out, size_t cap);
int auth_sign_stream(const struct auth_secret *secret, int64_t t, const unsigned char *body,
                     size_t body_len, char *out, size_t cap);
int auth_sign_standard(const struct auth_secret *secret, const char *id, int64_t t,
                       const unsigned char *body, size_t body_len, char *out, size_t cap);

#endif
