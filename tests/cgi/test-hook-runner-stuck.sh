#!/bin/sh
# cfimages-webhook(8) HOOKS: a runner that finds runs due but can run none
# of them (the database can be read but not written: here a trigger
# refuses every change of hook_runs, as a full disk or a read-only standby
# would) pauses between its tries, growing to 30 s, instead of reopening
# the database and trying again at once.  A wrong change this catches:
# hooks_runner_main looping straight back after a pass that ran nothing
# (hundreds of tries a second, each logged).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

[ "$BACKEND" = postgresql ] && skip "the refusing trigger is SQLite's"
init_db img-stuck
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
hook_script "$HOOKS/uploaded" "touch '$T/ran'"
write_file "$T/s.json" '{"id":"img-stuck","uploaded":"2024-01-01T12:00:00.000Z"}'
queue_due_run img-stuck "$T/s.json"
sql "CREATE TRIGGER refuse_runs BEFORE UPDATE ON hook_runs
	BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"

# 4 seconds: a first try, then pauses of 1 and 2 s (under valgrind the
# start alone takes a good part of them).
timeout 4 env PATH="$CGI_PATH" CFIMAGES_WEBHOOK_CONFIG="$EMPTY_CONF" CFIMAGES_WEBHOOK_DB="$DB" \
	CFIMAGES_WEBHOOK_HOOKS_DIR="$HOOKS" $CFW_WRAPPER "$CFW_BIN" hooks run --detached \
	</dev/null >/dev/null 2>"$T/runner.err"
tries=$(grep -c 'refused by the test' "$T/runner.err")
[ "$tries" -ge 1 ] || fail "the runner never tried the run: $(head -5 "$T/runner.err")"
[ "$tries" -le 4 ] || fail "the runner tried $tries times in 4 s: $(head -5 "$T/runner.err")"
[ -e "$T/ran" ] && fail "the hook ran although its claim was refused"
expect_eq "$(sql "SELECT state || '|' || attempts FROM hook_runs")" "queued|0" \
	"the run is left as it was"
exit 0
