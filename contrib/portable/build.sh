#!/bin/sh
# The portable build (cfimages-webhook(8) PORTABLE BUILD): one fully static
# x86_64 Linux executable for hosts we do not control, linked with musl
# (Debian's musl-tools) against libfcgi, cJSON, SQLite, OpenSSL and libcurl
# built here from their Debian 12 source packages (contrib/portable/versions
# pins them; `apt-get source` through a private deb-src list kept under the
# cache directory: the system's apt configuration is not touched).
#
#   contrib/portable/build.sh [--cache DIR] [--out DIR] [--srcdir DIR]
#
#   --cache DIR  downloads, unpacked sources and the installed static
#                libraries (DIR/musl); kept between runs, so a second run
#                rebuilds nothing (default: ./portable-cache)
#   --out DIR    where the program is configured (--enable-portable) and
#                built: DIR/cfimages-webhook (default: ./portable)
#   --srcdir DIR the source tree (default: the one holding this script);
#                its ./configure must exist (autoreconf -fi)
#
# Environment: JOBS (parallel make jobs, default 2); CFW_PORTABLE_STRICT=1
# fails when a pinned version has left the archive instead of building the
# newest one; CFW_PORTABLE_CONFIGURE_FLAGS are added to the program's
# ./configure (e.g. --enable-werror); CFW_PORTABLE_APT_SOURCES names a
# deb822 .sources file to use instead of the one derived from the system's.
# Prints the source package versions it used, and writes them to
# OUT/portable-versions.
set -eu

NM=portable
here=$(cd "$(dirname "$0")" && pwd)
srcdir=$(cd "$here/../.." && pwd)
cache=$PWD/portable-cache
out=$PWD/portable
while [ $# -gt 0 ]; do
	case $1 in
	--cache) cache=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--srcdir) srcdir=$2; shift 2 ;;
	*) echo "usage: $0 [--cache DIR] [--out DIR] [--srcdir DIR]" >&2; exit 2 ;;
	esac
done
mkdir -p "$cache" "$out"
cache=$(cd "$cache" && pwd)
out=$(cd "$out" && pwd)
srcdir=$(cd "$srcdir" && pwd)
JOBS=${JOBS:-2}
PREFIX=$cache/musl
CC=musl-gcc
# Hardening that works with musl (it has no _FORTIFY_SOURCE headers).
LIB_CFLAGS="-O2 -fstack-protector-strong -ffunction-sections -fdata-sections"
export LC_ALL=C

say() { printf '%s: %s\n' "$NM" "$*"; }
die() { printf '%s: error: %s\n' "$NM" "$*" >&2; exit 1; }

for tool in musl-gcc apt-get apt-cache dpkg-source dpkg patch perl tclsh autoreconf libtoolize make ar file; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "$tool not found: install the packages of contrib/deps.sh's PORTABLE_PACKAGES"
done
[ -x "$srcdir/configure" ] || die "$srcdir/configure is missing: run autoreconf -fi there first"

mkdir -p "$cache/logs" "$cache/dl" "$cache/src" "$cache/build" "$PREFIX/lib/pkgconfig" \
	"$PREFIX/include" "$PREFIX/stamps"

# run_logged NAME COMMAND...: output to logs/NAME.log; on failure its tail.
run_logged()
{
	rl_name=$1; shift
	if ! "$@" >>"$cache/logs/$rl_name.log" 2>&1; then
		tail -n 40 "$cache/logs/$rl_name.log" >&2
		die "$rl_name: '$*' failed (whole log: $cache/logs/$rl_name.log)"
	fi
}

# --- sources -------------------------------------------------------------

# apt with its own source list, package lists and archive cache under
# cache/apt: deb-src entries for the mirrors the system's deb entries name.
APT_OPTS="-o Dir::Etc::SourceList=$cache/apt/sources.list -o Dir::Etc::SourceParts=$cache/apt/parts
 -o Dir::State::Lists=$cache/apt/lists -o Dir::Cache=$cache/apt/cache -o APT::Sandbox::User=root
 -o Debug::NoLocking=1 -q"
apt_ready=

