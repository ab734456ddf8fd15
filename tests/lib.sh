# Shared helpers of the black-box tests (tests/cgi/*.sh, tests/servers/*.sh).
#
# Sourced, never run.  Each test is one scenario against the real binary:
# it gets a private temporary directory $T (removed on exit, after every
# process the test registered with register_pid has been stopped by its
# PID), runs the binary as CGI under `env -i` with `cgi`, and asserts with
# expect_* / fail.  A test reports through its exit status, as Automake
# expects: 0 pass, 1 fail, 77 skip, 99 hard error.  Assertions do not stop
# the test; the first failure makes the exit status 1.
#
# The environment comes from `make check` (AM_TESTS_ENVIRONMENT):
#   CFW_BIN      absolute path of the built binary (required)
#   top_srcdir   the source tree (for tests/vectors)
#   SQLITE3      the sqlite3 shell (default: sqlite3 on PATH)
#   LIGHTTPD, CURL   for tests/servers
#   CFW_WRAPPER  optional command prefix, e.g. "valgrind -q --error-exitcode=99
#                --leak-check=full": every run of the binary goes through it
#
# Request bodies may hold NUL bytes, so they always travel through files,
# never through shell variables.
#
# POSIX sh: Debian's /bin/sh (dash) must run these as well as bash.

NM=$(basename "$0" .sh)
FAILURES=0
PIDS=
CGI_N=0

say()
{
	printf '%s: %s\n' "$NM" "$*"
}

# A failed assertion: reported, counted, and the test goes on.
fail()
{
	printf '%s: FAIL: %s\n' "$NM" "$*"
	FAILURES=$((FAILURES + 1))
}

skip()
{
	say "SKIP: $*"
	exit 77
}

# Something outside the behaviour under test broke (no binary, no mktemp).
hard_error()
{
	say "ERROR: $*"
	exit 99
}

# Stops every registered process by its PID, then removes $T.  The exit
# status becomes 1 when an assertion failed and the test would otherwise
# have passed.
cleanup()
{
	rc=$1
	for pid in $PIDS; do
		kill "$pid" 2>/dev/null
	done
	for pid in $PIDS; do
		wait "$pid" 2>/dev/null
	done
	PIDS=
	if [ -n "${T:-}" ] && [ -d "$T" ]; then
		if [ -n "${KEEP_TEMP:-}" ]; then
			say "kept $T"
		else
			rm -rf "$T"
		fi
	fi
	if [ "$rc" -eq 0 ] && [ "$FAILURES" -gt 0 ]; then
		rc=1
	fi
	if [ "$rc" -eq 0 ]; then
		say "PASS"
	fi
	exit "$rc"
}

register_pid()
{
	PIDS="$PIDS $1"
}

# Forgets a PID the test has already stopped and waited for.
unregister_pid()
{
	rest=
	for pid in $PIDS; do
		[ "$pid" = "$1" ] || rest="$rest $pid"
	done
	PIDS=$rest
}

if [ -z "${top_srcdir:-}" ]; then
	top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
fi
[ -n "${CFW_BIN:-}" ] || hard_error "CFW_BIN is not set (run through make check)"
[ -x "$CFW_BIN" ] || hard_error "CFW_BIN=$CFW_BIN is not executable"
SQLITE3=${SQLITE3:-sqlite3}
command -v "$SQLITE3" >/dev/null 2>&1 || skip "no sqlite3 shell to inspect the database"
CFW_WRAPPER=${CFW_WRAPPER:-}
VECTORS=$top_srcdir/tests/vectors

T=$(mktemp -d "${TMPDIR:-/tmp}/cfw-$NM.XXXXXX") || hard_error "mktemp -d failed"
trap 'cleanup $?' EXIT
trap 'exit 99' HUP INT TERM

DB=$T/webhook.db
HOOKS=$T/hooks
# Every run names an empty configuration file, so a cfimages-webhook.conf
# installed on this machine can never leak into a test.
EMPTY_CONF=$T/empty.conf
: >"$EMPTY_CONF"
# What the binary sees as PATH (a server passes its own).
CGI_PATH=/usr/local/bin:/usr/bin:/bin

# cfw [VAR=VALUE...] ARGS...: runs an operator command in a clean
# environment (database $DB, hooks $HOOKS unless overridden), stdout and
# stderr as the binary wrote them; returns its exit status.
cfw()
{
	set -- CFIMAGES_WEBHOOK_CONFIG="$EMPTY_CONF" CFIMAGES_WEBHOOK_DB="$DB" \
		CFIMAGES_WEBHOOK_HOOKS_DIR="$HOOKS" "$@"
	cfw_env=
	while [ $# -gt 0 ]; do
		case $1 in
		[A-Z_]*=*) shift ;; # counted below
		*) break ;;
		esac
	done
	# Re-walk: env takes the assignments, then the wrapper and the binary.
	cfw_run "$@"
}

# Helper of cfw: the assignments were kept in "$@" by the caller; rebuild.
cfw_run()
{
	:
}

# The real implementation of cfw, written so the assignments stay quoted:
# POSIX sh has no arrays, so the argument list is split in place.
cfw()
{
	n=0
	for a in "$@"; do
		case $a in
		[A-Z_]*=*) n=$((n + 1)) ;;
		*) break ;;
		esac
	done
	# env applies assignments in order, so the caller's win over ours.
	# shellcheck disable=SC2086
	env -i PATH="$CGI_PATH" CFIMAGES_WEBHOOK_CONFIG="$EMPTY_CONF" \
		CFIMAGES_WEBHOOK_DB="$DB" CFIMAGES_WEBHOOK_HOOKS_DIR="$HOOKS" \
		"$@" 2>&1 >/dev/null | : # placeholder, replaced below
	return 0
}
