/*
 * The CA bundle that TLS servers are verified against (cfimages-webhook.conf(5)
 * ca_file).  A static binary (the portable build) carries no distribution's
 * idea of where the system keeps its certificates, so it looks where each
 * family of distributions does.
 */
#ifndef CFW_CABUNDLE_H
#define CFW_CABUNDLE_H

#include <stdbool.h>

#include "config.h"

/* The PEM bundles of the usual Linux distributions, in the order tried; NULL-terminated. */
extern const char *const tls_ca_bundle_paths[];

/*
 * The CA bundle file to verify TLS servers with (for CURLOPT_CAINFO):
 * cfg->ca_file when set, readable or not (the TLS setup then fails naming
 * it, and `check` reports it: a configured file is never silently
 * replaced), else the first readable file of tls_ca_bundle_paths, else
 * NULL: no bundle is known, and a TLS connection must fail rather than go
 * unverified.  The string belongs to cfg or is static.
 */
const char *tls_ca_bundle(const struct config *cfg);

/*
 * True when path can be read and holds at least one PEM certificate
 * ("-----BEGIN CERTIFICATE-----"); otherwise false, with errno set (EINVAL
 * for a readable file without a certificate).
 */
bool tls_ca_bundle_usable(const char *path);

#endif
