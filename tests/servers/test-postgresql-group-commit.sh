#!/bin/sh
# cfimages-webhook(8) DATABASE, group commit on PostgreSQL: the batch is
# one transaction there too, a savepoint per delivery.  As
# test-group-commit.sh, against a private cluster (tests/pglib.sh): a
# psql session holds img-first's row (FOR UPDATE) for 2 s while
# img-first waits for it and img-a, img-poison and img-b queue behind
# it; a trigger makes img-poison's log row fail.  img-poison is answered
# 500 and leaves only its 500 row; the others are answered 200 and
# committed; the log shows a batch of several deliveries.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/serverlib.sh"
. "$top_srcdir/tests/hooklib.sh"
. "$top_srcdir/tests/pglib.sh"

command -v python3 >/dev/null 2>&1 || skip "no python3 (the FastCGI client)"
pg_start
SECRET=pg-group-commit-secret
SOCK=$T/fcgi.sock
START_SECONDS=10
STOP_SECONDS=10
DB=$PG_URI

mkdir -p "$HOOKS"
write_file "$HOOKS/uploaded" '#!/bin/sh
exit 0'
chmod 0755 "$HOOKS/uploaded"
init_db img-first img-a img-poison img-b
psql_q "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS \$\$
	BEGIN RAISE EXCEPTION 'injected failure'; END \$\$;
	CREATE TRIGGER poison BEFORE INSERT ON cloudflare_image_logs FOR EACH ROW
	WHEN (NEW.image_id = 'img-poison') EXECUTE FUNCTION poison();" >/dev/null ||
	hard_error "cannot create the trigger"

env -i PATH="$CGI_PATH" CFIMAGES_WEBHOOK_CONFIG="$EMPTY_CONF" CFIMAGES_WEBHOOK_DB="$DB" \
	CFIMAGES_WEBHOOK_HOOKS_DIR="$HOOKS" CFIMAGES_WEBHOOK_SECRET="$SECRET" \
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

psql_q "BEGIN; SELECT 1 FROM cloudflare_images WHERE cloudflare_id = 'img-first' FOR UPDATE;
	SELECT pg_sleep(2); COMMIT;" >/dev/null 2>&1 &
HOLDER_PID=$!
register_pid "$HOLDER_PID"
sleep 0.3
python3 "$top_srcdir/tests/servers/groupcommit.py" batch "$SOCK" - "$SECRET" \
	>"$T/answers" 2>"$T/driver.err" || fail "the driver failed: $(cat "$T/driver.err")"
wait "$HOLDER_PID"
unregister_pid "$HOLDER_PID"

for id in img-first img-a img-b; do
	expect_eq "$(grep "^$id " "$T/answers")" "$id 200 OK" "the answer to $id"
	expect_eq "$(psql_q "SELECT status FROM cloudflare_images WHERE cloudflare_id = '$id'")" \
		uploaded "the status of $id"
	expect_eq "$(psql_q "SELECT count(*) FROM cloudflare_image_logs WHERE image_id = '$id' AND event_type = 'status_changed'")" \
		1 "the log rows of $id"
	expect_eq "$(psql_q "SELECT count(*) FROM hook_runs WHERE image_id = '$id'")" 1 \
		"the hook runs of $id"
	expect_eq "$(psql_q "SELECT status_code || ' ' || reason FROM webhook_deliveries WHERE image_id = '$id'")" \
		"200 applied" "the delivery row of $id"
done
expect_eq "$(grep "^img-poison " "$T/answers")" "img-poison 500 Internal server error" \
	"the answer to the delivery that failed"
expect_eq "$(psql_q "SELECT status FROM cloudflare_images WHERE cloudflare_id = 'img-poison'")" \
	pending "the failed delivery changed nothing"
expect_eq "$(psql_q "SELECT count(*) FROM hook_runs WHERE image_id = 'img-poison'")" 0 \
	"the failed delivery queued no hook run"
expect_eq "$(psql_q "SELECT status_code || ' ' || reason FROM webhook_deliveries WHERE image_id = 'img-poison'")" \
	"500 internal_error" "the failed delivery's row"
expect_eq "$(psql_q "SELECT count(*) FROM webhook_deliveries")" 4 "one delivery row per request"
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
expect_no_secret "$SECRET"
grep -q "AddressSanitizer\|runtime error\|ThreadSanitizer\|^==[0-9]*== " "$T/serve.stderr" &&
	fail "sanitizer or valgrind report: $(grep -h -m3 "Sanitizer\|runtime error\|^==[0-9]*== " "$T/serve.stderr")"
# The detached hook runners the deliveries started (one may linger for a
# retry) are this test's to stop.
kill_leftovers
exit 0
