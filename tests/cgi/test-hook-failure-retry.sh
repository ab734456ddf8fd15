#!/bin/sh
# cfimages-webhook(8) HOOKS and 10: a hook that exits non-zero is retried after
# 30 s x 2^(attempt-1) until hook_attempts, then left failed; its output
# (stdout and stderr) is kept, only the last 4 KiB of it.  `hooks run`
# takes the due runs up (cron); `hooks retry RUN_ID` queues one again with
# its attempts reset; `hooks list` shows the rows and their output.  The
# retries are made due by moving next_attempt_at into the past, so that
# no test waits for a real backoff.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

ID=img-retry
BIG=img-big-output
init_db "$ID" "$BIG"
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
hook_script "$HOOKS/uploaded" \
	'echo "attempt $CFIMAGES_HOOK_ATTEMPT to stdout"' \
	'echo "attempt $CFIMAGES_HOOK_ATTEMPT to stderr" >&2' \
	"echo \"\$CFIMAGES_HOOK_ATTEMPT\" >>'$T/attempts'" \
	'[ "$CFIMAGES_IMAGE_ID" = img-big-output ] || exit 3' \
	"awk 'BEGIN { for (i = 0; i < 10000; i++) printf \"%c\", 65 + i % 26 }'" \
	'exit 0'
ATTEMPTS=3

now_ms()
{
	date +%s%3N
}
# check_backoff RUN SECONDS T0 T1: the attempt that ended between T0 and
# T1 (ms) set next_attempt_at SECONDS after its end.
check_backoff()
{
	cb_next=$(sql "SELECT $(sql_epoch_ms next_attempt_at) FROM hook_runs WHERE id = $1")
	cb_lo=$(($3 + $2 * 1000 - 1000))
	cb_hi=$(($4 + $2 * 1000 + 1000))
	if [ -z "$cb_next" ] || [ "$cb_next" -lt "$cb_lo" ] || [ "$cb_next" -gt "$cb_hi" ]; then
		fail "run $1: next_attempt_at $(sql "SELECT $(sql_time next_attempt_at) FROM hook_runs WHERE id = $1") is not $2 s after the attempt (expected $(((cb_lo - $3) / 1000))..$(((cb_hi - $3) / 1000)) s after its start)"
	fi
}
make_due()
{
	sql "UPDATE hook_runs SET next_attempt_at = '2000-01-01T00:00:00.000Z' WHERE id = $1"
}
hooks_run()
{
	cfw CFIMAGES_WEBHOOK_HOOK_ATTEMPTS=$ATTEMPTS hooks run >"$T/run.out" 2>"$T/run.err"
	expect_eq "$?" 0 "hooks run exit status ($(cat "$T/run.err"))"
}

# Attempt 1, by the runner the CGI starts.
write_file "$T/u.json" "{\"id\":\"$ID\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}"
t0=$(now_ms)
cgi POST "$T/u.json" CFIMAGES_WEBHOOK_HOOK_ATTEMPTS=$ATTEMPTS
expect_answer 200 OK
RUN=$(sql "SELECT id FROM hook_runs WHERE image_id = '$ID'")
[ -n "$RUN" ] || hard_error "no hook run queued"
wait_until 20 sql_is "SELECT state, attempts FROM hook_runs WHERE id = $RUN" "queued|1" ||
	fail "after the first failure: $(sql "SELECT state, attempts, exit_code FROM hook_runs WHERE id = $RUN")"
t1=$(now_ms)
# The runner may linger for the retry: the test takes over from here.
kill_runners
expect_sql "SELECT state, attempts, exit_code, $(sql_bool 'finished_at IS NULL') FROM hook_runs WHERE id = $RUN" \
	"queued|1|3|1" "the run after a failed first attempt"
expect_sql "SELECT output FROM hook_runs WHERE id = $RUN" "attempt 1 to stdout
attempt 1 to stderr" "the output of attempt 1 (stdout and stderr)"
check_backoff "$RUN" 30 "$t0" "$t1"

# `hooks list`: the row, then its output lines.
cfw hooks list >"$T/list" 2>&1 || fail "hooks list failed: $(cat "$T/list")"
created=$(sql "SELECT $(sql_time created_at) FROM hook_runs WHERE id = $RUN")
next=$(sql "SELECT $(sql_time next_attempt_at) FROM hook_runs WHERE id = $RUN")
host=$(sql "SELECT host FROM hook_runs WHERE id = $RUN")
expect_eq "$host" "$(hostname)" "the host that ran the run"
expect_eq "$(grep "^$RUN	" "$T/list")" \
	"$RUN	queued	attempts=1	exit=3	uploaded	$ID	created=$created	next=$next	host=$host" \
	"hooks list row"
