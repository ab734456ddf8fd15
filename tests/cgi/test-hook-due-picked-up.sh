#!/bin/sh
# SPEC 9: runs that are due - a retry whose time has come, a run left
# running by a process that died - are also picked up by later requests,
# not only by `hooks run`.  The retry, in another process, gets the same
# stdin bytes as the first attempt (the body is kept with the run).
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

ID=img-due
init_db "$ID" img-other img-stale
mkdir -p "$HOOKS" "$T/out"
chmod 755 "$HOOKS"
# Fails its first attempt, succeeds afterwards; keeps each attempt's stdin.
hook_script "$HOOKS/uploaded" \
	"cat >'$T/out/'\"\$CFIMAGES_IMAGE_ID.\$CFIMAGES_HOOK_ATTEMPT\"" \
	'[ "$CFIMAGES_HOOK_ATTEMPT" -gt 1 ] || [ "$CFIMAGES_IMAGE_ID" != img-due ]'

{
	printf '{\n  "id": "%s",\n  "uploaded": "2024-01-01T12:00:00.000Z",\n' "$ID"
	printf '  "metadata": {"note": "caf\303\251\\n", "n": 1}\n}\n'
} >"$T/u.json"
cgi POST "$T/u.json"
expect_answer 200 OK
RUN=$(sql "SELECT id FROM hook_runs WHERE image_id = '$ID'")
[ -n "$RUN" ] || hard_error "no hook run queued"
wait_until 20 sql_is "SELECT state, attempts FROM hook_runs WHERE id = $RUN" "queued|1" ||
	fail "the first attempt did not fail as planned: $(sql "SELECT state, attempts, output FROM hook_runs WHERE id = $RUN")"
kill_runners

# Due now; a later request that queues nothing itself (a duplicate).
sql "UPDATE hook_runs SET next_attempt_at = '2000-01-01T00:00:00.000Z' WHERE id = $RUN"
cgi POST "$T/u.json"
expect_answer 200 OK
expect_one_delivery duplicate 200
wait_until 20 sql_is "SELECT state, attempts FROM hook_runs WHERE id = $RUN" "done|2" ||
	fail "the due retry was not picked up after a request: $(sql "SELECT state, attempts FROM hook_runs WHERE id = $RUN")"
cmp -s "$T/out/$ID.1" "$T/u.json" || fail "stdin of attempt 1 is not the body"
cmp -s "$T/out/$ID.2" "$T/u.json" || fail "stdin of the retry is not the body"

# A run left running long ago by a dead process (no process group
# recorded): a later request has it taken up again.
wait_until 20 no_runner || fail "a hook runner is still there 20 s later"
write_file "$T/s.json" '{"id":"img-stale","uploaded":"2024-01-01T12:00:00.000Z"}'
sql "INSERT INTO hook_runs (image_id, status, hook, path, state, attempts,
	next_attempt_at, created_at, started_at, previous_status, event, input)
	VALUES ('img-stale', 'uploaded', 'uploaded', '$HOOKS/uploaded', 'running', 1,
	'2000-01-01T00:00:00.000Z', '2000-01-01T00:00:00.000Z', '2000-01-01T00:00:00.000Z',
	'pending', 'upload.complete', readfile('$T/s.json'))"
STALE=$(sql "SELECT id FROM hook_runs WHERE image_id = 'img-stale'")
write_file "$T/other.json" '{"id":"img-other","error":"no hooks for failed"}'
cgi POST "$T/other.json"
expect_answer 200 OK
expect_one_delivery applied 200
wait_until 20 sql_is "SELECT state, attempts FROM hook_runs WHERE id = $STALE" "done|2" ||
	fail "the stale run was not taken up after a request: $(sql "SELECT state, attempts, output FROM hook_runs WHERE id = $STALE")"
cmp -s "$T/out/img-stale.2" "$T/s.json" || fail "stdin of the taken-up run"
exit 0
