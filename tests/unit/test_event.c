/*
 * event_parse(): every sample delivery of tests/vectors/payloads with the
 * outcome its README gives, then each shape cfimages-webhook(8) PAYLOADS refuses or
 * ignores, one behaviour per check.  Bodies are copied into buffers of
 * exactly their length (no terminating NUL) before parsing.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "json.h"
#include "testlib.h"

#define SAMPLE_ID "2cdc28f0-017a-49c4-9ed7-87056c83901"
#define JOB_ID "550e8400-e29b-41d4-a716-446655440000"
#define UPLOADED "\"uploaded\":\"2024-01-01T12:00:00.000Z\""
/* 2024-01-01T12:00:00Z, ms since the epoch */
#define UPLOADED_MS INT64_C(1704110400000)
#define WHY_DUPLICATE "an object has a duplicate key"

/* Parses body[0..len) from a buffer holding exactly those bytes. */
static enum event_result parse_bytes(const char *body, size_t len, struct event *ev,
                                     const char **why)
{
	char *buf = malloc(len > 0 ? len : 1);
	enum event_result r;

	if (buf == NULL)
		abort();
	memcpy(buf, body, len);
	r = event_parse(buf, len, ev, why);
	free(buf);
	return r;
}

static enum event_result parse(const char *body, struct event *ev)
{
	const char *why = NULL;
	enum event_result r = parse_bytes(body, strlen(body), ev, &why);

	CHECK_MSG(why != NULL, "no reason given for %s", body);
	return r;
}

/* True when every field of ev is empty, as after a refusal without an id. */
static bool event_is_empty(const struct event *ev)
{
	return ev->image_id == NULL && ev->status == NULL && ev->event_name == NULL &&
	       ev->filename == NULL && ev->metadata_json == NULL && ev->variants_json == NULL &&
	       ev->result_json == NULL && ev->error_text == NULL && !ev->has_uploaded &&
	       ev->require_signed_urls == -1;
}

/* Asserts body gives result r, and (for refusals) an empty event. */
static void expect(const char *body, enum event_result r)
{
	struct event ev;
	enum event_result got = parse(body, &ev);

	CHECK_MSG(got == r, "%s: got %d, want %d", body, (int)got, (int)r);
	if (r != EVENT_OK && r != EVENT_BAD_PAYLOAD)
		CHECK_MSG(event_is_empty(&ev), "%s: event not empty", body);
	if (r == EVENT_BAD_PAYLOAD)
		CHECK_MSG(ev.status == NULL && ev.event_name == NULL && ev.metadata_json == NULL &&
		              ev.variants_json == NULL && ev.error_text == NULL,
		          "%s: refused event keeps fields", body);
	event_free(&ev);
}

/* Asserts body is accepted with the given status, id and event name. */
static void expect_ok(const char *body, const char *status, const char *id, const char *name)
{
	struct event ev;
	enum event_result got = parse(body, &ev);

	CHECK_MSG(got == EVENT_OK, "%s: got %d", body, (int)got);
	CHECK_STR(ev.status, status);
	CHECK_STR(ev.image_id, id);
	CHECK_STR(ev.event_name, name);
	event_free(&ev);
}

/* Parses a vector file. */
static enum event_result parse_vector(const char *file, struct event *ev)
{
	char rel[256];
	size_t len = 0;
	char *body;
	enum event_result r;
	const char *why = NULL;

	snprintf(rel, sizeof rel, "payloads/%s", file);
	body = test_read_file(test_vector_path(rel), &len);
	CHECK_MSG(body != NULL, "cannot read %s (is top_srcdir set?)", rel);
	if (body == NULL) {
		memset(ev, 0, sizeof *ev);
		return EVENT_BAD_JSON;
	}
	r = parse_bytes(body, len, ev, &why);
	CHECK_MSG(r == EVENT_OK || r == EVENT_IGNORED, "%s refused: %s", file, why ? why : "");
	free(body);
	return r;
}

/*
 * Checks a JSON-valued field of an event parsed from vector file: it is
 * the file's own text (pretty-printed there, so whitespace and newlines
 * included), and without the whitespace between tokens it is want.
 */
static void check_json_field(const char *file, const char *got, const char *want)
{
	char rel[256], *body, *compact;
	size_t len = 0;

	snprintf(rel, sizeof rel, "payloads/%s", file);
	body = test_read_file(test_vector_path(rel), &len);
	CHECK_MSG(got != NULL && body != NULL && strstr(body, got) != NULL,
	          "%s: [%s] is not the file's text", file, got ? got : "(null)");
	compact = malloc(got != NULL ? strlen(got) + 1 : 1);
	if (compact == NULL)
		abort();
	compact[0] = '\0';
	if (got != NULL)
		json_compact(got, strlen(got), compact);
	if (want != NULL)
		CHECK_STR(compact, want);
	free(compact);
	free(body);
}

