#!/bin/sh
# README, Build and install (lazy libraries): a dynamic build loads libpq
# and libcurl with dlopen() when first used.  The loader's own trace
# (LD_DEBUG=files, one file per process) says what each process mapped:
#   - a CGI delivery, and the detached hook runner it starts for a script,
#     map neither on an SQLite database; on a postgresql:// one (the
#     PostgreSQL pass) libpq is loaded through dlopen, never at start, and
#     libcurl still not;
#   - --version loads both, through dlopen (and names their versions).
# A library that cannot be loaded (an empty file under its soname first in
# LD_LIBRARY_PATH) is said so: a postgresql:// database makes init fail,
# check report a problem and a delivery answer 500, each naming libpq;
# --version says 'libpq: cannot be loaded (...)'.  Without libcurl, check
# reports the action, and the action's attempt fails with the reason in
# the run's output and stays queued for a retry; with libcurl back, the
# next attempt makes the call.
# Skipped for a binary that links them (configure --disable-lazy-libs, the
# portable build) or has neither.
#
# Mutations this catches: store_open loading libpq for an SQLite database
# too (the delivery maps it); store_pg_open not stopping when libpq fails
# to load (a call through a NULL pointer: no 500, no message); the action
# given up, or called, without libcurl.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

ldd_out=$(ldd "$CFW_BIN" 2>&1) ||
	skip "$CFW_BIN is not a dynamic executable: it links what it uses (the portable build)"
version=$(run_binary 0 --version 2>&1)
LAZY_PQ=
LAZY_CURL=
case $version in
*"libpq: not built in"*) ;;
*) printf '%s\n' "$ldd_out" | grep -q 'libpq\.so' || LAZY_PQ=yes ;;
esac
case $version in
*"libcurl: not built in"*) ;;
*) printf '%s\n' "$ldd_out" | grep -q 'libcurl[-.a-z]*\.so' || LAZY_CURL=yes ;;
esac
[ -n "$LAZY_PQ$LAZY_CURL" ] ||
	skip "libpq and libcurl are linked or not built in (configure --disable-lazy-libs)"

mkdir -p "$T/ld" "$HOOKS"
chmod 755 "$HOOKS"

# With these two assignments the loader writes what the process (and each
# child that keeps the environment) maps into $T/ld/NAME.PID.
TRACE=LD_DEBUG=files
# traced LIB NAME: the trace lines of runs NAME where LIB (a regex for the
# file name, e.g. 'libpq\.so') was mapped.
traced()
{
	cat "$T/ld/$2".* 2>/dev/null | grep -E "file=[^ ]*$1[^ ]* \[[0-9]+\];"
}

# dlopened PATTERN NAME: the file matching PATTERN that the processes of
# trace NAME loaded through dlopen() (empty: none).
dlopened()
{
	traced "$1" "$2" | sed -n 's/.*file=\([^ ]*\) \[[0-9]*\];  dynamically loaded by.*/\1/p' | head -1
}

# --- --version loads both, through dlopen ---
run_binary 2 "$TRACE" LD_DEBUG_OUTPUT="$T/ld/version" --version >"$T/version.out" 2>&1
expect_eq "$?" 0 "--version exits 0"
traced 'libsqlite3\.so' version | grep -q 'needed by' ||
	skip "the loader writes no LD_DEBUG trace (not glibc's?): $(cat "$T/ld/version".* 2>/dev/null | head -5)"
PQ_SONAME=
CURL_SONAME=
if [ -n "$LAZY_PQ" ]; then
	traced 'libpq\.so' version | grep 'needed by' && fail "--version: libpq is linked"
	PQ_SONAME=$(dlopened 'libpq\.so' version)
	[ -n "$PQ_SONAME" ] || fail "--version did not load libpq: $(cat "$T/version.out")"
	grep -q -E 'libpq [0-9]+\.[0-9]+,' "$T/version.out" ||
		fail "--version does not name libpq's version: $(cat "$T/version.out")"
