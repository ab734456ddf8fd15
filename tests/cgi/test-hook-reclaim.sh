#!/bin/sh
# SPEC 9: a run left `running` by a process that died is taken up again
# once hook_timeout (plus the kill grace and a slack) has passed, after
# killing its recorded process group if that group is still the one that
# was started (same leader start time, /proc/PID/stat field 22).  A
# recorded group whose leader has a different start time is someone
# else's process (the PID was reused): it is not killed, but the run is
# still taken up.  A run that started recently is left alone.  The dead
# runners are simulated: rows set to running, with a live `setsid sleep`
# as their process group.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

init_db img-own img-reused img-recent
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
hook_script "$HOOKS/uploaded" \
	"echo \"\$CFIMAGES_HOOK_RUN_ID \$CFIMAGES_HOOK_ATTEMPT\" >>'$T/ran.log'"

# A process in its own session and process group, like a hook group
# (setsid does not fork: a background job of this shell leads no group).
# Its PID goes into LEADER.
group_leader()
{
	setsid sleep 300 </dev/null >/dev/null 2>&1 &
	LEADER=$!
	register_pid "$LEADER"
	wait_until 5 is_leader "$LEADER" ||
		hard_error "setsid sleep ($LEADER) is not a process group leader"
}
is_leader()
{
	[ "$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f3)" = "$1" ]
}
# Field 22 of /proc/PID/stat (after the command name in parentheses).
start_time()
{
	sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f20
}
# queue_running IMAGE STARTED_AT PGID PG_START: a run its runner left
# running.  Prints its id.
queue_running()
{
	sql "INSERT INTO hook_runs (image_id, status, hook, path, state, attempts,
		next_attempt_at, created_at, started_at, previous_status, event, input,
		pgid, pg_start)
		VALUES ('$1', 'uploaded', 'uploaded', '$HOOKS/uploaded', 'running', 1,
		'2000-01-01T00:00:00.000Z', '2000-01-01T00:00:00.000Z', '$2', 'pending',
		'upload.complete', CAST('{\"id\":\"$1\"}' AS BLOB), $3, $4);
		SELECT last_insert_rowid();"
}
hooks_run()
{
	cfw hooks run >"$T/run.out" 2>"$T/run.err"
	expect_eq "$?" 0 "hooks run exit status ($(cat "$T/run.err"))"
}
gone()
{
	! alive "$1"
}

group_leader
OWN=$LEADER
group_leader
REUSED=$LEADER
group_leader
RECENT=$LEADER
LONG_AGO=2000-01-01T00:00:00.000Z
NOW=$(sql "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')")
RUN_OWN=$(queue_running img-own "$LONG_AGO" "$OWN" "$(start_time "$OWN")")
RUN_REUSED=$(queue_running img-reused "$LONG_AGO" "$REUSED" $(($(start_time "$REUSED") + 12345)))
RUN_RECENT=$(queue_running img-recent "$NOW" "$RECENT" "$(start_time "$RECENT")")

hooks_run
wait_until 5 gone "$OWN" || fail "the recorded process group of the dead runner's hook was not killed"
alive "$REUSED" || fail "a process whose start time does not match the record was killed"
alive "$RECENT" || fail "the group of a run that started recently was killed"
expect_sql "SELECT id, state, attempts, exit_code FROM hook_runs ORDER BY id" \
	"$RUN_OWN|done|2|0
$RUN_REUSED|done|2|0
$RUN_RECENT|running|1|" "the runs after hooks run"
expect_eq "$(sort "$T/ran.log" 2>/dev/null)" "$RUN_OWN 2
$RUN_REUSED 2" "the hooks that ran again (run id, attempt)"
grep -q "$RUN_OWN" "$T/run.err" || fail "the reclaimed run $RUN_OWN is not logged: $(cat "$T/run.err")"

# Once it is old enough, the recent one is taken up as well (here by
# making it old); its attempts used up, it is left failed instead.
sql "UPDATE hook_runs SET started_at = '$LONG_AGO', attempts = 5 WHERE id = $RUN_RECENT"
hooks_run
wait_until 5 gone "$RECENT" || fail "the recorded process group of the last run was not killed"
expect_sql "SELECT state, attempts, finished_at IS NOT NULL FROM hook_runs WHERE id = $RUN_RECENT" \
	"failed|5|1" "a stale run with its attempts used up"
case $(sql "SELECT output FROM hook_runs WHERE id = $RUN_RECENT") in
*died*) ;;
*) fail "the failed stale run's output does not say its runner died" ;;
esac
expect_eq "$(grep -c "^$RUN_RECENT " "$T/ran.log")" 0 "runs of the hook with its attempts used up"
exit 0