/* tests/vectors/payloads/README.md, row by row. */
static void test_vectors(void)
{
	struct event ev;

	CHECK(parse_vector("cloudflare-upload-complete.json", &ev) == EVENT_OK);
	CHECK_STR(ev.status, "uploaded");
	CHECK_STR(ev.image_id, SAMPLE_ID);
	CHECK_STR(ev.event_name, "upload.complete");
	check_json_field("cloudflare-upload-complete.json", ev.metadata_json,
	                 "{\"key\":\"value\"}");
	check_json_field(
	    "cloudflare-upload-complete.json", ev.variants_json,
	    "[\"https://imagedelivery.net/Vi7wi5KSItxGFsWRG2Us6Q/" SAMPLE_ID "/public\","
	    "\"https://imagedelivery.net/Vi7wi5KSItxGFsWRG2Us6Q/" SAMPLE_ID "/thumbnail\"]");
	CHECK(ev.require_signed_urls == 1);
	CHECK(ev.has_uploaded && ev.uploaded_ms == UPLOADED_MS);
	CHECK(ev.filename == NULL && ev.error_text == NULL && ev.result_json == NULL);
	event_free(&ev);

	CHECK(parse_vector("cloudflare-upload-failed.json", &ev) == EVENT_OK);
	CHECK_STR(ev.status, "failed");
	CHECK_STR(ev.image_id, SAMPLE_ID);
	CHECK_STR(ev.event_name, "upload.failed");
	CHECK_STR(ev.error_text, "Image processing failed");
	CHECK(!ev.has_uploaded && ev.require_signed_urls == -1 && ev.variants_json == NULL);
	event_free(&ev);

	CHECK(parse_vector("images-envelope-uploaded.json", &ev) == EVENT_OK);
	CHECK_STR(ev.status, "uploaded");
	CHECK_STR(ev.image_id, SAMPLE_ID);
	CHECK_STR(ev.event_name, "image.uploaded");
	CHECK_STR(ev.filename, "profile.jpg");
	check_json_field("images-envelope-uploaded.json", ev.metadata_json,
	                 "{\"userId\":\"user_12345\",\"source\":\"profile_upload\"}");
	CHECK(ev.variants_json != NULL && strstr(ev.variants_json, "/thumbnail\"") != NULL);
	check_json_field("images-envelope-uploaded.json", ev.variants_json, NULL);
	CHECK(ev.require_signed_urls == 0);
	CHECK(ev.has_uploaded && ev.uploaded_ms == INT64_C(1736937045000));
	CHECK(ev.error_text == NULL);
	event_free(&ev);

	/* what an action of another receiver sends: `show`'s image, nulls and all */
	CHECK(parse_vector("standard-webhooks-image-uploaded.json", &ev) == EVENT_OK);
	CHECK_STR(ev.status, "uploaded");
	CHECK_STR(ev.image_id, SAMPLE_ID);
	CHECK_STR(ev.event_name, "image.uploaded");
	check_json_field("standard-webhooks-image-uploaded.json", ev.metadata_json,
	                 "{\"userId\":\"user_12345\"}");
	CHECK(ev.variants_json != NULL && strstr(ev.variants_json, "/public\"") != NULL);
	CHECK(ev.result_json == NULL && ev.error_text == NULL);
	CHECK(ev.has_uploaded && ev.uploaded_ms == INT64_C(1736937045000));
	event_free(&ev);

	CHECK(parse_vector("notification-images-upload.json", &ev) == EVENT_OK);
	CHECK_STR(ev.status, "uploaded");
	CHECK_STR(ev.image_id, SAMPLE_ID);
	CHECK_STR(ev.event_name, "image_notification");
	check_json_field("notification-images-upload.json", ev.metadata_json,
	                 "{\"key\":\"value\"}");
	CHECK(ev.require_signed_urls == 1);
	CHECK(ev.has_uploaded && ev.uploaded_ms == UPLOADED_MS);
	event_free(&ev);

	CHECK(parse_vector("notification-other-alert.json", &ev) == EVENT_IGNORED);
	CHECK(event_is_empty(&ev));
	event_free(&ev);
	CHECK(parse_vector("notification-image-resizing.json", &ev) == EVENT_IGNORED);
	CHECK(event_is_empty(&ev));
	event_free(&ev);
	CHECK(parse_vector("notification-test-probe.json", &ev) == EVENT_IGNORED);
	CHECK(event_is_empty(&ev));
	event_free(&ev);

	CHECK(parse_vector("job-queued.json", &ev) == EVENT_OK);
	CHECK_STR(ev.status, "queued");
	CHECK_STR(ev.image_id, JOB_ID);
	CHECK_STR(ev.event_name, "job.queued");
	CHECK(ev.result_json == NULL && ev.error_text == NULL);
	event_free(&ev);

	CHECK(parse_vector("job-completed.json", &ev) == EVENT_OK);
	CHECK_STR(ev.status, "completed");
	CHECK_STR(ev.image_id, JOB_ID);
	CHECK_STR(ev.event_name, "job.completed");
	check_json_field("job-completed.json", ev.result_json,
	                 "{\"vendor_name\":\"Acme Corporation\",\"invoice_number\":"
	                 "\"INV-2024-001\",\"invoice_date\":\"2024-01-15\","
	                 "\"total_amount\":1942.92}");
	CHECK(ev.error_text == NULL);
	event_free(&ev);

	CHECK(parse_vector("job-failed.json", &ev) == EVENT_OK);
	CHECK_STR(ev.status, "failed");
	CHECK_STR(ev.image_id, JOB_ID);
	CHECK_STR(ev.event_name, "job.failed");
	CHECK_STR(ev.error_text, "Image URL is not accessible");
	event_free(&ev);
}

