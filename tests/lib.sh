# Shared helpers of the black-box tests (tests/cgi/*.sh, tests/servers/*.sh).
#
# Sourced, never run.  Each test is one scenario against the real binary:
# it gets a private temporary directory $T (removed on exit, after every
# process the test registered with register_pid has been stopped by its
# PID), runs the binary as CGI in a clean environment with `cgi`, and
# asserts with expect_* and fail.  A test reports through its exit status,
# as Automake expects: 0 pass, 1 fail, 77 skip, 99 hard error.  A failed
# assertion does not stop the test; it makes the exit status 1.
#
# The environment comes from `make check` (AM_TESTS_ENVIRONMENT):
#   CFW_BIN      absolute path of the built binary (required)
#   top_srcdir   the source tree (for tests/vectors)
#   SQLITE3      the sqlite3 shell (default: sqlite3 on PATH)
#   LIGHTTPD, CURL   for tests/servers
# and optionally from the person running it:
#   CFW_WRAPPER  a command prefix for every run of the binary, e.g.
#                "valgrind -q --leak-check=full --error-exitcode=99"
#   CFW_TIMEOUT  seconds before a run of the binary counts as hung (60)
#   KEEP_TEMP    set: keep $T for inspection
#
# Request bodies may hold NUL bytes, so they always travel through files,
# never through shell variables.  POSIX sh: dash must run these as well as
# bash.

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

# Stops every registered process by its PID, then removes $T, then exits
# 1 when an assertion failed, else 0 (77 and 99 pass through).
cleanup()
{
	rc=$1
	trap - EXIT
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
			# A detached hook runner may still be closing the database.
			rm -rf "$T" 2>/dev/null || { sleep 1; rm -rf "$T"; }
		fi
	fi
	# The verdict is the assertions' count.  A script ending on a false
	# test ("[ -e x ] && fail ...") exits 1 without failing anything; any
	# other status (a syntax error, a killed shell) is a hard error.
	case $rc in
	0 | 1) [ "$FAILURES" -gt 0 ] && rc=1 || rc=0 ;;
	77 | 99) ;;
	*) say "ERROR: the test script ended with status $rc"; rc=99 ;;
	esac
	case $rc in
	0) say "PASS" ;;
	1) say "FAIL ($FAILURES failed assertions)" ;;
	esac
	exit "$rc"
}

register_pid()
{
	PIDS="$PIDS $1"
}

# Forgets a PID the test has already stopped and waited for.
unregister_pid()
{
	up_rest=
	for pid in $PIDS; do
		[ "$pid" = "$1" ] || up_rest="$up_rest $pid"
	done
	PIDS=$up_rest
}

if [ -z "${top_srcdir:-}" ]; then
	top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
fi
[ -n "${CFW_BIN:-}" ] || hard_error "CFW_BIN is not set (run through make check)"
[ -x "$CFW_BIN" ] || hard_error "CFW_BIN=$CFW_BIN is not executable"
SQLITE3=${SQLITE3:-sqlite3}
command -v "$SQLITE3" >/dev/null 2>&1 || skip "no sqlite3 shell to inspect the database"
CFW_WRAPPER=${CFW_WRAPPER:-}
CFW_TIMEOUT=${CFW_TIMEOUT:-60}
VECTORS=$top_srcdir/tests/vectors
PAYLOADS=$VECTORS/payloads

T=$(mktemp -d "${TMPDIR:-/tmp}/cfw-$NM.XXXXXX") || hard_error "mktemp -d failed"
trap 'cleanup $?' EXIT
trap 'exit 99' HUP INT TERM

DB=$T/webhook.db
HOOKS=$T/hooks
# Every run names an (empty) configuration file, so that a
# cfimages-webhook.conf installed on this machine never leaks into a test.
EMPTY_CONF=$T/empty.conf
: >"$EMPTY_CONF"
# The PATH the binary sees (a web server passes its own).
CGI_PATH=/usr/local/bin:/usr/bin:/bin

