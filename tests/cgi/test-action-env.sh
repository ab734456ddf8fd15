#!/bin/sh
# cfimages-webhook(8) ACTIONS, The runner: ${env:NAME} reads the runner's
# environment, which in CGI mode is what the web server gave the program
# (SetEnv, setenv) less the request's own variables: HTTP_* (the sender's
# headers), REMOTE_ADDR, QUERY_STRING, CONTENT_*, ...  A sender therefore
# cannot fill an ${env:} reference by sending a header: the attempt fails
# naming the variable, and nothing is sent.  The same request's operator
# variable reaches the action.
#
# Mutations this catches: the runner inheriting the whole CGI environment
# (the sender's X-From-Request header would be sent on as a header value,
# or a REMOTE_ADDR the operator never set).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"
. "$top_srcdir/tests/actionlib.sh"

ID=img-env
init_db "$ID"
start_receiver app
mkdir -p "$HOOKS/uploaded.d"
chmod 755 "$HOOKS" "$HOOKS/uploaded.d"
action_file "$HOOKS/uploaded.webhook" \
	"url = http://127.0.0.1:$RPORT/operator" \
	'header = X-Deploy: ${env:DEPLOY_ENV}'
action_file "$HOOKS/uploaded.d/10-header.webhook" \
	"url = http://127.0.0.1:$RPORT/from-header" \
	'header = X-Sent: ${env:HTTP_X_FROM_REQUEST}'
action_file "$HOOKS/uploaded.d/20-remote.webhook" \
	"url = http://127.0.0.1:$RPORT/remote-addr" \
	'header = X-Sent: ${env:REMOTE_ADDR}'
action_file "$HOOKS/uploaded.d/30-query.webhook" \
	"url = http://127.0.0.1:$RPORT/query" \
	'header = X-Sent: ${env:QUERY_STRING}'

deliver "$ID" DEPLOY_ENV=operator-value HTTP_X_FROM_REQUEST=sender-value \
	QUERY_STRING=q=sender CFIMAGES_WEBHOOK_HOOK_ATTEMPTS=3
RUN=$(run_id "$ID" uploaded.webhook)
[ -n "$RUN" ] || { fail "no run queued: $(sql 'SELECT hook, state FROM hook_runs')"; exit 1; }
wait_until 60 sql_is "SELECT count(*) FROM hook_runs WHERE attempts >= 1 AND state <> 'running'" 4 ||
	fail "the first attempts did not all end: $(sql 'SELECT id, hook, state, attempts, output FROM hook_runs')"
kill_runners
expect_eq "$(run_row "$RUN")" "done|1|200" "the action with the operator's variable"
expect_eq "$(recv_count app)" 1 "requests the endpoint got"
expect_eq "$(recv app 1 header X-Deploy)" operator-value "the operator's variable as sent"
for h in uploaded.d/10-header.webhook:HTTP_X_FROM_REQUEST uploaded.d/20-remote.webhook:REMOTE_ADDR \
	uploaded.d/30-query.webhook:QUERY_STRING; do
	r=$(run_id "$ID" "${h%:*}")
	expect_eq "$(run_row "$r" | cut -d'|' -f1,2)" "queued|1" "${h%:*} (a request variable)"
	run_output "$r" | grep -qF "${h#*:}" ||
		fail "the output of ${h%:*} does not name ${h#*:}: $(run_output "$r")"
done
exit 0