/* Row 6 of cfimages-webhook(8) REQUEST CONTRACT: bytes that are not JSON. */
static void test_bad_json(void)
{
	struct event ev;
	const char *why = NULL;

	expect("", EVENT_BAD_JSON);
	expect("   ", EVENT_BAD_JSON);
	expect("{\"id\":\"a\"," UPLOADED "} x", EVENT_BAD_JSON);
	expect("{\"id\":\"a\"," UPLOADED "}{}", EVENT_BAD_JSON);
	expect("{\"id\":\"\xc0\xaf\"," UPLOADED "}", EVENT_BAD_JSON);
	expect("{\"id\":\"a\x01\"," UPLOADED "}", EVENT_BAD_JSON);
	expect("{\"id\":\"a\",\"n\":01," UPLOADED "}", EVENT_BAD_JSON);
	CHECK(parse_bytes("{\"id\":\"a\"," UPLOADED "}\0", sizeof("{\"id\":\"a\"," UPLOADED "}"),
	                  &ev, &why) == EVENT_BAD_JSON);
	CHECK(event_is_empty(&ev));
	/* The body may be cut short of what the sender declared. */
	CHECK(parse_bytes("{\"id\":\"a\"," UPLOADED "}", 10, &ev, &why) == EVENT_BAD_JSON);
	CHECK(event_parse(NULL, 0, &ev, NULL) == EVENT_BAD_JSON);
	CHECK(event_is_empty(&ev));
}

/* Top-level shape and types of id. */
static void test_ids(void)
{
	struct event ev;
	char *body, *p;
	const size_t max = 1024;

	expect("[]", EVENT_BAD_PAYLOAD);
	expect("[{\"id\":\"a\"," UPLOADED "}]", EVENT_BAD_PAYLOAD);
	expect("\"id\"", EVENT_BAD_PAYLOAD);
	expect("null", EVENT_BAD_PAYLOAD);
	expect("{}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":123," UPLOADED "}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":null," UPLOADED "}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":[\"a\"]," UPLOADED "}", EVENT_BAD_PAYLOAD);
	expect("{" UPLOADED "}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"\"," UPLOADED "}", EVENT_BAD_PAYLOAD);
	/* keys are case-sensitive: "ID" is not the id */
	expect("{\"ID\":\"a\"," UPLOADED "}", EVENT_BAD_PAYLOAD);
	expect("{\"Id\":\"a\"," UPLOADED "}", EVENT_BAD_PAYLOAD);

	/* control characters: C0, DEL, C1 (U+0085) */
	expect("{\"id\":\"a\\u0001b\"," UPLOADED "}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\\u007fb\"," UPLOADED "}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\x7f"
	       "b\"," UPLOADED "}",
	       EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\\u0085b\"," UPLOADED "}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\xc2\x85"
	       "b\"," UPLOADED "}",
	       EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\\nb\"," UPLOADED "}", EVENT_BAD_PAYLOAD);
	/* path segments */
	expect("{\"id\":\"..\"," UPLOADED "}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\".\"," UPLOADED "}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a/../b\"," UPLOADED "}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a/./b\"," UPLOADED "}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a//b\"," UPLOADED "}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"/a\"," UPLOADED "}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a/\"," UPLOADED "}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"/\"," UPLOADED "}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\\/\"," UPLOADED "}", EVENT_BAD_PAYLOAD);
	expect_ok("{\"id\":\"products/2024/shoe photo.jpg\"," UPLOADED "}", "uploaded",
	          "products/2024/shoe photo.jpg", "upload.complete");
	expect_ok("{\"id\":\"..a/b..\"," UPLOADED "}", "uploaded", "..a/b..", "upload.complete");
	expect_ok("{\"id\":\"caf\\u00e9\"," UPLOADED "}", "uploaded", "caf\xc3\xa9",
	          "upload.complete");

	/* 1024 characters of two bytes each pass; 1025 do not */
	body = malloc(2 * (max + 1) + 100);
	if (body == NULL)
		abort();
	for (size_t n = max; n <= max + 1; n++) {
		p = body + sprintf(body, "{\"id\":\"");
		for (size_t i = 0; i < n; i++) {
			*p++ = '\xc3';
			*p++ = '\xa9';
		}
		strcpy(p, "\"," UPLOADED "}");
		CHECK(parse(body, &ev) == (n == max ? EVENT_OK : EVENT_BAD_PAYLOAD));
		if (n == max)
			CHECK(ev.image_id != NULL && strlen(ev.image_id) == 2 * max);
		event_free(&ev);
	}
	free(body);
}

