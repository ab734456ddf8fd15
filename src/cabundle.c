/*
 * Finding the CA bundle (see cabundle.h).  The list is where the
 * distributions' ca-certificates packages write their bundle, the same
 * places Go's crypto/x509 searches on Linux.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cabundle.h"

/* Read in pieces of this size while looking for a certificate's first line. */
#define CA_SCAN_CHUNK_BYTES 4096
/* A bundle larger than this without a certificate is not a bundle. */
#define CA_SCAN_MAX_BYTES (16 * 1048576)

const char *const tls_ca_bundle_paths[] = {
	"/etc/ssl/certs/ca-certificates.crt",                /* Debian, Ubuntu, Gentoo, Arch */
	"/etc/pki/tls/certs/ca-bundle.crt",                  /* RHEL, CentOS, AlmaLinux, CloudLinux, Fedora */
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", /* RHEL 7 and later */
	"/etc/ssl/ca-bundle.pem",                            /* openSUSE, SLES */
	"/etc/pki/tls/cacert.pem",                           /* OpenELEC */
	"/etc/ssl/cert.pem",                                 /* Alpine */
	NULL,
};

const char *tls_ca_bundle(const struct config *cfg)
{
	if (cfg != NULL && cfg->ca_file != NULL)
		return cfg->ca_file;
	for (size_t i = 0; tls_ca_bundle_paths[i] != NULL; i++)
		if (access(tls_ca_bundle_paths[i], R_OK) == 0)
			return tls_ca_bundle_paths[i];
	return NULL;
}

bool tls_ca_bundle_usable(const char *path)
{
	static const char marker[] = "-----BEGIN CERTIFICATE-----";
	const size_t mlen = sizeof marker - 1;
	char buf[CA_SCAN_CHUNK_BYTES + sizeof marker];
	size_t have = 0, total = 0, n;
	bool found = false;
	FILE *f = fopen(path, "rb");

	if (f == NULL)
		return false;
	/* Each chunk is searched with the tail of the one before, so that a
	 * marker split between two reads is still seen. */
	while (!found && total < CA_SCAN_MAX_BYTES &&
	       (n = fread(buf + have, 1, CA_SCAN_CHUNK_BYTES, f)) > 0) {
		have += n;
		total += n;
		buf[have] = '\0';
		found = memmem(buf, have, marker, mlen) != NULL;
		if (have >= mlen) {
			memmove(buf, buf + have - (mlen - 1), mlen - 1);
			have = mlen - 1;
		}
	}
	if (!found && ferror(f) == 0)
		errno = EINVAL;
	else if (!found)
		errno = EIO;
	fclose(f);
	return found;
}
