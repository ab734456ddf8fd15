#!/bin/sh
# The PostgreSQL pass of the black-box tests: one private PostgreSQL
# cluster for the whole pass (tests/pglib.sh), and COMMAND run with
# CFW_TEST_PG_SOCKDIR, CFW_TEST_PG_PORT, CFW_TEST_PG_USER and
# CFW_TEST_PG_BINDIR in its environment, which make tests/lib.sh put each
# test's database in that cluster (a database of its own, dropped when the
# test ends) instead of an SQLite file.  The cluster is stopped by its PID
# when COMMAND ends; the exit status is COMMAND's.
#
#   tests/run-postgresql-suite.sh make check TESTS="$(CGI_TESTS)"
#
# (`make check-postgresql` runs it so.)  Without PostgreSQL's server
# binaries it says so and exits 77 (make check-postgresql turns that into
# a loud SKIP), or 1 when CFW_REQUIRE_POSTGRESQL is set (CI, where
# contrib/deps.sh installed them).
#
#   PG_BINDIR   where initdb, pg_ctl, postgres, psql are (default: the
#               newest /usr/lib/postgresql/*/bin)
set -u

NM=run-postgresql-suite
PIDS=
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}

[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }

# What tests/pglib.sh needs of tests/lib.sh: say, skip, hard_error,
# register_pid, unregister_pid, $T, and a cleanup that stops the
# registered processes by their PIDs and removes $T.
say()
{
	printf '%s: %s\n' "$NM" "$*"
}

skip()
{
	if [ -n "${CFW_REQUIRE_POSTGRESQL:-}" ]; then
		say "ERROR: the PostgreSQL pass cannot run (CFW_REQUIRE_POSTGRESQL is set): $*"
		exit 1
	fi
	say "SKIP: the PostgreSQL pass did not run: $*"
	exit 77
}

hard_error()
{
	say "ERROR: $*"
	exit 99
}

register_pid()
{
	PIDS="$PIDS $1"
}

unregister_pid()
{
	up_rest=
	for pid in $PIDS; do
		[ "$pid" = "$1" ] || up_rest="$up_rest $pid"
	done
	PIDS=$up_rest
}

cleanup()
{
	rc=$1
	trap - EXIT
	pg_stop
	for pid in $PIDS; do
		kill "$pid" 2>/dev/null
	done
	if [ -n "${T:-}" ] && [ -d "$T" ]; then
		if [ -n "${KEEP_TEMP:-}" ]; then
			say "kept $T"
		else
			rm -rf "$T"
		fi
	fi
	exit "$rc"
}

# shellcheck source=tests/pglib.sh
. "$top_srcdir/tests/pglib.sh"

# Checked before anything is created, so that a skip leaves nothing behind.
{ pg_find_bindir && [ -x "$PG_BINDIR/initdb" ] && [ -x "$PG_BINDIR/postgres" ]; } ||
	skip "PostgreSQL server binaries not found${PG_BINDIR:+ in $PG_BINDIR} (install the Debian package postgresql; contrib/deps.sh does)"
[ -x "$PG_BINDIR/psql" ] || skip "no psql in $PG_BINDIR (install postgresql-client)"

T=$(mktemp -d "${TMPDIR:-/tmp}/cfw-pgsuite.XXXXXX") || hard_error "mktemp -d failed"
trap 'cleanup $?' EXIT
trap 'exit 99' HUP INT TERM

started=$(date +%s)
pg_start
say "PostgreSQL $("$PG_BINDIR/postgres" --version | sed 's/.* //') running (PID $PG_PID, socket $PG_SOCKDIR, port $PG_PORT)"

CFW_TEST_PG_SOCKDIR=$PG_SOCKDIR
CFW_TEST_PG_PORT=$PG_PORT
CFW_TEST_PG_USER=cfw
CFW_TEST_PG_BINDIR=$PG_BINDIR
export CFW_TEST_PG_SOCKDIR CFW_TEST_PG_PORT CFW_TEST_PG_USER CFW_TEST_PG_BINDIR

"$@"
rc=$?
say "the PostgreSQL pass took $(($(date +%s) - started)) s (exit status $rc)"
exit "$rc"