apt_setup()
{
	[ -n "$apt_ready" ] && return 0
	mkdir -p "$cache/apt/parts" "$cache/apt/lists/partial" "$cache/apt/cache/archives/partial"
	: >"$cache/apt/sources.list"
	if [ -n "${CFW_PORTABLE_APT_SOURCES:-}" ]; then
		cp "$CFW_PORTABLE_APT_SOURCES" "$cache/apt/parts/debian-src.sources"
	elif [ -f /etc/apt/sources.list.d/debian.sources ]; then
		sed 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
			>"$cache/apt/parts/debian-src.sources"
	elif [ -f /etc/apt/sources.list ] && grep -q '^deb .*debian' /etc/apt/sources.list; then
		rm -f "$cache/apt/parts/debian-src.sources"
		sed -n 's/^deb \(.*debian.*\)/deb-src \1/p' /etc/apt/sources.list >"$cache/apt/sources.list"
	else
		die "no Debian entry in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list (set CFW_PORTABLE_APT_SOURCES)"
	fi
	say "apt-get update (deb-src lists in $cache/apt)"
	# shellcheck disable=SC2086
	run_logged apt apt-get $APT_OPTS update
	apt_ready=1
}

# Versions of source package $1 in the archive, newest first.
archive_versions()
{
	# shellcheck disable=SC2086
	av_all=$(apt-cache $APT_OPTS showsrc "$1" 2>/dev/null | sed -n 's/^Version: //p' | sort -u)
	for v in $av_all; do
		n=0
		for w in $av_all; do
			dpkg --compare-versions "$w" gt "$v" && n=$((n + 1))
		done
		echo "$n $v"
	done | sort -n | cut -d' ' -f2
}

# download NAME VERSION: the source package into dl/; false when the
# archive no longer has that version.
download()
{
	apt_setup
	# shellcheck disable=SC2086
	(cd "$cache/dl" && apt-get $APT_OPTS source --download-only "$1=$2") \
		>>"$cache/logs/apt.log" 2>&1
}

# fetch NAME PINNED: sets $version to the version used and $tree to its
# unpacked source (Debian's patches applied), downloading and unpacking it
# once.
fetch()
{
	name=$1 pinned=$2
	version=$pinned
	[ -f "$cache/src/$name.used-for-$pinned" ] && version=$(cat "$cache/src/$name.used-for-$pinned")
	tree=$cache/src/$name-$version
	[ -f "$tree/.unpacked" ] && return 0
	if ! download "$name" "$pinned"; then
		[ -n "${CFW_PORTABLE_STRICT:-}" ] &&
			die "$name $pinned is no longer in the archive (CFW_PORTABLE_STRICT is set)"
		version=
		for v in $(archive_versions "$name"); do
			if download "$name" "$v"; then version=$v; break; fi
		done
		[ -n "$version" ] || die "no version of the source package $name can be downloaded (see $cache/logs/apt.log)"
		say "WARNING: $name $pinned (pinned in contrib/portable/versions) is no longer in the archive: building $name $version instead"
		echo "$version" >"$cache/src/$name.used-for-$pinned"
		tree=$cache/src/$name-$version
	fi
	rm -rf "$tree"
	run_logged "$name" dpkg-source -x "$cache/dl/${name}_${version#*:}.dsc" "$tree"
	touch "$tree/.unpacked"
}

# kernel headers for OpenSSL and curl: musl-gcc sees only musl's headers.
KHDR=$cache/kernel-headers
if [ ! -e "$KHDR/linux" ]; then
	mkdir -p "$KHDR"
	ln -sf /usr/include/linux "$KHDR/linux"
	ln -sf /usr/include/asm-generic "$KHDR/asm-generic"
	ln -sf "/usr/include/$(gcc -print-multiarch)/asm" "$KHDR/asm"
fi

# built NAME STAMP: true when NAME was installed with exactly this recipe.
built()
{
	[ -f "$PREFIX/stamps/$1" ] && [ "$(cat "$PREFIX/stamps/$1")" = "$2" ]
}

# fresh_copy NAME: a clean build tree of $tree at $b.
fresh_copy()
{
	b=$cache/build/$1
	rm -rf "$b"
	cp -a "$tree" "$b"
}

# --- the libraries -------------------------------------------------------

