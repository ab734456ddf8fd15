#!/bin/sh
# cfimages-webhook(8) HOOKS, two answers with a meaning of their own: 410
# Gone fails the run at once (one attempt, exit_code 410, never retried,
# even with attempts left and the run made due); a redirect is never
# followed: the 302 is a failed attempt like any non-2xx (exit_code 302,
# retried), and the Location, another receiver, is never contacted.
#
# Mutations this catches: 410 treated as any failure (retried);
# CURLOPT_FOLLOWLOCATION on (the second receiver gets a request, the run
# is done); a 3xx taken as success.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"
. "$top_srcdir/tests/actionlib.sh"

init_db img-gone img-redirect
start_receiver elsewhere
ELSEWHERE=$RPORT
start_receiver app --location "http://127.0.0.1:$ELSEWHERE/followed"
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
action_file "$HOOKS/uploaded.webhook" "url = http://127.0.0.1:$RPORT/status/410"
action_file "$HOOKS/failed.webhook" "url = http://127.0.0.1:$RPORT/redirect"
A=CFIMAGES_WEBHOOK_HOOK_ATTEMPTS=5

# 410: failed after one attempt.
deliver img-gone "$A"
RUN=$(run_id img-gone uploaded.webhook)
[ -n "$RUN" ] || { fail "no run queued: $(sql 'SELECT hook, state FROM hook_runs')"; exit 1; }
wait_until 60 run_is "$RUN" "failed|1" ||
	fail "after a 410: $(sql "SELECT state, attempts, exit_code, output FROM hook_runs WHERE id = $RUN")"
kill_runners
expect_sql "SELECT state, attempts, exit_code, $(sql_is_time finished_at) FROM hook_runs WHERE id = $RUN" \
	"failed|1|410|1" "the run after a 410"
run_output "$RUN" | head -n 1 | grep -q '^HTTP 410' || fail "output of the 410: $(run_output "$RUN")"
make_due "$RUN"
hooks_run "$A"
expect_eq "$(run_row "$RUN")" "failed|1|410" "the 410 run after hooks run"
expect_eq "$(recv_count app)" 1 "requests for the 410 action"

# 302: a failed attempt, the Location not contacted.
write_file "$T/redirect.json" '{"id":"img-redirect","error":"broken","timestamp":"2024-01-01T12:00:00.000Z"}'
cgi POST "$T/redirect.json" "$A"
expect_answer 200 OK
RUN2=$(run_id img-redirect failed.webhook)
[ -n "$RUN2" ] || { fail "no run queued for the redirect action"; exit 1; }
wait_until 60 run_is "$RUN2" "queued|1" ||
	fail "after a 302: $(sql "SELECT state, attempts, exit_code, output FROM hook_runs WHERE id = $RUN2")"
kill_runners
expect_eq "$(run_row "$RUN2")" "queued|1|302" "the run after a 302"
expect_eq "$(recv app 2 path)" /redirect "the request that got the 302"
expect_eq "$(recv app 2 answer)" 302 "the receiver answered 302"
make_due "$RUN2"
hooks_run "$A"
expect_eq "$(run_row "$RUN2")" "queued|2|302" "the run after a second 302"
expect_eq "$(recv_count app)" 3 "requests to the redirecting receiver"
expect_eq "$(recv_count elsewhere)" 0 "requests to the redirect's Location"
exit 0