expect_eq "$(grep -A2 "^$RUN	" "$T/list" | tail -n 2)" "	| attempt 1 to stdout
	| attempt 1 to stderr" "hooks list output lines"
cfw hooks list --state failed >"$T/list-failed" 2>&1
grep -q "^$RUN	" "$T/list-failed" && fail "hooks list --state failed shows the queued run"

# Not due yet: `hooks run` leaves it alone.
hooks_run
expect_sql "SELECT state, attempts FROM hook_runs WHERE id = $RUN" "queued|1" "a run not yet due is not taken up"

# Attempt 2: due, `hooks run` (the cron path) takes it up; next in 60 s.
make_due "$RUN"
t0=$(now_ms)
hooks_run
t1=$(now_ms)
expect_eq "$(cat "$T/run.out")" "ran 1 hook run" "hooks run output"
expect_sql "SELECT state, attempts, exit_code FROM hook_runs WHERE id = $RUN" "queued|2|3" \
	"the run after attempt 2"
expect_sql "SELECT output FROM hook_runs WHERE id = $RUN" "attempt 2 to stdout
attempt 2 to stderr" "the output of attempt 2 replaces that of attempt 1"
check_backoff "$RUN" 60 "$t0" "$t1"

# Attempt 3 of hook_attempts = 3: failed for good.
make_due "$RUN"
hooks_run
expect_sql "SELECT state, attempts, exit_code, $(sql_is_time finished_at)
	FROM hook_runs WHERE id = $RUN" "failed|3|3|1" "the run after the last attempt"
make_due "$RUN"
hooks_run
expect_sql "SELECT state, attempts FROM hook_runs WHERE id = $RUN" "failed|3" "a failed run is not run again"
expect_eq "$(cat "$T/attempts")" "1
2
3" "CFIMAGES_HOOK_ATTEMPT of the three attempts"
cfw hooks list --state failed >"$T/list-failed" 2>&1
finished=$(sql "SELECT $(sql_time finished_at) FROM hook_runs WHERE id = $RUN")
expect_eq "$(grep "^$RUN	" "$T/list-failed")" \
	"$RUN	failed	attempts=3	exit=3	uploaded	$ID	created=$created	finished=$finished	host=$host" \
	"hooks list --state failed row"

# `hooks retry`: queued again, due now, attempts reset; then it runs.
cfw hooks retry "$RUN" >"$T/retry.out" 2>&1
expect_eq "$?" 0 "hooks retry exit status ($(cat "$T/retry.out"))"
expect_eq "$(cat "$T/retry.out")" "hook run $RUN queued again" "hooks retry output"
expect_sql "SELECT state, attempts, $(sql_bool 'finished_at IS NULL'),
	$(sql_bool "next_attempt_at <= $(sql_now_plus 0)")
	FROM hook_runs WHERE id = $RUN" "queued|0|1|1" "the run after hooks retry"
hooks_run
expect_sql "SELECT state, attempts FROM hook_runs WHERE id = $RUN" "queued|1" \
	"the retried run's first attempt"
cfw hooks retry 999999 >"$T/retry.out" 2>&1
expect_eq "$?" 1 "hooks retry of an unknown run"
grep -q '^cfimages-webhook: ' "$T/retry.out" || fail "hooks retry of an unknown run: no error message"

# Output is kept to its last 4096 bytes.
write_file "$T/big.json" "{\"id\":\"$BIG\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}"
cgi POST "$T/big.json"
expect_answer 200 OK
wait_until 20 sql_is "SELECT state FROM hook_runs WHERE image_id = '$BIG'" "done" ||
	fail "the big-output run is not done: $(sql "SELECT state, exit_code FROM hook_runs WHERE image_id = '$BIG'")"
{
	printf 'attempt 1 to stdout\nattempt 1 to stderr\n'
	awk 'BEGIN { for (i = 0; i < 10000; i++) printf "%c", 65 + i % 26 }'
} | tail -c 4096 >"$T/expected-tail"
sql_text output "FROM hook_runs WHERE image_id = '$BIG'" >"$T/tail"
cmp -s "$T/tail" "$T/expected-tail" ||
	fail "the kept output is not the last 4096 bytes ($(wc -c <"$T/tail" 2>/dev/null) bytes kept)"
exit 0