build_libfcgi()
{
	stamp="$version $CC $LIB_CFLAGS fcgiapp,os_unix,fcgi_stdio"
	built libfcgi "$stamp" && return 0
	say "building libfcgi $version"
	fresh_copy libfcgi
	# What libfcgi's configure finds on Linux (only these are consulted).
	cat >"$b/include/fcgi_config.h" <<-'EOF'
	#define HAVE_ARPA_INET_H 1
	#define HAVE_FPOS 1
	#define HAVE_INTTYPES_H 1
	#define HAVE_LIMITS_H 1
	#define HAVE_MEMORY_H 1
	#define HAVE_NETDB_H 1
	#define HAVE_NETINET_IN_H 1
	#define HAVE_PTHREAD 1
	#define HAVE_SOCKLEN 1
	#define HAVE_STDINT_H 1
	#define HAVE_STDLIB_H 1
	#define HAVE_STRERROR 1
	#define HAVE_STRINGS_H 1
	#define HAVE_STRING_H 1
	#define HAVE_SYS_PARAM_H 1
	#define HAVE_SYS_SOCKET_H 1
	#define HAVE_SYS_STAT_H 1
	#define HAVE_SYS_TIME_H 1
	#define HAVE_SYS_TYPES_H 1
	#define HAVE_UNISTD_H 1
	EOF
	for f in fcgiapp os_unix fcgi_stdio; do
		# shellcheck disable=SC2086
		run_logged libfcgi $CC $LIB_CFLAGS -I"$b/include" -c "$b/libfcgi/$f.c" -o "$b/libfcgi/$f.o"
	done
	rm -f "$PREFIX/lib/libfcgi.a"
	run_logged libfcgi ar rcs "$PREFIX/lib/libfcgi.a" "$b/libfcgi/fcgiapp.o" "$b/libfcgi/os_unix.o" \
		"$b/libfcgi/fcgi_stdio.o"
	for h in fastcgi.h fcgi_config.h fcgi_stdio.h fcgiapp.h fcgimisc.h fcgios.h; do
		cp "$b/include/$h" "$PREFIX/include/"
	done
	cat >"$PREFIX/lib/pkgconfig/fcgi.pc" <<-EOF
	prefix=$PREFIX
	libdir=\${prefix}/lib
	includedir=\${prefix}/include

	Name: fcgi
	Description: FastCGI Developer's Kit (static, musl; Debian $version)
	Version: ${version%%-*}
	Libs: -L\${libdir} -lfcgi
	Cflags: -I\${includedir}
	EOF
	echo "$stamp" >"$PREFIX/stamps/libfcgi"
}

build_cjson()
{
	stamp="$version $CC $LIB_CFLAGS"
	built cjson "$stamp" && return 0
	say "building cJSON $version"
	fresh_copy cjson
	# shellcheck disable=SC2086
	run_logged cjson $CC $LIB_CFLAGS -std=c89 -c "$b/cJSON.c" -o "$b/cJSON.o"
	rm -f "$PREFIX/lib/libcjson.a"
	run_logged cjson ar rcs "$PREFIX/lib/libcjson.a" "$b/cJSON.o"
	mkdir -p "$PREFIX/include/cjson"
	cp "$b/cJSON.h" "$PREFIX/include/cjson/"
	cat >"$PREFIX/lib/pkgconfig/libcjson.pc" <<-EOF
	prefix=$PREFIX
	libdir=\${prefix}/lib
	includedir=\${prefix}/include

	Name: libcjson
	Description: Ultralightweight JSON parser in ANSI C (static, musl; Debian $version)
	Version: ${version%%-*}
	Libs: -L\${libdir} -lcjson
	Cflags: -I\${includedir} -I\${includedir}/cjson
	EOF
	echo "$stamp" >"$PREFIX/stamps/cjson"
}

# SQLite: threads (the FastCGI loop answers in several), no extension
# loading (nothing to dlopen in a static binary), no shared cache, no
# memory statistics (a mutex per allocation for nothing).  JSON and
# RETURNING are built in since 3.38 / 3.35.
SQLITE_OPTIONS="-DSQLITE_THREADSAFE=1 -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_OMIT_SHARED_CACHE
 -DSQLITE_DEFAULT_MEMSTATUS=0 -DSQLITE_LIKE_DOESNT_MATCH_BLOBS"

