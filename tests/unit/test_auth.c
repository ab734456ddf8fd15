/*
 * Unit tests of src/auth.c (cfimages-webhook(8) AUTHENTICATION): every vector of
 * tests/vectors/signatures.json, then one behaviour per test function:
 * presence rules, rotation, lists of signatures, timestamp windows,
 * hostile headers, and the sign functions round-tripping through
 * auth_verify().
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "auth.h"
#include "util.h"
#include "testlib.h"

/* cfimages-webhook.conf(5)'s default, used when a vector gives no tolerance. */
#define DEFAULT_TOLERANCE_SECONDS 300

/* The body and signatures most tests share (vectors "hex"[0] and "stream"[0]). */
#define BODY                                                                                       \
	"{\"id\":\"2cdc28f0-017a-49c4-9ed7-87056c83901\",\"uploaded\":\"2024-01-01T12:00:00."      \
	"000Z\"}"
#define SECRET "test-secret"
#define HEX_SIG "66531ca36347795bbd2c01382829cda3e46e9c08882875007480d8c28d570c49"
#define STREAM_T 1735689600
#define STREAM_SIG "01af4af1031b58af56c6b1b7f972f2b972f4e14003a3d179d1c7f734bc2a3d33"
#define ZERO_SIG "0000000000000000000000000000000000000000000000000000000000000000"

/* The Standard Webhooks published example (vector "standard"[0]). */
#define STD_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define STD_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define STD_T 1614265330
#define STD_TS "1614265330"
#define STD_BODY "{\"test\": 2432232314}"
#define STD_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
#define STD_WRONG "v1,Ceci+nest+pas+une+signature="
#define STD_ZERO "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

/* Matches AUTH_HEADER_MAX_BYTES in auth.c (the contract leaves the limit to us). */
#define HEADER_LIMIT_BYTES 8192
#define HUGE_HEADER_BYTES (100 * 1024)

/* A body with a NUL, for the sign round trips (lengths are explicit). */
#define BINARY_BODY "\x00\x01\xff binary"

static struct auth_secret secret_of(const char *s)
{
	struct auth_secret sec = {s, strlen(s)};
	return sec;
}

/* auth_verify() with one secret, body given as a string. */
static enum auth_result verify1(const struct auth_headers *h, const char *body, const char *secret,
                                int64_t now, int64_t tolerance, enum auth_scheme *scheme)
{
	struct auth_secret sec = secret_of(secret);
	return auth_verify(h, (const unsigned char *)body, strlen(body), &sec, 1, now, tolerance,
	                   scheme);
}

/* Result of verifying BODY with SECRET and only X-Signature set to value. */
static enum auth_result verify_x_signature(const char *value)
{
	struct auth_headers h = {0};
	h.x_signature = value;
	return verify1(&h, BODY, SECRET, STREAM_T, DEFAULT_TOLERANCE_SECONDS, NULL);
}

/* Result of verifying BODY with SECRET and only Webhook-Signature set. */
static enum auth_result verify_stream(const char *value, int64_t now)
{
	struct auth_headers h = {0};
	h.webhook_signature = value;
	return verify1(&h, BODY, SECRET, now, DEFAULT_TOLERANCE_SECONDS, NULL);
}

/* Result of verifying the Standard Webhooks example with the given headers. */
static enum auth_result verify_standard(const char *id, const char *ts, const char *sig,
                                        int64_t now)
{
	struct auth_headers h = {0};
	h.webhook_id = id;
	h.webhook_timestamp = ts;
	h.webhook_signature = sig;
	return verify1(&h, STD_BODY, STD_SECRET, now, DEFAULT_TOLERANCE_SECONDS, NULL);
}

/* Sets the header a vector names; false for a name this program does not know. */
static int set_named_header(struct auth_headers *h, const char *name, const char *value)
{
	if (strcmp(name, "X-Signature") == 0)
		h->x_signature = value;
	else if (strcmp(name, "X-Cloudflare-Signature") == 0)
		h->x_cloudflare_signature = value;
	else if (strcmp(name, "X-ImgGo-Signature") == 0)
		h->x_imggo_signature = value;
	else if (strcmp(name, "X-Hub-Signature-256") == 0)
		h->x_hub_signature_256 = value;
	else if (strcmp(name, "cf-webhook-auth") == 0)
		h->cf_webhook_auth = value;
	else if (strcmp(name, "Webhook-Signature") == 0)
		h->webhook_signature = value;
	else
		return 0;
	return 1;
}