/* No object anywhere may repeat a key, even spelled with escapes. */
static void test_duplicate_keys(void)
{
	struct event ev;
	const char *why = NULL;
	const char *dup_top = "{\"id\":\"a\",\"id\":\"b\"," UPLOADED "}";

	CHECK(parse_bytes(dup_top, strlen(dup_top), &ev, &why) == EVENT_BAD_PAYLOAD);
	CHECK_STR(why, WHY_DUPLICATE);
	CHECK(event_is_empty(&ev));
	expect("{\"id\":\"a\"," UPLOADED ",\"id\":\"a\"}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\"," UPLOADED ",\"metadata\":{\"k\":1,\"k\":2}}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\"," UPLOADED
	       ",\"metadata\":{\"l\":[{\"x\":1,\"y\":{\"z\":0,\"z\":0}}]}}",
	       EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\"," UPLOADED ",\"\\u0069d\":\"b\"}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\"," UPLOADED ",\"metadata\":{\"a\":1,\"\\u0061\":2}}",
	       EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\"," UPLOADED ",\"x\":{\"\":1,\"\":2}}", EVENT_BAD_PAYLOAD);
	/* unknown fields are checked too, and ignored shapes as well */
	expect("{\"event\":\"other\",\"x\":1,\"x\":1}", EVENT_BAD_PAYLOAD);
	/* the same key in different objects, or in another case, is fine */
	expect_ok("{\"id\":\"a\"," UPLOADED ",\"metadata\":{\"id\":\"b\",\"ID\":\"c\",\"Id\":{"
	          "\"id\":1}}}",
	          "uploaded", "a", "upload.complete");
	expect_ok("{\"id\":\"a\"," UPLOADED ",\"l\":[{\"k\":1},{\"k\":1}]}", "uploaded", "a",
	          "upload.complete");
}

/* Builds {"kNNNNNN":0,...} with n keys (the last one repeating the first when dup). */
static char *many_keys(size_t n, bool dup, size_t *len)
{
	size_t cap = n * 16 + 64, pos = 0;
	char *s = malloc(cap);

	if (s == NULL)
		abort();
	s[pos++] = '{';
	for (size_t i = 0; i < n; i++) {
		/* distinct keys in no particular order: k -> 7919 k mod a prime */
		size_t k = dup && i == n - 1 ? n : n - i;
		pos += (size_t)snprintf(s + pos, cap - pos, "%s\"k%07zu\":0", i ? "," : "",
		                        k * 7919 % 1000003);
	}
	s[pos++] = '}';
	*len = pos;
	return s;
}

/* A 1 MiB object of 100000 keys is checked in O(n log n), not quadratic time. */
static void test_many_keys(void)
{
	struct event ev;
	const char *why = NULL;
	size_t len;
	char *s;

	s = many_keys(100000, false, &len);
	CHECK(event_parse(s, len, &ev, &why) == EVENT_BAD_PAYLOAD);
	CHECK_STR(why, "payload has no id");
	event_free(&ev);
	free(s);
	s = many_keys(100000, true, &len);
	CHECK(event_parse(s, len, &ev, &why) == EVENT_BAD_PAYLOAD);
	CHECK_STR(why, WHY_DUPLICATE);
	event_free(&ev);
	free(s);
}

/* Field types of cfimages-webhook(8) PAYLOADS. */
static void test_fields(void)
{
	struct event ev;

	/* uploaded and timestamp are RFC 3339 strings */
	expect("{\"id\":\"a\",\"uploaded\":\"2024-13-01T00:00:00Z\"}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"uploaded\":\"2023-02-29T00:00:00Z\"}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"uploaded\":\"yesterday\"}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"uploaded\":\"2024-01-01 12:00:00Z\"}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"uploaded\":1704110400}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"uploaded\":null}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"error\":\"x\",\"timestamp\":\"now\"}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"error\":\"x\",\"timestamp\":1}", EVENT_BAD_PAYLOAD);
	CHECK(parse("{\"id\":\"a\",\"uploaded\":\"2024-01-01T13:00:00+01:00\"}", &ev) == EVENT_OK);
	CHECK(ev.has_uploaded && ev.uploaded_ms == UPLOADED_MS);
	event_free(&ev);

	/* variants: an array of http(s) URL strings */
	expect("{\"id\":\"a\",\"variants\":[\"ftp://x/y\"]}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"variants\":[\"javascript:alert(1)\"]}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"variants\":[\"https://x/a\",\"not a url\"]}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"variants\":[\"https://\"]}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"variants\":[\"http:/x\"]}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"variants\":[1]}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"variants\":\"https://x/a\"}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"variants\":{\"u\":\"https://x/a\"}}", EVENT_BAD_PAYLOAD);
	CHECK(parse("{\"id\":\"a\",\"variants\":[\"HTTPS://X/a\",\"Http://y\"]}", &ev) == EVENT_OK);
	CHECK_STR(ev.variants_json, "[\"HTTPS://X/a\",\"Http://y\"]");
	CHECK_STR(ev.status, "uploaded");
	CHECK(!ev.has_uploaded);
	event_free(&ev);

	/* requireSignedURLs and draft are booleans */
	expect("{\"id\":\"a\"," UPLOADED ",\"requireSignedURLs\":\"true\"}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\"," UPLOADED ",\"requireSignedURLs\":1}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"draft\":\"yes\"}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"draft\":1}", EVENT_BAD_PAYLOAD);

	/* metadata, meta and result are objects */
	expect("{\"id\":\"a\"," UPLOADED ",\"metadata\":[]}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\"," UPLOADED ",\"metadata\":\"k=v\"}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\"," UPLOADED ",\"meta\":[1]}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\"," UPLOADED ",\"metadata\":{},\"meta\":5}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\"," UPLOADED ",\"result\":[]}", EVENT_BAD_PAYLOAD);
	CHECK(parse("{\"id\":\"a\"," UPLOADED ",\"meta\":{\"m\":1}}", &ev) == EVENT_OK);
	CHECK_STR(ev.metadata_json, "{\"m\":1}");
	event_free(&ev);
	CHECK(parse("{\"id\":\"a\"," UPLOADED
	            ",\"meta\":{\"m\":1},\"metadata\":{ \"k\" : [1, 2] }}",
	            &ev) == EVENT_OK);
	CHECK_STR(ev.metadata_json, "{ \"k\" : [1, 2] }");
	event_free(&ev);

	/* filename is a string */
	expect("{\"id\":\"a\"," UPLOADED ",\"filename\":5}", EVENT_BAD_PAYLOAD);
	CHECK(parse("{\"id\":\"a\"," UPLOADED ",\"filename\":\"x.png\"}", &ev) == EVENT_OK);
	CHECK_STR(ev.filename, "x.png");
	event_free(&ev);

	/* error: a string, or an object with a string message (else code) */
	expect("{\"id\":\"a\",\"error\":42}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"error\":null}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"error\":true}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"error\":[\"x\"]}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"error\":{}}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"error\":{\"message\":5,\"code\":\"c\"}}", EVENT_BAD_PAYLOAD);
	/* an integer code (Cloudflare's are numbers) is stored as its decimal text */
	CHECK(parse("{\"id\":\"a\",\"error\":{\"code\":5400}}", &ev) == EVENT_OK);
	CHECK_STR(ev.error_text, "5400");
	event_free(&ev);
	expect("{\"id\":\"a\",\"error\":{\"code\":1.5}}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"error\":{\"code\":1e300}}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\",\"error\":{\"code\":null}}", EVENT_BAD_PAYLOAD);
	CHECK(parse("{\"id\":\"a\",\"error\":{\"code\":\"E1\"}}", &ev) == EVENT_OK);
	CHECK_STR(ev.error_text, "E1");
	CHECK_STR(ev.status, "failed");
	event_free(&ev);
	CHECK(parse("{\"id\":\"a\",\"error\":{\"message\":\"m\",\"code\":\"c\"}}", &ev) ==
	      EVENT_OK);
	CHECK_STR(ev.error_text, "m");
	event_free(&ev);

	/* a string holding \u0000 cannot be stored faithfully */
	expect("{\"id\":\"a\"," UPLOADED ",\"filename\":\"x\\u0000.png\"}", EVENT_BAD_PAYLOAD);
	expect("{\"id\":\"a\\u0000b\"," UPLOADED "}", EVENT_BAD_PAYLOAD);
}

