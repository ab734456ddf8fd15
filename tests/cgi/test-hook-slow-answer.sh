#!/bin/sh
# cfimages-webhook(8) HOOKS: a slow hook never delays the answer.  As CGI the answer is
# finished for the web server when the process has exited and every copy
# of its stdout and stderr is closed (Apache and lighttpd read both to
# EOF): a hook that sleeps 30 s must not hold either.  The whole request,
# measured to EOF on both pipes and the exit, takes little more than the
# same request with no hook, measured first in the same test (so a busy
# machine or valgrind slows both), and far less than the hook's sleep; the
# run is then running in the background.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

ID=img-slow
BASE=img-baseline
init_db "$ID" "$BASE"
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
HOOK_SLEEP_S=30

# timed_request ID: one delivery for ID, with stdout and stderr through
# pipes, each read to EOF by cat; the group ends when both cats have seen
# EOF.  The binary's exit status goes through a file.  Sets ELAPSED_MS
# and checks the answer.
timed_request()
{
	write_file "$T/$1.json" "{\"id\":\"$1\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}"
	CGI_N=$((CGI_N + 1))
	tr_start=$(date +%s%N)
	{
		{
			run_binary 9 PATH="$CGI_PATH" GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=POST \
				CONTENT_LENGTH="$(wc -c <"$T/$1.json" | tr -d ' ')" REMOTE_ADDR=127.0.0.1 \
				CFIMAGES_WEBHOOK_CONFIG="$EMPTY_CONF" CFIMAGES_WEBHOOK_DB="$DB" \
				CFIMAGES_WEBHOOK_HOOKS_DIR="$HOOKS" \
				CFIMAGES_WEBHOOK_HOOK_TIMEOUT=$((HOOK_SLEEP_S * 2)) \
				<"$T/$1.json" 2>&1 1>&3 3>&-
			echo $? >"$T/$1.rc"
		} | cat >"$T/$1.err" 3>&-
	} 3>&1 | cat >"$T/$1.answer"
	tr_end=$(date +%s%N)
	ELAPSED_MS=$(((tr_end - tr_start) / 1000000))
	expect_eq "$(cat "$T/$1.rc")" 0 "exit status of the CGI ($1)"
	parse_answer "$T/$1.answer"
	expect_answer 200 OK
}

# The same request with no hook to run: the baseline.
timed_request "$BASE"
BASELINE_MS=$ELAPSED_MS
# The margin covers starting the detached runner; twice the baseline
# covers the noise of a loaded machine.  Far below the hook's sleep.
LIMIT_MS=$((BASELINE_MS * 2 + 4000))
[ "$LIMIT_MS" -lt $((HOOK_SLEEP_S * 1000 / 2)) ] ||
	skip "this machine is too slow to tell: a request with no hook took $BASELINE_MS ms"
expect_sql "SELECT count(*) FROM hook_runs" 0 "hook runs of the baseline"

hook_script "$HOOKS/uploaded" "echo \$\$ >'$T/hook.pid'" 'echo slow hook started' \
	"sleep $HOOK_SLEEP_S"
timed_request "$ID"
say "the request took $ELAPSED_MS ms, the same with no hook $BASELINE_MS ms"
[ "$ELAPSED_MS" -lt "$LIMIT_MS" ] ||
	fail "the answer took $ELAPSED_MS ms (limit $LIMIT_MS: twice the $BASELINE_MS ms of no hook + 4 s) with a $HOOK_SLEEP_S s hook: the hook delayed it"
grep -q 'slow hook' "$T/$ID.answer" "$T/$ID.err" &&
	fail "the hook's output reached the CGI's stdout or stderr"

# The run goes on in the background.
wait_until 10 sql_is "SELECT state FROM hook_runs WHERE image_id = '$ID'" running ||
	fail "the hook run is not running: $(sql "SELECT state, output FROM hook_runs")"
wait_until 10 test -s "$T/hook.pid" || fail "the hook did not start"
if [ -s "$T/hook.pid" ]; then
	alive "$(cat "$T/hook.pid")" || fail "the hook is not running any more"
fi
exit 0
