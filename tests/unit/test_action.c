/*
 * action.c: reading .webhook files (each problem with its line), rendering
 * payload templates (typed replacement, interpolation, hostile values,
 * exact numbers, unknown roots) and the default Standard Webhooks payload.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "action.h"
#include "json.h"
#include "testlib.h"

#define MAX_PROBLEMS 16

/* Parses text; returns the number of problems, stored in probs. */
static size_t parse(const char *text, struct action *a, struct action_problem *probs)
{
	return action_parse(text, strlen(text), a, probs, MAX_PROBLEMS);
}

/* True when text gives exactly one problem: code at line. */
static bool one_problem(const char *text, unsigned line, enum action_error code)
{
	static struct action a;
	struct action_problem probs[MAX_PROBLEMS];
	size_t n = parse(text, &a, probs);
	if (n != 1 || probs[0].line != line || probs[0].code != code) {
		fprintf(stderr, "  %s -> %zu problems, first line %u code %d\n", text, n,
		        n ? probs[0].line : 0, n ? (int)probs[0].code : -1);
		return false;
	}
	return true;
}

static void test_parse_full(void)
{
	static struct action a;
	struct action_problem probs[MAX_PROBLEMS];
	const char *text = "# notify the app\n"
	                   "\n"
	                   "url = https://app.example.com:8443/hooks/images?x=1#frag   # http or https only\n"
	                   "  method\t=  PUT  \r\n"
	                   "header = Authorization: Bearer ${file:/etc/cfw/app-token}\n"
	                   "header = X-Env: ${env:DEPLOY_ENV}#not a comment   # a comment\n"
	                   "timeout = 10\t# seconds\n"
	                   "template = /etc/cfw/payload.json\n"
	                   "secret_file = /etc/cfw/outbound.key\n"
	                   "ca_file = /etc/cfw/ca.pem\n"
	                   "proxy = http://127.0.0.1:3128\n";
	size_t n = parse(text, &a, probs);
	CHECK_MSG(n == 0, "%zu problems, first code %d line %u", n, n ? (int)probs[0].code : 0,
	          n ? probs[0].line : 0);
	CHECK_STR(a.url, "https://app.example.com:8443/hooks/images?x=1#frag");
	CHECK(a.method == ACTION_PUT);
	CHECK(a.n_headers == 2);
	CHECK_STR(a.headers[0].line, "Authorization: Bearer ${file:/etc/cfw/app-token}");
	CHECK(a.headers[0].name_len == strlen("Authorization"));
	CHECK_STR(a.headers[0].line + a.headers[0].value_start,
	          "Bearer ${file:/etc/cfw/app-token}");
	CHECK_STR(a.headers[1].line + a.headers[1].value_start, "${env:DEPLOY_ENV}#not a comment");
	CHECK(a.timeout_seconds == 10);
	CHECK_STR(a.template_path, "/etc/cfw/payload.json");
	CHECK_STR(a.secret_file, "/etc/cfw/outbound.key");
	CHECK_STR(a.ca_file, "/etc/cfw/ca.pem");
	CHECK_STR(a.proxy, "http://127.0.0.1:3128");
}

static void test_parse_defaults(void)
{
	static struct action a;
	struct action_problem probs[MAX_PROBLEMS];
	CHECK(parse("url = http://[::1]:8000/x", &a, probs) == 0);
	CHECK(a.method == ACTION_POST);
	CHECK(a.timeout_seconds == 0 && a.n_headers == 0);
	CHECK(a.template_path[0] == '\0' && a.secret_file[0] == '\0' && a.proxy[0] == '\0');
	CHECK(parse("URL = HTTP://h", &a, probs) == 2); /* keys are lower case: unknown, no url */
	CHECK(parse("url = HTTP://Example.COM", &a, probs) == 0);
}