static const char *str_field(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int64_t int_field(const cJSON *o, const char *key, int64_t dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : dflt;
}

static int bool_field(const cJSON *o, const char *key)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/*
 * Runs every vector of one family; expect is the scheme a valid vector
 * must report.  Returns how many vectors ran.
 */
static int run_family(const cJSON *root, const char *family, enum auth_scheme expect)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, family), *v;
	int ran = 0;

	CHECK_MSG(cJSON_IsArray(list), "family %s", family);
	cJSON_ArrayForEach(v, list)
	{
		struct auth_headers h = {0};
		enum auth_scheme scheme = AUTH_SCHEME_HEX;
		enum auth_result got;
		const char *secret = str_field(v, "secret");
		const char *body = str_field(v, "body");
		const char *why = str_field(v, "why");
		char ts[32];
		int valid = bool_field(v, "valid");
		int64_t now = int_field(v, "now", 0);
		int64_t tol = int_field(v, "tolerance", DEFAULT_TOLERANCE_SECONDS);

		if (body == NULL)
			body = "";
		if (expect == AUTH_SCHEME_STANDARD) {
			snprintf(ts, sizeof(ts), "%" PRId64, int_field(v, "timestamp", -1));
			h.webhook_id = str_field(v, "id");
			h.webhook_timestamp = ts;
			h.webhook_signature = str_field(v, "signature");
			CHECK(h.webhook_id != NULL && h.webhook_signature != NULL);
		} else {
			CHECK_MSG(
			    set_named_header(&h, str_field(v, "header"), str_field(v, "value")),
			    "%s[%d]: unknown header", family, ran);
		}
		CHECK(secret != NULL);
		if (secret == NULL)
			continue;
		got = verify1(&h, body, secret, now, tol, &scheme);
		CHECK_MSG(got == (valid ? AUTH_OK : AUTH_INVALID), "%s[%d] (%s): got %d", family,
		          ran, why ? why : "", (int)got);
		CHECK_MSG(scheme == (valid ? expect : AUTH_SCHEME_NONE), "%s[%d]: scheme %d",
		          family, ran, (int)scheme);
		ran++;
	}
	return ran;
}

/* Every vector of signatures.json, each family non-empty. */
static void test_vectors(void)
{
	size_t len;
	char *text = test_read_file(test_vector_path("signatures.json"), &len);
	cJSON *root;

	CHECK_MSG(text != NULL, "cannot read %s", test_vector_path("signatures.json"));
	if (text == NULL)
		return;
	root = cJSON_ParseWithLength(text, len);
	CHECK(root != NULL);
	if (root != NULL) {
		CHECK(run_family(root, "hex", AUTH_SCHEME_HEX) == 5);
		CHECK(run_family(root, "cf_webhook_auth", AUTH_SCHEME_CF) == 2);
		CHECK(run_family(root, "stream", AUTH_SCHEME_STREAM) == 6);
		CHECK(run_family(root, "standard", AUTH_SCHEME_STANDARD) == 7);
	}
	cJSON_Delete(root);
	free(text);
}

/* No signature header at all is AUTH_MISSING; id and timestamp alone are not signatures. */
static void test_missing(void)
{
	struct auth_headers h = {0};
	enum auth_scheme scheme = AUTH_SCHEME_HEX;

	CHECK(verify1(&h, BODY, SECRET, STREAM_T, 300, &scheme) == AUTH_MISSING);
	CHECK(scheme == AUTH_SCHEME_NONE);
	CHECK(auth_verify(NULL, NULL, 0, &(struct auth_secret){SECRET, sizeof(SECRET) - 1}, 1, 0,
	                  300, NULL) == AUTH_MISSING);
	h.webhook_id = STD_ID;
	h.webhook_timestamp = STD_TS;
	CHECK(verify1(&h, STD_BODY, STD_SECRET, STD_T, 300, NULL) == AUTH_MISSING);
}

/* Every signature header, present but empty, is AUTH_INVALID. */
static void test_empty_headers(void)
{
	const char *names[] = {"X-Signature",       "X-Cloudflare-Signature",
	                       "X-ImgGo-Signature", "X-Hub-Signature-256",
	                       "cf-webhook-auth",   "Webhook-Signature"};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct auth_headers h = {0};
		set_named_header(&h, names[i], "");
		CHECK_MSG(verify1(&h, BODY, SECRET, STREAM_T, 300, NULL) == AUTH_INVALID, "%s",
		          names[i]);
	}
	/* Empty Standard Webhooks signature even with a valid id and timestamp. */
	CHECK(verify_standard(STD_ID, STD_TS, "", STD_T) == AUTH_INVALID);
	/* A valid header elsewhere still wins over an empty one. */
	{
		struct auth_headers h = {0};
		h.x_signature = "";
		h.x_hub_signature_256 = HEX_SIG;
		CHECK(verify1(&h, BODY, SECRET, STREAM_T, 300, NULL) == AUTH_OK);
	}
}

/* With no secret configured every delivery is accepted, scheme "none". */
static void test_no_secret(void)
{
	struct auth_headers h = {0};
	enum auth_scheme scheme = AUTH_SCHEME_HEX;

	h.x_signature = ZERO_SIG;
	CHECK(auth_verify(&h, (const unsigned char *)BODY, strlen(BODY), NULL, 0, 0, 300,
	                  &scheme) == AUTH_OK);
	CHECK(scheme == AUTH_SCHEME_NONE);
}

