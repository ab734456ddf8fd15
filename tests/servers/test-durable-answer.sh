#!/bin/sh
# cfimages-webhook(8) DATABASE, durability: with `durability = full` (the
# default) a 200 that changed an image's status is written only after the
# write-ahead log holding its commit was flushed to disk (fsync or
# fdatasync of webhook.db-wal), in CGI mode (SQLite's own synchronous =
# FULL) and in the FastCGI responder, whose group commit commits at
# NORMAL, lets the next batch go, and then flushes the log itself before
# answering.  With `durability = normal` nothing is flushed before the 200
# (but when SQLite starts a new log, whose header it flushes at any
# setting).
#
# The system calls are watched with strace (-f: every thread; -yy: the
# path of each descriptor).  A wrong change this catches: group_commit.c
# answering a deferred batch without store_sync() (the second 200 then
# comes before any flush of the log); store_sync() looking for the log
# beside the configured path instead of the file SQLite opened (with a
# symbolic link, it finds none there); a duplicate answered without a
# flush.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/serverlib.sh"

command -v strace >/dev/null 2>&1 || skip "no strace"
[ "$BACKEND" = postgresql ] && skip "the PostgreSQL server flushes its own log"
[ -n "$CFW_WRAPPER" ] && skip "strace and $CFW_WRAPPER do not nest"
CGI_FCGI=${CGI_FCGI:-$(command -v cgi-fcgi)}
[ -n "$CGI_FCGI" ] && [ -x "$CGI_FCGI" ] || skip "no cgi-fcgi (libfcgi-bin)"
strace -f -o /dev/null true 2>/dev/null || skip "strace cannot trace here (ptrace refused)"
SECRET=durable-answer-secret
# LeakSanitizer cannot run under ptrace: an ASan build's leak check is off
# for the traced processes (the other tests do it).
NO_LSAN=ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
START_SECONDS=20
STOP_SECONDS=20
SOCK=$T/fcgi.sock
TRACE="strace -f -qq -yy -s 80 -e trace=fdatasync,fsync,write"

init_db cgi-full cgi-normal fcgi-a fcgi-b fcgi-normal link-a link-b

