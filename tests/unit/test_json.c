/*
 * json_validate(): RFC 8259 texts that must pass and the pitfalls cJSON
 * 1.7.15 lets through that must not (cfimages-webhook(8) REQUEST CONTRACT row 6).  Every text is
 * copied into a buffer of exactly its length, so a read past len is caught
 * by valgrind or AddressSanitizer.  Then json_member_span() and
 * json_compact(), which give a value back exactly as it was written.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "testlib.h"

/* One table row: the bytes (may hold NUL), their length, the verdict. */
struct json_case {
	const char *text;
	size_t len;
	bool valid;
};

/* clang-format off */
#define OK(s) {s, sizeof(s) - 1, true}
#define BAD(s) {s, sizeof(s) - 1, false}

static const struct json_case cases[] = {
	/* values of every kind, and whitespace around them */
	OK("{}"),
	OK("[]"),
	OK("0"),
	OK("-0"),
	OK("123"),
	OK("-1.5e+10"),
	OK("1E-5"),
	OK("0.0"),
	OK("1e5"),
	OK("\"\""),
	OK("true"),
	OK("false"),
	OK("null"),
	OK(" \t\r\n{} \n\r\t"),
	OK("{\"a\":[1,2,{\"b\":null}],\"c\":{\"d\":true}}"),
	OK("[ 1 , [ 2 , [ 3 ] ] , { } , \"x\" ]"),
	OK("{ \"a\" : 1 , \"b\" : [ ] }"),
	OK("{\"\":0}"),
	/* escapes */
	OK("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""),
	OK("\"\\u00e9\\u00E9\""),
	OK("\"\\ud83d\\ude00\""),
	OK("\"\\uDBFF\\uDFFF\""),
	/* UTF-8 of every length, the highest code point, raw DEL */
	OK("\"\xc3\xa9\""),
	OK("\"\xe2\x82\xac\""),
	OK("\"\xef\xbf\xbf\""),
	OK("\"\xf0\x9f\x98\x80\""),
	OK("\"\xf4\x8f\xbf\xbf\""),
	OK("\"\xed\x9f\xbf\""),
	OK("\"\x7f\""),

	/* empty, whitespace only, unfinished */
	BAD(""),
	BAD(" "),
	BAD("\t\r\n "),
	BAD("{"),
	BAD("}"),
	BAD("["),
	BAD("]"),
	BAD("[1"),
	BAD("{\"a\":1"),
	BAD("{\"a\""),
	BAD("\"abc"),
	BAD("\"abc\\"),
	/* structure */
	BAD("[1,]"),
	BAD("[,1]"),
	BAD("[1 2]"),
	BAD("{\"a\"}"),
	BAD("{\"a\":}"),
	BAD("{\"a\":1,}"),
	BAD("{,}"),
	BAD("{a:1}"),
	BAD("{'a':1}"),
	BAD("{\"a\" 1}"),
	BAD("{1:1}"),
	BAD("[}"),
	BAD("{]"),
	BAD("[1]]"),
	/* trailing bytes */
	BAD("{} x"),
	BAD("{}{}"),
	BAD("[] []"),
	BAD("1 2"),
	BAD("{},"),
	/* numbers */
	BAD("01"),
	BAD("-01"),
	BAD("00"),
	BAD("1."),
	BAD(".5"),
	BAD("-"),
	BAD("+1"),
	BAD("1e"),
	BAD("1e+"),
	BAD("1.e5"),
	BAD("0x10"),
	BAD("NaN"),
	BAD("Infinity"),
	BAD("-Infinity"),
	BAD("1_000"),
	/* literals */
	BAD("tru"),
	BAD("nul"),
	BAD("True"),
	BAD("nulls"),
	BAD("falsey"),
	/* escapes */
	BAD("\"\\x\""),
	BAD("\"\\a\""),
	BAD("\"\\'\""),
	BAD("\"\\u12\""),
	BAD("\"\\u12g4\""),
	BAD("\"\\U00e9\""),
	BAD("\"\\ud800\""),
	BAD("\"\\udc00\""),
	BAD("\"\\udfff\\ud800\""),
	BAD("\"\\ud800\\u0041\""),
	BAD("\"\\ud800\\ud800\""),
	BAD("\"\\ud800x\""),
	BAD("\"\\ud800\\n\""),
	BAD("\"\\ud800\\u"),
	/* raw control characters in strings */
	BAD("\"a\x01"
	    "b\""),
	BAD("\"\t\""),
	BAD("\"\n\""),
	BAD("\"\x1f\""),
	BAD("{\"k\x01\":1}"),
	/* NUL anywhere */
	BAD("{}\0"),
	BAD("\0{}"),
	BAD("[1,\0 2]"),
	BAD("\"a\0b\""),
	/* whitespace RFC 8259 does not list */
	BAD("\f{}"),
	BAD("\v{}"),
	BAD("\xc2\xa0{}"),
	BAD("\xef\xbb\xbf{}"),
	/* invalid UTF-8 (RFC 3629) */
	BAD("\"\x80\""),
	BAD("\"\xbf\""),
	BAD("\"\xc3\""),
	BAD("\"\xc3"),
	BAD("\"\xc3\x28\""),
	BAD("\"\xc0\xaf\""),
	BAD("\"\xc1\xbf\""),
	BAD("\"\xe0\x80\xaf\""),
	BAD("\"\xe0\x9f\xbf\""),
	BAD("\"\xe2\x82\""),
	BAD("\"\xed\xa0\x80\""),
	BAD("\"\xed\xbf\xbf\""),
	BAD("\"\xed\xa0\xbd\xed\xb8\x80\""),
	BAD("\"\xf0\x80\x80\xaf\""),
	BAD("\"\xf0\x8f\xbf\xbf\""),
	BAD("\"\xf4\x90\x80\x80\""),
	BAD("\"\xf5\x80\x80\x80\""),
	BAD("\"\xf8\x88\x80\x80\x80\""),
	BAD("\"\xfe\""),
	BAD("\"\xff\""),
	BAD("\"\xf0\x9f\x98\""),
	BAD("\xc3\xa9"),
};
/* clang-format on */

/* Validates a copy of text[0..len) held in a buffer of exactly len bytes. */
static bool validate_exact(const char *text, size_t len, struct json_check *info)
{
	char *buf = malloc(len > 0 ? len : 1);
	bool ok;

	if (buf == NULL)
		abort();
	memcpy(buf, text, len);
	ok = json_validate(buf, len, info);
	free(buf);
	return ok;
}

static void test_table(void)
{
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct json_check info;
		bool got = validate_exact(cases[i].text, cases[i].len, &info);
		CHECK_MSG(got == cases[i].valid, "case %zu (%zu bytes) should be %s", i,
		          cases[i].len, cases[i].valid ? "valid" : "invalid");
	}
}