/* Rotation: any configured secret may match, in any position. */
static void test_rotation(void)
{
	struct auth_headers h = {0};
	struct auth_secret two[2] = {secret_of("old-secret"), secret_of(SECRET)};
	struct auth_secret wrong[2] = {secret_of("old-secret"), secret_of("other")};
	struct auth_secret with_empty[2] = {secret_of(""), secret_of("old-secret")};
	enum auth_scheme scheme = AUTH_SCHEME_NONE;
	const unsigned char *body = (const unsigned char *)BODY;

	h.x_signature = HEX_SIG;
	CHECK(auth_verify(&h, body, strlen(BODY), two, 2, 0, 300, &scheme) == AUTH_OK);
	CHECK(scheme == AUTH_SCHEME_HEX);
	CHECK(auth_verify(&h, body, strlen(BODY), wrong, 2, 0, 300, &scheme) == AUTH_INVALID);
	CHECK(scheme == AUTH_SCHEME_NONE);

	memset(&h, 0, sizeof(h));
	h.cf_webhook_auth = SECRET;
	CHECK(auth_verify(&h, body, strlen(BODY), two, 2, 0, 300, NULL) == AUTH_OK);
	h.cf_webhook_auth = "old-secret";
	CHECK(auth_verify(&h, body, strlen(BODY), two, 2, 0, 300, NULL) == AUTH_OK);
	/* An empty configured secret verifies nothing, not even an empty-key HMAC. */
	{
		struct auth_secret empty = secret_of("");
		char hex[65];
		CHECK(auth_sign_hex(&empty, body, strlen(BODY), hex, sizeof(hex)) == 0);
		memset(&h, 0, sizeof(h));
		h.x_signature = hex;
		CHECK(auth_verify(&h, body, strlen(BODY), with_empty, 2, 0, 300, NULL) ==
		      AUTH_INVALID);
	}
	memset(&h, 0, sizeof(h));
	/* An empty configured secret never matches an empty header. */
	h.cf_webhook_auth = "";
	CHECK(auth_verify(&h, body, strlen(BODY), with_empty, 2, 0, 300, NULL) == AUTH_INVALID);

	memset(&h, 0, sizeof(h));
	h.webhook_signature = "time=1735689600,sig1=" STREAM_SIG;
	CHECK(auth_verify(&h, body, strlen(BODY), two, 2, STREAM_T, 300, &scheme) == AUTH_OK);
	CHECK(scheme == AUTH_SCHEME_STREAM);
	CHECK(auth_verify(&h, body, strlen(BODY), wrong, 2, STREAM_T, 300, NULL) == AUTH_INVALID);
}

/* cf-webhook-auth is an exact, whole-value comparison. */
static void test_cf_exact(void)
{
	struct auth_headers h = {0};

	h.cf_webhook_auth = "test-secre";
	CHECK(verify1(&h, BODY, SECRET, 0, 300, NULL) == AUTH_INVALID);
	h.cf_webhook_auth = "test-secret ";
	CHECK(verify1(&h, BODY, SECRET, 0, 300, NULL) == AUTH_INVALID);
	h.cf_webhook_auth = "test-secret, test-secret";
	CHECK(verify1(&h, BODY, SECRET, 0, 300, NULL) == AUTH_INVALID);
	/* A secret containing ", " is not split. */
	h.cf_webhook_auth = "a, b";
	CHECK(verify1(&h, BODY, "a, b", 0, 300, NULL) == AUTH_OK);
	CHECK(verify1(&h, BODY, "a", 0, 300, NULL) == AUTH_INVALID);
}

/* Several signatures (a header repeated and joined with ", "): any one may verify. */
static void test_several_signatures(void)
{
	CHECK(verify_x_signature("sha256=" ZERO_SIG ", sha256=" HEX_SIG) == AUTH_OK);
	CHECK(verify_x_signature(HEX_SIG ", " ZERO_SIG) == AUTH_OK);
	CHECK(verify_x_signature("garbage, " HEX_SIG) == AUTH_OK);
	CHECK(verify_x_signature(" \t" HEX_SIG "\t ") == AUTH_OK);
	CHECK(verify_x_signature(ZERO_SIG ", " ZERO_SIG) == AUTH_INVALID);

	CHECK(verify_stream("time=1735689600,sig1=" ZERO_SIG ",sig1=" STREAM_SIG, STREAM_T) ==
	      AUTH_OK);
	CHECK(verify_stream("time=1735689600,v0=abc,sig1=" STREAM_SIG, STREAM_T) == AUTH_OK);
	/* Two joined Stream headers: each sig1 belongs to the time before it. */
	CHECK(verify_stream("time=1735689000,sig1=" ZERO_SIG ", time=1735689600,sig1=" STREAM_SIG,
	                    STREAM_T) == AUTH_OK);
	CHECK(verify_stream("time=1735689600,sig1=" ZERO_SIG ", time=1735689000,sig1=" STREAM_SIG,
	                    STREAM_T) == AUTH_INVALID);

	CHECK(verify_standard(STD_ID, STD_TS, STD_WRONG " " STD_SIG, STD_T) == AUTH_OK);
	CHECK(verify_standard(STD_ID, STD_TS, STD_WRONG ", " STD_SIG, STD_T) == AUTH_OK);
	CHECK(verify_standard(STD_ID, STD_TS, STD_SIG ", " STD_WRONG, STD_T) == AUTH_OK);
	CHECK(verify_standard(STD_ID, STD_TS, "v1a,xyz " STD_SIG " v2,abc", STD_T) == AUTH_OK);
	CHECK(verify_standard(STD_ID, STD_TS, "  " STD_SIG "  ", STD_T) == AUTH_OK);
	CHECK(verify_standard(STD_ID, STD_TS, STD_WRONG " " STD_WRONG, STD_T) == AUTH_INVALID);
}

