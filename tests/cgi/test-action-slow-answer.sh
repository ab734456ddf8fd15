#!/bin/sh
# cfimages-webhook(8) HOOKS, actions in CGI mode: the answer never waits for
# the outbound call.  With an endpoint that accepts the call and never
# answers (timeout 40 s), the request, measured as a web server sees it (to
# EOF on stdout and stderr, and the exit), takes little more than the same
# request with no action, and far less than the call; a second delivery
# while the call hangs is answered as fast; meanwhile the run is running
# and the endpoint has the request.
#
# Mutations this catches: the call made in the CGI process before it exits
# (or before stdout is closed); the detached runner keeping the CGI's
# stderr open (the web server would wait for it); the runner started only
# after the call.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"
. "$top_srcdir/tests/actionlib.sh"

init_db img-baseline img-slow img-next
start_receiver app
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
CALL_S=40

# timed_request ID: one delivery for ID, with stdout and stderr through
# pipes, each read to EOF by cat (as tests/cgi/test-hook-slow-answer.sh),
# at most CALL_S / 2 seconds (a runner that kept a pipe open would hold
# it for the whole call, and its retries); sets ELAPSED_MS and checks the
# answer.
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
				CFIMAGES_WEBHOOK_HOOK_TIMEOUT=$((CALL_S * 2)) \
				<"$T/$1.json" 2>&1 1>&3 3>&-
			echo $? >"$T/$1.rc"
		} | timeout -k 2 $((CALL_S / 2)) cat >"$T/$1.err" 3>&-
	} 3>&1 | timeout -k 2 $((CALL_S / 2)) cat >"$T/$1.answer"
	tr_end=$(date +%s%N)
	ELAPSED_MS=$(((tr_end - tr_start) / 1000000))
	expect_eq "$(cat "$T/$1.rc")" 0 "exit status of the CGI ($1)"
	parse_answer "$T/$1.answer"
	expect_answer 200 OK
}

timed_request img-baseline
BASELINE_MS=$ELAPSED_MS
LIMIT_MS=$((BASELINE_MS * 2 + 4000))
[ "$LIMIT_MS" -lt $((CALL_S * 1000 / 2)) ] ||
	skip "this machine is too slow to tell: a request with no action took $BASELINE_MS ms"

action_file "$HOOKS/uploaded.webhook" \
	"url = http://127.0.0.1:$RPORT/hang/$((CALL_S + 20))" \
	"timeout = $CALL_S"
timed_request img-slow
say "the request took $ELAPSED_MS ms, the same with no action $BASELINE_MS ms"
[ "$ELAPSED_MS" -lt "$LIMIT_MS" ] ||
	fail "the answer took $ELAPSED_MS ms (limit $LIMIT_MS) with an action whose endpoint hangs"
wait_until 20 recv_count_is app 1 || fail "the action's call did not reach the endpoint"
RUN=$(run_id img-slow uploaded.webhook)
wait_until 10 sql_is "SELECT state FROM hook_runs WHERE id = $RUN" running ||
	fail "the action's run is not running: $(sql "SELECT state, output FROM hook_runs WHERE id = $RUN")"

# Another delivery while the call hangs.
timed_request img-next
say "the next request took $ELAPSED_MS ms"
[ "$ELAPSED_MS" -lt "$LIMIT_MS" ] ||
	fail "the next answer took $ELAPSED_MS ms (limit $LIMIT_MS) while a call hung"
expect_eq "$(image_status img-next)" uploaded "the next delivery is applied"
expect_sql "SELECT state FROM hook_runs WHERE id = $RUN" running "the hanging call's run after the next answer"
exit 0
