#!/bin/sh
# cfimages-webhook(8), HOOKS: runs of one image are never executed at the
# same time, whichever runners there are.  Two runs of the same image are
# due; a first `hooks run` takes the older one, whose hook waits until the
# test releases it.  A second `hooks run` started meanwhile must not take
# the other run: it finds nothing it may run and exits.  Once released,
# the first runner runs the second run after the first has ended.  The
# hooks hold a lock directory while they run, so an overlap is recorded
# whatever the timing.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

init_db
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
hook_script "$HOOKS/uploaded" \
	"mkdir '$T/busy' 2>/dev/null || echo \"\$CFIMAGES_HOOK_RUN_ID\" >>'$T/overlap'" \
	"echo \"start \$CFIMAGES_HOOK_RUN_ID\" >>'$T/order'" \
	"if [ \"\$CFIMAGES_HOOK_RUN_ID\" = \"\$(cat '$T/first')\" ]; then" \
	"	i=0; while [ ! -e '$T/release' ] && [ \$i -lt 600 ]; do sleep 0.1; i=\$((i + 1)); done" \
	'fi' \
	"echo \"end \$CFIMAGES_HOOK_RUN_ID\" >>'$T/order'" \
	"rmdir '$T/busy'"
# Two runs of one image, queued as a delivery would, both due.
for n in 1 2; do
	sql "INSERT INTO hook_runs (image_id, status, hook, path, state, attempts,
		next_attempt_at, created_at, previous_status, event, input)
		VALUES ('img-same', 'uploaded', 'uploaded', '$HOOKS/uploaded', 'queued', 0,
		'2000-01-01T00:00:0$n.000Z', '2000-01-01T00:00:00.000Z', 'pending',
		'upload.complete', $(sql_blob "'{\"id\":\"img-same\"}'"))"
done
FIRST=$(sql "SELECT min(id) FROM hook_runs")
SECOND=$(sql "SELECT max(id) FROM hook_runs")
echo "$FIRST" >"$T/first"

cfw hooks run >"$T/a.out" 2>"$T/a.err" &
A=$!
register_pid "$A"
wait_until 30 sql_is "SELECT state FROM hook_runs WHERE id = $FIRST" running ||
	hard_error "the first runner did not take the first run"
wait_until 30 test -d "$T/busy" || hard_error "the first run's hook did not start"

# The first run's hook is running: a second runner must leave the second
# run alone.
cfw hooks run >"$T/b.out" 2>"$T/b.err"
expect_eq "$?" 0 "the second hooks run ($(cat "$T/b.err"))"
expect_eq "$(cat "$T/b.out")" "ran 0 hook runs" \
	"the second runner, while a run of the same image is running"
expect_sql "SELECT state FROM hook_runs WHERE id = $SECOND" queued \
	"the second run while the first one runs"

touch "$T/release"
wait "$A"
expect_eq "$?" 0 "the first hooks run ($(cat "$T/a.err"))"
unregister_pid "$A"
expect_eq "$(cat "$T/a.out")" "ran 2 hook runs" "the first runner ran both"
[ -e "$T/overlap" ] && fail "runs $(tr '\n' ' ' <"$T/overlap")of one image ran at the same time"
expect_eq "$(cat "$T/order")" "start $FIRST
end $FIRST
start $SECOND
end $SECOND" "the order the two runs of one image ran in"
expect_sql "SELECT id, state, attempts FROM hook_runs ORDER BY id" "$FIRST|done|1
$SECOND|done|1" "the runs at the end"
exit 0
