#!/bin/sh
# SPEC 9: two processes never run the same run.  Two `hooks run` started
# together over six queued runs (each hook takes 0.3 s, so they overlap):
# every run executes exactly once, each with attempt 1, and between them
# the two processes report six runs.
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

init_db
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
hook_script "$HOOKS/uploaded" 'sleep 0.3' \
	"echo \"\$CFIMAGES_HOOK_RUN_ID \$CFIMAGES_HOOK_ATTEMPT\" >>'$T/ran.log'"
# Six runs for six images, queued as a delivery would (no runner of a
# request involved).
for i in 1 2 3 4 5 6; do
	sql "INSERT INTO hook_runs (image_id, status, hook, path, state, attempts,
		next_attempt_at, created_at, previous_status, event, input)
		VALUES ('img-$i', 'uploaded', 'uploaded', '$HOOKS/uploaded', 'queued', 0,
		'2000-01-01T00:00:00.000Z', '2000-01-01T00:00:00.000Z', 'pending',
		'upload.complete', CAST('{\"id\":\"img-$i\"}' AS BLOB))"
done
expect_sql "SELECT count(*) FROM hook_runs WHERE state = 'queued'" 6 "queued runs"

cfw hooks run >"$T/a.out" 2>"$T/a.err" &
A=$!
cfw hooks run >"$T/b.out" 2>"$T/b.err" &
B=$!
register_pid "$A"
register_pid "$B"
wait "$A"
expect_eq "$?" 0 "the first hooks run ($(cat "$T/a.err"))"
wait "$B"
expect_eq "$?" 0 "the second hooks run ($(cat "$T/b.err"))"
unregister_pid "$A"
unregister_pid "$B"

expect_eq "$(sort -n "$T/ran.log")" "$(sql "SELECT id || ' 1' FROM hook_runs ORDER BY id")" \
	"each run executed once (run id, attempt)"
expect_sql "SELECT count(*) FROM hook_runs WHERE state = 'done' AND attempts = 1" 6 "runs done"
a=$(sed -n 's/^ran \([0-9]*\) hook runs*$/\1/p' "$T/a.out")
b=$(sed -n 's/^ran \([0-9]*\) hook runs*$/\1/p' "$T/b.out")
expect_eq "$((${a:-0} + ${b:-0}))" 6 "runs reported by the two processes ($(cat "$T/a.out") / $(cat "$T/b.out"))"
[ "${a:-0}" -gt 0 ] && [ "${b:-0}" -gt 0 ] ||
	say "note: one process ran everything ($a / $b): they did not overlap this time"
exit 0