build_sqlite3()
{
	stamp="$version $CC $LIB_CFLAGS $SQLITE_OPTIONS"
	built sqlite3 "$stamp" && return 0
	say "building SQLite $version"
	fresh_copy sqlite3
	# configure with musl-gcc, so that HAVE_USLEEP, HAVE_FDATASYNC, ... are
	# what musl has (without usleep, a busy database sleeps whole seconds).
	# shellcheck disable=SC2086
	(cd "$b" && run_logged sqlite3 ./configure --prefix="$PREFIX" --disable-shared --enable-static \
		--disable-tcl --disable-readline --disable-editline --disable-load-extension \
		--enable-threadsafe --disable-math CC="$CC" BUILD_CC=gcc \
		CFLAGS="$LIB_CFLAGS $(echo $SQLITE_OPTIONS)" &&
		run_logged sqlite3 make -j"$JOBS" libsqlite3.la)
	cp "$b/.libs/libsqlite3.a" "$PREFIX/lib/"
	cp "$b/sqlite3.h" "$b/sqlite3ext.h" "$PREFIX/include/"
	sqlite_version=$(sed -n 's/^#define SQLITE_VERSION  *"\(.*\)"/\1/p' "$b/sqlite3.h")
	cat >"$PREFIX/lib/pkgconfig/sqlite3.pc" <<-EOF
	prefix=$PREFIX
	libdir=\${prefix}/lib
	includedir=\${prefix}/include

	Name: SQLite
	Description: SQL database engine (static, musl; Debian $version)
	Version: $sqlite_version
	Libs: -L\${libdir} -lsqlite3
	Libs.private: -lm -pthread
	Cflags: -I\${includedir}
	EOF
	echo "$stamp" >"$PREFIX/stamps/sqlite3"
}

# OpenSSL: static libraries only, no loadable modules or engines, and none
# of the protocols and algorithms neither we (HMAC-SHA256, SHA-256, random
# bytes) nor libcurl's HTTPS use.  Its configuration directory is Debian's
# /etc/ssl (openssl.cnf there is read if the host has one; the CA bundle
# is found by tls_ca_bundle(), see cfimages-webhook.conf(5) ca_file).
OPENSSL_OPTIONS="no-shared no-module no-dso no-engine no-afalgeng no-async no-comp no-tests
 no-legacy no-ssl3 no-dtls no-srp no-psk no-gost no-idea no-mdc2 no-rc5 no-seed no-whirlpool
 no-sm2 no-sm3 no-sm4 no-ts no-srtp no-nextprotoneg no-ui-console no-cms no-ktls"

build_openssl()
{
	stamp="$version $CC $LIB_CFLAGS $OPENSSL_OPTIONS"
	built openssl "$stamp" && return 0
	say "building OpenSSL $version (the longest step: a few minutes)"
	fresh_copy openssl
	# shellcheck disable=SC2086
	(cd "$b" && run_logged openssl ./Configure linux-x86_64 --prefix="$PREFIX" --libdir=lib \
		--openssldir=/etc/ssl $(echo $OPENSSL_OPTIONS) $LIB_CFLAGS "-idirafter$KHDR" CC="$CC" &&
		run_logged openssl make -j"$JOBS" build_libs &&
		run_logged openssl make install_dev)
	rm -f "$PREFIX"/lib/libcrypto.so* "$PREFIX"/lib/libssl.so*
	echo "$stamp" >"$PREFIX/stamps/openssl"
}

# libcurl: HTTP and HTTPS (OpenSSL) only; no other protocol, no IDN, PSL,
# HTTP/2 or compression libraries, no built-in CA path (the caller sets
# CURLOPT_CAINFO from tls_ca_bundle(); OpenSSL's defaults as a fallback).
CURL_OPTIONS="--disable-shared --enable-static --with-openssl --without-ca-bundle --without-ca-path
 --with-ca-fallback --disable-ftp --disable-file --disable-ldap --disable-ldaps --disable-rtsp
 --disable-dict --disable-telnet --disable-tftp --disable-pop3 --disable-imap --disable-smb
 --disable-smtp --disable-gopher --disable-mqtt --disable-manual --disable-ntlm --disable-ntlm-wb
 --disable-kerberos-auth --disable-negotiate-auth --disable-aws --disable-netrc --disable-unix-sockets
 --disable-alt-svc --disable-hsts --disable-cookies --without-zlib --without-brotli --without-zstd
 --without-libpsl --without-libidn2 --without-nghttp2 --without-nghttp3 --without-ngtcp2 --without-quiche
 --without-librtmp --without-libssh2 --without-libssh --without-libgsasl --without-gssapi"

build_curl()
{
	stamp="$version $CC $LIB_CFLAGS $CURL_OPTIONS $(cat "$PREFIX/stamps/openssl")"
	built curl "$stamp" && return 0
	say "building libcurl $version"
	fresh_copy curl
	# Debian's last two patches make the GnuTLS and NSS flavours (its rules
	# pop them for the OpenSSL one): take them back out, as it does.
	for p in 99_nss.patch 90_gnutls.patch; do
		run_logged curl patch -d "$b" -R -p1 -s -i "$b/debian/patches/$p"
	done
	# shellcheck disable=SC2086
	(cd "$b" && run_logged curl autoreconf -fi &&
		run_logged curl ./configure --prefix="$PREFIX" $(echo $CURL_OPTIONS) CC="$CC" \
			CFLAGS="$LIB_CFLAGS" CPPFLAGS="-idirafter$KHDR" \
			PKG_CONFIG_LIBDIR="$PREFIX/lib/pkgconfig" PKG_CONFIG_PATH= &&
		run_logged curl make -j"$JOBS" -C lib &&
		run_logged curl make -C lib install &&
		run_logged curl make -C include install &&
		run_logged curl make install-pkgconfigDATA)
	rm -f "$PREFIX"/lib/libcurl.la
	echo "$stamp" >"$PREFIX/stamps/curl"
}