/* depth nested arrays "[[[...]]]", or objects {"a":{"a":...{}}} when objects. */
static char *nested(size_t depth, bool objects, size_t *len)
{
	const char *open = objects ? "{\"a\":" : "[";
	size_t olen = strlen(open), n = depth * (olen + 1) + 2, pos = 0;
	char *s = malloc(n);

	if (s == NULL)
		abort();
	for (size_t i = 0; i < depth; i++) {
		memcpy(s + pos, open, olen);
		pos += olen;
	}
	s[pos++] = objects ? '{' : '[';
	s[pos++] = objects ? '}' : ']';
	for (size_t i = 0; i < depth; i++)
		s[pos++] = objects ? '}' : ']';
	*len = pos;
	return s;
}

/* JSON_MAX_DEPTH levels pass, one more fails, for arrays and objects. */
static void test_depth(void)
{
	size_t len;
	char *s;

	/* nested(d) has d + 1 containers */
	s = nested(JSON_MAX_DEPTH - 1, false, &len);
	CHECK(json_validate(s, len, NULL));
	free(s);
	s = nested(JSON_MAX_DEPTH, false, &len);
	CHECK(!json_validate(s, len, NULL));
	free(s);
	s = nested(JSON_MAX_DEPTH - 1, true, &len);
	CHECK(json_validate(s, len, NULL));
	free(s);
	s = nested(JSON_MAX_DEPTH, true, &len);
	CHECK(!json_validate(s, len, NULL));
	free(s);
	CHECK(JSON_MAX_DEPTH == 64);
}

/* 100000 open brackets are refused without recursion (no stack overflow). */
static void test_deep_attack(void)
{
	const size_t n = 100000;
	char *s = malloc(2 * n);

	if (s == NULL)
		abort();
	memset(s, '[', n);
	memset(s + n, ']', n);
	CHECK(!json_validate(s, 2 * n, NULL));
	CHECK(!json_validate(s, n, NULL));
	free(s);
}

/* has_nul_escape reports \u0000 and only that. */
static void test_nul_escape(void)
{
	struct json_check info;
	const char *with = "{\"a\":\"x\\u0000y\"}", *key = "{\"\\u0000\":1}";
	const char *without = "{\"a\":\"x\\u0001y\\\\u0000\"}";

	info.has_nul_escape = false;
	CHECK(validate_exact(with, strlen(with), &info));
	CHECK(info.has_nul_escape);
	info.has_nul_escape = false;
	CHECK(validate_exact(key, strlen(key), &info));
	CHECK(info.has_nul_escape);
	info.has_nul_escape = true;
	CHECK(validate_exact(without, strlen(without), &info));
	CHECK(!info.has_nul_escape);
	CHECK(json_validate("1", 1, NULL));
}

/* Only buf[0..len) counts: a valid prefix passes, a cut document fails. */
static void test_length_bounds(void)
{
	const char *doc = "{\"a\":[1,2]} trailing";

	CHECK(json_validate(doc, 11, NULL));
	CHECK(!json_validate(doc, 10, NULL));
	CHECK(!json_validate(doc, strlen(doc), NULL));
	CHECK(!json_validate("12", 0, NULL));
	CHECK(json_validate("12", 1, NULL));
	CHECK(validate_exact("12345", 5, NULL));
	CHECK(!validate_exact("\"\\u00e", 6, NULL));
	CHECK(!validate_exact("\"\\ud800\\udc0", 12, NULL));
	CHECK(!validate_exact("tr", 2, NULL));
	CHECK(!validate_exact("-", 1, NULL));
	CHECK(!validate_exact("1e", 2, NULL));
	CHECK(!validate_exact("\"\xf0\x9f", 3, NULL));
	CHECK(!json_validate(NULL, 0, NULL));
}

