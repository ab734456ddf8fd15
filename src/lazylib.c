/*
 * libpq and libcurl loaded with dlopen() when first used (README, Build
 * and install: lazy libraries; ./configure --disable-lazy-libs links them
 * instead).  A CGI request is one exec of the program, and linking them
 * made the loader map some thirty libraries (Kerberos, LDAP, GnuTLS, SASL,
 * nghttp2, ssh...) on every request, though most requests use neither:
 * libpq serves only a postgresql:// database, libcurl only the call of a
 * .webhook action and --version.
 *
 * Each library is opened once per process (pthread_once: the FastCGI
 * workers may each open a PostgreSQL connection first) with RTLD_NOW, so
 * that a library lacking a function fails here rather than in the middle
 * of a call, and RTLD_LOCAL, so that its symbols serve only the pointers
 * filled here.  One that loaded is never closed (one lacking a function
 * is, at once).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#ifdef LAZY_LIBPQ
#define LAZY_PQ_NO_REDIRECT
#include "lazy_pq.h"
#endif
#ifdef LAZY_LIBCURL
#define LAZY_CURL_NO_REDIRECT
#include "lazy_curl.h"
#endif

/* Room for dlerror()'s text: a path and a symbol name. */
#define WHY_BYTES 1024

_Static_assert(sizeof(void *) == sizeof(void (*)(void)), "function pointers fit in void *");

/* A function to resolve, and the address of the pointer it goes into. */
struct lazy_symbol {
	const char *name;
	void *slot; /* a function pointer's address */
};

/*
 * Opens soname and resolves every symbol into its slot; on failure fills
 * why with dlerror()'s text (it names the file or the missing function):
 * the callers then never use the slots.
 */
static void load(const char *soname, const struct lazy_symbol *syms, size_t n, char *why,
                 size_t cap)
{
	const char *err;
	void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);

	if (lib == NULL) {
		err = dlerror();
		snprintf(why, cap, "%s", err ? err : soname);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		void *f;
		(void)dlerror();
		f = dlsym(lib, syms[i].name);
		err = dlerror();
		if (f == NULL || err != NULL) {
			snprintf(why, cap, "%s", err ? err : syms[i].name);
			dlclose(lib);
			return;
		}
		/* POSIX: a function's address survives the trip through void *. */
		memcpy(syms[i].slot, &f, sizeof f);
	}
}

#define LAZY_SYMBOL(lib, f) {#f, &lib.f},

#ifdef LAZY_LIBPQ
struct lazy_pq lazy_pq;
static pthread_once_t pq_once = PTHREAD_ONCE_INIT;
static char pq_why[WHY_BYTES];

static void pq_load(void)
{
#define PQ_SYMBOL(f) LAZY_SYMBOL(lazy_pq, f)
	static const struct lazy_symbol syms[] = {LAZY_PQ_FUNCTIONS(PQ_SYMBOL)};
	load(LIBPQ_SONAME, syms, sizeof syms / sizeof syms[0], pq_why, sizeof pq_why);
}

const char *lazy_pq_load(void)
{
	pthread_once(&pq_once, pq_load);
	return pq_why[0] ? pq_why : NULL;
}
#endif

#ifdef LAZY_LIBCURL
struct lazy_curl lazy_curl;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static char curl_why[WHY_BYTES];

static void curl_load(void)
{
#define CURL_SYMBOL(f) LAZY_SYMBOL(lazy_curl, f)
	static const struct lazy_symbol syms[] = {LAZY_CURL_FUNCTIONS(CURL_SYMBOL)};
	load(LIBCURL_SONAME, syms, sizeof syms / sizeof syms[0], curl_why, sizeof curl_why);
}

const char *lazy_curl_load(void)
{
	pthread_once(&curl_once, curl_load);
	return curl_why[0] ? curl_why : NULL;
}
#endif
