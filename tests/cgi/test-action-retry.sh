#!/bin/sh
# cfimages-webhook(8) HOOKS, how an action's attempts end: a non-2xx answer
# fails the attempt (exit_code the HTTP status, output "HTTP CODE" then the
# first bytes of the answer's body, at most 4 KiB of it) and the run is
# retried with the hook backoff; the retry of a signed action carries the
# same webhook-id (one id per run, so the receiver can deduplicate), and a
# run of another change another id; the retry that gets a 2xx is done.
# After hook_attempts failed attempts the run is failed.  A connection
# refused fails the attempt with the transport error as output and no
# exit_code (NULL).
#
# Mutations this catches: a non-2xx taken as success; webhook-id made per
# attempt (or per request, random) instead of per run; the same id for
# every run; the answer body not kept, or kept without bound; hook_attempts
# ignored for actions; exit_code 0 or -1 on a transport error.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"
. "$top_srcdir/tests/actionlib.sh"

init_db img-retry img-second img-big img-refused
start_receiver app
REFUSED_PORT=$("$PYTHON3" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
printf 'whsec_%s\n' "$(printf 'retry-test-signing-key-0123456789' | base64)" >"$T/outbound.key"
action_file "$HOOKS/uploaded.webhook" \
	"url = http://127.0.0.1:$RPORT/retry/fail/1" \
	"secret_file = $T/outbound.key"
action_file "$HOOKS/failed.webhook" \
	"url = http://127.0.0.1:$RPORT/status/503/big/10000"
action_file "$HOOKS/draft.webhook" \
	"url = http://127.0.0.1:$REFUSED_PORT/nobody-listens"
A=CFIMAGES_WEBHOOK_HOOK_ATTEMPTS=2

# Attempt 1 gets a 500.
deliver img-retry "$A"
RUN=$(run_id img-retry uploaded.webhook)
[ -n "$RUN" ] || { fail "no run queued: $(sql 'SELECT hook, state FROM hook_runs')"; exit 1; }
wait_until 60 run_is "$RUN" "queued|1" ||
	fail "after a 500: $(sql "SELECT state, attempts, exit_code, output FROM hook_runs WHERE id = $RUN")"
kill_runners
expect_eq "$(run_row "$RUN")" "queued|1|500" "the run after a 500"
run_output "$RUN" >"$T/out1"
head -n 1 "$T/out1" | grep -q '^HTTP 500' || fail "output of the 500 attempt: $(cat "$T/out1")"
grep -q 'receiver: 500 for request 1' "$T/out1" || fail "the 500's body is not in the output: $(cat "$T/out1")"
expect_sql "SELECT $(sql_bool "next_attempt_at > $(sql_now_plus 10)") FROM hook_runs WHERE id = $RUN" 1 \
	"the retry is scheduled with the backoff (30 s)"
expect_eq "$(recv_count app)" 1 "requests after attempt 1"

# Attempt 2, made due, gets a 200.
make_due "$RUN"
hooks_run "$A"
expect_eq "$(run_row "$RUN")" "done|2|200" "the run after its retry"
run_output "$RUN" | head -n 1 | grep -q '^HTTP 200' || fail "output of the 200 attempt: $(run_output "$RUN")"
expect_eq "$(recv_count app)" 2 "requests after attempt 2"
ID1=$(recv app 1 header webhook-id)
ID2=$(recv app 2 header webhook-id)
[ -n "$ID1" ] || fail "the signed action sent no webhook-id"
expect_eq "$ID2" "$ID1" "webhook-id of the retry"
[ -n "$(recv app 2 header webhook-signature)" ] || fail "the retry is not signed"
[ -n "$(recv app 2 header webhook-timestamp)" ] || fail "the retry has no webhook-timestamp"

# Another change: another run, another id.
deliver img-second "$A"
RUN2=$(run_id img-second uploaded.webhook)
wait_until 60 run_is "$RUN2" "done|1" ||
	fail "the second image's run: $(sql "SELECT state, attempts, exit_code, output FROM hook_runs WHERE id = $RUN2")"
ID3=$(recv app 3 header webhook-id)
[ -n "$ID3" ] || fail "the second run sent no webhook-id"
[ "$ID3" != "$ID1" ] || fail "two runs sent the same webhook-id $ID1"

# A 503 with a 10000-byte body, hook_attempts 2: failed after the second.
write_file "$T/big.json" '{"id":"img-big","error":"broken","timestamp":"2024-01-01T12:00:00.000Z"}'
cgi POST "$T/big.json" "$A"
expect_answer 200 OK
RUN3=$(run_id img-big failed.webhook)
wait_until 60 run_is "$RUN3" "queued|1" ||
	fail "after a 503: $(sql "SELECT state, attempts, exit_code FROM hook_runs WHERE id = $RUN3")"
kill_runners
expect_eq "$(run_row "$RUN3")" "queued|1|503" "the run after a 503"
run_output "$RUN3" >"$T/out3"
size=$(wc -c <"$T/out3" | tr -d ' ')
[ "$size" -le 4200 ] || fail "the output holds $size bytes of a 10000-byte answer (4 KiB bound)"
head -n 1 "$T/out3" | grep -q '^HTTP 503' || fail "output of the 503 attempt: $(head -c 200 "$T/out3")"
grep -q 'ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJ' "$T/out3" ||
	fail "the output does not hold the first bytes of the answer: $(head -c 200 "$T/out3")"
make_due "$RUN3"
hooks_run "$A"
expect_sql "SELECT state, attempts, exit_code, $(sql_is_time finished_at) FROM hook_runs WHERE id = $RUN3" \
	"failed|2|503|1" "the run after hook_attempts failed attempts"
make_due "$RUN3"
hooks_run "$A"
expect_eq "$(recv_count app)" 5 "requests in all (a failed run is not called again)"

# Connection refused: a transport error, no HTTP status.
write_file "$T/refused.json" '{"id":"img-refused","draft":true}'
cgi POST "$T/refused.json" "$A"
expect_answer 200 OK
RUN4=$(run_id img-refused draft.webhook)
wait_until 60 run_is "$RUN4" "queued|1" ||
	fail "after a refused connection: $(sql "SELECT state, attempts, exit_code, output FROM hook_runs WHERE id = $RUN4")"
kill_runners
expect_sql "SELECT state, attempts, $(sql_bool 'exit_code IS NULL') FROM hook_runs WHERE id = $RUN4" \
	"queued|1|1" "a refused connection: attempt failed, exit_code NULL"
run_output "$RUN4" >"$T/out4"
[ -s "$T/out4" ] || fail "a refused connection left no output"
grep -q '^HTTP [0-9]' "$T/out4" && fail "a refused connection's output claims an HTTP status: $(cat "$T/out4")"
exit 0
