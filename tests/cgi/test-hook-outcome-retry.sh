#!/bin/sh
# cfimages-webhook(8) HOOKS: a hook's outcome that the database cannot
# take at first (a lock held past the busy timeout, a PostgreSQL briefly
# away) is written again until it lands, so the run ends done after one
# attempt and the hook never runs a second time for the same change.
# Here the hook starts a process of its own that holds the database's
# write lock (SQLite) or the run's row (PostgreSQL) for 8 s, longer than
# the 5 s a write waits.  A wrong change this catches: the outcome given
# up after one failed write (the run then stayed running until its lease
# passed, and ran again).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

init_db img-retry
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
if [ "$BACKEND" = postgresql ]; then
	printf '%s\n' 'BEGIN;' 'SELECT 1 FROM hook_runs FOR UPDATE;' "\\! touch '$T/locked'" \
		'SELECT pg_sleep(8);' 'COMMIT;' >"$T/hold.sql"
	holder="'$PSQL' -X -q -d '$DB'"
	query="'$PSQL' -X -q -A -t -d '$DB' -c"
else
	printf '%s\n' '.timeout 5000' 'BEGIN IMMEDIATE;' "INSERT INTO cloudflare_image_logs (image_id, event_type, message, timestamp) VALUES ('img-retry', 'ignored', 'lock holder', '2024-01-01T00:00:00.000Z');" \
		".shell touch '$T/locked'" '.shell sleep 8' 'COMMIT;' >"$T/hold.sql"
	holder="'$SQLITE3' -batch '$DB'"
	query="'$SQLITE3' -batch -noheader -cmd '.timeout 5000' '$DB'"
fi
# The hook starts the holder once the runner has recorded its process
# group (a write of its own, which the holder would otherwise hold up), so
# that the first write the holder meets is the outcome's.
hook_script "$HOOKS/uploaded" \
	"echo ran >>'$T/count'" \
	"i=0; until [ \"\$($query 'SELECT count(*) FROM hook_runs WHERE pgid IS NOT NULL')\" = 1 ] || [ \$i -ge 100 ]; do sleep 0.1; i=\$((i + 1)); done" \
	"setsid sh -c \"$holder <'$T/hold.sql'\" </dev/null >'$T/hold.out' 2>&1 &" \
	"i=0; while [ ! -e '$T/locked' ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i + 1)); done"
write_file "$T/t.json" '{"id":"img-retry","uploaded":"2024-01-01T12:00:00.000Z"}'
queue_due_run img-retry "$T/t.json"

cfw hooks run >/dev/null 2>"$T/run.err" || fail "hooks run failed: $(cat "$T/run.err")"
[ -e "$T/locked" ] || fail "the lock holder never held its lock: $(cat "$T/hold.out")"
grep -q 'could not record its outcome; trying again' "$T/run.err" ||
	fail "the first write of the outcome did not fail (the test proves nothing): $(cat "$T/run.err")"
grep -q 'outcome recorded at try' "$T/run.err" || fail "no later try recorded it: $(cat "$T/run.err")"
expect_eq "$(sql "SELECT state || '|' || attempts || '|' || coalesce(CAST(exit_code AS TEXT), '-') FROM hook_runs")" \
	"done|1|0" "the outcome is recorded once the lock is gone"
expect_eq "$(cat "$T/count")" "ran" "the hook ran once"
exit 0