/* The flat Cloudflare shapes. */
static void test_flat(void)
{
	struct event ev;
	const char *why = NULL;
	const char *id_only = "{\"id\":\"a\",\"metadata\":{},\"filename\":\"f\"}";

	expect_ok("{\"id\":\"a\",\"draft\":true}", "draft", "a", "upload.draft");
	expect_ok("{\"id\":\"a\",\"draft\":true," UPLOADED "}", "draft", "a", "upload.draft");
	expect_ok("{\"id\":\"a\",\"draft\":false}", "uploaded", "a", "upload.complete");
	expect_ok("{\"id\":\"a\",\"variants\":[]}", "uploaded", "a", "upload.complete");
	/* error wins over uploaded and draft */
	expect_ok("{\"id\":\"a\"," UPLOADED ",\"draft\":true,\"error\":\"e\"}", "failed", "a",
	          "upload.failed");
	/* an id with nothing to apply is refused; the id stays for the delivery row */
	CHECK(parse_bytes(id_only, strlen(id_only), &ev, &why) == EVENT_BAD_PAYLOAD);
	CHECK_STR(ev.image_id, "a");
	CHECK(ev.status == NULL && ev.metadata_json == NULL && ev.filename == NULL);
	event_free(&ev);
	CHECK(event_is_empty(&ev));
	/* an invalid id is not kept */
	CHECK(parse("{\"id\":\"a//b\"," UPLOADED "}", &ev) == EVENT_BAD_PAYLOAD);
	CHECK(ev.image_id == NULL);
	event_free(&ev);
	/* a valid id with a bad field is kept */
	CHECK(parse("{\"id\":\"a\",\"uploaded\":\"x\"}", &ev) == EVENT_BAD_PAYLOAD);
	CHECK_STR(ev.image_id, "a");
	CHECK(!ev.has_uploaded);
	event_free(&ev);
	/* job_id without an event is not an id */
	expect("{\"job_id\":\"a\"," UPLOADED "}", EVENT_BAD_PAYLOAD);
}

