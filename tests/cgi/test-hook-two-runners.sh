#!/bin/sh
# cfimages-webhook(8) HOOKS: two processes never run the same run.  Two `hooks run` started
# together over six queued runs (each hook takes 0.3 s, so they overlap):
# every run executes exactly once, each with attempt 1, and between them
# the two processes report six runs.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

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
		'upload.complete', $(sql_blob "'{\"id\":\"img-$i\"}'"))"
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
