#!/bin/sh
# cfimages-webhook(8) ACTIONS, a binary built without libcurl
# (./configure --without-curl): .webhook files are still found and queued
# like scripts, but `check` reports each as unusable and its run fails at
# once (one attempt, never retried) saying why; the endpoint is never
# called.  A binary built with libcurl (its --version names libcurl) skips
# this test: the other test-action-*.sh prove what it does.
#
# Mutations this catches (in a --without-curl build): the action queued
# and retried for ever; check silent about it; the run left queued.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"
ACTION_WITHOUT_CURL=yes
. "$top_srcdir/tests/actionlib.sh"

binary_has_curl && skip "built with libcurl: the other test-action-*.sh are the tests"

ID=img-nocurl
init_db "$ID"
start_receiver app
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
action_file "$HOOKS/uploaded.webhook" "url = http://127.0.0.1:$RPORT/never"
A=CFIMAGES_WEBHOOK_HOOK_ATTEMPTS=5

cfw check >"$T/check.out" 2>&1
expect_eq "$?" 1 "check with an action and no libcurl"
grep '^problem' "$T/check.out" | grep -F "$HOOKS/uploaded.webhook" | grep -q curl ||
	fail "check does not report the action as unusable without libcurl: $(cat "$T/check.out")"

deliver "$ID" "$A"
RUN=$(run_id "$ID" uploaded.webhook)
[ -n "$RUN" ] || { fail "no run queued: $(sql 'SELECT hook, state FROM hook_runs')"; exit 1; }
wait_until 60 sql_is "SELECT state FROM hook_runs WHERE id = $RUN" failed ||
	fail "the action's run without libcurl: $(sql "SELECT state, attempts, exit_code, output FROM hook_runs WHERE id = $RUN")"
wait_hook_runners
expect_sql "SELECT state, attempts, $(sql_bool 'exit_code IS NULL') FROM hook_runs WHERE id = $RUN" \
	"failed|1|1" "the run of an action without libcurl"
run_output "$RUN" | grep -q curl || fail "the run's output does not say why: $(run_output "$RUN")"
make_due "$RUN"
hooks_run "$A"
expect_eq "$(run_row "$RUN" | cut -d'|' -f1,2)" "failed|1" "the run after hooks run"
expect_eq "$(recv_count app)" 0 "requests the endpoint got"
exit 0