# run_binary N ARGS...: the first N of ARGS are VAR=VALUE assignments, the
# whole environment of the run (later ones win); the rest are the binary's
# arguments.  Goes through $CFW_WRAPPER and a timeout.  POSIX sh has no
# arrays, so the binary is spliced between the two groups by rotating the
# positional parameters.
run_binary()
{
	rb_n=$1
	shift
	rb_total=$#
	rb_i=0
	while [ "$rb_i" -lt "$rb_n" ]; do
		set -- "$@" "$1"
		shift
		rb_i=$((rb_i + 1))
	done
	# shellcheck disable=SC2086 # the wrapper is a list of words
	set -- "$@" $CFW_WRAPPER "$CFW_BIN"
	rb_i=$rb_n
	while [ "$rb_i" -lt "$rb_total" ]; do
		set -- "$@" "$1"
		shift
		rb_i=$((rb_i + 1))
	done
	timeout -k 5 "$CFW_TIMEOUT" env -i "$@"
}

# Number of leading VAR=VALUE words in its arguments.
count_assignments()
{
	ca_n=0
	for ca_a in "$@"; do
		case $ca_a in
		[A-Za-z_]*=*) ca_n=$((ca_n + 1)) ;;
		*) break ;;
		esac
	done
	echo "$ca_n"
}

# cfw [VAR=VALUE...] ARGS...: an operator command in a clean environment
# (database $DB, hooks $HOOKS, no config file unless the caller's
# assignments or --config say otherwise).  Stdin is /dev/null, or
# $CFW_STDIN when set (a socket on fd 0 would mean FastCGI).  Output as the
# binary wrote it; returns its exit status.
cfw()
{
	cfw_n=$(count_assignments "$@")
	run_binary $((cfw_n + 4)) PATH="$CGI_PATH" CFIMAGES_WEBHOOK_CONFIG="$EMPTY_CONF" \
		CFIMAGES_WEBHOOK_DB="$DB" CFIMAGES_WEBHOOK_HOOKS_DIR="$HOOKS" "$@" \
		<"${CFW_STDIN:-/dev/null}"
}

# Creates the database (with its schema) and registers the given ids.
init_db()
{
	cfw init >/dev/null || hard_error "init failed"
	for id_ in "$@"; do
		cfw register "$id_" >/dev/null || hard_error "register $id_ failed"
	done
}

# sql SQL: runs SQL on $DB, one row per line, columns separated by '|'.
# The database must exist: the sqlite3 shell would otherwise create it.
sql()
{
	sql_db "$DB" "$1"
}

sql_db()
{
	if [ ! -f "$1" ]; then
		fail "sql: no database $1 (for: $2)"
		return 1
	fi
	"$SQLITE3" -batch -noheader -cmd '.timeout 5000' "$1" "$2"
}

# The rows of the three tables a rejected delivery must not touch, exactly
# (quoted values, blobs as hex).  Of hook_runs only what a delivery decides
# (which runs exist, for what, with which input): the state columns move
# whenever a runner takes a due run up, which any request may do (cfimages-webhook(8) HOOKS).
# Nothing when the database does not exist.
snapshot()
{
	[ -f "$DB" ] || return 0
	"$SQLITE3" -batch -noheader -cmd '.timeout 5000' -cmd '.mode quote' "$DB" \
		'SELECT * FROM cloudflare_images ORDER BY rowid;
		 SELECT * FROM cloudflare_image_logs ORDER BY id;
		 SELECT id, image_id, status, hook, created_at, input FROM hook_runs ORDER BY id;' \
		2>/dev/null
}

delivery_count()
{
	if [ -f "$DB" ]; then
		"$SQLITE3" -batch -noheader -cmd '.timeout 5000' "$DB" \
			'SELECT count(*) FROM webhook_deliveries' 2>/dev/null || echo 0
	else
		echo 0
	fi
}

