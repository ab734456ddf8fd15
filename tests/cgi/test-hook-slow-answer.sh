#!/bin/sh
# SPEC 9: a slow hook never delays the answer.  As CGI the answer is
# finished for the web server when the process has exited and every copy
# of its stdout and stderr is closed (Apache and lighttpd read both to
# EOF): a hook that sleeps 10 s must not hold either.  The whole request,
# measured to EOF on both pipes and the exit, takes well under 10 s; the
# run is then running in the background.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

ID=img-slow
init_db "$ID"
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
hook_script "$HOOKS/uploaded" "echo \$\$ >'$T/hook.pid'" 'echo slow hook started' 'sleep 10'
LIMIT_MS=3000

write_file "$T/u.json" "{\"id\":\"$ID\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}"
# stdout and stderr through pipes, each read to EOF by cat; the group
# ends when both cats have seen EOF.  The binary's exit status goes
# through a file.
start=$(date +%s%N)
{
	{
		run_binary 9 PATH="$CGI_PATH" GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=POST \
			CONTENT_LENGTH="$(wc -c <"$T/u.json" | tr -d ' ')" REMOTE_ADDR=127.0.0.1 \
			CFIMAGES_WEBHOOK_CONFIG="$EMPTY_CONF" CFIMAGES_WEBHOOK_DB="$DB" \
			CFIMAGES_WEBHOOK_HOOKS_DIR="$HOOKS" CFIMAGES_WEBHOOK_HOOK_TIMEOUT=30 \
			<"$T/u.json" 2>&1 1>&3 3>&-
		echo $? >"$T/rc"
	} | cat >"$T/answer.err" 3>&-
} 3>&1 | cat >"$T/answer"
end=$(date +%s%N)
elapsed_ms=$(((end - start) / 1000000))
say "the request took $elapsed_ms ms"
expect_eq "$(cat "$T/rc")" 0 "exit status of the CGI"
CGI_N=1
parse_answer "$T/answer"
expect_answer 200 OK
[ "$elapsed_ms" -lt "$LIMIT_MS" ] ||
	fail "the answer took $elapsed_ms ms (limit $LIMIT_MS) with a 10 s hook: the hook delayed it"
grep -q 'slow hook' "$T/answer" "$T/answer.err" && fail "the hook's output reached the CGI's stdout or stderr"

# The run goes on in the background.
wait_until 10 sql_is "SELECT state FROM hook_runs WHERE image_id = '$ID'" running ||
	fail "the hook run is not running: $(sql "SELECT state, output FROM hook_runs")"
wait_until 10 test -s "$T/hook.pid" || fail "the hook did not start"
if [ -s "$T/hook.pid" ]; then
	alive "$(cat "$T/hook.pid")" || fail "the hook is not running any more"
fi
exit 0
