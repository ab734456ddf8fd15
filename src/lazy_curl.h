/*
 * libcurl loaded when first used (README, Build and install: lazy
 * libraries).  In a dynamic build libcurl is not linked: outbound.c and
 * `--version` call lazy_curl_load() before their first libcurl call, and
 * the names below, defined after <curl/curl.h>, make every curl_* call go
 * through the pointers it filled.  Included by the files that call
 * libcurl, after <curl/curl.h>; in a build that links libcurl
 * (--disable-lazy-libs, the portable build) it changes nothing and
 * lazy_curl_load() always succeeds.
 */
#ifndef CFW_LAZY_CURL_H
#define CFW_LAZY_CURL_H

#include <curl/curl.h>

/*
 * Loads libcurl (LIBCURL_SONAME) and every function of
 * LAZY_CURL_FUNCTIONS, once for the process (any thread may call it, any
 * number of times).  Returns NULL when libcurl can be used, else why not:
 * dlerror()'s text, naming the library or the missing function.  A
 * failure is final for the process.
 */
#ifdef LAZY_LIBCURL
const char *lazy_curl_load(void);
#else
static inline const char *lazy_curl_load(void)
{
	return NULL;
}
#endif

#ifdef LAZY_LIBCURL
/*
 * Every libcurl function the program calls, and below the same names as
 * macros.  One missing from either is a build error (libcurl is not
 * linked; a macro without its pointer names no member), so neither can
 * drift from the code.
 */
#define LAZY_CURL_FUNCTIONS(X)                                                                     \
	X(curl_easy_cleanup)                                                                       \
	X(curl_easy_getinfo)                                                                       \
	X(curl_easy_init)                                                                          \
	X(curl_easy_perform)                                                                       \
	X(curl_easy_setopt)                                                                        \
	X(curl_easy_strerror)                                                                      \
	X(curl_global_init)                                                                        \
	X(curl_slist_append)                                                                       \
	X(curl_slist_free_all)                                                                     \
	X(curl_version_info)

#define LAZY_CURL_POINTER(f) __typeof__(&f) f;
struct lazy_curl {
	LAZY_CURL_FUNCTIONS(LAZY_CURL_POINTER)
};
#undef LAZY_CURL_POINTER
/* Filled by lazy_curl_load(); read only after it succeeded. */
extern struct lazy_curl lazy_curl;

/* lazylib.c itself names the functions, not the pointers. */
#ifndef LAZY_CURL_NO_REDIRECT
/*
 * <curl/curl.h> makes curl_easy_setopt and curl_easy_getinfo function-like
 * macros (with GCC, ones that check each option's argument type): they
 * give way to the pointers here, so those checks are made only by builds
 * that link libcurl (the portable build, --disable-lazy-libs).
 */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_easy_cleanup (lazy_curl.curl_easy_cleanup)
#define curl_easy_getinfo (lazy_curl.curl_easy_getinfo)
#define curl_easy_init (lazy_curl.curl_easy_init)
#define curl_easy_perform (lazy_curl.curl_easy_perform)
#define curl_easy_setopt (lazy_curl.curl_easy_setopt)
#define curl_easy_strerror (lazy_curl.curl_easy_strerror)
#define curl_global_init (lazy_curl.curl_global_init)
#define curl_slist_append (lazy_curl.curl_slist_append)
#define curl_slist_free_all (lazy_curl.curl_slist_free_all)
#define curl_version_info (lazy_curl.curl_version_info)
#endif
#endif /* LAZY_LIBCURL */

#endif