# cgi METHOD BODYFILE [VAR=VALUE...]: one request to the binary as CGI.
# The environment is GATEWAY_INTERFACE, REQUEST_METHOD, CONTENT_LENGTH (the
# size of BODYFILE), REMOTE_ADDR=127.0.0.1, the database and hooks
# directory of this test, then the extra assignments, which win (e.g.
# CONTENT_LENGTH=2000000, HTTP_X_SIGNATURE=...).  With CGI_BARE set, the
# configuration file, database and hooks directory are left out (the
# binary then finds its settings as it would on a server).  Stdin is
# BODYFILE, or $CGI_STDIN when set.  Afterwards:
#   STATUS   the number of the Status: line
#   HEADERS  the header lines (CR removed)
#   BODY     the body (as text; an exact copy is in $CGI_OUT.body)
#   CGI_ERR  the file holding what the binary wrote to stderr
#   CGI_RC   its exit status
# and a snapshot of the database taken before the request, for
# expect_untouched and expect_one_delivery.
cgi()
{
	cgi_method=$1
	cgi_body=$2
	shift 2
	[ -f "$cgi_body" ] || hard_error "cgi: no body file $cgi_body"
	CGI_N=$((CGI_N + 1))
	CGI_OUT=$T/cgi.$CGI_N.out
	CGI_ERR=$T/cgi.$CGI_N.err
	snapshot >"$T/before.snap"
	DELIVERIES_BEFORE=$(delivery_count)
	cgi_len=$(wc -c <"$cgi_body" | tr -d ' ')
	cgi_conf=CFIMAGES_WEBHOOK_CONFIG=$EMPTY_CONF
	cgi_db=CFIMAGES_WEBHOOK_DB=$DB
	cgi_hooks=CFIMAGES_WEBHOOK_HOOKS_DIR=$HOOKS
	if [ -n "${CGI_BARE:-}" ]; then
		# Placeholders keep the count of assignments fixed.
		cgi_conf=SERVER_NAME=localhost cgi_db=SERVER_PORT=80 cgi_hooks=SCRIPT_NAME=/webhook
	fi
	run_binary $(($# + 10)) PATH="$CGI_PATH" GATEWAY_INTERFACE=CGI/1.1 \
		SERVER_PROTOCOL=HTTP/1.1 REQUEST_METHOD="$cgi_method" \
		CONTENT_LENGTH="$cgi_len" CONTENT_TYPE=application/json \
		REMOTE_ADDR=127.0.0.1 "$cgi_conf" "$cgi_db" "$cgi_hooks" \
		"$@" <"${CGI_STDIN:-$cgi_body}" >"$CGI_OUT" 2>"$CGI_ERR"
	CGI_RC=$?
	if [ "$CGI_RC" -ne 0 ]; then
		fail "request $CGI_N: the binary exited $CGI_RC (stderr: $(head -c 2000 "$CGI_ERR"))"
	fi
	parse_answer "$CGI_OUT"
	return 0
}

# parse_answer FILE: splits a CGI-style answer (header lines, an empty
# line, the body) into $HEADERS, $BODY (exact copy in FILE.body) and
# $STATUS, and checks that Content-Length is the body's size.
parse_answer()
{
	HEADERS=$(awk '{ sub(/\r$/, "") } /^$/ { exit } { print }' "$1")
	pa_hlen=$(awk '{ n += length($0) + 1 } /^\r?$/ { print n; exit }' "$1")
	if [ -n "$pa_hlen" ]; then
		tail -c +$((pa_hlen + 1)) "$1" >"$1.body"
	else
		: >"$1.body"
	fi
	BODY=$(cat "$1.body")
	STATUS=$(printf '%s\n' "$HEADERS" | sed -n 's/^Status: \([0-9][0-9][0-9]\)\( .*\)\{0,1\}$/\1/p')
	if [ -z "$STATUS" ]; then
		fail "request $CGI_N: no Status: line in the answer: $(head -c 500 "$1")"
	fi
	pa_clen=$(header Content-Length)
	pa_blen=$(wc -c <"$1.body" | tr -d ' ')
	if [ -n "$pa_clen" ] && [ "$pa_clen" != "$pa_blen" ]; then
		fail "request $CGI_N: Content-Length: $pa_clen but the body has $pa_blen bytes"
	fi
}

# header NAME: the value of header NAME in $HEADERS (name case-insensitive).
header()
{
	printf '%s\n' "$HEADERS" | awk -v name="$1" '
		{ i = index($0, ":") }
		i > 0 && tolower(substr($0, 1, i - 1)) == tolower(name) {
			v = substr($0, i + 1); sub(/^[ \t]+/, "", v); print v; exit
		}'
}

# expect_eq ACTUAL EXPECTED MESSAGE
expect_eq()
{
	if [ "$1" != "$2" ]; then
		fail "$3: expected [$2], got [$1]"
		return 1
	fi
	return 0
}

# expect_sql SQL EXPECTED MESSAGE: the whole output of SQL on $DB.
expect_sql()
{
	expect_eq "$(sql "$1")" "$2" "$3"
}

# expect_answer STATUS BODY: the last answer, exactly.
expect_answer()
{
	expect_eq "$STATUS" "$1" "request $CGI_N status (body [$BODY])"
	expect_eq "$BODY" "$2" "request $CGI_N body"
	expect_eq "$(header Content-Type)" "text/plain; charset=utf-8" \
		"request $CGI_N Content-Type"
}

# expect_one_delivery REASON [STATUS]: the last request added exactly one
# webhook_deliveries row, with this reason (and status code).
expect_one_delivery()
{
	eod_after=$(delivery_count)
	expect_eq "$eod_after" $((DELIVERIES_BEFORE + 1)) \
		"request $CGI_N: webhook_deliveries rows (one new row expected)"
	expect_eq "$(sql 'SELECT reason FROM webhook_deliveries ORDER BY id DESC LIMIT 1')" \
		"$1" "request $CGI_N: delivery reason"
	if [ $# -ge 2 ]; then
		expect_eq "$(sql 'SELECT status_code FROM webhook_deliveries ORDER BY id DESC LIMIT 1')" \
			"$2" "request $CGI_N: delivery status_code"
	fi
}

# expect_untouched: cloudflare_images, cloudflare_image_logs and hook_runs
# are exactly as they were before the last request.
expect_untouched()
{
	snapshot >"$T/after.snap"
	if ! cmp -s "$T/before.snap" "$T/after.snap"; then
		fail "request $CGI_N changed images, logs or hook runs:
$(diff "$T/before.snap" "$T/after.snap" | head -20)"
	fi
}

# expect_rejected STATUS BODY REASON: the whole contract of a rejected
# request (cfimages-webhook(8) REQUEST CONTRACT): its answer, one delivery row saying why, nothing else.
expect_rejected()
{
	expect_answer "$1" "$2"
	expect_one_delivery "$3" "$1"
	expect_untouched
}

# last_delivery COLUMN: COLUMN of the newest delivery row, quoted as SQL
# (NULL, 'text', 42), so that NULL and '' are told apart.
last_delivery()
{
	sql "SELECT quote($1) FROM webhook_deliveries ORDER BY id DESC LIMIT 1"
}

# image_status ID: the status column of image ID (nothing when absent).
image_status()
{
	sql "SELECT status FROM cloudflare_images WHERE cloudflare_id = '$(sql_quote "$1")'"
}

# The text with single quotes doubled, for an SQL string literal.
sql_quote()
{
	printf '%s' "$1" | sed "s/'/''/g"
}

# expect_no_secret SECRET: SECRET appears neither in the database files
# nor in anything the binary wrote to stderr in this test (cfimages-webhook.conf(5)).
expect_no_secret()
{
	for f in "$DB" "$DB-wal" "$DB-journal" "$T"/cgi.*.err "$T"/*.stderr; do
		[ -f "$f" ] || continue
		if grep -F -a -q -e "$1" "$f"; then
			fail "the secret appears in $(basename "$f")"
		fi
	done
}

# sign_hex SECRET FILE: the X-Signature value `sign` prints for FILE.
sign_hex()
{
	cfw sign --scheme hex --secret "$1" "$2" | sed -n 's/^X-Signature: //p'
}

# wait_hook_runners: waits (at most 10 s) until no hook run is running or
# due, so that the detached runners a CGI request started have finished
# before the test ends (or before a check that must not race them).
wait_hook_runners()
{
	whr_i=0
	while [ "$whr_i" -lt 100 ]; do
		whr_n=$("$SQLITE3" -batch -noheader -cmd '.timeout 5000' "$DB" \
			"SELECT count(*) FROM hook_runs WHERE state = 'running' OR (state = 'queued'
			 AND next_attempt_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))" 2>/dev/null)
		[ "$whr_n" = 0 ] && return 0
		sleep 0.1
		whr_i=$((whr_i + 1))
	done
	return 1
}

# write_file PATH TEXT: TEXT exactly, without a trailing newline.
write_file()
{
	printf '%s' "$2" >"$1"
}

# alive PID: the process exists and is not a zombie.
alive()
{
	kill -0 "$1" 2>/dev/null || return 1
	case $(ps -o stat= -p "$1" 2>/dev/null) in
	Z* | '') return 1 ;;
	esac
	return 0
}