static void test_parse_each_problem(void)
{
	const char *url = "url = https://h/\n";
	char text[512];

	CHECK(one_problem("url = https://h/\nretries = 3\n", 2, ACTION_UNKNOWN_KEY));
	CHECK(one_problem("url = ftp://h/\n", 1, ACTION_BAD_URL));
	CHECK(one_problem("\n\nurl = https://\n", 3, ACTION_BAD_URL));
	CHECK(one_problem("url = https://h/a b\n", 1, ACTION_BAD_URL));
	CHECK(one_problem("url = https://h:0/\n", 1, ACTION_BAD_URL));
	CHECK(one_problem("url = https://h:70000/\n", 1, ACTION_BAD_URL));
	CHECK(one_problem("url = https://h:8x/\n", 1, ACTION_BAD_URL));
	CHECK(one_problem("url = https://[::1/\n", 1, ACTION_BAD_URL));
	CHECK(one_problem("url = //h/\n", 1, ACTION_BAD_URL));
	CHECK(one_problem("url = https://h/\xc3\xa9\n", 1, ACTION_BAD_URL));
	snprintf(text, sizeof text, "%smethod = GET\n", url);
	CHECK(one_problem(text, 2, ACTION_BAD_METHOD));
	snprintf(text, sizeof text, "%smethod = post\n", url);
	CHECK(one_problem(text, 2, ACTION_BAD_METHOD));
	snprintf(text, sizeof text, "%stimeout = 5\n# x\ntimeout = 6\n", url);
	CHECK(one_problem(text, 4, ACTION_DUPLICATE_KEY));
	CHECK(one_problem("url = https://h/\nurl = https://h/\n", 2, ACTION_DUPLICATE_KEY));
	snprintf(text, sizeof text, "%sheader = NoColon\n", url);
	CHECK(one_problem(text, 2, ACTION_BAD_HEADER));
	snprintf(text, sizeof text, "%sheader = Bad Name: v\n", url);
	CHECK(one_problem(text, 2, ACTION_BAD_HEADER));
	snprintf(text, sizeof text, "%sheader = : v\n", url);
	CHECK(one_problem(text, 2, ACTION_BAD_HEADER));
	snprintf(text, sizeof text, "%sheader = X-A: a\rb\n", url);
	CHECK(one_problem(text, 2, ACTION_BAD_HEADER));
	snprintf(text, sizeof text, "%sheader = X-A: ${file:relative/path}\n", url);
	CHECK(one_problem(text, 2, ACTION_BAD_REFERENCE));
	snprintf(text, sizeof text, "%sheader = X-A: ${env:1X}\n", url);
	CHECK(one_problem(text, 2, ACTION_BAD_REFERENCE));
	snprintf(text, sizeof text, "%sheader = X-A: ${env:X\n", url);
	CHECK(one_problem(text, 2, ACTION_BAD_REFERENCE));
	snprintf(text, sizeof text, "%sheader = X-A: ${secret:X}\n", url);
	CHECK(one_problem(text, 2, ACTION_BAD_REFERENCE));
	snprintf(text, sizeof text, "%sheader = X-A: ${env:}\n", url);
	CHECK(one_problem(text, 2, ACTION_BAD_REFERENCE));
	snprintf(text, sizeof text, "%stimeout = 0\n", url);
	CHECK(one_problem(text, 2, ACTION_BAD_TIMEOUT));
	snprintf(text, sizeof text, "%stimeout = 86401\n", url);
	CHECK(one_problem(text, 2, ACTION_BAD_TIMEOUT));
	snprintf(text, sizeof text, "%stimeout = 10s\n", url);
	CHECK(one_problem(text, 2, ACTION_BAD_TIMEOUT));
	CHECK(one_problem("method = POST\n", 0, ACTION_MISSING_URL));
	CHECK(one_problem("", 0, ACTION_MISSING_URL));
	snprintf(text, sizeof text, "%sjust words\n", url);
	CHECK(one_problem(text, 2, ACTION_BAD_LINE));
	snprintf(text, sizeof text, "%stemplate =\n", url);
	CHECK(one_problem(text, 2, ACTION_EMPTY_VALUE));
	snprintf(text, sizeof text, "%sproxy = http://a b\n", url);
	CHECK(one_problem(text, 2, ACTION_BAD_PROXY));
	snprintf(text, sizeof text, "%sca_file = /a\x01\n", url);
	CHECK(one_problem(text, 2, ACTION_BAD_PATH));
}

