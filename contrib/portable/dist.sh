#!/bin/sh
# `make portable-dist`: the shared-hosting tarball of the portable build,
#   cfimages-webhook-VERSION-linux-x86_64.tar.gz
# holding, in a directory of the same name: webhook.fcgi (the static
# binary, stripped), a commented cfimages-webhook.conf, htaccess-fcgid and
# htaccess-cgi (one of them becomes .htaccess), the sample hooks, the man
# pages as text, INSTALL, SOURCES (the Debian source packages built in),
# COPYING and SHA256SUMS; and beside the tarball its .sha256.
#
#   contrib/portable/dist.sh --srcdir DIR --bin FILE --versions FILE --tarball FILE --version V
#
# The archive is reproducible: sorted names, owner root, one fixed date
# (SOURCE_DATE_EPOCH, else the date of the last commit, else 0).
set -eu

while [ $# -gt 0 ]; do
	case $1 in
	--srcdir) srcdir=$2; shift 2 ;;
	--bin) bin=$2; shift 2 ;;
	--versions) versions=$2; shift 2 ;;
	--tarball) tarball=$2; shift 2 ;;
	--version) version=$2; shift 2 ;;
	*) echo "usage: $0 --srcdir DIR --bin FILE --versions FILE --tarball FILE --version V" >&2; exit 2 ;;
	esac
done
: "${srcdir:?} ${bin:?} ${versions:?} ${tarball:?} ${version:?}"
export LC_ALL=C
name=$(basename "$tarball" .tar.gz)
work=$(dirname "$tarball")/portable-dist.tmp
rm -rf "$work"
d=$work/$name
mkdir -p "$d/hooks" "$d/man"
here=$srcdir/contrib/portable

install -m 0755 "$bin" "$d/webhook.fcgi"
strip --strip-all "$d/webhook.fcgi"
install -m 0600 "$here/cfimages-webhook.conf" "$d/cfimages-webhook.conf"
install -m 0644 "$here/htaccess-fcgid" "$d/htaccess-fcgid"
install -m 0644 "$here/htaccess-cgi" "$d/htaccess-cgi"
# Scripts executable; samples of .webhook actions (and anything else in a
# STATUS.d directory) as they are, read-only to others.
for h in "$srcdir"/contrib/hooks/*; do
	if [ -d "$h" ]; then
		mkdir -p "$d/hooks/$(basename "$h")"
		for f in "$h"/*; do
			install -m 0644 "$f" "$d/hooks/$(basename "$h")/$(basename "$f")"
		done
	else
		install -m 0755 "$h" "$d/hooks/$(basename "$h")"
	fi
done
for m in "$srcdir"/man/*.[0-9]; do
	groff -t -man -Tascii -P-cbou "$m" >"$d/man/$(basename "$m").txt" 2>/dev/null
done
sed -e "s/@VERSION@/$version/g" -e "s/@TARBALL@/$name.tar.gz/g" "$here/INSTALL" >"$d/INSTALL"
chmod 0644 "$d/INSTALL"
{
	echo "cfimages-webhook $version, portable build (static, musl)."
	echo "Built from these Debian 12 source packages (apt-get source NAME=VERSION):"
	sed 's/^/  /' "$versions"
	echo "and musl $(dpkg-query -W -f='${Version}' musl-dev 2>/dev/null || echo '(unknown)') (Debian's musl-dev)."
	echo "Their licences: libfcgi (Open Market licence), cJSON (MIT), SQLite (public"
	echo "domain), OpenSSL (Apache 2.0), curl (curl licence, MIT-like), musl (MIT);"
	echo "the full texts are in each source package's debian/copyright."
	echo
	"$bin" --version
} >"$d/SOURCES"
install -m 0644 "$srcdir/COPYING" "$d/COPYING"
(cd "$d" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | sort | xargs sha256sum >SHA256SUMS)

epoch=${SOURCE_DATE_EPOCH:-$(git -C "$srcdir" log -1 --format=%ct 2>/dev/null || echo 0)}
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
	-C "$work" -cf - "$name" | gzip -9n >"$tarball"
(cd "$(dirname "$tarball")" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
rm -rf "$work"
echo "portable-dist: $tarball ($(wc -c <"$tarball") bytes; webhook.fcgi $(tar -xzOf "$tarball" "$name/webhook.fcgi" | wc -c) bytes stripped)"
