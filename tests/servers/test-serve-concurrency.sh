#!/bin/sh
# `serve --listen` answers requests concurrently and bounds how long a
# connection may take to send its request (read_timeout), over TCP and a
# unix socket (where an accepted socket inherits no SO_RCVTIMEO).
#
# tests/servers/concurrency.py, a FastCGI client speaking record by
# record, checks for each socket: a request is answered while a silent
# connection, three half-sent parameter blocks, three half-sent bodies and
# an idle kept-open (FCGI_KEEP_CONN) connection are held (more stalled
# connections than worker threads); a kept-open connection carries a
# second request; the stalled ones are closed after read_timeout and the
# kept-open idle one is not; with 300 more idle connections requests are
# still answered, the oldest idle connections are closed (a limit) and
# private memory stays flat; on SIGTERM the request in hand is finished
# while an idle connection is open, and the process exits 0.  The
# database then holds one applied delivery per answered request and none
# for the requests that never arrived.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/serverlib.sh"

command -v python3 >/dev/null 2>&1 || skip "no python3"
SECRET=concurrency-test-secret
READ_TIMEOUT=3
START_SECONDS=10
# After SIGTERM the process finishes the request in hand, then exits.
STOP_SECONDS=10

# run_serve SPEC: one serve process on SPEC, driven by concurrency.py.
run_serve()
{
	rs_err=$T/serve.$2.stderr
	# shellcheck disable=SC2086 # the wrapper is a list of words
	env -i PATH="$CGI_PATH" CFIMAGES_WEBHOOK_CONFIG="$EMPTY_CONF" \
		CFIMAGES_WEBHOOK_DB="$DB" CFIMAGES_WEBHOOK_HOOKS_DIR="$HOOKS" \
		CFIMAGES_WEBHOOK_SECRET="$SECRET" CFIMAGES_WEBHOOK_READ_TIMEOUT=$READ_TIMEOUT \
		$CFW_WRAPPER "$CFW_BIN" serve --listen "$1" </dev/null >/dev/null 2>"$rs_err" &
	rs_pid=$!
	register_pid "$rs_pid"
	rs_i=0
	while ! grep -q "listening on" "$rs_err" 2>/dev/null; do
		alive "$rs_pid" || hard_error "serve --listen $1 failed: $(cat "$rs_err")"
		[ "$rs_i" -lt $((START_SECONDS * 10)) ] || hard_error "serve did not listen"
		sleep 0.1
		rs_i=$((rs_i + 1))
	done
	rs_mem=--memory
	[ -n "$CFW_WRAPPER" ] && rs_mem= # valgrind's own memory is not ours
	# Nor is AddressSanitizer's: its quarantine keeps freed memory (4 MiB
	# seen in one run).
	ldd "$CFW_BIN" 2>/dev/null | grep -q libasan && rs_mem=
	if ! python3 "$top_srcdir/tests/servers/concurrency.py" "$1" "$rs_pid" "$SECRET" \
		"$READ_TIMEOUT" $rs_mem >"$T/driver.$2.out" 2>&1; then
		cat "$T/driver.$2.out"
		say "serve stderr: $(tail -5 "$rs_err")"
		fail "$2: the concurrency checks failed"
		kill -KILL "$rs_pid" 2>/dev/null
	else
		sed "s/^/$2: /" "$T/driver.$2.out"
	fi
	wait_gone "$rs_pid" $((STOP_SECONDS * 10)) || {
		fail "$2: still running $STOP_SECONDS s after SIGTERM"
		kill -KILL "$rs_pid" 2>/dev/null
	}
	wait "$rs_pid"
	rs_rc=$?
	unregister_pid "$rs_pid"
	expect_eq "$rs_rc" 0 "$2: exit status after SIGTERM"
	grep -q "did not arrive within read_timeout" "$rs_err" ||
		fail "$2: no log line for the requests dropped at read_timeout"
}

mkdir -p "$HOOKS"
init_db img-warm img-keep-1 img-keep-2 img-a img-b img-term img-slow img-half-0 img-half-1 img-half-2

run_serve "$T/fcgi.sock" unix
for id in img-warm img-keep-1 img-keep-2 img-a img-b img-term img-slow; do
	expect_eq "$(sql "SELECT count(*) FROM webhook_deliveries WHERE image_id = '$id' AND reason = 'applied'")" \
		1 "unix: applied deliveries of $id"
	expect_eq "$(sql "SELECT status FROM cloudflare_images WHERE cloudflare_id = '$id'")" \
		uploaded "unix: status of $id"
done
expect_eq "$(sql "SELECT count(*) FROM webhook_deliveries WHERE image_id LIKE 'img-half-%'")" \
	0 "unix: delivery rows of requests whose body never arrived"
expect_eq "$(sql "SELECT count(*) FROM webhook_deliveries")" 7 "unix: delivery rows"

# The same over TCP, on a fresh database.
rm -f "$DB" "$DB-wal" "$DB-shm"
init_db img-warm img-keep-1 img-keep-2 img-a img-b img-term img-slow img-half-0 img-half-1 img-half-2
PORT=$(free_port)
run_serve "127.0.0.1:$PORT" tcp
expect_eq "$(sql "SELECT count(*) FROM webhook_deliveries WHERE reason = 'applied'")" 7 \
	"tcp: applied deliveries"
expect_eq "$(sql "SELECT count(*) FROM webhook_deliveries")" 7 "tcp: delivery rows"
expect_no_secret "$SECRET"
exit 0