static void test_parse_reports_all(void)
{
	static struct action a;
	struct action_problem probs[MAX_PROBLEMS];
	const char *text = "method = GET\n"
	                   "colour = blue\n"
	                   "timeout = -1\n"
	                   "header = X: ${nope}\n";
	size_t n = parse(text, &a, probs);
	CHECK(n == 5);
	CHECK(probs[0].line == 1 && probs[0].code == ACTION_BAD_METHOD);
	CHECK(probs[1].line == 2 && probs[1].code == ACTION_UNKNOWN_KEY);
	CHECK(probs[2].line == 3 && probs[2].code == ACTION_BAD_TIMEOUT);
	CHECK(probs[3].line == 4 && probs[3].code == ACTION_BAD_REFERENCE);
	CHECK(probs[4].line == 0 && probs[4].code == ACTION_MISSING_URL);
	/* More problems than room: counted, the first cap stored. */
	CHECK(action_parse(text, strlen(text), &a, probs, 2) == 5);
	CHECK(probs[1].line == 2);
	CHECK(strcmp(action_error_text(ACTION_BAD_URL), "invalid") != 0);
}

static void test_parse_bounds(void)
{
	static struct action a;
	struct action_problem probs[MAX_PROBLEMS];
	char *text = malloc(ACTION_LINE_BYTES + 64);
	size_t n;

	/* A line too long, and one holding a NUL byte. */
	n = (size_t)snprintf(text, 64, "url = https://h/\nheader = X: ");
	memset(text + n, 'a', ACTION_LINE_BYTES);
	text[n + ACTION_LINE_BYTES] = '\0';
	CHECK(one_problem(text, 2, ACTION_LINE_TOO_LONG));
	CHECK(action_parse("url = https://h/\n\0x = 1\n", 24, &a, probs, MAX_PROBLEMS) == 1 &&
	      probs[0].line == 2 && probs[0].code == ACTION_LINE_TOO_LONG);
	/* Headers: ACTION_MAX_HEADERS pass, one more does not. */
	n = (size_t)snprintf(text, 64, "url = https://h/\n");
	for (int i = 0; i < ACTION_MAX_HEADERS; i++)
		n += (size_t)snprintf(text + n, 64, "header = X-%d: v\n", i);
	CHECK(parse(text, &a, probs) == 0 && a.n_headers == ACTION_MAX_HEADERS);
	snprintf(text + n, 64, "header = X-last: v\n");
	CHECK(one_problem(text, ACTION_MAX_HEADERS + 2, ACTION_TOO_MANY_HEADERS));
	/* A url that cannot fit. */
	n = (size_t)snprintf(text, 64, "url = https://h/");
	memset(text + n, 'a', ACTION_URL_BYTES);
	text[n + ACTION_URL_BYTES] = '\0';
	CHECK(one_problem(text, 1, ACTION_BAD_URL));
	free(text);
}

static void test_references(void)
{
	CHECK(action_references_valid("plain $HOME and $ alone"));
	CHECK(action_references_valid("a ${file:/x/y} b ${env:A_1} c"));
	CHECK(!action_references_valid("${file:}"));
	CHECK(!action_references_valid("${env:A-B}"));
	CHECK(!action_references_valid("${file:/a${env:X}}"));
	CHECK(!action_references_valid("${"));
}

/* ---- Rendering ---- */

/* The values of a hook run: image and delivery as raw JSON text. */
static cJSON *values(const char *image, const char *delivery)
{
	cJSON *v = cJSON_CreateObject();
	cJSON_AddItemToObject(v, "image", cJSON_CreateRaw(image));
	cJSON_AddStringToObject(v, "status", "uploaded");
	cJSON_AddNullToObject(v, "previous_status");
	cJSON_AddStringToObject(v, "event", "upload.complete");
	if (delivery)
		cJSON_AddItemToObject(v, "delivery", cJSON_CreateRaw(delivery));
	return v;
}

static const char *image_json =
    "{\"id\": \"abc\", \"status\": \"uploaded\", "
    "\"metadata\": {\"userId\": \"u1\", \"n\": 12345678901234567890,"
    " \"ok\": true, \"tags\": [1, 2.50, \"x\"]}, \"uploaded_at\": null}";