/* The Images envelope. */
static void test_image_envelope(void)
{
	struct event ev;

	expect("{\"event\":\"image.deleted\"}", EVENT_IGNORED);
	expect("{\"event\":\"image.deleted\",\"image\":{\"id\":5}}", EVENT_IGNORED);
	expect("{\"event\":\"image.uploaded\"}", EVENT_BAD_PAYLOAD);
	expect("{\"event\":\"image.uploaded\",\"image\":\"a\"}", EVENT_BAD_PAYLOAD);
	expect("{\"event\":\"image.uploaded\",\"image\":null}", EVENT_BAD_PAYLOAD);
	expect("{\"event\":\"image.uploaded\",\"image\":{\"filename\":\"f\"}}", EVENT_BAD_PAYLOAD);
	expect("{\"event\":\"image.uploaded\",\"image\":{\"id\":\"a\",\"uploaded\":\"x\"}}",
	       EVENT_BAD_PAYLOAD);
	expect("{\"event\":\"image.uploaded\",\"timestamp\":\"x\",\"image\":{\"id\":\"a\"}}",
	       EVENT_BAD_PAYLOAD);
	expect("{\"event\":\"image.failed\",\"error\":7,\"image\":{\"id\":\"a\"}}",
	       EVENT_BAD_PAYLOAD);
	/* the event name decides the status, not the flat rules */
	expect_ok("{\"event\":\"image.uploaded\",\"image\":{\"id\":\"a\"}}", "uploaded", "a",
	          "image.uploaded");
	CHECK(parse("{\"event\":\"image.uploaded\",\"image\":{\"id\":\"a\",\"error\":\"e\"}}",
	            &ev) == EVENT_OK);
	CHECK_STR(ev.status, "uploaded");
	CHECK(ev.error_text == NULL);
	event_free(&ev);
	CHECK(parse("{\"event\":\"image.failed\",\"image\":{\"id\":\"a\",\"error\":\"inner\"},"
	            "\"error\":\"outer\"}",
	            &ev) == EVENT_OK);
	CHECK_STR(ev.status, "failed");
	CHECK_STR(ev.error_text, "inner");
	event_free(&ev);
	CHECK(parse("{\"event\":\"image.upload_failed\",\"image\":{\"id\":\"a\"},"
	            "\"error\":{\"message\":\"outer\"}}",
	            &ev) == EVENT_OK);
	CHECK_STR(ev.status, "failed");
	CHECK_STR(ev.event_name, "image.upload_failed");
	CHECK_STR(ev.error_text, "outer");
	event_free(&ev);
	expect_ok("{\"event\":\"image.failed\",\"image\":{\"id\":\"a\"}}", "failed", "a",
	          "image.failed");
	/* event is a string, and is looked at before alert_type and id */
	expect("{\"event\":5,\"id\":\"a\"," UPLOADED "}", EVENT_BAD_PAYLOAD);
	expect("{\"event\":null,\"id\":\"a\"," UPLOADED "}", EVENT_BAD_PAYLOAD);
	expect("{\"event\":\"upload.complete\",\"id\":\"a\"," UPLOADED "}", EVENT_IGNORED);
	expect("{\"event\":\"Image.uploaded\",\"image\":{\"id\":\"a\"}}", EVENT_IGNORED);
	expect("{\"event\":\"x\",\"alert_type\":\"image_notification\",\"data\":{\"id\":"
	       "\"a\"," UPLOADED "}}",
	       EVENT_IGNORED);
}

/*
 * The Standard Webhooks shape: "type" read as "event", "data" as "image";
 * only an image.* type with a data member (a flat payload may carry a
 * "type" of its own).
 */
static void test_standard_webhooks_shape(void)
{
	struct event ev;

	expect_ok("{\"type\":\"image.uploaded\",\"timestamp\":\"2024-01-01T12:00:00Z\","
	          "\"data\":{\"id\":\"a\",\"status\":\"uploaded\",\"previous_status\":\"pending\"}}",
	          "uploaded", "a", "image.uploaded");
	CHECK(parse("{\"type\":\"image.failed\",\"data\":{\"id\":\"a\",\"error\":\"broken\","
	            "\"metadata\":{\"n\":12345678901234567890}}}",
	            &ev) == EVENT_OK);
	CHECK_STR(ev.status, "failed");
	CHECK_STR(ev.error_text, "broken");
	CHECK_STR(ev.metadata_json, "{\"n\":12345678901234567890}");
	CHECK_STR(ev.event_name, "image.failed");
	event_free(&ev);
	/* other image.* types are not acted on; a data that is not an object is refused */
	expect("{\"type\":\"image.draft\",\"data\":{\"id\":\"a\"}}", EVENT_IGNORED);
	expect("{\"type\":\"image.uploaded\",\"data\":\"a\"}", EVENT_BAD_PAYLOAD);
	expect("{\"type\":\"image.uploaded\",\"data\":{\"filename\":\"f\"}}", EVENT_BAD_PAYLOAD);
	expect("{\"type\":\"image.uploaded\",\"timestamp\":\"x\",\"data\":{\"id\":\"a\"}}",
	       EVENT_BAD_PAYLOAD);
	/* a flat payload's own "type" field does not make it this shape */
	expect_ok("{\"type\":\"photo\",\"id\":\"a\"," UPLOADED "}", "uploaded", "a",
	          "upload.complete");
	expect_ok("{\"type\":\"image.uploaded\",\"id\":\"a\"," UPLOADED "}", "uploaded", "a",
	          "upload.complete");
	/* event and alert_type are looked at first */
	expect("{\"event\":\"other\",\"type\":\"image.uploaded\",\"data\":{\"id\":\"a\"}}",
	       EVENT_IGNORED);
	/* an action's default payload: the image as `show` prints it, nulls for
	 * what is not known, uploaded_at for the upload time */
	CHECK(parse("{\"type\":\"image.uploaded\",\"timestamp\":\"2024-01-01T12:00:01.000Z\","
	            "\"data\":{\"id\":\"a\",\"status\":\"uploaded\",\"metadata\":null,"
	            "\"variants\":null,\"result\":null,\"error\":null,"
	            "\"uploaded_at\":\"2024-01-01T12:00:00.000Z\",\"expires_at\":null,"
	            "\"created_at\":\"2024-01-01T11:00:00.000Z\",\"updated_at\":null,"
	            "\"previous_status\":\"pending\",\"event\":\"upload.complete\"}}",
	            &ev) == EVENT_OK);
	CHECK_STR(ev.status, "uploaded");
	CHECK(ev.metadata_json == NULL && ev.variants_json == NULL && ev.result_json == NULL);
	CHECK(ev.error_text == NULL);
	CHECK(ev.has_uploaded && ev.uploaded_ms == UPLOADED_MS);
	event_free(&ev);
	/* "uploaded" wins over uploaded_at; a bad uploaded_at is still refused */
	CHECK(parse("{\"type\":\"image.uploaded\",\"data\":{\"id\":\"a\"," UPLOADED
	            ",\"uploaded_at\":\"2020-01-01T00:00:00Z\"}}",
	            &ev) == EVENT_OK);
	CHECK(ev.has_uploaded && ev.uploaded_ms == UPLOADED_MS);
	event_free(&ev);
	expect("{\"type\":\"image.uploaded\",\"data\":{\"id\":\"a\",\"uploaded_at\":\"soon\"}}",
	       EVENT_BAD_PAYLOAD);
	/* only this shape reads null as absent: a flat "error": null says nothing */
	expect("{\"id\":\"a\",\"error\":null}", EVENT_BAD_PAYLOAD);
	expect("{\"event\":\"image.uploaded\",\"image\":{\"id\":\"a\",\"metadata\":null}}",
	       EVENT_BAD_PAYLOAD);
}

