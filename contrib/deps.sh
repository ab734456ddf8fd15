# Debian packages the build and the tests need, and a function that
# installs the missing ones (apt-get update once, then apt-get install -y);
# install_node for the action tests' npm verifier.  Sourced by demo.sh and
# test.sh.
BUILD_PACKAGES="gcc make autoconf automake pkg-config libfcgi-dev libcjson-dev libssl-dev libsqlite3-dev libpq-dev libcurl4-openssl-dev"
TEST_PACKAGES="sqlite3 postgresql curl faketime procps openssl python3 lighttpd apache2 libapache2-mod-fcgid nginx spawn-fcgi libfcgi-bin systemd valgrind clang strace"
DEMO_PACKAGES="sqlite3 curl lighttpd"
# The portable build (contrib/portable/build.sh): musl, apt-get source and
# dpkg-source, the tools its libraries' builds need, busybox for the
# empty-root test's /bin/sh, groff for the man pages as text.
PORTABLE_PACKAGES="musl-tools dpkg-dev patch perl tcl autoconf automake libtool file busybox-static groff-base binutils"
# bench/limits.sh (and bench/run.sh): load generator, the servers, adnanh/webhook.
BENCH_PACKAGES="wrk curl python3 sqlite3 lighttpd apache2 libapache2-mod-fcgid nginx webhook"

install_packages() {
	missing=
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	echo "installing:$missing"
	if [ "$(id -u)" -eq 0 ]; then sudo=; else sudo=sudo; fi
	# Packages such as apache2 and nginx start their system service when
	# installed; the tests start their own instances, so ask invoke-rc.d not
	# to (policy-rc.d exit 101), unless the machine already has a policy.
	policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null &&
			$sudo chmod 0755 /usr/sbin/policy-rc.d && policy=1
	fi
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
	status=$?
	[ -n "$policy" ] && $sudo rm -f /usr/sbin/policy-rc.d
	return $status
}

# node and npm, for the npm standardwebhooks package that the outbound
# action tests install and verify our signatures with (tests/actionlib.sh).
# NodeSource's nodejs package bundles npm and conflicts with Debian's npm
# package: Debian's nodejs and npm are installed only when there is no npm.
install_node() {
	command -v npm >/dev/null 2>&1 && return 0
	install_packages nodejs npm
}
