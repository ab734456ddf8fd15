#!/bin/sh
# cfimages-webhook(8) DESCRIPTION and 9 in FastCGI mode (spawn-fcgi puts the listening socket on
# fd 0; cgi-fcgi sends the requests): hooks run after the answer, in a
# detached runner, so a slow (12 s) hook delays neither its own answer nor
# the next request the same process answers meanwhile; the hook's output
# is recorded; and the accept loop accumulates no zombie children over
# many deliveries that start runners.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/serverlib.sh"
. "$top_srcdir/tests/hooklib.sh"

SPAWN_FCGI=${SPAWN_FCGI:-$(command -v spawn-fcgi)}
CGI_FCGI=${CGI_FCGI:-$(command -v cgi-fcgi)}
[ -n "$SPAWN_FCGI" ] && [ -x "$SPAWN_FCGI" ] || skip "no spawn-fcgi"
[ -n "$CGI_FCGI" ] && [ -x "$CGI_FCGI" ] || skip "no cgi-fcgi (libfcgi-bin)"

START_SECONDS=10
# An answer that waited for the 12 s hook would take longer than this; an
# answer under valgrind on a busy machine takes a few seconds at most.
LIMIT_MS=9000
SOCK=$T/fcgi.sock
N=20

uploaded_body()
{
	write_file "$T/$1.json" "{\"id\":\"$1\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}"
}
zombies()
{
	ps -o stat= --ppid "$APP_PID" 2>/dev/null | grep -c '^Z'
}

mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
hook_script "$HOOKS/uploaded" \
	'echo "hook for $1 started"' \
	'[ "$1" = img-slow ] && sleep 12' \
	"echo \"\$1\" >>'$T/ran.log'" \
	'echo "hook for $1 done"'
init_db img-slow img-next img-contract
i=1
while [ "$i" -le "$N" ]; do
	cfw register "img-$i" >/dev/null || hard_error "register img-$i"
	i=$((i + 1))
done

start_spawn_fcgi SERVER_ONLY=leak

# The slow hook's own answer.
uploaded_body img-slow
fcgi POST "$T/img-slow.json"
expect_answer 200 OK
expect_one_delivery applied 200
say "answer with a 12 s hook: $ELAPSED_MS ms"
[ "$ELAPSED_MS" -lt "$LIMIT_MS" ] || fail "the answer took $ELAPSED_MS ms: the 12 s hook delayed it"
wait_until 10 sql_is "SELECT state FROM hook_runs WHERE image_id = 'img-slow'" running ||
	fail "the slow hook is not running: $(sql "SELECT state, output FROM hook_runs")"

# The next request, to the same process, while the hook runs.
uploaded_body img-next
fcgi POST "$T/img-next.json"
expect_answer 200 OK
expect_one_delivery applied 200
say "next answer: $ELAPSED_MS ms"
[ "$ELAPSED_MS" -lt "$LIMIT_MS" ] || fail "the next request took $ELAPSED_MS ms while a hook ran"
expect_sql "SELECT state FROM hook_runs WHERE image_id = 'img-slow'" running \
	"the slow hook after the next answer"

# The hook's output is recorded once it ends.
wait_until 30 sql_is "SELECT group_concat(state) FROM hook_runs" done,done ||
	fail "the hooks did not finish: $(sql "SELECT image_id, state, exit_code FROM hook_runs")"
expect_sql "SELECT output FROM hook_runs WHERE image_id = 'img-slow'" "hook for img-slow started
hook for img-slow done" "the slow hook's output"

# Many deliveries, each starting a runner: no zombie children.
i=1
while [ "$i" -le "$N" ]; do
	uploaded_body "img-$i"
	fcgi POST "$T/img-$i.json"
	expect_eq "$STATUS $BODY" "200 OK" "delivery for img-$i"
	i=$((i + 1))
done
expect_eq "$(zombies)" 0 "zombie children of the FastCGI process right after $N deliveries"
wait_until 60 sql_is "SELECT count(*) FROM hook_runs WHERE state = 'done'" $((N + 2)) ||
	fail "not all hooks ran: $(sql "SELECT state, count(*) FROM hook_runs GROUP BY state")"
wait_until 20 no_runner || fail "hook runners still there 20 s after the last run"
expect_eq "$(zombies)" 0 "zombie children of the FastCGI process after the runners ended"
expect_eq "$(sort "$T/ran.log" | uniq -d)" "" "hooks that ran twice"
expect_eq "$(wc -l <"$T/ran.log" | tr -d ' ')" $((N + 2)) "hook executions"
alive "$APP_PID" || fail "the FastCGI process is gone: $(cat "$T/app.stderr")"
expect_sql "SELECT count(*) FROM webhook_deliveries" $((N + 2)) "deliveries recorded"
# The contract in FastCGI mode: argv, exactly the eight variables (nothing
# of the FastCGI process's environment, nothing of the request), stdin the
# body byte for byte.
cat >"$HOOKS/failed" <<EOF
#!/bin/sh
printf '%s\n' "\$0" "\$1" "\$2" >'$T/fc.argv'
tr '\0' '\n' </proc/\$\$/environ | sed 's/=.*//' | sort >'$T/fc.env'
cat >'$T/fc.stdin'
EOF
chmod 755 "$HOOKS/failed"
write_file "$T/failed.json" '{"id":"img-contract","error":"it \"broke\"; $(touch x)","timestamp":"2024-01-01T12:00:00.000Z"}'
fcgi POST "$T/failed.json" HTTP_X_EVIL=1 CFIMAGES_WEBHOOK_HOOKS_DIR=/nonexistent
expect_answer 200 OK
wait_until 20 test -s "$T/fc.stdin" || fail "the failed hook did not run in FastCGI mode"
expect_eq "$(cat "$T/fc.argv")" "$HOOKS/failed
img-contract
failed" "hook argv in FastCGI mode"
expect_eq "$(tr '\n' ' ' <"$T/fc.env")" "CFIMAGES_DB CFIMAGES_EVENT CFIMAGES_HOOK_ATTEMPT \
CFIMAGES_HOOK_RUN_ID CFIMAGES_IMAGE_ID CFIMAGES_PREVIOUS_STATUS CFIMAGES_STATUS PATH " \
	"hook environment in FastCGI mode"
cmp -s "$T/fc.stdin" "$T/failed.json" || fail "hook stdin differs from the body in FastCGI mode"

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
expect_eq "$?" 0 "exit status of the FastCGI process after SIGTERM"
unregister_pid "$APP_PID"
grep -q "AddressSanitizer\|runtime error" "$T/app.stderr" && fail "app.stderr: $(head -5 "$T/app.stderr")"
exit 0
