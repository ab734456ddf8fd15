#!/bin/sh
# cfimages-webhook(8) HOOKS: a run left `running` by a process that died is taken up again
# once hook_timeout (plus the kill grace and a slack) has passed, after
# killing its recorded process group if that group is provably the hook
# started for that run: its leader still has the recorded start time
# (/proc/PID/stat field 22) and its environment carries the run's
# CFIMAGES_HOOK_RUN_ID and CFIMAGES_DB.  Here a real runner is killed
# while its hook sleeps: the hook is killed by the next `hooks run`, and
# the run executed again.  A recorded group whose leader has a different
# start time is someone else's process (the PID was reused): it is not
# killed, but the run is still taken up.  A run that started recently is
# left alone.  (test-hook-reclaim-forged.sh: rows naming processes we did
# not start.)
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

init_db img-own img-reused img-recent
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
# The first attempt for img-own sleeps (its runner is killed meanwhile).
hook_script "$HOOKS/uploaded" \
	"echo \"\$CFIMAGES_HOOK_RUN_ID \$CFIMAGES_HOOK_ATTEMPT\" >>'$T/ran.log'" \
	'if [ "$CFIMAGES_IMAGE_ID.$CFIMAGES_HOOK_ATTEMPT" = img-own.1 ]; then' \
	"	echo \$\$ >'$T/own.pid'" \
	'	exec sleep 300' \
	'fi'
DB_REAL=$(hook_db)

# A process leading its own process group but not a session, like a hook
# (a background job of this shell leads no group; one started with setsid
# leads a session, which no hook does).  Its PID goes into LEADER; the
# arguments (VAR=VALUE) are added to its environment.
group_leader()
{
	env "$@" perl -e 'setpgrp(0, 0) or die; exec "sleep", "300"' </dev/null >/dev/null 2>&1 &
	LEADER=$!
	register_pid "$LEADER"
	wait_until 5 is_leader "$LEADER" ||
		hard_error "the leader ($LEADER) is not a process group leader"
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
# queue_running IMAGE LEASE_UNTIL PGID PG_START: a run its runner left
# running, its lease ending at LEASE_UNTIL.  Prints its id.
queue_running()
{
	sql "INSERT INTO hook_runs (image_id, status, hook, path, state, attempts,
		next_attempt_at, created_at, started_at, lease_until, previous_status, event,
		input, pgid, pg_start)
		VALUES ('$1', 'uploaded', 'uploaded', '$HOOKS/uploaded', 'running', 1,
		'2000-01-01T00:00:00.000Z', '2000-01-01T00:00:00.000Z', '$2', '$2', 'pending',
		'upload.complete', $(sql_blob "'{\"id\":\"$1\"}'"), $3, $4)
		RETURNING id"
}
# The PID of process $1's parent.
parent_of()
{
	sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f2
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

# A runner dies while its hook runs: killed here, as the OOM killer might.
sql "INSERT INTO hook_runs (image_id, status, hook, path, state, attempts, next_attempt_at,
	created_at, previous_status, event, input)
	VALUES ('img-own', 'uploaded', 'uploaded', '$HOOKS/uploaded', 'queued', 0,
	'2000-01-01T00:00:00.000Z', '2000-01-01T00:00:00.000Z', 'pending', 'upload.complete',
	$(sql_blob "'{\"id\":\"img-own\"}'"))"
RUN_OWN=$(sql "SELECT id FROM hook_runs WHERE image_id = 'img-own'")
cfw hooks run >"$T/dying.out" 2>"$T/dying.err" &
DYING=$!
register_pid "$DYING"
wait_until 20 test -s "$T/own.pid" || hard_error "the hook of the runner to kill did not start"
OWN=$(cat "$T/own.pid")
register_pid "$OWN"
wait_until 10 sql_is "SELECT pgid FROM hook_runs WHERE id = $RUN_OWN" "$OWN" ||
	hard_error "the runner did not record the hook's process group"
kill -KILL "$(parent_of "$OWN")" || hard_error "cannot kill the runner of the hook"
wait "$DYING"
unregister_pid "$DYING"
alive "$OWN" || hard_error "the hook died with its runner"
LONG_AGO=2000-01-01T00:00:00.000Z
# Its lease has passed (as if hook_timeout and the grace had gone by).
sql "UPDATE hook_runs SET started_at = '$LONG_AGO', lease_until = '$LONG_AGO' WHERE id = $RUN_OWN"

group_leader
REUSED=$LEADER
LEASED=$(sql "SELECT $(sql_time "$(sql_now_plus 3600)")")
RUN_REUSED=$(queue_running img-reused "$LONG_AGO" "$REUSED" $(($(start_time "$REUSED") + 12345)))
# A recent run whose hook group is simulated: a process carrying the
# environment a hook of this run gets.
RUN_RECENT=$(queue_running img-recent "$LEASED" NULL NULL)
group_leader CFIMAGES_HOOK_RUN_ID="$RUN_RECENT" CFIMAGES_DB="$DB_REAL"
RECENT=$LEADER
sql "UPDATE hook_runs SET pgid = $RECENT, pg_start = $(start_time "$RECENT") WHERE id = $RUN_RECENT"

hooks_run
wait_until 5 gone "$OWN" || fail "the recorded process group of the dead runner's hook was not killed"
alive "$REUSED" || fail "a process whose start time does not match the record was killed"
grep -q "group $REUSED not killed" "$T/run.err" ||
	fail "the group not killed is not logged: $(cat "$T/run.err")"
alive "$RECENT" || fail "the group of a run that started recently was killed"
expect_sql "SELECT id, state, attempts, exit_code FROM hook_runs ORDER BY id" \
	"$RUN_OWN|done|2|0
$RUN_REUSED|done|2|0
$RUN_RECENT|running|1|" "the runs after hooks run"
expect_eq "$(sort "$T/ran.log" 2>/dev/null)" "$RUN_OWN 1
$RUN_OWN 2
$RUN_REUSED 2" "the hooks that ran again (run id, attempt)"
grep -q "$RUN_OWN" "$T/run.err" || fail "the reclaimed run $RUN_OWN is not logged: $(cat "$T/run.err")"

# Once its lease has passed, the recent one is taken up as well (here by
# ending it); its attempts used up, it is left failed instead.
sql "UPDATE hook_runs SET lease_until = '$LONG_AGO', attempts = 5 WHERE id = $RUN_RECENT"
hooks_run
wait_until 5 gone "$RECENT" || fail "the recorded process group of the last run was not killed"
expect_sql "SELECT state, attempts, $(sql_bool 'finished_at IS NOT NULL') FROM hook_runs WHERE id = $RUN_RECENT" \
	"failed|5|1" "a stale run with its attempts used up"
case $(sql "SELECT output FROM hook_runs WHERE id = $RUN_RECENT") in
*died*) ;;
*) fail "the failed stale run's output does not say its runner died" ;;
esac
expect_eq "$(grep -c "^$RUN_RECENT " "$T/ran.log")" 0 "runs of the hook with its attempts used up"
exit 0