/* Renders template against v; returns the output (caller frees) or NULL. */
static char *render(const char *template_json, const cJSON *v, enum action_render_error *e)
{
	char *out = NULL;
	*e = action_render(template_json, strlen(template_json), v, &out);
	if (*e == ACTION_RENDER_OK) {
		struct json_check info;
		CHECK(out && json_validate(out, strlen(out), &info));
	} else {
		CHECK(out == NULL);
	}
	return out;
}

static void check_render(const cJSON *v, const char *template_json, const char *want)
{
	enum action_render_error e;
	char *out = render(template_json, v, &e);
	CHECK_MSG(e == ACTION_RENDER_OK, "%s: %s", template_json, action_render_error_text(e));
	CHECK_STR(out, want);
	free(out);
}

static void test_render_typed(void)
{
	cJSON *v = values(image_json, "{\"body\": {\"id\": \"abc\", \"size\": 1e400}}");
	check_render(v, "{\"id\": \"{{ image.id }}\", \"n\": \"{{image.metadata.n}}\"}",
	             "{\"id\":\"abc\",\"n\":12345678901234567890}");
	check_render(v, "{\"meta\": \"{{ image.metadata }}\"}",
	             "{\"meta\":{\"userId\":\"u1\",\"n\":12345678901234567890,\"ok\":true,"
	             "\"tags\":[1,2.50,\"x\"]}}");
	check_render(v, "[\"{{ status }}\", \"{{ previous_status }}\", \"{{ event }}\"]",
	             "[\"uploaded\",null,\"upload.complete\"]");
	check_render(v,
	             "{\"ok\": \"{{ image.metadata.ok }}\", \"at\": \"{{ image.uploaded_at }}\"}",
	             "{\"ok\":true,\"at\":null}");
	/* Missing: null, through a missing member, a scalar, or an array. */
	check_render(
	    v, "[\"{{ image.nope }}\", \"{{ image.id.x }}\", \"{{ image.metadata.tags.x }}\"]",
	    "[null,null,null]");
	check_render(v, "{\"size\": \"{{ delivery.body.size }}\"}", "{\"size\":1e400}");
	/* The whole image, and the template's own values kept as written. */
	check_render(v, "{\"image\": \"{{ image }}\", \"k\": 1.0e2, \"s\": \"a\\u00e9\"}",
	             "{\"image\":{\"id\":\"abc\",\"status\":\"uploaded\",\"metadata\":{\"userId\":"
	             "\"u1\",\"n\":12345678901234567890,\"ok\":true,\"tags\":[1,2.50,\"x\"]},"
	             "\"uploaded_at\":null},\"k\":1.0e2,\"s\":\"a\\u00e9\"}");
	/* Member names are never placeholders. */
	check_render(v, "{\"{{ image.id }}\": 1}", "{\"{{ image.id }}\":1}");
	cJSON_Delete(v);

	/* A root not given at all is missing too. */
	v = values(image_json, NULL);
	check_render(v, "[\"{{ delivery.body.id }}\", \"x{{ delivery }}y\"]", "[null,\"xy\"]");
	cJSON_Delete(v);
}

static void test_render_interpolated(void)
{
	cJSON *v = values(image_json, NULL);
	check_render(v, "{\"text\": \"Image {{ image.id }} is {{status}}.\"}",
	             "{\"text\":\"Image abc is uploaded.\"}");
	check_render(v,
	             "\"n={{ image.metadata.n }} ok={{ image.metadata.ok }} "
	             "m=[{{ image.nope }}] at={{ image.uploaded_at }}\"",
	             "\"n=12345678901234567890 ok=true m=[] at=null\"");
	check_render(v, "\"tags: {{ image.metadata.tags }}\"", "\"tags: [1,2.50,\\\"x\\\"]\"");
	check_render(v, "\" {{ image.id }}\"", "\" abc\"");
	check_render(v, "\"{{ image.id }}{{ image.id }}\"", "\"abcabc\"");
	check_render(v, "\"{ single } braces\"", "\"{ single } braces\"");
	cJSON_Delete(v);
}

