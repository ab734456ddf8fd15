#!/bin/sh
# cfimages-webhook(8) HOOKS, https actions: TLS verification is always on.
# An endpoint whose certificate comes from a CA made by this test fails the
# attempt (a transport error: exit_code NULL, and no HTTP request reaches
# the endpoint) while the action trusts only the system's CAs, and still
# when ca_file names another CA; once ca_file names the endpoint's CA, the
# retry succeeds.  The name is checked too: the same certificate (issued
# for the address 127.0.0.1) does not pass for https://localhost.  The
# configuration's ca_file (cfimages-webhook.conf(5)) replaces the system's
# bundle for every action that names none; an action's own ca_file wins
# over it; a configured ca_file that does not exist fails the call, named.
#
# Mutations this catches: CURLOPT_SSL_VERIFYPEER off; ca_file ignored (the
# last step fails) or added to the system bundle without being checked;
# CURLOPT_SSL_VERIFYHOST off (localhost passes); the configuration's
# ca_file ignored, or preferred to the action's.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"
. "$top_srcdir/tests/actionlib.sh"

CURL=${CURL:-curl}
init_db img-tls img-name img-conf img-override img-missing
make_ca "$T/pki"
start_receiver app --tls-cert "$T/pki/server.pem" --tls-key "$T/pki/server.key"
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
action_file "$HOOKS/uploaded.webhook" "url = https://127.0.0.1:$RPORT/secure"
A=CFIMAGES_WEBHOOK_HOOK_ATTEMPTS=5

# A positive control: the endpoint serves TLS with that CA.
"$CURL" -s -o /dev/null -w '%{http_code}' --cacert "$T/pki/ca.pem" -d '{}' \
	"https://127.0.0.1:$RPORT/probe" >"$T/probe" 2>&1
expect_eq "$(cat "$T/probe")" 200 "curl --cacert against the test endpoint"
expect_eq "$(recv_count app)" 1 "the probe reached the endpoint"

deliver img-tls "$A"
RUN=$(run_id img-tls uploaded.webhook)
[ -n "$RUN" ] || { fail "no run queued: $(sql 'SELECT hook, state FROM hook_runs')"; exit 1; }
wait_until 60 run_is "$RUN" "queued|1" ||
	fail "against an untrusted certificate: $(sql "SELECT state, attempts, exit_code, output FROM hook_runs WHERE id = $RUN")"
kill_runners
expect_sql "SELECT state, attempts, $(sql_bool 'exit_code IS NULL') FROM hook_runs WHERE id = $RUN" \
	"queued|1|1" "the run against an untrusted certificate"
[ -n "$(run_output "$RUN")" ] || fail "the TLS failure left no output"
expect_eq "$(recv_count app)" 1 "requests that passed TLS without ca_file"

# ca_file naming another CA: still refused.
action_file "$HOOKS/uploaded.webhook" "url = https://127.0.0.1:$RPORT/secure" \
	"ca_file = $T/pki/other-ca.pem"
make_due "$RUN"
hooks_run "$A"
expect_sql "SELECT state, attempts, $(sql_bool 'exit_code IS NULL') FROM hook_runs WHERE id = $RUN" \
	"queued|2|1" "the run with ca_file naming another CA"
expect_eq "$(recv_count app)" 1 "requests that passed TLS with another CA"

# ca_file naming the endpoint's CA: done.
action_file "$HOOKS/uploaded.webhook" "url = https://127.0.0.1:$RPORT/secure" \
	"ca_file = $T/pki/ca.pem"
make_due "$RUN"
hooks_run "$A"
expect_eq "$(run_row "$RUN")" "done|3|200" "the run with ca_file naming the endpoint's CA"
expect_eq "$(recv_count app)" 2 "requests once the CA is trusted"
expect_eq "$(recv app 2 path)" /secure "the path of the https call"
recv app 2 valid-json || fail "the https call's body is not JSON"

# The right CA but the wrong name.
action_file "$HOOKS/uploaded.webhook" "url = https://localhost:$RPORT/by-name" \
	"ca_file = $T/pki/ca.pem"
deliver img-name "$A"
RUN2=$(run_id img-name uploaded.webhook)
wait_until 60 run_is "$RUN2" "queued|1" ||
	fail "against a certificate for another name: $(sql "SELECT state, attempts, exit_code, output FROM hook_runs WHERE id = $RUN2")"
kill_runners
expect_sql "SELECT $(sql_bool 'exit_code IS NULL') FROM hook_runs WHERE id = $RUN2" 1 \
	"the run against a certificate for another name"
expect_eq "$(recv_count app)" 2 "requests that passed TLS under a name the certificate does not hold"

# The configuration's ca_file.
action_file "$HOOKS/uploaded.webhook" "url = https://127.0.0.1:$RPORT/conf-ca"
deliver img-conf "$A" CFIMAGES_WEBHOOK_CA_FILE="$T/pki/ca.pem"
RUN3=$(run_id img-conf uploaded.webhook)
wait_until 60 run_is "$RUN3" "done|1" ||
	fail "with the configuration's ca_file naming the CA: $(sql "SELECT state, attempts, exit_code, output FROM hook_runs WHERE id = $RUN3")"
expect_eq "$(recv_count app)" 3 "requests with the configuration's ca_file"
action_file "$HOOKS/uploaded.webhook" "url = https://127.0.0.1:$RPORT/override" \
	"ca_file = $T/pki/other-ca.pem"
deliver img-override "$A" CFIMAGES_WEBHOOK_CA_FILE="$T/pki/ca.pem"
RUN4=$(run_id img-override uploaded.webhook)
wait_until 60 run_is "$RUN4" "queued|1" ||
	fail "an action's ca_file over the configuration's: $(sql "SELECT state, attempts, exit_code, output FROM hook_runs WHERE id = $RUN4")"
kill_runners
expect_eq "$(recv_count app)" 3 "requests when the action's ca_file names another CA"
action_file "$HOOKS/uploaded.webhook" "url = https://127.0.0.1:$RPORT/missing-bundle"
deliver img-missing "$A" CFIMAGES_WEBHOOK_CA_FILE="$T/pki/no-such-bundle.pem"
RUN5=$(run_id img-missing uploaded.webhook)
wait_until 60 run_is "$RUN5" "queued|1" ||
	fail "with a configured ca_file that does not exist: $(sql "SELECT state, attempts, exit_code, output FROM hook_runs WHERE id = $RUN5")"
kill_runners
run_output "$RUN5" | grep -qF "$T/pki/no-such-bundle.pem" ||
	fail "the failed call does not name the missing ca_file: $(run_output "$RUN5")"
expect_eq "$(recv_count app)" 3 "requests with a missing configured ca_file"
exit 0
