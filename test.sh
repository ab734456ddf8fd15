#!/bin/sh
# Installs what is missing (Debian 12), builds with warnings as errors, and
# runs the whole test suite: unit, CGI and real-server tests and a fuzz smoke
# run, the CGI tests again with PostgreSQL as the store, then the unit, CGI
# and real-server tests again under AddressSanitizer +
# UndefinedBehaviorSanitizer and under valgrind (`make check-valgrind`: the
# FastCGI server tests, not PostgreSQL's own nor the durability = normal
# variants), the portable build (static,
# musl, from Debian's source packages) with the CGI tests and its own, and
# finally `make distcheck`.
#   ./test.sh            everything
#   QUICK=1 ./test.sh    one plain build, `make check` and `make check-postgresql` only
set -eu
cd "$(dirname "$0")"
. ./contrib/deps.sh
portable_packages=$PORTABLE_PACKAGES
[ -n "${QUICK:-}" ] && portable_packages=
install_packages $BUILD_PACKAGES $TEST_PACKAGES $portable_packages
install_node

[ -x configure ] || autoreconf -fi
JOBS=$(nproc 2>/dev/null || echo 2)

echo "== build and make check"
mkdir -p build/plain
(cd build/plain && ../../configure --enable-werror -q && make -s -j"$JOBS" && make -s -j"$JOBS" check) || {
	cat build/plain/test-suite.log 2>/dev/null; exit 1; }

echo "== the CGI tests again with PostgreSQL as the store"
(cd build/plain && CFW_REQUIRE_POSTGRESQL=1 make -s -j"$JOBS" check-postgresql) || {
	cat build/plain/test-suite-postgresql.log 2>/dev/null; exit 1; }
[ -n "${QUICK:-}" ] && exit 0

echo "== unit, CGI and server tests under ASan + UBSan"
mkdir -p build/sanitizers
(cd build/sanitizers && ../../configure --enable-werror --enable-sanitizers CC=gcc -q &&
	make -s -j"$JOBS" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 make -s -j"$JOBS" check FUZZ_TESTS=) || {
	cat build/sanitizers/test-suite.log 2>/dev/null; exit 1; }

echo "== unit, CGI and FastCGI server tests under valgrind"
(cd build/plain && make -s -j"$JOBS" check-valgrind) || {
	cat build/plain/test-suite-valgrind.log 2>/dev/null; exit 1; }

echo "== the portable build (static, musl; sources cached in build/portable-cache) and its tests"
(cd build/plain && CFW_PORTABLE_CONFIGURE_FLAGS=--enable-werror JOBS=$JOBS \
	make -s -j"$JOBS" check-portable PORTABLE_CACHE="$PWD/../portable-cache") || {
	cat build/plain/test-suite-portable.log 2>/dev/null; exit 1; }

echo "== make distcheck"
(cd build/plain && make -s -j"$JOBS" distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror) || {
	cat build/plain/cfimages-webhook-*/_build/sub/test-suite.log 2>/dev/null; exit 1; }
echo "all tests passed"
