#!/bin/sh
# cfimages-webhook(8) DATABASE, group commit: the deliveries that arrive
# while the process's writer is busy are committed together, each in a
# savepoint of its own, and a delivery that fails in such a batch fails
# alone.
#
# `serve --listen` on a unix socket; tests/servers/groupcommit.py holds
# the database's write lock (a connection of its own) while img-first
# waits for it, sends img-a, img-poison and img-b meanwhile (they queue
# behind it), then lets the lock go.  An application's trigger makes
# every log row of img-poison fail (RAISE(ABORT)): img-poison is answered
# 500 and leaves only its 500 delivery row; img-a and img-b, committed in
# the same transaction, are answered 200 with their status, log row and
# hook run each; the log says a batch held more than one delivery.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/serverlib.sh"
. "$top_srcdir/tests/hooklib.sh"

command -v python3 >/dev/null 2>&1 || skip "no python3"
[ "$BACKEND" = postgresql ] && skip "SQLite's write lock is held by the driver"
SECRET=group-commit-test-secret
START_SECONDS=10
STOP_SECONDS=10
SOCK=$T/fcgi.sock

mkdir -p "$HOOKS"
write_file "$HOOKS/uploaded" '#!/bin/sh
exit 0'
chmod 0755 "$HOOKS/uploaded"
init_db img-first img-a img-poison img-b
sql "CREATE TRIGGER poison BEFORE INSERT ON cloudflare_image_logs
	WHEN NEW.image_id = 'img-poison' BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"

env -i PATH="$CGI_PATH" CFIMAGES_WEBHOOK_CONFIG="$EMPTY_CONF" CFIMAGES_WEBHOOK_DB="$DB" \
	CFIMAGES_WEBHOOK_HOOKS_DIR="$HOOKS" CFIMAGES_WEBHOOK_SECRET="$SECRET" \
	CFIMAGES_WEBHOOK_DURABILITY="${DURABILITY:-full}" \
	CFIMAGES_WEBHOOK_LOG_LEVEL=debug $CFW_WRAPPER "$CFW_BIN" serve --listen "$SOCK" \
	</dev/null >/dev/null 2>"$T/serve.stderr" &
SERVE_PID=$!
register_pid "$SERVE_PID"
i=0
while ! grep -q "listening on" "$T/serve.stderr" 2>/dev/null; do
	alive "$SERVE_PID" || hard_error "serve failed: $(cat "$T/serve.stderr")"
	[ "$i" -lt $((START_SECONDS * 10)) ] || hard_error "serve did not listen"
	sleep 0.1
	i=$((i + 1))
done

python3 "$top_srcdir/tests/servers/groupcommit.py" batch "$SOCK" "$DB" "$SECRET" \
	>"$T/answers" 2>"$T/driver.err" || fail "the driver failed: $(cat "$T/driver.err")"
for id in img-first img-a img-b; do
	expect_eq "$(grep "^$id " "$T/answers")" "$id 200 OK" "the answer to $id"
	expect_eq "$(sql "SELECT status FROM cloudflare_images WHERE cloudflare_id = '$id'")" uploaded \
		"the status of $id"
	expect_eq "$(sql "SELECT count(*) FROM cloudflare_image_logs WHERE image_id = '$id' AND event_type = 'status_changed'")" \
		1 "the log rows of $id"
	expect_eq "$(sql "SELECT count(*) FROM hook_runs WHERE image_id = '$id'")" 1 \
		"the hook runs of $id"
	expect_eq "$(sql "SELECT status_code || ' ' || reason FROM webhook_deliveries WHERE image_id = '$id'")" \
		"200 applied" "the delivery row of $id"
done
expect_eq "$(grep "^img-poison " "$T/answers")" "img-poison 500 Internal server error" \
	"the answer to the delivery that failed"
expect_eq "$(sql "SELECT status FROM cloudflare_images WHERE cloudflare_id = 'img-poison'")" pending \
	"the failed delivery changed nothing"
expect_eq "$(sql "SELECT count(*) FROM hook_runs WHERE image_id = 'img-poison'")" 0 \
	"the failed delivery queued no hook run"
expect_eq "$(sql "SELECT status_code || ' ' || reason FROM webhook_deliveries WHERE image_id = 'img-poison'")" \
	"500 internal_error" "the failed delivery's row"
expect_eq "$(sql "SELECT count(*) FROM webhook_deliveries")" 4 "one delivery row per request"
grep -q "group commit: [2-9][0-9]* deliveries in one transaction" "$T/serve.stderr" ||
	fail "no batch of several deliveries: $(grep -i "group commit\|error" "$T/serve.stderr")"
grep -q "injected failure" "$T/serve.stderr" || fail "the failure was not logged"

kill -TERM "$SERVE_PID"
wait_gone "$SERVE_PID" $((STOP_SECONDS * 10)) || {
	fail "still running $STOP_SECONDS s after SIGTERM"
	kill -KILL "$SERVE_PID" 2>/dev/null
}
wait "$SERVE_PID"
expect_eq "$?" 0 "the exit status after SIGTERM"
unregister_pid "$SERVE_PID"
expect_eq "$(sql "PRAGMA integrity_check")" ok "the database's integrity"
expect_no_secret "$SECRET"
grep -q "AddressSanitizer\|runtime error\|ThreadSanitizer\|^==[0-9]*== " "$T/serve.stderr" &&
	fail "sanitizer or valgrind report: $(grep -h -m3 "Sanitizer\|runtime error\|^==[0-9]*== " "$T/serve.stderr")"
# The detached hook runners the deliveries started (one may linger for a
# retry) are this test's to stop.
kill_leftovers
exit 0
