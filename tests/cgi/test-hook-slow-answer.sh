#!/bin/sh
# SPEC 9: a slow hook never delays the answer.  As CGI the answer is
# finished for the web server when the process has exited and every copy
# of its stdout and stderr is closed (Apache and lighttpd read both to
# EOF): a hook that sleeps 10 s must not hold either.  The whole request,
# measured to EOF on both pipes and the exit, takes well under 10 s; the
# run is then running in the background.
. "$top_srcdir/tests/lib.sh"
# --- Local helpers of the hook tests (SPEC 9) -------------------------
# Hooks run after the answer, in a detached runner: these wait for their
# effects with bounded polls, and at exit kill (by PID) whatever this test
# left behind.

# The processes of this test that may outlive a request: those whose
# working directory is in $T (hooks run in $HOOKS) or whose environment
# names $T (the detached runner inherits CFIMAGES_WEBHOOK_DB, a hook gets
# CFIMAGES_DB).  Never this shell.
leftover_pids()
{
	{
		grep -laF -- "$T" /proc/[0-9]*/environ 2>/dev/null |
			sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p'
		find /proc/[0-9]*/cwd -maxdepth 0 \( -lname "$T" -o -lname "$T/*" \) 2>/dev/null |
			sed -n 's|^/proc/\([0-9]*\)/cwd$|\1|p'
	} | sort -u | grep -vx -e "$$"
}

# Of those, the detached hook runners.
runner_pids()
{
	for rp in $(leftover_pids); do
		tr '\0' ' ' <"/proc/$rp/cmdline" 2>/dev/null | grep -q 'hooks run --detached' &&
			echo "$rp"
	done
}

kill_leftovers()
{
	kl_i=0
	while [ "$kl_i" -lt 10 ]; do
		kl_pids=$(leftover_pids)
		[ -n "$kl_pids" ] || return 0
		# shellcheck disable=SC2086 # a list of PIDs
		kill -KILL $kl_pids 2>/dev/null
		sleep 0.2
		kl_i=$((kl_i + 1))
	done
}

# Stops the detached runners (e.g. one lingering for a retry) so that the
# test alone decides when a due run is taken up.
kill_runners()
{
	kr_i=0
	while [ "$kr_i" -lt 50 ]; do
		kr_pids=$(runner_pids)
		[ -n "$kr_pids" ] || return 0
		# shellcheck disable=SC2086 # a list of PIDs
		kill -KILL $kr_pids 2>/dev/null
		sleep 0.1
		kr_i=$((kr_i + 1))
	done
	fail "could not stop the hook runners $(runner_pids)"
}

# shellcheck disable=SC2154 # hk_rc is set when the trap runs
trap 'hk_rc=$?; kill_leftovers; cleanup "$hk_rc"' EXIT

# wait_until SECONDS COMMAND...: polls COMMAND every 0.1 s until it
# succeeds; false when it never did.
wait_until()
{
	wu_n=$(($1 * 10))
	shift
	while ! "$@"; do
		[ "$wu_n" -gt 0 ] || return 1
		sleep 0.1
		wu_n=$((wu_n - 1))
	done
	return 0
}

# sql_is SQL EXPECTED: the output of SQL is EXPECTED (a condition).
sql_is()
{
	[ "$(sql "$1" 2>/dev/null)" = "$2" ]
}

no_runner()
{
	[ -z "$(runner_pids)" ]
}

# alive PID: the process exists and is not a zombie.
alive()
{
	kill -0 "$1" 2>/dev/null || return 1
	case $(ps -o stat= -p "$1" 2>/dev/null) in
	Z* | '') return 1 ;;
	esac
	return 0
}

# hook_script PATH LINES...: an executable (0755) shell script.
hook_script()
{
	hs_path=$1
	shift
	{
		echo '#!/bin/sh'
		printf '%s\n' "$@"
	} >"$hs_path"
	chmod 755 "$hs_path"
}
# --- end of the local helpers -----------------------------------------

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
