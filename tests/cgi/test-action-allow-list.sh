#!/bin/sh
# cfimages-webhook.conf(5) outbound_allow: with the setting, an action whose
# URL starts with none of its prefixes is never called: its run fails at
# once (no retry, exit_code NULL, the output naming outbound_allow) and the
# endpoint gets no request, while an action under an allowed prefix is
# called as usual; `check` reports the action outside the list with its
# file and line.  Without the setting the same action is called.
#
# Mutations this catches: the allow-list checked only by `check`, or only
# on the host (the /forbidden path of an allowed host is called); a
# refused URL retried; the prefix compared without its path; the setting
# not passed on to the detached runner.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"
. "$top_srcdir/tests/actionlib.sh"

init_db img-allow img-open
start_receiver app
mkdir -p "$HOOKS/uploaded.d"
chmod 755 "$HOOKS" "$HOOKS/uploaded.d"
action_file "$HOOKS/uploaded.webhook" \
	'# outside the list' \
	"url = http://127.0.0.1:$RPORT/forbidden"
action_file "$HOOKS/uploaded.d/10-ok.webhook" "url = http://127.0.0.1:$RPORT/allowed/ok"
action_file "$HOOKS/uploaded.d/20-near.webhook" \
	'method = POST' \
	"url = http://127.0.0.1:$RPORT/allowedness"
ALLOW="CFIMAGES_WEBHOOK_OUTBOUND_ALLOW=https://app.example.invalid/,http://127.0.0.1:$RPORT/allowed/"
A=CFIMAGES_WEBHOOK_HOOK_ATTEMPTS=5

deliver img-allow "$ALLOW" "$A"
RUN=$(run_id img-allow uploaded.webhook)
RUN_OK=$(run_id img-allow uploaded.d/10-ok.webhook)
RUN_NEAR=$(run_id img-allow uploaded.d/20-near.webhook)
[ -n "$RUN" ] && [ -n "$RUN_OK" ] && [ -n "$RUN_NEAR" ] ||
	{ fail "runs not queued as expected: $(sql 'SELECT id, hook, state FROM hook_runs')"; exit 1; }
wait_until 60 run_is "$RUN_OK" "done|1" ||
	fail "the allowed action: $(sql "SELECT state, attempts, exit_code, output FROM hook_runs WHERE id = $RUN_OK")"
wait_until 30 sql_is "SELECT $(sql_concat state) FROM (SELECT state FROM hook_runs WHERE id IN ($RUN, $RUN_NEAR) ORDER BY id) r" \
	failed,failed ||
	fail "the actions outside outbound_allow: $(sql "SELECT id, state, attempts, exit_code, output FROM hook_runs WHERE id IN ($RUN, $RUN_NEAR)")"
wait_hook_runners
for r in "$RUN" "$RUN_NEAR"; do
	expect_sql "SELECT state, $(sql_bool 'attempts <= 1'), $(sql_bool 'exit_code IS NULL') FROM hook_runs WHERE id = $r" \
		"failed|1|1" "run $r outside outbound_allow"
	run_output "$r" | grep -q outbound_allow ||
		fail "the output of run $r does not name outbound_allow: $(run_output "$r")"
done
expect_eq "$(recv_count app)" 1 "requests the endpoint got"
expect_eq "$(recv app 1 path)" /allowed/ok "the one request, under the allowed prefix"

# Made due and run again: still never called.
make_due "$RUN"
make_due "$RUN_NEAR"
hooks_run "$ALLOW" "$A"
expect_eq "$(recv_count app)" 1 "requests after hooks run"
expect_eq "$(run_row "$RUN" | cut -d'|' -f1)" failed "the refused run after hooks run"

# check: both, with file and line; exit 1.
cfw "$ALLOW" check >"$T/check.out" 2>&1
expect_eq "$?" 1 "check with actions outside outbound_allow"
grep -F "$HOOKS/uploaded.webhook:2" "$T/check.out" | grep -q . ||
	fail "check does not report $HOOKS/uploaded.webhook:2: $(cat "$T/check.out")"
grep -F "$HOOKS/uploaded.d/20-near.webhook:2" "$T/check.out" | grep -q . ||
	fail "check does not report $HOOKS/uploaded.d/20-near.webhook:2: $(cat "$T/check.out")"
grep -F "10-ok.webhook" "$T/check.out" | grep -q '^problem' &&
	fail "check reports the allowed action: $(cat "$T/check.out")"
cfw check >"$T/check-open.out" 2>&1
expect_eq "$?" 0 "check without outbound_allow ($(cat "$T/check-open.out"))"

# Without outbound_allow, the same action is called.
deliver img-open "$A"
wait_until 60 recv_count_is app 4 || fail "without outbound_allow: $(recv_count app) requests in all"
recv app 2 path >"$T/paths"
recv app 3 path >>"$T/paths"
recv app 4 path >>"$T/paths"
expect_eq "$(sort "$T/paths" | tr '\n' ' ')" "/allowed/ok /allowedness /forbidden " \
	"the requests without outbound_allow"
exit 0
