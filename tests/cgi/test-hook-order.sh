#!/bin/sh
# cfimages-webhook(8) HOOKS: the runs of one change execute in the order they were queued:
# hooks_dir/S first, then hooks_dir/S.d/* in name order.  A name starting
# with "." or ending in "~", and a file that is not executable, never run.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

ID=img-order
init_db "$ID"
mkdir -p "$HOOKS/uploaded.d"
chmod 755 "$HOOKS" "$HOOKS/uploaded.d"
LOG=$T/ran.log
# Each hook appends its name when it starts and when it ends; the slow
# ones would let a runner that does not keep the order, or runs them at
# once, start the next one first.
order_hook()
{
	hook_script "$HOOKS/$1" "echo 'start $1' >>'$LOG'" "$2" "echo 'end $1' >>'$LOG'"
	chmod "$3" "$HOOKS/$1"
}
order_hook uploaded 'sleep 0.3' 755
order_hook uploaded.d/20-b : 755
order_hook uploaded.d/10-a 'sleep 0.2' 700
order_hook uploaded.d/.hidden : 755
order_hook 'uploaded.d/x~' : 755
order_hook uploaded.d/not-exec : 644
order_hook uploaded.d/05-dot.d~ : 755

write_file "$T/u.json" "{\"id\":\"$ID\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}"
cgi POST "$T/u.json"
expect_answer 200 OK
expect_one_delivery applied 200
expect_sql "SELECT hook FROM hook_runs ORDER BY id" "uploaded
uploaded.d/10-a
uploaded.d/20-b" "the queued runs, in order"
wait_until 20 sql_is "SELECT count(*) FROM hook_runs WHERE state = 'done'" 3 ||
	fail "the runs are not all done: $(sql "SELECT id, hook, state, exit_code FROM hook_runs")"
# Let the runner finish whatever it might still start.
wait_until 20 no_runner || fail "the hook runner is still there 20 s after its last run"
expect_eq "$(cat "$LOG" 2>/dev/null)" "start uploaded
end uploaded
start uploaded.d/10-a
end uploaded.d/10-a
start uploaded.d/20-b
end uploaded.d/20-b" "the hooks ran once each, in order, one after the other"
exit 0
