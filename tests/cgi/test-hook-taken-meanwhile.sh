#!/bin/sh
# cfimages-webhook(8) HOOKS: a runner whose run was taken up by another
# runner between its claim and its hook's start (it was held up past the
# lease) stops the hook at once and records nothing, so that the run does
# not execute twice.  Here a trigger makes every claim look taken up at
# once (the attempt moves on in the same transaction, after the claim's
# own values were read).  A wrong change this catches: record_pgid
# ignoring that its row was gone (the hook then ran to its end, and its
# outcome was dropped as another runner's).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

[ "$BACKEND" = postgresql ] && skip "the trigger is SQLite's"
init_db img-taken
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
hook_script "$HOOKS/uploaded" "sleep 2" "touch '$T/ran'"
write_file "$T/t.json" '{"id":"img-taken","uploaded":"2024-01-01T12:00:00.000Z"}'
queue_due_run img-taken "$T/t.json"
sql "CREATE TRIGGER taken AFTER UPDATE OF state ON hook_runs WHEN NEW.state = 'running'
	BEGIN UPDATE hook_runs SET attempts = attempts + 1 WHERE id = NEW.id; END"

cfw hooks run >/dev/null 2>"$T/run.err" || fail "hooks run failed: $(cat "$T/run.err")"
sleep 3
[ -e "$T/ran" ] && fail "the hook ran to its end although its run was taken up"
grep -q 'stopped at its start' "$T/run.err" || fail "no warning: $(cat "$T/run.err")"
expect_eq "$(sql "SELECT state || '|' || attempts || '|' || coalesce(exit_code, '-') FROM hook_runs")" \
	"running|2|-" "the run is left to the runner that took it up"
exit 0