/* Timestamps: |now - T| <= tolerance in both directions, boundaries included. */
static void test_timestamp_window(void)
{
	const char *stream = "time=1735689600,sig1=" STREAM_SIG;
	struct auth_headers h = {0};

	CHECK(verify_stream(stream, STREAM_T + 300) == AUTH_OK);
	CHECK(verify_stream(stream, STREAM_T - 300) == AUTH_OK);
	CHECK(verify_stream(stream, STREAM_T + 301) == AUTH_INVALID);
	CHECK(verify_stream(stream, STREAM_T - 301) == AUTH_INVALID);
	CHECK(verify_stream(stream, STREAM_T - 100000) == AUTH_INVALID);
	CHECK(verify_stream(stream, INT64_MIN) == AUTH_INVALID);
	CHECK(verify_stream(stream, INT64_MAX) == AUTH_INVALID);

	CHECK(verify_standard(STD_ID, STD_TS, STD_SIG, STD_T + 300) == AUTH_OK);
	CHECK(verify_standard(STD_ID, STD_TS, STD_SIG, STD_T - 300) == AUTH_OK);
	CHECK(verify_standard(STD_ID, STD_TS, STD_SIG, STD_T - 301) == AUTH_INVALID);
	CHECK(verify_standard(STD_ID, STD_TS, STD_SIG, STD_T + 301) == AUTH_INVALID);

	/* A zero tolerance accepts only now; a negative one nothing. */
	h.webhook_signature = stream;
	CHECK(verify1(&h, BODY, SECRET, STREAM_T, 0, NULL) == AUTH_OK);
	CHECK(verify1(&h, BODY, SECRET, STREAM_T + 1, 0, NULL) == AUTH_INVALID);
	CHECK(verify1(&h, BODY, SECRET, STREAM_T, -1, NULL) == AUTH_INVALID);
	/* Hex signatures carry no time and are not affected. */
	CHECK(verify_x_signature(HEX_SIG) == AUTH_OK);
	memset(&h, 0, sizeof(h));
	h.x_signature = HEX_SIG;
	CHECK(verify1(&h, BODY, SECRET, 0, -1, NULL) == AUTH_OK);
}

/* Hex header syntax: optional sha256= prefix, 64 hex digits of either case. */
static void test_hex_syntax(void)
{
	CHECK(verify_x_signature(HEX_SIG) == AUTH_OK);
	CHECK(verify_x_signature("sha256=" HEX_SIG) == AUTH_OK);
	CHECK(verify_x_signature(
	          "66531CA36347795bbd2c01382829cda3e46e9c08882875007480d8c28d570C49") == AUTH_OK);
	CHECK(verify_x_signature("sha256=sha256=" HEX_SIG) == AUTH_INVALID);
	CHECK(verify_x_signature("sha1=" HEX_SIG) == AUTH_INVALID);
	CHECK(verify_x_signature("sha256 =" HEX_SIG) == AUTH_INVALID);
	CHECK(verify_x_signature("sha256=") == AUTH_INVALID);
	/* non-hex, odd and wrong lengths */
	CHECK(verify_x_signature(
	          "g6531ca36347795bbd2c01382829cda3e46e9c08882875007480d8c28d570c49") ==
	      AUTH_INVALID);
	CHECK(
	    verify_x_signature("6531ca36347795bbd2c01382829cda3e46e9c08882875007480d8c28d570c49") ==
	    AUTH_INVALID);
	CHECK(verify_x_signature(HEX_SIG "0") == AUTH_INVALID);
	CHECK(verify_x_signature(HEX_SIG "00") == AUTH_INVALID);
	CHECK(
	    verify_x_signature("66531ca36347795bbd2c01382829cda3e46e9c08882875007480d8c28d570c4") ==
	    AUTH_INVALID);
	/* A NUL-free value with an embedded space is one malformed candidate. */
	CHECK(verify_x_signature(
	          "66531ca36347795bbd2c01382829cda3 e46e9c08882875007480d8c28d570c49") ==
	      AUTH_INVALID);
}

