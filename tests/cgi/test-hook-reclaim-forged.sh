#!/bin/sh
# Trust boundary of hook runs (cfimages-webhook(8), HOOKS): whoever can
# write the database may forge a `running` row, old enough to be taken up,
# naming any process group and that group's start time (which anyone can
# read in /proc/PID/stat).  Such a row must never make the receiver signal
# that group: a stale run's group is killed only when its leader's
# environment proves it is the hook started for that run.  Here a process
# in its own session (never PID 1) plays the victim; a rejected request
# (401) is enough to start the runner that takes stale runs up.  The run
# is taken up (and runs its hook) without killing anything, and that is
# logged.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

SECRET=forged-reclaim-s3cret
init_db img-forged img-forged-env
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
hook_script "$HOOKS/uploaded" \
	"echo \"\$CFIMAGES_HOOK_RUN_ID \$CFIMAGES_HOOK_ATTEMPT\" >>'$T/ran.log'"

# victim [VAR=VALUE...]: a process leading its own group but not a
# session, as a hook does (a background job of this shell leads no group),
# with the assignments added to its environment.  Its PID goes into
# VICTIM.  A session leader carrying a run's environment (a hook's
# `setsid worker`): victim_session.
victim()
{
	env "$@" perl -e 'setpgrp(0, 0) or die; exec "sleep", "300"' </dev/null >/dev/null 2>&1 &
	VICTIM=$!
	register_pid "$VICTIM"
	wait_until 5 is_leader "$VICTIM" ||
		hard_error "the victim ($VICTIM) is not a process group leader"
	[ "$VICTIM" -gt 1 ] || hard_error "the victim has PID $VICTIM"
}
victim_session()
{
	env "$@" setsid sleep 300 </dev/null >/dev/null 2>&1 &
	VICTIM=$!
	register_pid "$VICTIM"
	wait_until 5 is_leader "$VICTIM" ||
		hard_error "setsid sleep ($VICTIM) is not a process group leader"
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
# forge IMAGE PGID PG_START: a running row, started long ago, as a
# database writer could insert it.  Prints its id.
forge()
{
	sql "INSERT INTO hook_runs (image_id, status, hook, path, state, attempts,
		next_attempt_at, created_at, started_at, previous_status, event, input,
		pgid, pg_start)
		VALUES ('$1', 'uploaded', 'uploaded', '$HOOKS/uploaded', 'running', 1,
		'2000-01-01T00:00:00.000Z', '2000-01-01T00:00:00.000Z',
		'2000-01-01T00:00:00.000Z', 'pending', 'upload.complete',
		$(sql_blob "'{\"id\":\"$1\"}'"), $2, $3)
		RETURNING id"
}
runner_log()
{
	cat "$T"/cgi.*.err 2>/dev/null
}

# 1. A plain victim with its true start time.
victim
PLAIN=$VICTIM
RUN=$(forge img-forged "$PLAIN" "$(start_time "$PLAIN")")
# 2. A victim carrying the run's id but another database: the proof is
# the pair, not either one.
victim CFIMAGES_HOOK_RUN_ID=999 CFIMAGES_DB=/elsewhere/webhook.db
OTHER_DB=$VICTIM
RUN2=$(forge img-forged-env "$OTHER_DB" "$(start_time "$OTHER_DB")")
sql "UPDATE hook_runs SET id = 999 WHERE id = $RUN2"
RUN2=999
# 3. A session leader carrying this run's id and this database, as a
# worker a hook started with setsid would: not the hook itself (a hook
# leads its group, never a session).
RUN4=$(forge img-forged-session NULL NULL)
victim_session CFIMAGES_HOOK_RUN_ID="$RUN4" CFIMAGES_DB="$(hook_db)"
SESSION=$VICTIM
sql "UPDATE hook_runs SET pgid = $SESSION, pg_start = $(start_time "$SESSION") WHERE id = $RUN4"

# Any request starts the runner, a rejected one included.
write_file "$T/u.json" '{"id":"img-forged","uploaded":"2024-01-01T12:00:00.000Z"}'
cgi POST "$T/u.json" CFIMAGES_WEBHOOK_SECRET="$SECRET" HTTP_X_SIGNATURE=00
expect_answer 401 "Invalid signature"
wait_until 20 sql_is "SELECT count(*) FROM hook_runs WHERE state = 'done'" 3 ||
	fail "the forged runs were not taken up: $(sql "SELECT id, state, attempts FROM hook_runs")"
wait_hook_runners || fail "the hook runners did not finish"
sleep 0.5
alive "$PLAIN" || fail "a forged running row made the receiver kill process group $PLAIN"
alive "$OTHER_DB" ||
	fail "a forged row made the receiver kill group $OTHER_DB, whose CFIMAGES_DB is another database"
alive "$SESSION" ||
	fail "a forged row made the receiver kill session leader $SESSION, which no hook is"
expect_sql "SELECT id, state, attempts, $(sql_bool 'pgid IS NULL') FROM hook_runs ORDER BY image_id" \
	"$RUN|done|2|1
$RUN2|done|2|1
$RUN4|done|2|1" "the forged runs, taken up and run again"
expect_eq "$(sort "$T/ran.log" 2>/dev/null)" "$(printf '%s 2\n' "$RUN" "$RUN2" "$RUN4" | sort)" \
	"the hooks run for the forged rows (run id, attempt)"
# The runner's stderr is /dev/null under CGI: take the log from `hooks
# run` over one more forged row.
victim
RUN3=$(forge img-forged "$VICTIM" "$(start_time "$VICTIM")")
cfw hooks run >"$T/run.out" 2>"$T/run.err"
expect_eq "$?" 0 "hooks run exit status ($(cat "$T/run.err"))"
alive "$VICTIM" || fail "hooks run killed the forged row's process group $VICTIM"
grep -q "run $RUN3: recorded process group $VICTIM not killed" "$T/run.err" ||
	fail "the group not killed is not logged: $(cat "$T/run.err")"
expect_sql "SELECT state FROM hook_runs WHERE id = $RUN3" done "the third forged run"
exit 0
