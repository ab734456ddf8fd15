/*
 * libpq loaded when first used (README, Build and install: lazy
 * libraries).  In a dynamic build libpq is not linked: store_pg.c calls
 * lazy_pq_load() before its first libpq call, and the names below, defined
 * after <libpq-fe.h>, make every PQ* call go through the pointers it
 * filled.  Included by the files that call libpq, after <libpq-fe.h>; in a
 * build that links libpq (--disable-lazy-libs, the portable build) it
 * changes nothing and lazy_pq_load() always succeeds.
 */
#ifndef CFW_LAZY_PQ_H
#define CFW_LAZY_PQ_H

#include <libpq-fe.h>

/*
 * Loads libpq (LIBPQ_SONAME) and every function of LAZY_PQ_FUNCTIONS, once
 * for the process (any thread may call it, any number of times).  Returns
 * NULL when libpq can be used, else why not: dlerror()'s text, naming the
 * library or the missing function.  A failure is final for the process.
 */
#ifdef LAZY_LIBPQ
const char *lazy_pq_load(void);
#else
static inline const char *lazy_pq_load(void)
{
	return NULL;
}
#endif

#ifdef LAZY_LIBPQ
/*
 * Every libpq function the program calls, and below the same names as
 * macros.  One missing from either is a build error (libpq is not linked;
 * a macro without its pointer names no member), so neither can drift from
 * the code.
 */
#define LAZY_PQ_FUNCTIONS(X)                                                                       \
	X(PQclear)                                                                                 \
	X(PQcmdTuples)                                                                             \
	X(PQconnectdbParams)                                                                       \
	X(PQconninfoFree)                                                                          \
	X(PQconninfoParse)                                                                         \
	X(PQconsumeInput)                                                                          \
	X(PQerrorMessage)                                                                          \
	X(PQexec)                                                                                  \
	X(PQexecParams)                                                                            \
	X(PQexecPrepared)                                                                          \
	X(PQfinish)                                                                                \
	X(PQfreemem)                                                                               \
	X(PQgetisnull)                                                                             \
	X(PQgetvalue)                                                                              \
	X(PQisBusy)                                                                                \
	X(PQlibVersion)                                                                            \
	X(PQnfields)                                                                               \
	X(PQntuples)                                                                               \
	X(PQprepare)                                                                               \
	X(PQreset)                                                                                 \
	X(PQresultErrorField)                                                                      \
	X(PQresultErrorMessage)                                                                    \
	X(PQresultStatus)                                                                          \
	X(PQsetNoticeReceiver)                                                                     \
	X(PQsocket)                                                                                \
	X(PQstatus)                                                                                \
	X(PQtransactionStatus)                                                                     \
	X(PQunescapeBytea)

#define LAZY_PQ_POINTER(f) __typeof__(&f) f;
struct lazy_pq {
	LAZY_PQ_FUNCTIONS(LAZY_PQ_POINTER)
};
#undef LAZY_PQ_POINTER
/* Filled by lazy_pq_load(); read only after it succeeded. */
extern struct lazy_pq lazy_pq;

/* lazylib.c itself names the functions, not the pointers. */
#ifndef LAZY_PQ_NO_REDIRECT
#define PQclear (lazy_pq.PQclear)
#define PQcmdTuples (lazy_pq.PQcmdTuples)
#define PQconnectdbParams (lazy_pq.PQconnectdbParams)
#define PQconninfoFree (lazy_pq.PQconninfoFree)
#define PQconninfoParse (lazy_pq.PQconninfoParse)
#define PQconsumeInput (lazy_pq.PQconsumeInput)
#define PQerrorMessage (lazy_pq.PQerrorMessage)
#define PQexec (lazy_pq.PQexec)
#define PQexecParams (lazy_pq.PQexecParams)
#define PQexecPrepared (lazy_pq.PQexecPrepared)
#define PQfinish (lazy_pq.PQfinish)
#define PQfreemem (lazy_pq.PQfreemem)
#define PQgetisnull (lazy_pq.PQgetisnull)
#define PQgetvalue (lazy_pq.PQgetvalue)
#define PQisBusy (lazy_pq.PQisBusy)
#define PQlibVersion (lazy_pq.PQlibVersion)
#define PQnfields (lazy_pq.PQnfields)
#define PQntuples (lazy_pq.PQntuples)
#define PQprepare (lazy_pq.PQprepare)
#define PQreset (lazy_pq.PQreset)
#define PQresultErrorField (lazy_pq.PQresultErrorField)
#define PQresultErrorMessage (lazy_pq.PQresultErrorMessage)
#define PQresultStatus (lazy_pq.PQresultStatus)
#define PQsetNoticeReceiver (lazy_pq.PQsetNoticeReceiver)
#define PQsocket (lazy_pq.PQsocket)
#define PQstatus (lazy_pq.PQstatus)
#define PQtransactionStatus (lazy_pq.PQtransactionStatus)
#define PQunescapeBytea (lazy_pq.PQunescapeBytea)
#endif
#endif /* LAZY_LIBPQ */

#endif
