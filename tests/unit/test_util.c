/*
 * util.c: RFC 3339 parsing and formatting, hex, base64, HMAC, UTF-8, the
 * image id rules and integer parsing; compat.c's close_from().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"
#include "util.h"

static void rfc3339_ok(const char *s, int64_t want)
{
	int64_t got = -1;
	CHECK_MSG(rfc3339_parse(s, strlen(s), &got), "rejected %s", s);
	CHECK_MSG(got == want, "%s: got %lld want %lld", s, (long long)got, (long long)want);
}

static void rfc3339_bad(const char *s)
{
	int64_t got;
	CHECK_MSG(!rfc3339_parse(s, strlen(s), &got), "accepted %s", s);
}

static void test_rfc3339(void)
{
	rfc3339_ok("1970-01-01T00:00:00Z", 0);
	rfc3339_ok("2024-01-01T12:00:00.000Z", 1704110400000);
	rfc3339_ok("2024-01-01T12:00:00.5Z", 1704110400500);
	rfc3339_ok("2024-01-01T12:00:00.123456789Z", 1704110400123);
	rfc3339_ok("2024-01-01t12:00:00z", 1704110400000);
	rfc3339_ok("2024-01-01T13:30:00+01:30", 1704110400000);
	rfc3339_ok("2024-01-01T10:00:00-02:00", 1704110400000);
	rfc3339_ok("2024-02-29T00:00:00Z", 1709164800000);
	rfc3339_ok("2016-12-31T23:59:60Z", 1483228799000); /* leap second */
	rfc3339_ok("1969-12-31T23:59:59Z", -1000);
	rfc3339_bad("");
	rfc3339_bad("2024-01-01");
	rfc3339_bad("2024-01-01 12:00:00Z");
	rfc3339_bad("2024-01-01T12:00:00");
	rfc3339_bad("2024-01-01T12:00:00.Z");
	rfc3339_bad("2023-02-29T00:00:00Z");
	rfc3339_bad("2024-13-01T00:00:00Z");
	rfc3339_bad("2024-00-01T00:00:00Z");
	rfc3339_bad("2024-04-31T00:00:00Z");
	rfc3339_bad("2024-01-01T24:00:00Z");
	rfc3339_bad("2024-01-01T12:60:00Z");
	rfc3339_bad("2024-01-01T12:00:61Z");
	rfc3339_bad("2024-01-01T12:00:00+0100");
	rfc3339_bad("2024-01-01T12:00:00+24:00");
	rfc3339_bad("2024-01-01T12:00:00Zjunk");
	rfc3339_bad("+024-01-01T12:00:00Z");
	rfc3339_bad("2024-01-01T12:00:00.000Z ");
	/* A length shorter than the string: only len bytes count. */
	int64_t v;
	CHECK(!rfc3339_parse("2024-01-01T12:00:00Z", 19, &v));
}

static void test_time_format(void)
{
	char buf[TIME_TEXT_SIZE];
	time_format_ms(0, buf);
	CHECK_STR(buf, "1970-01-01T00:00:00.000Z");
	time_format_ms(1704110400123, buf);
	CHECK_STR(buf, "2024-01-01T12:00:00.123Z");
	time_format_ms(-1, buf);
	CHECK_STR(buf, "1969-12-31T23:59:59.999Z");
	time_format_ms(951782400000, buf); /* 2000-02-29 */
	CHECK_STR(buf, "2000-02-29T00:00:00.000Z");
	int64_t ms = time_now_ms();
	time_format_ms(ms, buf);
	int64_t back;
	CHECK(rfc3339_parse(buf, strlen(buf), &back) && back == ms);
}

static void test_hex_base64(void)
{
	unsigned char bytes[4] = {0x00, 0xab, 0xCD, 0xff}, out[4];
	char hex[9], b64[16];
	long n;

	hex_encode(bytes, 4, hex);
	CHECK_STR(hex, "00abcdff");
	CHECK(hex_decode("00ABcdFF", 4, out) && memcmp(out, bytes, 4) == 0);
	CHECK(!hex_decode("00ABcdFg", 4, out));
	CHECK(!hex_decode("0 ABcdFF", 4, out));

	base64_encode((const unsigned char *)"ab", 2, b64);
	CHECK_STR(b64, "YWI=");
	base64_encode((const unsigned char *)"abc", 3, b64);
	CHECK_STR(b64, "YWJj");
	base64_encode((const unsigned char *)"a", 1, b64);
	CHECK_STR(b64, "YQ==");
	n = base64_decode("YWI=", 4, out, sizeof out);
	CHECK(n == 2 && memcmp(out, "ab", 2) == 0);
	n = base64_decode("YQ==", 4, out, sizeof out);
	CHECK(n == 1 && out[0] == 'a');
	CHECK(base64_decode("YQ=", 3, out, sizeof out) == -1);
	CHECK(base64_decode("Y===", 4, out, sizeof out) == -1);
	CHECK(base64_decode("YQ=a", 4, out, sizeof out) == -1);
	CHECK(base64_decode("YQ==YWJj", 8, out, sizeof out) == -1);
	CHECK(base64_decode("YW-j", 4, out, sizeof out) == -1);
	CHECK(base64_decode("YWJjYWJj", 8, out, 5) == -1); /* too long for cap */
	CHECK(base64_decode("", 0, out, sizeof out) == 0);
}