fi
if [ -n "$LAZY_CURL" ]; then
	traced 'libcurl' version | grep 'needed by' && fail "--version: libcurl is linked"
	CURL_SONAME=$(dlopened 'libcurl[-.a-z]*\.so' version)
	[ -n "$CURL_SONAME" ] || fail "--version did not load libcurl: $(cat "$T/version.out")"
	grep -q -E 'libcurl [0-9]+\.[0-9]+' "$T/version.out" ||
		fail "--version does not name libcurl's version: $(cat "$T/version.out")"
fi

# --- a delivery and its hook runner map neither (libpq on PostgreSQL) ---
ID=img-lazy
init_db "$ID"
hook_script "$HOOKS/uploaded" 'exit 0'
write_file "$T/deliver.json" "{\"id\":\"$ID\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}"
cgi POST "$T/deliver.json" "$TRACE" LD_DEBUG_OUTPUT="$T/ld/cgi"
expect_answer 200 OK
wait_until 30 sql_is "SELECT state FROM hook_runs WHERE image_id = '$ID' AND hook = 'uploaded'" done ||
	fail "the hook did not run: $(sql "SELECT state, output FROM hook_runs")"
wait_hook_runners
traced 'libsqlite3\.so' cgi | grep -q 'needed by' || fail "no trace of the delivery"
# The request and the runner, which is the same program (a shell runs the hook).
expect_eq "$(traced 'libsqlite3\.so' cgi | grep 'needed by' | sed 's/:.*//' | sort -u | wc -l | tr -d ' ')" \
	2 "processes traced (the request and its hook runner)"
traced libcurl cgi && fail "a delivery and its hook runner mapped libcurl"
if [ "$BACKEND" = postgresql ]; then
	if [ -n "$LAZY_PQ" ]; then
		traced 'libpq\.so' cgi | grep -q 'dynamically loaded by' ||
			fail "a delivery on PostgreSQL did not load libpq"
		traced 'libpq\.so' cgi | grep 'needed by' && fail "libpq mapped at start"
	fi
else
	traced 'libpq\.so' cgi && fail "a delivery on SQLite and its hook runner mapped libpq"
fi

