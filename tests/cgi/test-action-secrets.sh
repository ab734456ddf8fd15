#!/bin/sh
# cfimages-webhook.conf(5) and cfimages-webhook(8) HOOKS, secrets of
# actions: a header value's ${file:PATH} and ${env:NAME} are read when the
# call is made and sent, but never stored: not in the database (hook_runs
# output included, after a failed attempt and after success), not in
# `hooks list`, not in the log even at log_level debug; the same for the
# secret_file key.  A ${file:} that does not exist or an ${env:} that is
# not set fails the attempt before any request, with an output that names
# the file or the variable; so does a value holding a line break inside
# (it would end the header and start another: header injection).
#
# Mutations this catches: the expanded header line logged at debug or
# stored with the output (curl's verbose trace, "HTTP 500" plus the
# request); the key logged when it is loaded; a missing reference sent as
# an empty header (the endpoint gets a request); a message that names
# nothing; a value with a line break sent (a second, injected header).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"
. "$top_srcdir/tests/actionlib.sh"

ID=img-secrets
init_db "$ID"
start_receiver app
mkdir -p "$HOOKS/uploaded.d"
chmod 755 "$HOOKS" "$HOOKS/uploaded.d"
TOKEN=tok-7d1e0c5b-file-secret
ENVKEY=env-93ab1c-api-key
KEY_B64=$(printf 'outbound-signing-key-5f2e9a7c' | base64)
printf '%s\n' "$TOKEN" >"$T/app-token"
printf 'whsec_%s\n' "$KEY_B64" >"$T/outbound.key"
chmod 600 "$T/app-token" "$T/outbound.key"
action_file "$HOOKS/uploaded.webhook" \
	"url = http://127.0.0.1:$RPORT/app/fail/1" \
	"header = Authorization: Bearer \${file:$T/app-token}" \
	'header = X-Api-Key: ${env:APP_API_KEY}' \
	"secret_file = $T/outbound.key"
action_file "$HOOKS/uploaded.d/20-missing-file.webhook" \
	"url = http://127.0.0.1:$RPORT/missing-file" \
	"header = Authorization: Bearer \${file:$T/no-such-token}"
action_file "$HOOKS/uploaded.d/30-missing-env.webhook" \
	"url = http://127.0.0.1:$RPORT/missing-env" \
	'header = X-Api-Key: ${env:CFW_TEST_NOT_SET_ANYWHERE}'
printf 'first-line\nX-Injected: from-file\n' >"$T/two-lines"
action_file "$HOOKS/uploaded.d/40-inject-file.webhook" \
	"url = http://127.0.0.1:$RPORT/inject-file" \
	"header = X-Token: \${file:$T/two-lines}"
action_file "$HOOKS/uploaded.d/50-inject-env.webhook" \
	"url = http://127.0.0.1:$RPORT/inject-env" \
	'header = X-Token: ${env:CFW_TEST_TWO_LINES}'
set -- CFW_TEST_TWO_LINES="$(printf 'first-line\r\nX-Injected: from-env')" CFIMAGES_WEBHOOK_LOG_LEVEL=debug CFIMAGES_WEBHOOK_HOOK_ATTEMPTS=3 APP_API_KEY="$ENVKEY"

deliver "$ID" "$@"
RUN=$(run_id "$ID" uploaded.webhook)
RUN_FILE=$(run_id "$ID" uploaded.d/20-missing-file.webhook)
RUN_ENV=$(run_id "$ID" uploaded.d/30-missing-env.webhook)
RUN_IFILE=$(run_id "$ID" uploaded.d/40-inject-file.webhook)
RUN_IENV=$(run_id "$ID" uploaded.d/50-inject-env.webhook)
[ -n "$RUN" ] && [ -n "$RUN_FILE" ] && [ -n "$RUN_ENV" ] && [ -n "$RUN_IFILE" ] && [ -n "$RUN_IENV" ] ||
	{ fail "runs not queued as expected: $(sql 'SELECT id, hook, state FROM hook_runs')"; exit 1; }
wait_until 60 sql_is "SELECT count(*) FROM hook_runs WHERE attempts = 1 AND state <> 'running'" 5 ||
	fail "the first attempts did not all end: $(sql 'SELECT id, hook, state, attempts, exit_code, output FROM hook_runs')"
kill_runners
expect_eq "$(run_row "$RUN")" "queued|1|500" "the first attempt of the signed action"
make_due "$RUN"
hooks_run "$@"
expect_eq "$(run_row "$RUN")" "done|2|200" "the retry of the signed action"

# The secrets were sent (so their absence elsewhere means something).
expect_eq "$(recv_count app)" 2 "requests the endpoint got (none for a missing reference)"
expect_eq "$(recv app 2 header Authorization)" "Bearer $TOKEN" "the \${file:} token as sent"
expect_eq "$(recv app 2 header X-Api-Key)" "$ENVKEY" "the \${env:} key as sent"
[ -n "$(recv app 2 header webhook-signature)" ] || fail "the call was not signed"

# The missing references: the attempt failed, the output names them.
for r in "$RUN_FILE" "$RUN_ENV" "$RUN_IFILE" "$RUN_IENV"; do
	expect_eq "$(run_row "$r" | cut -d'|' -f1,2)" "queued|1" "run $r with a missing or multi-line reference"
done
run_output "$RUN_FILE" | grep -qF "$T/no-such-token" ||
	fail "the output does not name the missing file: $(run_output "$RUN_FILE")"
run_output "$RUN_ENV" | grep -qF CFW_TEST_NOT_SET_ANYWHERE ||
	fail "the output does not name the missing variable: $(run_output "$RUN_ENV")"
run_output "$RUN_IFILE" | grep -qF "$T/two-lines" ||
	fail "the output does not name the file with a line break: $(run_output "$RUN_IFILE")"
run_output "$RUN_IENV" | grep -qF CFW_TEST_TWO_LINES ||
	fail "the output does not name the variable with a line break: $(run_output "$RUN_IENV")"
sql "SELECT output FROM hook_runs" | grep -q -e first-line -e from-file -e from-env &&
	fail "a run's output holds the value of a multi-line reference"

# Nowhere stored or logged.
cfw hooks list >"$T/hooks-list.out" 2>&1
for s in "$TOKEN" "$ENVKEY" "$KEY_B64"; do
	expect_no_secret "$s"
	grep -qF -- "$s" "$T/hooks-list.out" && fail "hooks list shows the secret $s"
	sql "SELECT id FROM hook_runs WHERE output LIKE '%$s%'" | grep -q . &&
		fail "a run's output holds the secret $s"
done
grep -q . "$T/hooks-run.1.stderr" || say "note: hooks run logged nothing at debug level"
exit 0
