/*
 * The PostgreSQL backend of the store (cfimages-webhook(8) DATABASE):
 * selected by a postgresql:// or postgres:// `db` setting.
 */
#include <stdio.h>

#include <libpq-fe.h>

#include "store_impl.h"

struct store *store_pg_open(const struct store_options *opts, char *err, size_t errlen)
{
	(void)opts;
	snprintf(err, errlen, "the PostgreSQL backend is not written yet");
	return NULL;
}
