#!/bin/sh
# cfimages-webhook(8) HOOKS and 10: a hook file or directory writable by group or others is
# refused and logged: no run is queued for it (the delivery itself is
# applied), and `check` names it and exits 1.  A hook made insecure after
# its run was queued is refused when the run is taken up: the attempt
# fails with output saying so, and the script does not run.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

init_db img-ww img-gw img-later
mkdir -p "$HOOKS/failed.d" "$HOOKS/draft.d"
chmod 755 "$HOOKS" "$HOOKS/failed.d" "$HOOKS/draft.d"
# Every run of any hook leaves a line in ran.log.
run_hook()
{
	hook_script "$HOOKS/$1" "echo '$1' >>'$T/ran.log'" "$2"
}
run_hook uploaded 'exit 0'
run_hook failed.d/10-x 'exit 0'
run_hook draft 'exit 1'

check_ok()
{
	cfw check >"$T/check.out" 2>&1
	expect_eq "$?" 0 "check with safe hooks ($(cat "$T/check.out"))"
}
# check_names WHAT: check exits 1 and prints WHAT on a problem line.
check_names()
{
	cfw check >"$T/check.out" 2>&1
	expect_eq "$?" 1 "check exit status with $1 insecure"
	grep '^problem:' "$T/check.out" | grep -qF -- "$1" ||
		fail "check does not name $1 in a problem line: $(cat "$T/check.out")"
}
check_ok

# A world-writable hook.
chmod 777 "$HOOKS/uploaded"
write_file "$T/ww.json" '{"id":"img-ww","uploaded":"2024-01-01T12:00:00.000Z"}'
cgi POST "$T/ww.json"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status img-ww)" uploaded "the delivery is applied without its hook"
expect_sql "SELECT count(*) FROM hook_runs WHERE image_id = 'img-ww'" 0 "runs for a world-writable hook"
grep -F "$HOOKS/uploaded" "$CGI_ERR" | grep -q refused ||
	fail "no log line says $HOOKS/uploaded is refused: $(cat "$CGI_ERR")"
check_names "$HOOKS/uploaded"
chmod 755 "$HOOKS/uploaded"
check_ok

# A group-writable S.d directory: nothing in it runs.
chmod 775 "$HOOKS/failed.d"
write_file "$T/gw.json" '{"id":"img-gw","error":"broken"}'
cgi POST "$T/gw.json"
expect_answer 200 OK
expect_eq "$(image_status img-gw)" failed "the delivery is applied without its hooks"
expect_sql "SELECT count(*) FROM hook_runs WHERE image_id = 'img-gw'" 0 "runs from a group-writable failed.d"
grep -F "$HOOKS/failed.d" "$CGI_ERR" | grep -q refused ||
	fail "no log line says $HOOKS/failed.d is refused: $(cat "$CGI_ERR")"
check_names "$HOOKS/failed.d"
chmod 755 "$HOOKS/failed.d"

# A world-writable script inside a safe S.d directory: check must count it
# as a problem too, not only log it.
chmod 777 "$HOOKS/failed.d/10-x"
check_names "$HOOKS/failed.d/10-x"
chmod 755 "$HOOKS/failed.d/10-x"
check_ok

# Made insecure after its run was queued: the first attempt runs (and
# fails), then the hook becomes world-writable before the retry.
write_file "$T/later.json" '{"id":"img-later","draft":true}'
cgi POST "$T/later.json" CFIMAGES_WEBHOOK_HOOK_ATTEMPTS=2
expect_answer 200 OK
RUN=$(sql "SELECT id FROM hook_runs WHERE image_id = 'img-later'")
[ -n "$RUN" ] || hard_error "no run queued for the draft hook"
wait_until 20 sql_is "SELECT state, attempts FROM hook_runs WHERE id = $RUN" "queued|1" ||
	fail "the first attempt did not fail as planned: $(sql "SELECT state, attempts, output FROM hook_runs WHERE id = $RUN")"
kill_runners
chmod 777 "$HOOKS/draft"
sql "UPDATE hook_runs SET next_attempt_at = '2000-01-01T00:00:00.000Z' WHERE id = $RUN"
cfw CFIMAGES_WEBHOOK_HOOK_ATTEMPTS=2 hooks run >"$T/run.out" 2>"$T/run.err"
expect_eq "$?" 0 "hooks run exit status"
expect_sql "SELECT state, attempts FROM hook_runs WHERE id = $RUN" "failed|2" \
	"the refused attempt counts as a failed one"
case $(sql "SELECT output FROM hook_runs WHERE id = $RUN") in
*refused*) ;;
*) fail "the refused attempt's output does not say refused: $(sql "SELECT output FROM hook_runs WHERE id = $RUN")" ;;
esac
grep -q refused "$T/run.err" || fail "hooks run did not log the refusal: $(cat "$T/run.err")"
expect_eq "$(grep -c draft "$T/ran.log")" 1 "runs of the draft hook (the refused one must not run)"
exit 0