static void test_render_hostile(void)
{
	const char *image =
	    "{\"id\": \"a\\\"b\", \"title\": \"</script><script>alert(1)\", "
	    "\"nl\": \"line1\\nline2\", \"uni\": \"caf\xc3\xa9 \\u2028 \xe2\x80\xa9 "
	    "\xf0\x9f\x98\x80\", \"obj\": {\"q\": \"\\\"</x>\\\\\"}}";
	cJSON *v = values(image, NULL);
	cJSON *parsed;
	char *out;
	enum action_render_error e;

	check_render(v, "[\"{{ image.id }}\", \"<{{ image.id }}>\"]", "[\"a\\\"b\",\"<a\\\"b>\"]");
	check_render(v, "\"{{ image.title }}\"",
	             "\"\\u003c/script\\u003e\\u003cscript\\u003ealert(1)\"");
	check_render(v, "\"t: {{ image.title }}\"",
	             "\"t: \\u003c/script\\u003e\\u003cscript\\u003ealert(1)\"");
	check_render(v, "[\"{{ image.nl }}\", \"x{{ image.nl }}\"]",
	             "[\"line1\\nline2\",\"xline1\\nline2\"]");
	check_render(v, "\"{{ image.uni }}\"", "\"caf\xc3\xa9 \\u2028 \\u2029 \xf0\x9f\x98\x80\"");
	check_render(v, "\"o={{ image.obj }}\"",
	             "\"o={\\\"q\\\":\\\"\\\\\\\"\\u003c/x\\u003e\\\\\\\\\\\"}\"");

	/* What a parser reads back is the value itself. */
	out = render("{\"o\": \"o={{ image.obj }}\", \"t\": \"{{ image.title }}\"}", v, &e);
	parsed = cJSON_Parse(out ? out : "");
	CHECK(cJSON_IsObject(parsed));
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(parsed, "o")),
	          "o={\"q\":\"\\\"</x>\\\\\"}");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(parsed, "t")),
	          "</script><script>alert(1)");
	cJSON_Delete(parsed);
	free(out);
	cJSON_Delete(v);

	/* Values from cJSON strings (not raw text) are escaped the same way. */
	v = cJSON_CreateObject();
	cJSON_AddStringToObject(v, "event", "a\"b\n</script>\x01");
	check_render(v, "[\"{{ event }}\", \"e={{ event }}\"]",
	             "[\"a\\\"b\\n\\u003c/script\\u003e\\u0001\",\"e=a\\\"b\\n\\u003c/script\\u003e"
	             "\\u0001\"]");
	cJSON_Delete(v);

	/* Invalid UTF-8 in a value never reaches the output. */
	v = cJSON_CreateObject();
	cJSON_AddStringToObject(v, "event", "bad \xff");
	out = render("\"{{ event }}\"", v, &e);
	CHECK(e == ACTION_RENDER_BAD_VALUES && out == NULL);
	cJSON_Delete(v);
}

static void test_render_errors(void)
{
	cJSON *v = values(image_json, NULL);
	enum action_render_error e;
	size_t off = 99;
	const char *t;

	CHECK(render("{\"a\": \"{{ images.id }}\"}", v, &e) == NULL &&
	      e == ACTION_RENDER_UNKNOWN_ROOT);
	CHECK(render("\"x {{ secret }} y\"", v, &e) == NULL && e == ACTION_RENDER_UNKNOWN_ROOT);
	CHECK(render("\"{{ image.id }\"", v, &e) == NULL && e == ACTION_RENDER_BAD_PLACEHOLDER);
	CHECK(render("\"{{ }}\"", v, &e) == NULL && e == ACTION_RENDER_BAD_PLACEHOLDER);
	CHECK(render("\"{{ image..id }}\"", v, &e) == NULL && e == ACTION_RENDER_BAD_PLACEHOLDER);
	CHECK(render("\"{{ image.id\"", v, &e) == NULL && e == ACTION_RENDER_BAD_PLACEHOLDER);
	CHECK(render("{\"a\": 1,}", v, &e) == NULL && e == ACTION_RENDER_BAD_JSON);
	CHECK(render("\"a\\u0000b\"", v, &e) == NULL && e == ACTION_RENDER_BAD_JSON);
	CHECK(render("", v, &e) == NULL && e == ACTION_RENDER_BAD_JSON);

	t = "{\"ok\": \"{{ image.id }}\", \"bad\": \"{{ nope.x }}\"}";
	CHECK(action_template_check(t, strlen(t), &off) == ACTION_RENDER_UNKNOWN_ROOT);
	CHECK(off == strlen("{\"ok\": \"{{ image.id }}\", \"bad\": "));
	t = "{\"a\": [\"{{ image.id }}\", \"{{ delivery.body.x }}\", \"{{ event }} {{ status "
	    "}}\"]}";
	CHECK(action_template_check(t, strlen(t), &off) == ACTION_RENDER_OK);
	cJSON_Delete(v);

	/* A root value that is not JSON, and values that are not an object. */
	v = values("{\"id\": 01}", NULL);
	CHECK(render("\"{{ image.id }}\"", v, &e) == NULL && e == ACTION_RENDER_BAD_VALUES);
	cJSON_Delete(v);
	v = cJSON_CreateArray();
	CHECK(render("\"{{ image.id }}\"", v, &e) == NULL && e == ACTION_RENDER_BAD_VALUES);
	cJSON_Delete(v);
}