# flushed_before_200 TRACE: prints one line per answer written in TRACE
# ("200 flushed" or "200 unflushed"): whether a flush of the log
# completed before it, since the previous answer.
flushed_before_200()
{
	awk '
	/fdatasync\(|fsync\(/ && /-wal>/ {
		if ($0 ~ /unfinished/) pending[$1] = 1
		else if ($0 ~ /= 0$/) flushed = 1
		next
	}
	/<\.\.\. (fdatasync|fsync) resumed>/ {
		if (($1 in pending) && $0 ~ /= 0$/) flushed = 1
		delete pending[$1]
		next
	}
	/write\(/ && /Status: 200/ {
		print "200 " (flushed ? "flushed" : "unflushed")
		flushed = 0
	}' "$1"
}

# expect_flushes TRACE EXPECTED MESSAGE: flushed_before_200 against
# EXPECTED; on a mismatch the trace's flushes and answers are shown.
expect_flushes()
{
	got_=$(flushed_before_200 "$1")
	[ "$got_" = "$2" ] || grep -E 'sync\(|resumed>|Status: ' "$1" | sed 's/^/  trace: /' >&2
	expect_eq "$got_" "$2" "$3"
}

body()
{
	write_file "$T/$1.json" "{\"id\":\"$1\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}"
}

# --- CGI: SQLite's synchronous = FULL ---
body cgi-full
CFW_WRAPPER="$TRACE -o $T/cgi-full.trace" cgi POST "$T/cgi-full.json" \
	HTTP_X_SIGNATURE="$(sign_hex "$SECRET" "$T/cgi-full.json")" CFIMAGES_WEBHOOK_SECRET="$SECRET" \
	"$NO_LSAN"
expect_answer 200 OK
expect_eq "$(image_status cgi-full)" uploaded "CGI: the delivery applied"
expect_flushes "$T/cgi-full.trace" "200 flushed" \
	"CGI, full: the log flushed before the 200"

# --- the FastCGI responder: group commit, the flush after the commit ---
# serve_traced NAME DURABILITY [DB]: `serve --listen $SOCK` under strace,
# its trace in $T/serve-NAME.trace.  Each run has files of its own: a
# stderr left by an earlier run would say "listening on" before this
# one has even started.
serve_traced()
{
	rm -f "$SOCK" "$T/serve-$1.stderr"
	env -i PATH="$CGI_PATH" CFIMAGES_WEBHOOK_CONFIG="$EMPTY_CONF" CFIMAGES_WEBHOOK_DB="${3:-$DB}" \
		CFIMAGES_WEBHOOK_HOOKS_DIR="$HOOKS" CFIMAGES_WEBHOOK_SECRET="$SECRET" \
		CFIMAGES_WEBHOOK_DURABILITY="$2" "$NO_LSAN" \
		$TRACE -o "$T/serve-$1.trace" "$CFW_BIN" serve --listen "$SOCK" \
		</dev/null >/dev/null 2>"$T/serve-$1.stderr" &
	SERVE_PID=$!
	register_pid "$SERVE_PID"
	i=0
	while ! grep -q "listening on" "$T/serve-$1.stderr" 2>/dev/null; do
		alive "$SERVE_PID" || hard_error "serve failed: $(cat "$T/serve-$1.stderr")"
		[ "$i" -lt $((START_SECONDS * 10)) ] || hard_error "serve did not listen"
		sleep 0.1
		i=$((i + 1))
	done
	# strace leaves its tracee running when stopped: the cleanup stops both.
	APP_PID=$(ps -o pid= --ppid "$SERVE_PID" | tr -d ' ')
	[ -n "$APP_PID" ] || hard_error "no program under strace (pid $SERVE_PID)"
	register_pid "$APP_PID"
}
stop_serve()
{
	# SERVE_PID is strace's: the program is its child.
	kill -TERM "$APP_PID" 2>/dev/null
	wait_gone "$SERVE_PID" $((STOP_SECONDS * 10)) || {
		fail "serve still running $STOP_SECONDS s after SIGTERM"
		kill -KILL "$SERVE_PID" 2>/dev/null
	}
	wait "$SERVE_PID"
	unregister_pid "$SERVE_PID"
	unregister_pid "$APP_PID"
}

serve_traced full full
for id in fcgi-a fcgi-b; do
	body "$id"
	signed_fcgi "$T/$id.json"
	expect_answer 200 OK
	expect_eq "$(image_status "$id")" uploaded "FastCGI: $id applied"
done
# A duplicate too: the change it reports may be another writer's commit
# whose flush has not returned yet (visible before it is durable).
signed_fcgi "$T/fcgi-a.json"
expect_answer 200 OK
expect_sql "SELECT reason FROM webhook_deliveries ORDER BY id DESC LIMIT 1" duplicate \
	"FastCGI: the same delivery again is a duplicate"
stop_serve
expect_flushes "$T/serve-full.trace" "200 flushed
200 flushed
200 flushed" "FastCGI, full: the log flushed before each 200, a duplicate's too"

# The database reached through a symbolic link: SQLite keeps its log
# beside the file the link names, and that is the log flushed.
ln -s "$DB" "$T/link.db"
serve_traced link full "$T/link.db"
for id in link-a link-b; do
	body "$id"
	signed_fcgi "$T/$id.json"
	expect_answer 200 OK
done
stop_serve
expect_flushes "$T/serve-link.trace" "200 flushed
200 flushed" "FastCGI, full, a linked database: the log flushed before each 200"

# At `normal`, the second delivery: the first may start a new log, whose
# header SQLite flushes at any setting.
serve_traced normal normal
for id in cgi-normal fcgi-normal; do
	body "$id"
	signed_fcgi "$T/$id.json"
	expect_answer 200 OK
done
stop_serve
expect_flushes "$T/serve-normal.trace" "$(flushed_before_200 "$T/serve-normal.trace" | sed 1q)
200 unflushed" \
	"FastCGI, normal: no flush before the 200 (the check can tell)"
expect_eq "$(sql "SELECT count(*) FROM webhook_deliveries")" 8 "one delivery row per request"
exit 0