static void test_hmac(void)
{
	unsigned char mac[SHA256_BYTES], mac2[SHA256_BYTES];
	char hex[2 * SHA256_BYTES + 1];
	/* RFC 4231 test case 2. */
	hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, mac);
	hex_encode(mac, sizeof mac, hex);
	CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	/* RFC 4231 test case 6: a 131-byte key is hashed first. */
	unsigned char key[131];
	memset(key, 0xaa, sizeof key);
	const char *msg = "Test Using Larger Than Block-Size Key - Hash Key First";
	hmac_sha256(key, sizeof key, msg, strlen(msg), mac);
	hex_encode(mac, sizeof mac, hex);
	CHECK_STR(hex, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
	/* The parts form equals one buffer. */
	hmac_sha256_parts("k", 1, "ab", 2, "cd", 2, "ef", 2, mac);
	hmac_sha256("k", 1, "abcdef", 6, mac2);
	CHECK(memcmp(mac, mac2, sizeof mac) == 0);
	/* An empty key is a valid key (expected value from
	 * `printf x | openssl dgst -sha256 -hmac ''`). */
	hmac_sha256("", 0, "x", 1, mac);
	hex_encode(mac, sizeof mac, hex);
	CHECK_STR(hex, "4cbc96099a6467ce002461f10549b4898265ebe6188b45efacc44293516e62c4");
	CHECK(ct_equal("abc", "abc", 3));
	CHECK(!ct_equal("abc", "abd", 3));
}

static void test_utf8(void)
{
	CHECK(utf8_count("abc", 3) == 3);
	CHECK(utf8_count("\xc3\xa9", 2) == 1);
	CHECK(utf8_count("\xf0\x9f\x98\x80", 4) == 1);
	CHECK(utf8_count("\xc0\xaf", 2) == -1);         /* overlong */
	CHECK(utf8_count("\xe0\x80\xaf", 3) == -1);     /* overlong */
	CHECK(utf8_count("\xed\xa0\x80", 3) == -1);     /* surrogate */
	CHECK(utf8_count("\xf4\x90\x80\x80", 4) == -1); /* above U+10FFFF */
	CHECK(utf8_count("\xc3", 1) == -1);             /* truncated */
	CHECK(utf8_count("\xff", 1) == -1);
	CHECK(utf8_count("\x80", 1) == -1);
}

static void test_image_id(void)
{
	char big[4 * 1100];
	CHECK(image_id_problem("2cdc28f0-017a-49c4-9ed7-87056c83901") == NULL);
	CHECK(image_id_problem("products/2024/shoe photo.jpg") == NULL);
	CHECK(image_id_problem("a..b/.c/d.") == NULL);
	CHECK(image_id_problem("") != NULL);
	CHECK(image_id_problem("/a") != NULL);
	CHECK(image_id_problem("a/") != NULL);
	CHECK(image_id_problem("a//b") != NULL);
	CHECK(image_id_problem("a/../b") != NULL);
	CHECK(image_id_problem("..") != NULL);
	CHECK(image_id_problem(".") != NULL);
	CHECK(image_id_problem("a/.") != NULL);
	CHECK(image_id_problem("a\tb") != NULL);
	CHECK(image_id_problem("a\x7f") != NULL);
	CHECK(image_id_problem("a\xc2\x85") != NULL); /* U+0085, a C1 control */
	CHECK(image_id_problem("a\xc2\xa0") == NULL);  /* U+00A0 is not a control */
	CHECK(image_id_problem("a\xff") != NULL);
	memset(big, 'x', 1024);
	big[1024] = '\0';
	CHECK(image_id_problem(big) == NULL);
	big[1024] = 'x';
	big[1025] = '\0';
	CHECK(image_id_problem(big) != NULL);
	/* 1024 two-byte characters are 1024 characters, not 2048. */
	for (int i = 0; i < 1024; i++)
		memcpy(big + 2 * i, "\xc3\xa9", 2);
	big[2048] = '\0';
	CHECK(image_id_problem(big) == NULL);
	memcpy(big + 2048, "\xc3\xa9", 3);
	CHECK(image_id_problem(big) != NULL);
}

