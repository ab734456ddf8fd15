/*
 * json_validate(): RFC 8259 texts that must pass and the pitfalls cJSON
 * 1.7.15 lets through that must not (SPEC section 4 row 6).  Every text is
 * copied into a buffer of exactly its length, so a read past len is caught
 * by valgrind or AddressSanitizer.
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

int main(void)
{
	test_table();
	test_depth();
	test_deep_attack();
	test_nul_escape();
	test_length_bounds();
	test_large();
	return test_done("test_json");
}