/* A large flat document is accepted (and in linear time). */
static void test_large(void)
{
	const size_t items = 200000;
	size_t cap = items * 8 + 16, pos = 0;
	char *s = malloc(cap);

	if (s == NULL)
		abort();
	s[pos++] = '[';
	for (size_t i = 0; i < items; i++)
		pos += (size_t)snprintf(s + pos, cap - pos, "%s\"%zu\"", i ? "," : "", i % 1000);
	s[pos++] = ']';
	CHECK(json_validate(s, pos, NULL));
	free(s);
}

/*
 * The text of member key of the top-level object of doc (copied into an
 * exact-length buffer), or NULL when it has none: a malloc'd string.
 */
static char *member_text(const char *doc, const char *key)
{
	size_t len = strlen(doc);
	char *buf = malloc(len > 0 ? len : 1), *out = NULL;
	struct json_span span;

	if (buf == NULL)
		abort();
	memcpy(buf, doc, len);
	CHECK_MSG(json_validate(buf, len, NULL), "not valid: %s", doc);
	if (json_member_span(buf, json_text_span(buf, len), key, &span)) {
		CHECK(span.start <= span.end && span.end <= len);
		out = malloc(span.end - span.start + 1);
		if (out == NULL)
			abort();
		memcpy(out, buf + span.start, span.end - span.start);
		out[span.end - span.start] = '\0';
	}
	free(buf);
	return out;
}

static void check_member(const char *doc, const char *key, const char *want)
{
	char *got = member_text(doc, key);

	CHECK_MSG((got == NULL) == (want == NULL) && (got == NULL || strcmp(got, want) == 0),
	          "member %s of %s: got [%s], want [%s]", key, doc, got ? got : "(none)",
	          want ? want : "(none)");
	free(got);
}

/* Values come back exactly as written: numbers cJSON would round, whitespace, escapes. */
static void test_member_span(void)
{
	check_member("{\"userId\":1234567890123456789,\"big\":1e400}", "userId",
	             "1234567890123456789");
	check_member("{\"userId\":1234567890123456789,\"big\":1e400}", "big", "1e400");
	check_member(" { \"m\" : { \"n\" : [ 1.0, -0, 2E+2 ] } ,\"x\":1}\n", "m",
	             "{ \"n\" : [ 1.0, -0, 2E+2 ] }");
	check_member("{\"a\":\"}]\\\"{[\",\"b\":[\"]\",{\"c\":\"}\"}],\"d\":null}", "b",
	             "[\"]\",{\"c\":\"}\"}]");
	check_member("{\"a\":\"}]\\\"{[\",\"b\":[\"]\",{\"c\":\"}\"}],\"d\":null}", "d", "null");
	/* only the top level's members, not a nested one of the same name */
	check_member("{\"x\":{\"k\":1},\"k\":2}", "k", "2");
	check_member("{\"x\":{\"k\":1}}", "k", NULL);
	/* names compare after escapes are decoded, byte for byte */
	check_member("{\"\\u006deta\":{\"a\":1}}", "meta", "{\"a\":1}");
	check_member("{\"caf\\u00e9\":true}", "caf\xc3\xa9", "true");
	check_member("{\"\\ud83d\\ude00\":false}", "\xf0\x9f\x98\x80", "false");
	check_member("{\"a\\/b\\n\":0}", "a/b\n", "0");
	check_member("{\"Meta\":1}", "meta", NULL);
	check_member("{\"metadata\":1}", "meta", NULL);
	check_member("{\"met\":1}", "meta", NULL);
	check_member("{\"a\\u0000\":1}", "a", NULL);
	check_member("{}", "a", NULL);
	check_member("[1]", "a", NULL);
	check_member("\"a\"", "a", NULL);
	/* the first of repeated names */
	check_member("{\"a\":1,\"a\":2}", "a", "1");
}

/* json_compact() drops whitespace between tokens and nothing else. */
static void test_compact(void)
{
	const char *doc = " {\n  \"a b\" : [ 1e400 ,\t-0.10 , \"x \\\" y\" ],\r\n \"c\":{ } } ";
	const char *want = "{\"a b\":[1e400,-0.10,\"x \\\" y\"],\"c\":{}}";
	char out[128];
	size_t n;

	CHECK(json_validate(doc, strlen(doc), NULL));
	n = json_compact(doc, strlen(doc), out);
	CHECK_STR(out, want);
	CHECK(n == strlen(want));
	n = json_compact("", 0, out);
	CHECK(n == 0 && out[0] == '\0');
}

int main(void)
{
	test_table();
	test_depth();
	test_deep_attack();
	test_nul_escape();
	test_length_bounds();
	test_large();
	test_member_span();
	test_compact();
	return test_done("test_json");
}
