#!/bin/sh
# cfimages-webhook(8) HOOKS, an action's timeout: a receiver that never
# answers costs the attempt `timeout` seconds, no more: the call is
# abandoned, the attempt fails (no HTTP status: exit_code NULL, the
# transport error as output) and the run waits for its retry.  An action's
# timeout is capped by hook_timeout.
#
# Mutations this catches: no timeout set on the HTTP call (the attempt
# lasts as long as the receiver hangs, 60 s); the action's timeout not
# capped by hook_timeout; a timed-out call recorded as done.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"
. "$top_srcdir/tests/actionlib.sh"

init_db img-timeout img-capped
start_receiver app
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
action_file "$HOOKS/uploaded.webhook" \
	"url = http://127.0.0.1:$RPORT/hang/60" \
	'timeout = 3'
action_file "$HOOKS/failed.webhook" \
	"url = http://127.0.0.1:$RPORT/capped/hang/60" \
	'timeout = 40'

now()
{
	date +%s.%N
}
# attempt_seconds N RUN: SECS, the seconds from the arrival of request N
# at the receiver until RUN's first attempt is recorded as failed (at
# most 50 s).
attempt_seconds()
{
	SECS=999
	wait_until 30 recv_count_is app "$1" || { fail "request $1 never reached the receiver"; return; }
	as_start=$(recv app "$1" time)
	wait_until 50 run_is "$2" "queued|1" ||
		fail "run $2 is still $(run_row "$2") 50 s after its call started"
	SECS=$(awk -v a="$as_start" -v b="$(now)" 'BEGIN { printf "%.1f\n", b - a }')
}
# between X LO HI: LO <= X <= HI (decimals).
between()
{
	awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x <= hi) }'
}

deliver img-timeout CFIMAGES_WEBHOOK_HOOK_TIMEOUT=30
RUN=$(run_id img-timeout uploaded.webhook)
[ -n "$RUN" ] || { fail "no run queued: $(sql 'SELECT hook, state FROM hook_runs')"; exit 1; }
attempt_seconds 1 "$RUN"
secs=$SECS
say "the attempt against a hanging receiver (timeout = 3) took $secs s"
between "$secs" 2.5 20 || fail "the attempt with timeout = 3 took $secs s"
expect_sql "SELECT state, attempts, $(sql_bool 'exit_code IS NULL') FROM hook_runs WHERE id = $RUN" \
	"queued|1|1" "the timed-out run"
run_output "$RUN" >"$T/out"
[ -s "$T/out" ] || fail "a timed-out attempt left no output"
grep -q '^HTTP [0-9]' "$T/out" && fail "a timed-out attempt's output claims an HTTP status: $(cat "$T/out")"
kill_runners

# timeout = 40 under hook_timeout = 3: 3 s.
write_file "$T/capped.json" '{"id":"img-capped","error":"broken","timestamp":"2024-01-01T12:00:00.000Z"}'
cgi POST "$T/capped.json" CFIMAGES_WEBHOOK_HOOK_TIMEOUT=3
expect_answer 200 OK
RUN2=$(run_id img-capped failed.webhook)
[ -n "$RUN2" ] || { fail "no run queued for the failed action"; exit 1; }
attempt_seconds 2 "$RUN2"
secs=$SECS
say "the attempt with timeout = 40 and hook_timeout = 3 took $secs s"
between "$secs" 2.5 20 || fail "timeout = 40 was not capped by hook_timeout = 3: the attempt took $secs s"
expect_sql "SELECT state, attempts, $(sql_bool 'exit_code IS NULL') FROM hook_runs WHERE id = $RUN2" \
	"queued|1|1" "the capped run"
exit 0