/* Image-processing job events. */
static void test_jobs(void)
{
	struct event ev;

	expect("{\"event\":\"job.started\"}", EVENT_IGNORED);
	expect("{\"event\":\"job.completed\",\"result\":{}}", EVENT_BAD_PAYLOAD);
	expect("{\"event\":\"job.completed\",\"job_id\":5}", EVENT_BAD_PAYLOAD);
	expect("{\"event\":\"job.completed\",\"job_id\":\"\"}", EVENT_BAD_PAYLOAD);
	expect("{\"event\":\"job.completed\",\"id\":\"a\"}", EVENT_BAD_PAYLOAD);
	expect("{\"event\":\"job.completed\",\"job_id\":\"a\",\"result\":\"r\"}",
	       EVENT_BAD_PAYLOAD);
	expect("{\"event\":\"job.failed\",\"job_id\":\"a\",\"error\":{\"code\":true}}",
	       EVENT_BAD_PAYLOAD);
	expect_ok("{\"event\":\"job.completed\",\"job_id\":\"j/1\"}", "completed", "j/1",
	          "job.completed");
	CHECK(parse("{\"event\":\"job.failed\",\"job_id\":\"a\",\"error\":\"boom\"}", &ev) ==
	      EVENT_OK);
	CHECK_STR(ev.status, "failed");
	CHECK_STR(ev.error_text, "boom");
	event_free(&ev);
	CHECK(parse("{\"event\":\"job.failed\",\"job_id\":\"a\",\"error\":{\"code\":\"E\"}}",
	            &ev) == EVENT_OK);
	CHECK_STR(ev.error_text, "E");
	event_free(&ev);
}

/* The Cloudflare Notifications envelope and the "Save and Test" probe. */
static void test_notifications(void)
{
	struct event ev;

	expect("{\"text\":\"hello\"}", EVENT_IGNORED);
	expect("{\"text\":5,\"name\":\"n\"}", EVENT_IGNORED);
	/* a text with an id is not the probe */
	expect("{\"text\":\"hello\",\"id\":\"a\"}", EVENT_BAD_PAYLOAD);
	expect_ok("{\"text\":\"hello\",\"id\":\"a\"," UPLOADED "}", "uploaded", "a",
	          "upload.complete");
	expect("{\"text\":\"hello\",\"job_id\":\"a\"}", EVENT_BAD_PAYLOAD);

	expect("{\"alert_type\":\"image_notification\",\"data\":{\"status\":\"x\"}}",
	       EVENT_IGNORED);
	expect("{\"alert_type\":\"image_notification\",\"data\":{}}", EVENT_IGNORED);
	/* no data object at all is an unknown shape too: ignored and kept */
	expect("{\"alert_type\":\"image_notification\"}", EVENT_IGNORED);
	expect("{\"alert_type\":\"image_notification\",\"data\":[]}", EVENT_IGNORED);
	CHECK(parse("{\"alert_type\":\"images_x\",\"data\":null}", &ev) == EVENT_IGNORED);
	CHECK(ev.keep_body);
	event_free(&ev);
	expect("{\"alert_type\":\"image_notification\",\"data\":{\"id\":5," UPLOADED "}}",
	       EVENT_BAD_PAYLOAD);
	expect("{\"alert_type\":\"image_notification\",\"data\":{\"id\":\"a\"}}",
	       EVENT_BAD_PAYLOAD);
	expect("{\"alert_type\":5,\"data\":{\"id\":\"a\"," UPLOADED "}}", EVENT_BAD_PAYLOAD);
	expect("{\"alert_type\":\"universal_ssl_event_type\",\"data\":5}", EVENT_IGNORED);
	expect("{\"alert_type\":\"image_resizing_notification\",\"data\":{\"id\":\"a\"," UPLOADED
	       "}}",
	       EVENT_IGNORED);
	expect("{\"alert_type\":\"Image_notification\",\"data\":{\"id\":\"a\"," UPLOADED "}}",
	       EVENT_IGNORED);
	CHECK(parse("{\"alert_type\":\"images_upload\",\"data\":{\"id\":\"a\",\"error\":\"e\"}}",
	            &ev) == EVENT_OK);
	CHECK_STR(ev.status, "failed");
	CHECK_STR(ev.event_name, "images_upload");
	CHECK_STR(ev.error_text, "e");
	event_free(&ev);
	expect_ok("{\"alert_type\":\"image_notification\",\"data\":{\"id\":\"a\",\"draft\":true}}",
	          "draft", "a", "image_notification");
}