static void test_parse_int64(void)
{
	int64_t v;
	CHECK(parse_int64("0", 0, 10, &v) && v == 0);
	CHECK(parse_int64("10", 0, 10, &v) && v == 10);
	CHECK(!parse_int64("11", 0, 10, &v));
	CHECK(!parse_int64("-1", 0, 10, &v));
	CHECK(parse_int64("-1", -5, 10, &v) && v == -1);
	CHECK(!parse_int64("", 0, 10, &v));
	CHECK(!parse_int64(" 1", 0, 10, &v));
	CHECK(!parse_int64("1 ", 0, 10, &v));
	CHECK(!parse_int64("1x", 0, 10, &v));
	CHECK(!parse_int64("+1", 0, 10, &v));
	CHECK(!parse_int64("-", -5, 10, &v));
	CHECK(parse_int64("9223372036854775807", 0, INT64_MAX, &v) && v == INT64_MAX);
	CHECK(!parse_int64("9223372036854775808", 0, INT64_MAX, &v));
	CHECK(!parse_int64("99999999999999999999", 0, INT64_MAX, &v));
	CHECK(status_is_known("uploaded") && status_is_known("expired"));
	CHECK(!status_is_known("Uploaded") && !status_is_known(""));
}

/*
 * malloc_keep_heap(): 400 KiB of page-sized blocks (as SQLite's page cache
 * allocates them) freed at the top of the heap stay there (glibc gives
 * them back from 128 KiB on by default).  Only where malloc is glibc's
 * own: under a sanitizer or valgrind it is not.
 */
static void test_malloc_keep_heap(void)
{
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__)
	enum { BLOCKS = 100 };
	void *block[BLOCKS];
	char *top_before, *top_after;

	malloc_keep_heap();
	for (int i = 0; i < BLOCKS; i++)
		block[i] = malloc(4096);
	top_before = sbrk(0);
	for (int i = BLOCKS - 1; i >= 0; i--)
		free(block[i]);
	top_after = sbrk(0);
	CHECK_MSG(top_after == top_before, "the heap's top moved by %td bytes after the frees",
	          top_after - top_before);
#endif
}

static void check_close_from(void (*way)(int), size_t w);

static void proc_way(int lowfd)
{
	if (!close_from_proc(lowfd))
		_exit(2);
}

/*
 * close_from(6) in a child closes 6, 9 and 300 and keeps 5, through which
 * the child answers (under valgrind a child's exit status is valgrind's);
 * so do each of its fallbacks alone (close_range is there on this kernel:
 * they are what runs on a kernel older than 5.9).
 */
static void test_close_from(void)
{
	void (*const ways[])(int) = {close_from, proc_way, close_from_each};

	for (size_t w = 0; w < sizeof ways / sizeof ways[0]; w++)
		check_close_from(ways[w], w);
}

static void check_close_from(void (*way)(int), size_t w)
{
	int answer[2];
	char seen = '?';
	pid_t child;

	CHECK(pipe(answer) == 0);
	child = fork();
	if (child == 0) {
		bool ok = dup2(answer[1], 5) == 5 && dup2(answer[1], 6) == 6 &&
		          dup2(answer[1], 9) == 9 && dup2(answer[1], 300) == 300;
		way(6);
		ok = ok && fcntl(5, F_GETFD) >= 0;
		ok = ok && fcntl(6, F_GETFD) < 0 && errno == EBADF;
		ok = ok && fcntl(9, F_GETFD) < 0 && errno == EBADF;
		ok = ok && fcntl(300, F_GETFD) < 0 && errno == EBADF;
		_exit(write(5, ok ? "y" : "n", 1) == 1 ? 0 : 1);
	}
	close(answer[1]);
	CHECK(child > 0 && read(answer[0], &seen, 1) == 1);
	CHECK_MSG(seen == 'y', "way %zu of close_from(6) left a descriptor >= 6 open or closed 5",
	          w);
	if (child > 0)
		waitpid(child, NULL, 0);
	close(answer[0]);
}

int main(void)
{
	test_rfc3339();
	test_time_format();
	test_hex_base64();
	test_hmac();
	test_utf8();
	test_image_id();
	test_parse_int64();
	test_malloc_keep_heap();
	test_close_from();
	return test_done("test_util");
}