# --- a libpq that cannot be loaded ---
case $PQ_SONAME in
'') ;;
*/*) say "libpq is loaded by its path $PQ_SONAME (LIBPQ_SONAME): no failure to provoke" ;;
*)
	mkdir -p "$T/broken-pq"
	: >"$T/broken-pq/$PQ_SONAME"
	NOPQ=LD_LIBRARY_PATH=$T/broken-pq
	PGURI="postgresql:///cfw_lazy?host=$T/no-server"
	run_binary 1 "$NOPQ" --version >"$T/nopq-version.out" 2>&1
	grep -q -F "libpq: cannot be loaded ($T/broken-pq/$PQ_SONAME: " "$T/nopq-version.out" ||
		fail "--version without libpq: $(cat "$T/nopq-version.out")"
	grep -q -E '^cfimages-webhook [0-9].*SQLite 3\..*; build: ' "$T/nopq-version.out" ||
		fail "--version without libpq is not one line in its form: $(cat "$T/nopq-version.out")"
	cfw "$NOPQ" CFIMAGES_WEBHOOK_DB="$PGURI" init >"$T/nopq-init.out" 2>&1
	expect_eq "$?" 1 "init without libpq"
	grep -q -F "PostgreSQL support needs libpq, which cannot be loaded: $T/broken-pq/$PQ_SONAME" \
		"$T/nopq-init.out" || fail "init without libpq: $(cat "$T/nopq-init.out")"
	cfw "$NOPQ" CFIMAGES_WEBHOOK_DB="$PGURI" check >"$T/nopq-check.out" 2>&1
	expect_eq "$?" 1 "check without libpq"
	grep -q -F "problem: database: PostgreSQL support needs libpq, which cannot be loaded" \
		"$T/nopq-check.out" || fail "check without libpq: $(cat "$T/nopq-check.out")"
	cgi POST "$T/deliver.json" "$NOPQ" CFIMAGES_WEBHOOK_DB="$PGURI"
	expect_answer 500 "Internal server error"
	grep -q -F "PostgreSQL support needs libpq, which cannot be loaded" "$CGI_ERR" ||
		fail "the 500 without libpq is not explained in the log: $(cat "$CGI_ERR")"
	;;
esac

# --- a libcurl that cannot be loaded ---
case $CURL_SONAME in
'') ;;
*/*) say "libcurl is loaded by its path $CURL_SONAME (LIBCURL_SONAME): no failure to provoke" ;;
*)
	mkdir -p "$T/broken-curl"
	: >"$T/broken-curl/$CURL_SONAME"
	NOCURL=LD_LIBRARY_PATH=$T/broken-curl
	run_binary 1 "$NOCURL" --version >"$T/nocurl-version.out" 2>&1
	grep -q -F "libcurl: cannot be loaded ($T/broken-curl/$CURL_SONAME: " "$T/nocurl-version.out" ||
		fail "--version without libcurl: $(cat "$T/nocurl-version.out")"
	ID2=img-lazy-action
	cfw register "$ID2" >/dev/null || hard_error "register $ID2 failed"
	rm -f "$HOOKS/uploaded"
	# Port 1: nothing listens; a call that was made fails another way.
	printf '%s\n' "url = http://127.0.0.1:1/lazy" >"$HOOKS/uploaded.webhook"
	chmod 644 "$HOOKS/uploaded.webhook"
	cfw "$NOCURL" check >"$T/nocurl-check.out" 2>&1
	expect_eq "$?" 1 "check with an action and no libcurl"
	grep '^problem' "$T/nocurl-check.out" | grep -F "$HOOKS/uploaded.webhook" |
		grep -q -F "libcurl cannot be loaded: $T/broken-curl/$CURL_SONAME" ||
		fail "check does not report the action without libcurl: $(cat "$T/nocurl-check.out")"
	A=CFIMAGES_WEBHOOK_HOOK_ATTEMPTS=5
	write_file "$T/deliver2.json" "{\"id\":\"$ID2\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}"
	cgi POST "$T/deliver2.json" "$NOCURL" "$A"
	expect_answer 200 OK
	RUN=$(sql "SELECT id FROM hook_runs WHERE image_id = '$ID2' AND hook = 'uploaded.webhook'")
	if [ -z "$RUN" ]; then
		fail "no run queued: $(sql 'SELECT hook, state FROM hook_runs')"
	else
		wait_until 60 sql_is "SELECT state || '|' || attempts FROM hook_runs WHERE id = $RUN" \
			'queued|1' || fail "the attempt without libcurl: $(sql "SELECT state, attempts, output FROM hook_runs WHERE id = $RUN")"
		kill_runners
		sql_text output "FROM hook_runs WHERE id = $RUN" >"$T/run.out"
		grep -q -F "libcurl cannot be loaded: $T/broken-curl/$CURL_SONAME" "$T/run.out" ||
			fail "the run's output does not say why: $(cat "$T/run.out")"
		# libcurl back: the next attempt makes the call (refused on port 1).
		sql "UPDATE hook_runs SET next_attempt_at = $(sql_now_plus -1) WHERE id = $RUN"
		cfw "$A" hooks run >"$T/hooks-run.out" 2>&1
		expect_eq "$?" 0 "hooks run: $(cat "$T/hooks-run.out")"
		expect_sql "SELECT state || '|' || attempts FROM hook_runs WHERE id = $RUN" 'queued|2' \
			"the run after the attempt with libcurl"
		sql_text output "FROM hook_runs WHERE id = $RUN" >"$T/run2.out"
		grep -q -F "POST failed: " "$T/run2.out" ||
			fail "the attempt with libcurl did not call: $(cat "$T/run2.out")"
	fi
	;;
esac
exit 0