/* ---- The default payload ---- */

static void test_default_payload(void)
{
	const char *image = "{\n  \"id\": \"abc\",\n  \"status\": \"uploaded\",\n  \"metadata\": "
	                    "{\"n\": 12345678901234567890},\n  \"uploaded_at\": null\n}";
	char *out = NULL;
	enum action_render_error e;

	e = action_default_payload(image, strlen(image), "uploaded", "pending", "upload.complete",
	                           "2025-01-15T10:30:46.000Z", &out);
	CHECK(e == ACTION_RENDER_OK);
	CHECK_STR(out, "{\"type\":\"image.uploaded\",\"timestamp\":\"2025-01-15T10:30:46.000Z\","
	               "\"data\":{\"id\":\"abc\",\"status\":\"uploaded\",\"metadata\":{\"n\":"
	               "12345678901234567890},\"uploaded_at\":null,\"previous_status\":\"pending\","
	               "\"event\":\"upload.complete\"}}");
	free(out);

	/* No previous status and no event: null, not left out. */
	e = action_default_payload("{}", 2, "expired", NULL, NULL, "T", &out);
	CHECK(e == ACTION_RENDER_OK);
	CHECK_STR(out, "{\"type\":\"image.expired\",\"timestamp\":\"T\",\"data\":{"
	               "\"previous_status\":null,\"event\":null}}");
	free(out);

	/* Members of the image that the payload sets itself are replaced, not repeated. */
	image =
	    "{\"event\":\"old\",\"id\":\"x</y>\",\"previous_\\u0073tatus\":1,\"n\":[1,{\"a\":2}]}";
	e = action_default_payload(image, strlen(image), "failed", "uploaded", "a\"b", "T", &out);
	CHECK(e == ACTION_RENDER_OK);
	CHECK_STR(out, "{\"type\":\"image.failed\",\"timestamp\":\"T\",\"data\":{\"id\":"
	               "\"x\\u003c/y\\u003e\",\"n\":[1,{\"a\":2}],\"previous_status\":\"uploaded\","
	               "\"event\":\"a\\\"b\"}}");
	free(out);

	/* Not an object, not JSON, a status that is not UTF-8. */
	CHECK(action_default_payload("[1]", 3, "x", NULL, NULL, "T", &out) ==
	          ACTION_RENDER_BAD_VALUES &&
	      out == NULL);
	CHECK(action_default_payload("{", 1, "x", NULL, NULL, "T", &out) ==
	          ACTION_RENDER_BAD_VALUES &&
	      out == NULL);
	CHECK(action_default_payload("{}", 2, "\xff", NULL, NULL, "T", &out) ==
	          ACTION_RENDER_BAD_VALUES &&
	      out == NULL);
}

int main(void)
{
	test_parse_full();
	test_parse_defaults();
	test_parse_each_problem();
	test_parse_reports_all();
	test_parse_bounds();
	test_references();
	test_render_typed();
	test_render_interpolated();
	test_render_hostile();
	test_render_errors();
	test_default_payload();
	return test_done("test_action");
}
