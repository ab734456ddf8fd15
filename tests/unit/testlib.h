/*
 * A tiny test harness for the unit test programs: CHECK records a failure
 * with its file and line and carries on, so one run reports every broken
 * expectation; test_done() turns the count into the exit status Automake's
 * test driver reads (0 pass, 1 fail).
 */
#ifndef CFW_TESTLIB_H
#define CFW_TESTLIB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures;
static int test_checks;

#define CHECK(cond)                                                                      \
	do {                                                                             \
		test_checks++;                                                           \
		if (!(cond)) {                                                           \
			test_failures++;                                                 \
			fprintf(stderr, "%s:%d: FAIL: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                        \
	} while (0)

#define CHECK_MSG(cond, ...)                                                     \
	do {                                                                     \
		test_checks++;                                                   \
		if (!(cond)) {                                                   \
			test_failures++;                                         \
			fprintf(stderr, "%s:%d: FAIL: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                            \
			fputc('\n', stderr);                                     \
		}                                                                \
	} while (0)

#define CHECK_STR(a, b)                                                                   \
	do {                                                                              \
		const char *test_a_ = (a), *test_b_ = (b);                                \
		test_checks++;                                                            \
		if ((test_a_ == NULL) != (test_b_ == NULL) ||                             \
		    (test_a_ && strcmp(test_a_, test_b_) != 0)) {                         \
			test_failures++;                                                  \
			fprintf(stderr, "%s:%d: FAIL: %s == %s: \"%s\" != \"%s\"\n", __FILE__, \
			        __LINE__, #a, #b, test_a_ ? test_a_ : "(null)",           \
			        test_b_ ? test_b_ : "(null)");                            \
		}                                                                         \
	} while (0)

/* Reads a whole file (test data) into a malloc'd NUL-terminated buffer. */
static inline char *test_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;
	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else if (buf) {
			buf[n] = '\0';
			if (len)
				*len = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

/* Path of a file under tests/vectors, from $top_srcdir (set by make check). */
static inline const char *test_vector_path(const char *rel)
{
	static char path[4096];
	const char *top = getenv("top_srcdir");
	snprintf(path, sizeof path, "%s/tests/vectors/%s", top ? top : ".", rel);
	return path;
}

static inline int test_done(const char *name)
{
	fprintf(stderr, "%s: %d checks, %d failed\n", name, test_checks, test_failures);
	return test_failures ? 1 : 0;
}

#endif
