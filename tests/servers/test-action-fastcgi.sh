#!/bin/sh
# cfimages-webhook(8) HOOKS, actions in FastCGI mode (spawn-fcgi puts the
# listening socket on fd 0; cgi-fcgi sends the requests): the answer never
# waits for the outbound call.  With an endpoint that accepts the call and
# never answers, the delivery is answered at once, and so is the next
# delivery the same process takes meanwhile, whose own action (another
# image) is called and done while the first call still hangs.  The
# FastCGI process's environment reaches ${env:} values.
#
# Mutations this catches: the call made in the request loop (the answer,
# or the next request, waits for it); one hanging call holding every run
# (a runner-wide lock, or the next runner waiting for the first); the
# runner not inheriting the process environment.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/serverlib.sh"
. "$top_srcdir/tests/hooklib.sh"
. "$top_srcdir/tests/actionlib.sh"

SPAWN_FCGI=${SPAWN_FCGI:-$(command -v spawn-fcgi)}
CGI_FCGI=${CGI_FCGI:-$(command -v cgi-fcgi)}
[ -n "$SPAWN_FCGI" ] && [ -x "$SPAWN_FCGI" ] || skip "no spawn-fcgi"
[ -n "$CGI_FCGI" ] && [ -x "$CGI_FCGI" ] || skip "no cgi-fcgi (libfcgi-bin)"

START_SECONDS=10
# An answer that waited for the call would take the call's 80 s; an answer
# under valgrind on a busy machine takes a few seconds (27 s was seen once
# with several test passes running at once).
LIMIT_MS=45000
SOCK=$T/fcgi.sock
init_db img-slow img-next
start_receiver app
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
action_file "$HOOKS/uploaded.webhook" \
	"url = http://127.0.0.1:$RPORT/hang/120" \
	'timeout = 80'
action_file "$HOOKS/failed.webhook" \
	"url = http://127.0.0.1:$RPORT/next" \
	'header = X-Deploy: ${env:DEPLOY_ENV}'

start_spawn_fcgi CFIMAGES_WEBHOOK_HOOK_TIMEOUT=90 DEPLOY_ENV=fastcgi-env

write_file "$T/slow.json" '{"id":"img-slow","uploaded":"2024-01-01T12:00:00.000Z"}'
fcgi POST "$T/slow.json"
expect_answer 200 OK
expect_one_delivery applied 200
say "answer with a hanging call: $ELAPSED_MS ms"
[ "$ELAPSED_MS" -lt "$LIMIT_MS" ] || fail "the answer took $ELAPSED_MS ms: the outbound call delayed it"
wait_until 20 recv_count_is app 1 || fail "the call did not reach the endpoint"
RUN=$(run_id img-slow uploaded.webhook)
wait_until 10 sql_is "SELECT state FROM hook_runs WHERE id = $RUN" running ||
	fail "the hanging call's run is not running: $(run_row "$RUN")"

write_file "$T/next.json" '{"id":"img-next","error":"broken","timestamp":"2024-01-01T12:00:00.000Z"}'
fcgi POST "$T/next.json"
expect_answer 200 OK
expect_one_delivery applied 200
say "next answer: $ELAPSED_MS ms"
[ "$ELAPSED_MS" -lt "$LIMIT_MS" ] || fail "the next request took $ELAPSED_MS ms while a call hung"
RUN2=$(run_id img-next failed.webhook)
wait_until 30 run_is "$RUN2" "done|1" ||
	fail "the next image's action did not run while the first call hung: $(run_row "$RUN2")"
expect_eq "$(recv app 2 path)" /next "the second call"
expect_eq "$(recv app 2 header X-Deploy)" fastcgi-env "an \${env:} value from the FastCGI process's environment"
expect_sql "SELECT state FROM hook_runs WHERE id = $RUN" running "the hanging call's run meanwhile"

app_gone()
{
	! alive "$APP_PID"
}
kill -TERM "$APP_PID"
if ! wait_until 10 app_gone; then
	fail "the FastCGI process still runs 10 s after SIGTERM"
	kill -KILL "$APP_PID"
fi
wait "$APP_PID"
unregister_pid "$APP_PID"
grep -q "AddressSanitizer\|runtime error" "$T/app.stderr" && fail "app.stderr: $(head -5 "$T/app.stderr")"
exit 0
