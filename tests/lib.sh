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
#   KEEP_TEMP    set: keep $T (and the test's PostgreSQL database) for inspection
#   CFW_TEST_PG_SOCKDIR, CFW_TEST_PG_PORT, CFW_TEST_PG_USER, CFW_TEST_PG_BINDIR
#                set by tests/run-postgresql-suite.sh (make check-postgresql):
#                the PostgreSQL pass, see BACKENDS below
#
# BACKENDS.  By default $DB is an SQLite file in $T.  In the PostgreSQL
# pass each test creates a database of its own in the pass's cluster
# (named after $T, dropped when the test ends) and $DB is its
# postgresql:// URI; the helpers below (sql, sql_db, init_db, snapshot,
# delivery_count, last_delivery, sql_text, sql_bytes, db_dump, drop_db,
# db_exists, expect_no_secret, wait_hook_runners, hook_db) then use psql,
# with output in the sqlite3 shell's form (rows on lines, columns
# separated by '|', NULL as nothing).  What still differs between the two
# is spelled through the dialect helpers (sql_time, sql_is_time,
# sql_now_plus, sql_epoch_ms, sql_bool, sql_concat, sql_blob,
# sql_file_blob, sql_json, sql_json_number, sql_json_valid), never by a
# change to the product's schema or a session setting that would hide
# what the product stored.  A test about SQLite itself calls sqlite_only
# REASON, which skips it in the PostgreSQL pass; $BACKEND is sqlite or
# postgresql.
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
	# The PostgreSQL pass must not quietly have run on SQLite.
	if [ "${BACKEND:-}" = postgresql ] && [ -e "$T/webhook.db" ]; then
		fail "the PostgreSQL pass created the SQLite database $T/webhook.db"
	fi
	if [ -n "${PG_DB_NAME:-}" ]; then
		if [ -n "${KEEP_TEMP:-}" ]; then
			say "kept the database $DB"
		else
			# FORCE: a detached hook runner may still hold a connection.
			pg_admin "DROP DATABASE IF EXISTS \"$PG_DB_NAME\" WITH (FORCE)" >/dev/null ||
				say "could not drop the database $PG_DB_NAME"
		fi
	fi
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

HOOKS=$T/hooks
if [ -n "${CFW_TEST_PG_SOCKDIR:-}" ]; then
	BACKEND=postgresql
	[ -n "${CFW_TEST_PG_PORT:-}" ] || hard_error "CFW_TEST_PG_SOCKDIR without CFW_TEST_PG_PORT"
	CFW_TEST_PG_USER=${CFW_TEST_PG_USER:-cfw}
	PSQL=${CFW_TEST_PG_BINDIR:+$CFW_TEST_PG_BINDIR/}psql
	PG_DUMP=${CFW_TEST_PG_BINDIR:+$CFW_TEST_PG_BINDIR/}pg_dump
	command -v "$PSQL" >/dev/null 2>&1 || hard_error "no psql ($PSQL)"
	# Unique among the tests running at once (mktemp made $T), and found
	# in the environment of the processes that use it (hooklib.sh).
	PG_DB_NAME=$(basename "$T")
	PG_ADMIN_URI="postgresql:///postgres?host=$CFW_TEST_PG_SOCKDIR&port=$CFW_TEST_PG_PORT&user=$CFW_TEST_PG_USER"
	DB="postgresql:///$PG_DB_NAME?host=$CFW_TEST_PG_SOCKDIR&port=$CFW_TEST_PG_PORT&user=$CFW_TEST_PG_USER"
	# (created at the end of this file, once pg_admin is defined)
else
	BACKEND=sqlite
	DB=$T/webhook.db
fi
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

# sql_db DB SQL: the same on another database (a file, or in the
# PostgreSQL pass a URI).  Several statements run as one transaction on
# PostgreSQL; their rows are printed one after the other on both.
sql_db()
{
	if [ "$BACKEND" = postgresql ]; then
		pg_sql "$1" "$2"
		return
	fi
	if [ ! -f "$1" ]; then
		fail "sql: no database $1 (for: $2)"
		return 1
	fi
	"$SQLITE3" -batch -noheader -cmd '.timeout 5000' "$1" "$2"
}