# --- the program ---------------------------------------------------------

: >"$out/portable-versions.new"
while read -r name pinned; do
	case $name in '' | '#'*) continue ;; esac
	fetch "$name" "$pinned"
	"build_$name"
	echo "$name $version" >>"$out/portable-versions.new"
done <"$here/versions"
mv "$out/portable-versions.new" "$out/portable-versions"

# The program is linked as a static PIE: rcrt1.o relocates it at its start,
# so the kernel can load it at a random address (ASLR), as Debian builds
# its own programs, instead of the fixed address of musl-gcc's static
# executables.  musl-gcc's specs cannot link one, so ours are derived
# from them: musl's self-relocating start file, and every link
# (configure's test programs too) a static PIE with no text relocations
# (-z text fails the link should an object not be position-independent;
# Debian's gcc compiles PIE by default).  The compiler is the wrapper's,
# REALGCC included, as for the libraries.
musl_specs=$(sed -n 's/.*-specs "\([^"]*\)".*/\1/p' "$(command -v musl-gcc)")
musl_gcc=$(sed -n 's/^exec "${REALGCC:-\([^}]*\)}".*/\1/p' "$(command -v musl-gcc)")
musl_gcc=${REALGCC:-$musl_gcc}
[ -f "$musl_specs" ] && [ -n "$musl_gcc" ] ||
	die "cannot read the specs file and compiler of $(command -v musl-gcc)"
crt_dir=$(dirname "$musl_specs")
[ -f "$crt_dir/rcrt1.o" ] || die "no $crt_dir/rcrt1.o (musl's start file of a static PIE)"
sed -e "s|$crt_dir/Scrt1.o|$crt_dir/rcrt1.o|" \
	-e 's|^-dynamic-linker [^ ]* -nostdlib %{shared:-shared} %{static:-static}|-nostdlib -static -pie --no-dynamic-linker -z text|' \
	"$musl_specs" >"$PREFIX/musl-static-pie.specs"
grep -q 'rcrt1.o' "$PREFIX/musl-static-pie.specs" &&
	grep -q -- '--no-dynamic-linker' "$PREFIX/musl-static-pie.specs" ||
	die "$musl_specs is not as expected: cannot derive a static-PIE link from it"
PIE_CC="$musl_gcc -specs $PREFIX/musl-static-pie.specs"

conf_stamp="$PIE_CC $(cat "$PREFIX"/stamps/*) ${CFW_PORTABLE_CONFIGURE_FLAGS:-} $(cksum <"$srcdir/configure")"
if [ ! -f "$out/config.status" ] || [ "$(cat "$out/.portable-configured" 2>/dev/null)" != "$conf_stamp" ]; then
	say "configuring the program in $out"
	# shellcheck disable=SC2086
	(cd "$out" && run_logged program "$srcdir/configure" -q --enable-portable --without-postgresql \
		--with-curl ${CFW_PORTABLE_CONFIGURE_FLAGS:-} CC="$PIE_CC" \
		CFLAGS="-O2 -fstack-protector-strong -fPIE" \
		PKG_CONFIG_LIBDIR="$PREFIX/lib/pkgconfig" PKG_CONFIG_PATH=)
	# make alone would keep objects and a binary built with the compiler,
	# flags or libraries of the configuration before (the link does not
	# depend on them): an older library would stay inside while
	# portable-versions names the new one.
	(cd "$out" && run_logged program make -s clean)
	echo "$conf_stamp" >"$out/.portable-configured"
fi
(cd "$out" && run_logged program make -s -j"$JOBS" cfimages-webhook)

bin=$out/cfimages-webhook
file "$bin" | grep -q 'static-pie linked' || die "$bin is not a static PIE: $(file "$bin")"
say "source packages (Debian 12):"
sed 's/^/  /' "$out/portable-versions"
say "built $bin ($(wc -c <"$bin") bytes): $("$bin" --version)"