/* A value made of a valid signature, then filler up to total bytes. */
static char *padded(const char *sig, char filler, size_t total)
{
	char *s = malloc(total + 1);
	size_t n = strlen(sig);

	if (s == NULL)
		return NULL;
	memset(s, filler, total);
	memcpy(s, sig, n);
	s[total] = '\0';
	return s;
}

/* Hostile headers never verify, never crash, and cost bounded work. */
static void test_hostile(void)
{
	char *v;

	/* Length limit: up to HEADER_LIMIT_BYTES is parsed, beyond is invalid. */
	v = padded(HEX_SIG ",", ',', HEADER_LIMIT_BYTES);
	CHECK(v && verify_x_signature(v) == AUTH_OK);
	free(v);
	v = padded(HEX_SIG ",", ',', HEADER_LIMIT_BYTES + 1);
	CHECK(v && verify_x_signature(v) == AUTH_INVALID);
	free(v);
	v = padded(HEX_SIG ", ", ' ', HUGE_HEADER_BYTES);
	CHECK(v && verify_x_signature(v) == AUTH_INVALID);
	free(v);
	v = padded("time=1735689600,sig1=" STREAM_SIG ",", 'x', HUGE_HEADER_BYTES);
	CHECK(v && verify_stream(v, STREAM_T) == AUTH_INVALID);
	free(v);
	v = padded(STD_SIG " ", 'A', HUGE_HEADER_BYTES);
	CHECK(v && verify_standard(STD_ID, STD_TS, v, STD_T) == AUTH_INVALID);
	free(v);
	v = padded(STD_ID, 'A', HUGE_HEADER_BYTES);
	CHECK(v && verify_standard(v, STD_TS, STD_SIG, STD_T) == AUTH_INVALID);
	free(v);
	{
		struct auth_headers h = {0};
		v = padded(SECRET, 'A', HUGE_HEADER_BYTES);
		h.cf_webhook_auth = v;
		CHECK(v && verify1(&h, BODY, v, 0, 300, NULL) == AUTH_INVALID);
		free(v);
	}

	/* Separators only. */
	CHECK(verify_x_signature(",,,  ") == AUTH_INVALID);
	CHECK(verify_x_signature(" ") == AUTH_INVALID);
	CHECK(verify_stream("time=,,,  ", STREAM_T) == AUTH_INVALID);
	CHECK(verify_standard(STD_ID, STD_TS, ",,,  ", STD_T) == AUTH_INVALID);
	CHECK(verify_standard(STD_ID, STD_TS, "v1, v1,,", STD_T) == AUTH_INVALID);

	/* Bad base64 in Standard Webhooks entries. */
	CHECK(verify_standard(STD_ID, STD_TS, "v1,!0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	                      STD_T) == AUTH_INVALID);
	CHECK(verify_standard(STD_ID, STD_TS, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE",
	                      STD_T) == AUTH_INVALID);
	CHECK(verify_standard(STD_ID, STD_TS, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1O==",
	                      STD_T) == AUTH_INVALID);
	CHECK(verify_standard(STD_ID, STD_TS, "v1,=0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	                      STD_T) == AUTH_INVALID);
	CHECK(verify_standard(STD_ID, STD_TS, "v1,g0hM9SsE-OTPJTGt_tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	                      STD_T) == AUTH_INVALID);
	CHECK(verify_standard(STD_ID, STD_TS, "V1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	                      STD_T) == AUTH_INVALID);
	CHECK(verify_standard(STD_ID, STD_TS, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	                      STD_T) == AUTH_INVALID);

	/* Stream times: non-digits, missing sig1, signs, overflow. */
	CHECK(verify_stream("time=17356896x0,sig1=" STREAM_SIG, STREAM_T) == AUTH_INVALID);
	CHECK(verify_stream("time= 1735689600,sig1=" STREAM_SIG, STREAM_T) == AUTH_INVALID);
	CHECK(verify_stream("time=+1735689600,sig1=" STREAM_SIG, STREAM_T) == AUTH_INVALID);
	CHECK(verify_stream("time=1735689600", STREAM_T) == AUTH_INVALID);
	CHECK(verify_stream("time=1735689600,sig1=", STREAM_T) == AUTH_INVALID);
	CHECK(verify_stream("time=1735689600,sig1", STREAM_T) == AUTH_INVALID);
	CHECK(verify_stream("time=1735689600,sig2=" STREAM_SIG, STREAM_T) == AUTH_INVALID);
	CHECK(verify_stream("time=-1735689600,sig1=" STREAM_SIG, -STREAM_T) == AUTH_INVALID);
	CHECK(verify_stream("time=99999999999999999999,sig1=" STREAM_SIG, STREAM_T) ==
	      AUTH_INVALID);
	CHECK(verify_stream("time=9223372036854775808,sig1=" STREAM_SIG, INT64_MAX) ==
	      AUTH_INVALID);
	CHECK(verify_stream("time=", STREAM_T) == AUTH_INVALID);
	CHECK(verify_stream("time==,=,sig1==", STREAM_T) == AUTH_INVALID);
	CHECK(verify_stream("Time=1735689600,sig1=" STREAM_SIG, STREAM_T) == AUTH_INVALID);

	/* Standard Webhooks id and timestamp: missing, empty, signed, overflowing. */
	CHECK(verify_standard(NULL, STD_TS, STD_SIG, STD_T) == AUTH_INVALID);
	CHECK(verify_standard(STD_ID, NULL, STD_SIG, STD_T) == AUTH_INVALID);
	CHECK(verify_standard("", STD_TS, STD_SIG, STD_T) == AUTH_INVALID);
	CHECK(verify_standard(STD_ID, "", STD_SIG, STD_T) == AUTH_INVALID);
	CHECK(verify_standard(STD_ID, "-1614265330", STD_SIG, -STD_T) == AUTH_INVALID);
	CHECK(verify_standard(STD_ID, "+1614265330", STD_SIG, STD_T) == AUTH_INVALID);
	CHECK(verify_standard(STD_ID, " 1614265330", STD_SIG, STD_T) == AUTH_INVALID);
	CHECK(verify_standard(STD_ID, "1614265330 ", STD_SIG, STD_T) == AUTH_INVALID);
	CHECK(verify_standard(STD_ID, "1614265330.0", STD_SIG, STD_T) == AUTH_INVALID);
	CHECK(verify_standard(STD_ID, "99999999999999999999", STD_SIG, STD_T) == AUTH_INVALID);
	CHECK(verify_standard(STD_ID, "1614265330, 1614265330", STD_SIG, STD_T) == AUTH_INVALID);
	/* The timestamp is signed as sent: a different spelling is a different message. */
	CHECK(verify_standard(STD_ID, "01614265330", STD_SIG, STD_T) == AUTH_INVALID);
}

/* The candidate limit: 16 well-formed signatures per header are looked at, no more. */
static void test_candidate_limit(void)
{
	char value[4096] = "";
	int i;

	for (i = 0; i < 15; i++)
		strcat(value, ZERO_SIG ",");
	strcat(value, HEX_SIG);
	CHECK(verify_x_signature(value) == AUTH_OK);
	value[0] = '\0';
	for (i = 0; i < 16; i++)
		strcat(value, ZERO_SIG ",");
	strcat(value, HEX_SIG);
	CHECK(verify_x_signature(value) == AUTH_INVALID);
	/* Malformed pieces do not use up the limit. */
	value[0] = '\0';
	for (i = 0; i < 100; i++)
		strcat(value, "zz,");
	strcat(value, HEX_SIG);
	CHECK(verify_x_signature(value) == AUTH_OK);

	/* At most four Stream time groups are looked at. */
	CHECK(verify_stream("time=1,sig1=" ZERO_SIG
	                    ",time=2,time=3,time=1735689600,sig1=" STREAM_SIG,
	                    STREAM_T) == AUTH_OK);
	CHECK(verify_stream("time=1,time=2,time=3,time=4,time=1735689600,sig1=" STREAM_SIG,
	                    STREAM_T) == AUTH_INVALID);
	/* Well-formed wrong v1 entries use it up. */
	value[0] = '\0';
	for (i = 0; i < 16; i++)
		strcat(value, STD_ZERO " ");
	strcat(value, STD_SIG);
	CHECK(verify_standard(STD_ID, STD_TS, value, STD_T) == AUTH_INVALID);
	value[0] = '\0';
	for (i = 0; i < 15; i++)
		strcat(value, STD_ZERO " " STD_WRONG " v1a,xyz ");
	strcat(value, STD_SIG);
	CHECK(verify_standard(STD_ID, STD_TS, value, STD_T) == AUTH_OK);
}

/* When several schemes verify, the one proving the most is reported. */
static void test_scheme_preference(void)
{
	struct auth_headers h = {0};
	struct auth_secret secrets[2] = {secret_of(SECRET), secret_of(STD_SECRET)};
	char hex[65];
	enum auth_scheme scheme = AUTH_SCHEME_NONE;
	const unsigned char *body = (const unsigned char *)STD_BODY;

	CHECK(auth_sign_hex(&secrets[0], body, strlen(STD_BODY), hex, sizeof(hex)) == 0);
	h.x_signature = hex;
	h.cf_webhook_auth = SECRET;
	CHECK(auth_verify(&h, body, strlen(STD_BODY), secrets, 2, STD_T, 300, &scheme) == AUTH_OK);
	CHECK(scheme == AUTH_SCHEME_HEX);
	h.webhook_id = STD_ID;
	h.webhook_timestamp = STD_TS;
	h.webhook_signature = STD_SIG;
	CHECK(auth_verify(&h, body, strlen(STD_BODY), secrets, 2, STD_T, 300, &scheme) == AUTH_OK);
	CHECK(scheme == AUTH_SCHEME_STANDARD);
	/* A bad signature of one scheme does not spoil a good one of another. */
	h.x_signature = ZERO_SIG;
	h.webhook_signature = STD_WRONG;
	CHECK(auth_verify(&h, body, strlen(STD_BODY), secrets, 2, STD_T, 300, &scheme) == AUTH_OK);
	CHECK(scheme == AUTH_SCHEME_CF);
}

/* The sign functions reproduce the vectors. */
static void test_sign_vectors(void)
{
	struct auth_secret sec = secret_of(SECRET);
	struct auth_secret github = secret_of("It's a Secret to Everybody");
	struct auth_secret std = secret_of(STD_SECRET);
	char out[128];

	CHECK(auth_sign_hex(&sec, (const unsigned char *)BODY, strlen(BODY), out, sizeof(out)) ==
	      0);
	CHECK_STR(out, HEX_SIG);
	CHECK(auth_sign_hex(&github, (const unsigned char *)"Hello, World!", 13, out,
	                    sizeof(out)) == 0);
	CHECK_STR(out, "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
	CHECK(auth_sign_stream(&sec, STREAM_T, (const unsigned char *)BODY, strlen(BODY), out,
	                       sizeof(out)) == 0);
	CHECK_STR(out, "time=1735689600,sig1=" STREAM_SIG);
	CHECK(auth_sign_standard(&std, STD_ID, STD_T, (const unsigned char *)STD_BODY,
	                         strlen(STD_BODY), out, sizeof(out)) == 0);
	CHECK_STR(out, STD_SIG);
}

/* Every sign function round-trips through auth_verify, for several secrets and bodies. */
static void test_sign_round_trip(void)
{
	const char *secrets[] = {SECRET, STD_SECRET, "whsec_", "x", "a, b,c"};
	const char *bodies[] = {"", "{}", BODY, BINARY_BODY};
	size_t si, bi;

	for (si = 0; si < sizeof(secrets) / sizeof(secrets[0]); si++) {
		for (bi = 0; bi < sizeof(bodies) / sizeof(bodies[0]); bi++) {
			struct auth_secret sec = secret_of(secrets[si]);
			const unsigned char *body = (const unsigned char *)bodies[bi];
			size_t len = bi == 3 ? sizeof(BINARY_BODY) - 1 : strlen(bodies[bi]);
			struct auth_headers h = {0};
			enum auth_scheme scheme = AUTH_SCHEME_NONE;
			char out[128], ts[32];
			int64_t t = 1700000000 + (int64_t)bi;

			CHECK(auth_sign_hex(&sec, body, len, out, sizeof(out)) == 0);
			h.x_imggo_signature = out;
			CHECK(auth_verify(&h, body, len, &sec, 1, 0, 300, &scheme) == AUTH_OK);
			CHECK(scheme == AUTH_SCHEME_HEX);

			memset(&h, 0, sizeof(h));
			CHECK(auth_sign_stream(&sec, t, body, len, out, sizeof(out)) == 0);
			h.webhook_signature = out;
			CHECK(auth_verify(&h, body, len, &sec, 1, t - 5, 300, &scheme) == AUTH_OK);
			CHECK(scheme == AUTH_SCHEME_STREAM);

			memset(&h, 0, sizeof(h));
			h.cf_webhook_auth = secrets[si];
			CHECK(auth_verify(&h, body, len, &sec, 1, 0, 300, &scheme) == AUTH_OK);
			CHECK(scheme == AUTH_SCHEME_CF);

			memset(&h, 0, sizeof(h));
			/* "whsec_" alone has no key to decode: signing must refuse. */
			if (strcmp(secrets[si], "whsec_") == 0) {
				CHECK(auth_sign_standard(&sec, "msg_1", t, body, len, out,
				                         sizeof(out)) == -1);
				continue;
			}
			CHECK(auth_sign_standard(&sec, "msg_1", t, body, len, out, sizeof(out)) ==
			      0);
			snprintf(ts, sizeof(ts), "%" PRId64, t);
			h.webhook_id = "msg_1";
			h.webhook_timestamp = ts;
			h.webhook_signature = out;
			CHECK(auth_verify(&h, body, len, &sec, 1, t + 300, 300, &scheme) ==
			      AUTH_OK);
			CHECK(scheme == AUTH_SCHEME_STANDARD);
			/* The id, the timestamp and every body byte are signed. */
			h.webhook_id = "msg_2";
			CHECK(auth_verify(&h, body, len, &sec, 1, t, 300, NULL) == AUTH_INVALID);
			h.webhook_id = "msg_1";
			snprintf(ts, sizeof(ts), "%" PRId64, t + 1);
			CHECK(auth_verify(&h, body, len, &sec, 1, t, 300, NULL) == AUTH_INVALID);
			snprintf(ts, sizeof(ts), "%" PRId64, t);
			if (len > 0)
				CHECK(auth_verify(&h, body, len - 1, &sec, 1, t, 300, NULL) ==
				      AUTH_INVALID);
		}
	}
}

/* The sign functions refuse small buffers, bad keys and bad arguments. */
static void test_sign_errors(void)
{
	struct auth_secret sec = secret_of(SECRET);
	struct auth_secret bad = secret_of("whsec_not*base64");
	const unsigned char *body = (const unsigned char *)"{}";
	char out[128];

	CHECK(auth_sign_hex(&sec, body, 2, out, 64) == -1);
	CHECK(auth_sign_hex(&sec, body, 2, out, 65) == 0);
	CHECK(strlen(out) == 64);
	CHECK(auth_sign_stream(&sec, 1735689600, body, 2, out, 5 + 10 + 6 + 64) == -1);
	CHECK(auth_sign_stream(&sec, 1735689600, body, 2, out, 5 + 10 + 6 + 64 + 1) == 0);
	CHECK(strlen(out) == 85);
	CHECK(auth_sign_stream(&sec, -1, body, 2, out, sizeof(out)) == -1);
	CHECK(auth_sign_standard(&sec, "id", 1, body, 2, out, 3 + 44) == -1);
	CHECK(auth_sign_standard(&sec, "id", 1, body, 2, out, 3 + 44 + 1) == 0);
	CHECK(strlen(out) == 47);
	CHECK(auth_sign_standard(&bad, "id", 1, body, 2, out, sizeof(out)) == -1);
	CHECK(auth_sign_standard(&sec, "", 1, body, 2, out, sizeof(out)) == -1);
	CHECK(auth_sign_standard(&sec, NULL, 1, body, 2, out, sizeof(out)) == -1);
	CHECK(auth_sign_standard(&sec, "id", -1, body, 2, out, sizeof(out)) == -1);

	/* A whsec_ secret that is not base64 can verify the other schemes, not Standard. */
	{
		struct auth_headers h = {0};
		h.webhook_id = "id";
		h.webhook_timestamp = "1";
		h.webhook_signature = STD_SIG;
		CHECK(auth_verify(&h, body, 2, &bad, 1, 1, 300, NULL) == AUTH_INVALID);
		memset(&h, 0, sizeof(h));
		h.cf_webhook_auth = "whsec_not*base64";
		CHECK(auth_verify(&h, body, 2, &bad, 1, 1, 300, NULL) == AUTH_OK);
	}
}

/* Standard Webhooks with a raw secret (no whsec_ prefix) uses the bytes as the key. */
static void test_standard_raw_key(void)
{
	struct auth_secret raw = secret_of("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
	struct auth_headers h = {0};
	unsigned char mac[SHA256_BYTES];
	char expect[3 + 45] = "v1,";
	const char *prefix = STD_ID "." STD_TS ".";
	char data[256];

	snprintf(data, sizeof(data), "%s%s", prefix, STD_BODY);
	hmac_sha256(raw.bytes, raw.len, data, strlen(data), mac);
	base64_encode(mac, SHA256_BYTES, expect + 3);
	CHECK(auth_sign_standard(&raw, STD_ID, STD_T, (const unsigned char *)STD_BODY,
	                         strlen(STD_BODY), data, sizeof(data)) == 0);
	CHECK_STR(data, expect);
	h.webhook_id = STD_ID;
	h.webhook_timestamp = STD_TS;
	h.webhook_signature = expect;
	CHECK(verify1(&h, STD_BODY, raw.bytes, STD_T, 300, NULL) == AUTH_OK);
	/* ...and the published signature (made with the decoded key) does not verify. */
	h.webhook_signature = STD_SIG;
	CHECK(verify1(&h, STD_BODY, raw.bytes, STD_T, 300, NULL) == AUTH_INVALID);
}

static void test_scheme_tokens(void)
{
	CHECK_STR(auth_scheme_token(AUTH_SCHEME_NONE), "none");
	CHECK_STR(auth_scheme_token(AUTH_SCHEME_HEX), "hex");
	CHECK_STR(auth_scheme_token(AUTH_SCHEME_CF), "cf-webhook-auth");
	CHECK_STR(auth_scheme_token(AUTH_SCHEME_STREAM), "stream");
	CHECK_STR(auth_scheme_token(AUTH_SCHEME_STANDARD), "standard");
	CHECK_STR(auth_scheme_token((enum auth_scheme)42), "none");
}

int main(void)
{
	test_vectors();
	test_missing();
	test_empty_headers();
	test_no_secret();
	test_rotation();
	test_cf_exact();
	test_several_signatures();
	test_timestamp_window();
	test_hex_syntax();
	test_hostile();
	test_candidate_limit();
	test_scheme_preference();
	test_sign_vectors();
	test_sign_round_trip();
	test_sign_errors();
	test_standard_raw_key();
	test_scheme_tokens();
	return test_done("test_auth");
}