# pg_sql URI SQL: psql in the sqlite3 shell's output form.  Times the
# test prints raw come out in UTC (compare them through sql_time).
pg_sql()
{
	PGTZ=UTC PGDATESTYLE=ISO PGOPTIONS='-c lock_timeout=5000' \
		"$PSQL" -X -q -A -t -F '|' -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

# pg_admin SQL: on the cluster's maintenance database (CREATE/DROP DATABASE).
pg_admin()
{
	"$PSQL" -X -q -A -t -v ON_ERROR_STOP=1 -d "$PG_ADMIN_URI" -c "$1"
}

# db_dump: the whole database as SQL text (sqlite3's .dump, pg_dump).
db_dump()
{
	if [ "$BACKEND" = postgresql ]; then
		"$PG_DUMP" -d "$DB"
	else
		"$SQLITE3" -batch -cmd '.timeout 5000' "$DB" .dump
	fi
}

# sqlite_only REASON: this test is about SQLite itself; skipped in the
# PostgreSQL pass.
sqlite_only()
{
	[ "$BACKEND" = sqlite ] || skip "SQLite-specific: $*"
}

# db_exists: the database exists (a file; in the PostgreSQL pass, the
# test's database always does, so: its schema has been created).
db_exists()
{
	if [ "$BACKEND" = postgresql ]; then
		[ "$(pg_sql "$DB" "SELECT to_regclass('webhook_deliveries') IS NOT NULL" 2>/dev/null)" = t ]
	else
		[ -f "$DB" ]
	fi
}

# drop_db: the database is gone, as before the test's first command (the
# SQLite file and its -wal and -shm; the PostgreSQL database dropped and
# created again, empty).
drop_db()
{
	if [ "$BACKEND" = postgresql ]; then
		pg_admin "DROP DATABASE \"$PG_DB_NAME\" WITH (FORCE)" >/dev/null &&
			pg_admin "CREATE DATABASE \"$PG_DB_NAME\"" >/dev/null ||
			hard_error "drop_db: cannot create the database $PG_DB_NAME again"
	else
		rm -f "$DB" "$DB-wal" "$DB-shm"
	fi
}

# sql_text EXPR REST: the text of EXPR in `SELECT EXPR REST` (one row),
# byte for byte, newlines kept (through a file).  sql_bytes: the same for
# a BLOB (bytea) column.
sql_text()
{
	if [ "$BACKEND" = postgresql ]; then
		sql_bytes "convert_to(($1)::text, 'UTF8')" "$2"
	else
		sql_bytes "$1" "$2"
	fi
}

sql_bytes()
{
	rm -f "$T/sql_bytes"
	if [ "$BACKEND" = postgresql ]; then
		sql "SELECT encode($1, 'base64') $2" >"$T/sql_bytes.b64" &&
			base64 -d "$T/sql_bytes.b64" >"$T/sql_bytes" || return 1
	else
		sql "SELECT writefile('$T/sql_bytes', $1) $2" >/dev/null || return 1
	fi
	cat "$T/sql_bytes"
}

# hook_db: the CFIMAGES_DB a hook gets (cfimages-webhook(8) HOOKS): the
# database file's physical absolute path; in the PostgreSQL pass the URI.
hook_db()
{
	if [ "$BACKEND" = postgresql ]; then
		printf '%s\n' "$DB"
	else
		printf '%s/%s\n' "$(cd "$(dirname "$DB")" && pwd -P)" "$(basename "$DB")"
	fi
}

# The dialect helpers: each prints an SQL expression for `sql`.
#
# sql_time EXPR: time EXPR as the store's text, YYYY-MM-DDTHH:MM:SS.sssZ
# (what the commands print).  SQLite stores that text; PostgreSQL a
# timestamptz.
sql_time()
{
	if [ "$BACKEND" = postgresql ]; then
		printf '%s' "to_char(($1) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
	else
		printf '%s' "($1)"
	fi
}

# sql_now_plus SECONDS: the current time plus SECONDS (an integer, may be
# negative), of the type of the time columns (compare, store; print it
# through sql_time).
sql_now_plus()
{
	if [ "$BACKEND" = postgresql ]; then
		printf '%s' "(clock_timestamp() + ($1) * interval '1 second')"
	else
		printf '%s' "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '$1 seconds')"
	fi
}

# sql_epoch_ms EXPR: time EXPR in milliseconds since 1970 (an integer).
sql_epoch_ms()
{
	if [ "$BACKEND" = postgresql ]; then
		printf '%s' "floor(extract(epoch FROM ($1)) * 1000)::bigint"
	else
		printf '%s' "(CAST(strftime('%s', $1) AS INTEGER) * 1000 + CAST(substr($1, 21, 3) AS INTEGER))"
	fi
}

# sql_is_time EXPR: 1 when EXPR is a time in the store's form, else 0.
# SQLite: the text matches YYYY-MM-DDTHH:MM:SS.sssZ; PostgreSQL: a
# timestamptz, which has no other form, that is not NULL.
sql_is_time()
{
	if [ "$BACKEND" = postgresql ]; then
		printf '%s' "CASE WHEN ($1) IS NOT NULL THEN 1 ELSE 0 END"
	else
		printf '%s' "(($1) GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9].[0-9][0-9][0-9]Z')"
	fi
}

# sql_file_blob FILE: the bytes of FILE as a BLOB (SQLite) or bytea.
sql_file_blob()
{
	if [ "$BACKEND" = postgresql ]; then
		printf "decode('%s', 'hex')" "$(od -An -v -tx1 "$1" | tr -d ' \n')"
	else
		printf "readfile('%s')" "$1"
	fi
}

# sql_json EXPR PATH: the value at PATH ($.a.b, $[1]) of the JSON text
# EXPR, as SQLite's json_extract gives it (text unquoted); sql_json_number
# the same for a number, printed as a double; sql_json_valid EXPR: 1 when
# EXPR is JSON (PostgreSQL: a json column is; the cast of anything else
# fails).
sql_json()
{
	if [ "$BACKEND" = postgresql ]; then
		printf 'json_extract_path_text((%s)::json' "$1"
		printf '%s\n' "$2" | sed 's/^\$//; s/\[\([0-9]*\)\]/.\1/g; s/^\.//' | tr '.' '\n' |
			while IFS= read -r sj_key; do printf ", '%s'" "$sj_key"; done
		printf ')'
	else
		printf "json_extract(%s, '%s')" "$1" "$2"
	fi
}

sql_json_number()
{
	if [ "$BACKEND" = postgresql ]; then
		printf '(%s)::float8' "$(sql_json "$1" "$2")"
	else
		sql_json "$1" "$2"
	fi
}

sql_json_valid()
{
	if [ "$BACKEND" = postgresql ]; then
		printf 'CASE WHEN (%s)::json IS NOT NULL THEN 1 END' "$1"
	else
		printf 'json_valid(%s)' "$1"
	fi
}

# sql_bool EXPR: 1 when the condition EXPR holds, 0 when not (PostgreSQL
# would print t and f), NULL when it is NULL.
sql_bool()
{
	printf '%s' "CASE WHEN ($1) THEN 1 WHEN NOT ($1) THEN 0 END"
}

# sql_concat EXPR [SEPARATOR]: the aggregate joining EXPR of the rows, in
# their order (ordered by a subquery), with SEPARATOR (default ',').
sql_concat()
{
	if [ "$BACKEND" = postgresql ]; then
		printf '%s' "string_agg(($1)::text, '${2-,}')"
	else
		printf '%s' "group_concat($1, '${2-,}')"
	fi
}

# sql_blob EXPR: text EXPR as the bytes of a BLOB (SQLite) or bytea.
sql_blob()
{
	if [ "$BACKEND" = postgresql ]; then
		printf '%s' "convert_to($1, 'UTF8')"
	else
		printf '%s' "CAST($1 AS BLOB)"
	fi
}

# The rows of the three tables a rejected delivery must not touch, exactly
# (quoted values, blobs as hex).  Of hook_runs only what a delivery decides
# (which runs exist, for what, with which input): the state columns move
# whenever a runner takes a due run up, which any request may do (cfimages-webhook(8) HOOKS).
# Nothing when the database does not exist.
snapshot()
{
	if [ "$BACKEND" = postgresql ]; then
		# Whole rows as record text: NULL and '' told apart, times to the
		# microsecond.  Nothing before the schema exists.
		pg_sql "$DB" 'SELECT t::text FROM cloudflare_images t ORDER BY cloudflare_id;
			SELECT t::text FROM cloudflare_image_logs t ORDER BY id;
			SELECT ROW(id, image_id, status, hook, created_at, input)::text
			FROM hook_runs ORDER BY id;' 2>/dev/null
		return 0
	fi
	[ -f "$DB" ] || return 0
	"$SQLITE3" -batch -noheader -cmd '.timeout 5000' -cmd '.mode quote' "$DB" \
		'SELECT * FROM cloudflare_images ORDER BY rowid;
		 SELECT * FROM cloudflare_image_logs ORDER BY id;
		 SELECT id, image_id, status, hook, created_at, input FROM hook_runs ORDER BY id;' \
		2>/dev/null
}

delivery_count()
{
	if [ "$BACKEND" = postgresql ]; then
		pg_sql "$DB" 'SELECT count(*) FROM webhook_deliveries' 2>/dev/null || echo 0
	elif [ -f "$DB" ]; then
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
	if [ "$BACKEND" = postgresql ]; then
		case $1 in
		id | status_code | body_size) ld_q="COALESCE($1::text, 'NULL')" ;;
		received_at) ld_q="quote_nullable($(sql_time "$1"))" ;;
		*) ld_q="quote_nullable($1)" ;;
		esac
		sql "SELECT $ld_q FROM webhook_deliveries ORDER BY id DESC LIMIT 1"
	else
		sql "SELECT quote($1) FROM webhook_deliveries ORDER BY id DESC LIMIT 1"
	fi
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
	if [ "$BACKEND" = postgresql ]; then
		db_dump >"$T/pg_dump.sql" 2>"$T/pg_dump.err" ||
			fail "pg_dump failed: $(head -c 500 "$T/pg_dump.err")"
		grep -F -a -q -e "$1" "$T/pg_dump.sql" && fail "the secret appears in the database"
	fi
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
		whr_q="SELECT count(*) FROM hook_runs WHERE state = 'running' OR (state = 'queued'
			 AND next_attempt_at <= $(sql_now_plus 0))"
		if [ "$BACKEND" = postgresql ]; then
			whr_n=$(pg_sql "$DB" "$whr_q" 2>/dev/null)
		else
			whr_n=$("$SQLITE3" -batch -noheader -cmd '.timeout 5000' "$DB" "$whr_q" 2>/dev/null)
		fi
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

# The PostgreSQL pass: the test's own database, empty.
if [ "$BACKEND" = postgresql ]; then
	pg_admin "CREATE DATABASE \"$PG_DB_NAME\"" >/dev/null ||
		{ PG_DB_NAME=; hard_error "cannot create the test database in the PostgreSQL pass's cluster"; }
fi
