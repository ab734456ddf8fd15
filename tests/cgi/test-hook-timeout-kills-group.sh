#!/bin/sh
# SPEC 9: when hook_timeout has passed, the hook's whole process group
# gets TERM, then KILL: a child the hook started in the background dies
# with it.  The run records the death by signal (exit_code -15, or -9 for
# a hook that ignores TERM and is killed after the grace period) and says
# in its output that hook_timeout killed it.
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

ID=img-timeout
STUBBORN=img-stubborn
init_db "$ID" "$STUBBORN"
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
# The background child's PID and the hook's own, written next to the
# hooks directory (the hook's working directory).
hook_script "$HOOKS/uploaded" \
	'[ "$CFIMAGES_IMAGE_ID" = img-stubborn ] && trap "" TERM' \
	'sleep 60 &' \
	'echo $! >"../child.$CFIMAGES_IMAGE_ID"' \
	'echo $$ >"../hook.$CFIMAGES_IMAGE_ID"' \
	'echo "hook started"' \
	'sleep 60' \
	'echo "hook not killed"'

# Seconds: long enough for the hook to get to its sleep on a busy machine.
TIMEOUT=2

# run_killed ID: delivers for ID and waits for its one attempt to end.
run_killed()
{
	write_file "$T/$1.json" "{\"id\":\"$1\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}"
	cgi POST "$T/$1.json" CFIMAGES_WEBHOOK_HOOK_TIMEOUT=$TIMEOUT CFIMAGES_WEBHOOK_HOOK_ATTEMPTS=1
	expect_answer 200 OK
	wait_until 30 sql_is "SELECT state FROM hook_runs WHERE image_id = '$1'" failed ||
		fail "$1: the run did not end failed: $(sql "SELECT state, exit_code, output FROM hook_runs WHERE image_id = '$1'")"
}

# gone PID: the process has ended (a zombie waiting for its parent counts).
gone()
{
	! alive "$1"
}

# check_dead ID: the hook and its background child are gone.
check_dead()
{
	for what in hook child; do
		if [ ! -s "$T/$what.$1" ]; then
			fail "$1: the hook did not record its $what's PID"
			continue
		fi
		pid=$(cat "$T/$what.$1")
		wait_until 5 gone "$pid" || fail "$1: the $what ($pid) outlived the timeout"
	done
}

start=$(date +%s)
run_killed "$ID"
check_dead "$ID"
expect_sql "SELECT exit_code FROM hook_runs WHERE image_id = '$ID'" -15 \
	"exit_code of a hook killed by TERM"
out=$(sql "SELECT output FROM hook_runs WHERE image_id = '$ID'")
case $out in
"hook started"*hook_timeout*) ;;
*) fail "the output of the killed hook does not mention hook_timeout: [$out]" ;;
esac
case $out in
*"not killed"*) fail "the hook went on after the timeout: [$out]" ;;
esac

# TERM ignored (by the hook and its foreground child, the background one
# is started with TERM ignored as well): KILL after the grace period (5 s).
run_killed "$STUBBORN"
check_dead "$STUBBORN"
expect_sql "SELECT exit_code FROM hook_runs WHERE image_id = '$STUBBORN'" -9 \
	"exit_code of a hook that ignored TERM"
case $(sql "SELECT output FROM hook_runs WHERE image_id = '$STUBBORN'") in
*hook_timeout*) ;;
*) fail "the output of the stubborn hook does not mention hook_timeout" ;;
esac
[ $(($(date +%s) - start)) -lt 40 ] || fail "took $(($(date +%s) - start)) s (the hooks sleep 60 s)"
exit 0