/* event_free is safe on empty and already freed events; why may be NULL. */
/* Event names reach hooks as CFIMAGES_EVENT: short printable ASCII only. */
static void test_event_names(void)
{
	char body[512];
	expect("{\"alert_type\":\"images_\\u0001x\",\"data\":{\"id\":\"a\",\"draft\":true}}",
	       EVENT_BAD_PAYLOAD);
	expect("{\"alert_type\":\"images_a b\",\"data\":{\"id\":\"a\",\"draft\":true}}",
	       EVENT_BAD_PAYLOAD);
	char name[160];
	snprintf(name, sizeof name, "images_%0121d", 0); /* exactly 128 bytes */
	snprintf(body, sizeof body, "{\"alert_type\":\"%s\",\"data\":{\"id\":\"a\","
	         "\"draft\":true}}", name);
	expect_ok(body, "draft", "a", name);
	snprintf(body, sizeof body, "{\"alert_type\":\"images_%0122d\",\"data\":{\"id\":\"a\","
	         "\"draft\":true}}", 0);
	expect(body, EVENT_BAD_PAYLOAD);
}

/*
 * Metadata, variants and result are the sender's text, byte for byte, in
 * every shape that carries them: numbers cJSON would round or turn into
 * null, escapes it would print differently, whitespace inside the value.
 */
#define BIG_META "{\"userId\":1234567890123456789,\"big\":1e400,\"f\":0.10000000000000001}"
#define ODD_META "{ \"a\" :\t[ -0 , 1E+2 ],\n \"s\":\"caf\\u00e9 \\/\" }"
#define ESCAPED_VARIANTS "[\"https:\\/\\/x\\/\\u0061\", \"http://y/b\"]"
static void test_exact_json(void)
{
	struct event ev;

	CHECK(parse("{\"id\":\"a\"," UPLOADED ",\"metadata\":" BIG_META "}", &ev) == EVENT_OK);
	CHECK_STR(ev.metadata_json, BIG_META);
	event_free(&ev);
	CHECK(parse("{\"id\":\"a\"," UPLOADED ",\"meta\":" ODD_META
	            ",\"variants\":" ESCAPED_VARIANTS "}",
	            &ev) == EVENT_OK);
	CHECK_STR(ev.metadata_json, ODD_META);
	CHECK_STR(ev.variants_json, ESCAPED_VARIANTS);
	event_free(&ev);
	/* an escaped member name is still the member */
	CHECK(parse("{\"id\":\"a\"," UPLOADED ",\"m\\u0065tadata\":" BIG_META "}", &ev) ==
	      EVENT_OK);
	CHECK_STR(ev.metadata_json, BIG_META);
	event_free(&ev);

	/* Images envelope: the image object's members, not the envelope's */
	CHECK(parse("{\"event\":\"image.uploaded\",\"metadata\":{\"top\":1},\"image\":"
	            "{\"id\":\"a\"," UPLOADED ",\"metadata\":" BIG_META
	            ",\"variants\":" ESCAPED_VARIANTS "}}",
	            &ev) == EVENT_OK);
	CHECK_STR(ev.metadata_json, BIG_META);
	CHECK_STR(ev.variants_json, ESCAPED_VARIANTS);
	event_free(&ev);

	/* Notifications: the data object's members */
	CHECK(parse("{\"alert_type\":\"image_notification\",\"text\":\"t\",\"meta\":{},"
	            "\"data\": {\"id\":\"a\"," UPLOADED ",\"meta\":" ODD_META "} }",
	            &ev) == EVENT_OK);
	CHECK_STR(ev.metadata_json, ODD_META);
	event_free(&ev);

	/* job events: result and metadata at the top level */
	CHECK(parse("{\"event\":\"job.completed\",\"job_id\":\"j\",\"result\":" BIG_META
	            ",\"metadata\":" ODD_META "}",
	            &ev) == EVENT_OK);
	CHECK_STR(ev.result_json, BIG_META);
	CHECK_STR(ev.metadata_json, ODD_META);
	event_free(&ev);
}

static void test_free(void)
{
	struct event ev;
	const char *body = "{\"id\":\"a\"," UPLOADED "}";

	memset(&ev, 0, sizeof ev);
	event_free(&ev);
	event_free(NULL);
	CHECK(event_parse(body, strlen(body), &ev, NULL) == EVENT_OK);
	event_free(&ev);
	CHECK(event_is_empty(&ev));
	event_free(&ev);
}

int main(void)
{
	test_vectors();
	test_bad_json();
	test_ids();
	test_duplicate_keys();
	test_many_keys();
	test_fields();
	test_flat();
	test_image_envelope();
	test_standard_webhooks_shape();
	test_jobs();
	test_notifications();
	test_event_names();
	test_exact_json();
	test_free();
	return test_done("test_event");
}
