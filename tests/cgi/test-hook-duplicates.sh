#!/bin/sh
# cfimages-webhook(8) STATUSES and 9: a hook runs exactly once per change.  The same delivery
# again (a duplicate) and a delivery that would move the image out of
# `uploaded` (stale) queue nothing: one run, and the hook ran once, also
# when the runner the later requests start has finished.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

ID=img-dup
init_db "$ID"
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
for s in uploaded failed; do
	hook_script "$HOOKS/$s" "echo \"$s \$1 \$CFIMAGES_HOOK_RUN_ID\" >>'$T/ran.log'"
done

write_file "$T/u.json" "{\"id\":\"$ID\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}"
cgi POST "$T/u.json"
expect_answer 200 OK
expect_one_delivery applied 200
cgi POST "$T/u.json"
expect_answer 200 OK
expect_one_delivery duplicate 200
# The same content, other bytes: still the same status, a duplicate.
write_file "$T/u2.json" "{ \"uploaded\": \"2024-01-01T12:00:00.000Z\", \"id\": \"$ID\" }"
cgi POST "$T/u2.json"
expect_answer 200 OK
expect_one_delivery duplicate 200
write_file "$T/f.json" "{\"id\":\"$ID\",\"error\":\"too late\"}"
cgi POST "$T/f.json"
expect_answer 200 OK
expect_one_delivery stale 200
expect_eq "$(image_status "$ID")" uploaded "the status after a stale failure"
expect_sql "SELECT hook FROM hook_runs" uploaded "the hook runs queued"

RUN=$(sql "SELECT id FROM hook_runs")
wait_until 20 sql_is "SELECT state FROM hook_runs" "done" ||
	fail "the run is not done: $(sql "SELECT state, exit_code, output FROM hook_runs")"
wait_until 20 no_runner || fail "a hook runner is still there 20 s later"
# And the cron path finds nothing to do.
cfw hooks run >"$T/run.out" 2>&1
expect_eq "$(cat "$T/run.out")" "ran 0 hook runs" "hooks run after everything ran"
expect_eq "$(cat "$T/ran.log" 2>/dev/null)" "uploaded $ID $RUN" "what the hooks did"
expect_sql "SELECT attempts FROM hook_runs" 1 "attempts of the one run"
exit 0
