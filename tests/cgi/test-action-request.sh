#!/bin/sh
# cfimages-webhook(8) HOOKS, outbound actions: a NAME.webhook file (mode
# 0644: an action need not be executable) is an HTTP call made after the
# answer, by the runner the CGI starts.  The request has the action's
# method (POST by default, PUT, PATCH) and URL (query string kept), its
# headers with ${file:PATH} values (the file's content, trimmed) and
# ${env:NAME} values (from the runner's environment, here the CGI's), a
# literal '$' kept, a '#' kept unless a blank precedes it (then it starts a
# comment, after a URL too), Content-Type application/json, and the default
# payload: {"type":"image.STATUS","timestamp":RFC 3339,"data":{the image
# as `show` prints it, "previous_status","event"}}.  The run is done with
# exit_code 200 and output starting "HTTP 200"; `hooks list` shows it.
#
# Mutations this catches: the method key ignored (always POST); the query
# string dropped; ${file:} not trimmed or read at parse time; ${env:} read
# from the config instead of the environment; a header value cut at '#';
# a header value or URL cut at a '#' that follows no blank, or a comment
# sent; the payload's data built from the delivery body instead of the stored
# image (no created_at/updated_at), previous_status/event missing; type
# without the "image." prefix; exit_code not the HTTP status.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"
. "$top_srcdir/tests/actionlib.sh"

ID=img-action-request
init_db "$ID"
cfw register img-meta --metadata '{"userId":"u-42","n":1}' >/dev/null || hard_error "register img-meta"
start_receiver app
mkdir -p "$HOOKS/uploaded.d"
chmod 755 "$HOOKS" "$HOOKS/uploaded.d"
printf '  token-from-file-7f3a\n\n' >"$T/token"
printf 'second-part' >"$T/part2"
action_file "$HOOKS/uploaded.webhook" \
	'# the application, told of every upload' \
	"url = http://127.0.0.1:$RPORT/hooks/images?source=cfw&x=1#frag   # the app" \
	'method = PUT' \
	"header = Authorization: Bearer \${file:$T/token}" \
	'header = X-Env: ${env:DEPLOY_ENV}' \
	"header = X-Mixed: a-\${env:DEPLOY_ENV}-\${file:$T/part2}-z" \
	'header = X-Literal: costs $5 a#1 {not a reference}   # a comment'
action_file "$HOOKS/uploaded.d/20-patch.webhook" \
	"url = http://127.0.0.1:$RPORT/patched" \
	'method = PATCH'
action_file "$HOOKS/uploaded.d/30-default.webhook" \
	"url = http://127.0.0.1:$RPORT/default"

deliver "$ID" DEPLOY_ENV=staging-eu
RUN=$(run_id "$ID" uploaded.webhook)
RUN_PATCH=$(run_id "$ID" uploaded.d/20-patch.webhook)
RUN_POST=$(run_id "$ID" uploaded.d/30-default.webhook)
[ -n "$RUN" ] && [ -n "$RUN_PATCH" ] && [ -n "$RUN_POST" ] ||
	{ fail "runs not queued as expected: $(sql 'SELECT id, hook, state FROM hook_runs')"; exit 1; }
wait_until 60 sql_is "SELECT $(sql_concat state) FROM (SELECT state FROM hook_runs ORDER BY id) r" \
	done,done,done ||
	fail "the three action runs are not done: $(sql 'SELECT id, hook, state, attempts, exit_code, output FROM hook_runs')"
expect_eq "$(recv_count app)" 3 "requests the receiver got"

# The three requests, in the runs' order.
expect_eq "$(recv app 1 method)" PUT "method of uploaded.webhook"
expect_eq "$(recv app 1 path)" "/hooks/images?source=cfw&x=1" "path and query of uploaded.webhook"
expect_eq "$(recv app 1 header Authorization)" "Bearer token-from-file-7f3a" \
	"a \${file:} header value (trimmed)"
expect_eq "$(recv app 1 header X-Env)" staging-eu "an \${env:} header value"
expect_eq "$(recv app 1 header X-Mixed)" "a-staging-eu-second-part-z" "several references in one value"
expect_eq "$(recv app 1 header X-Literal)" 'costs $5 a#1 {not a reference}' \
	"a value with a literal \$ and #, then a comment"
expect_eq "$(recv app 1 header Content-Type)" application/json "Content-Type"
expect_eq "$(recv app 2 method)" PATCH "method of 20-patch.webhook"
expect_eq "$(recv app 2 path)" /patched "path of 20-patch.webhook"
expect_eq "$(recv app 3 method)" POST "the default method"
expect_eq "$(recv app 3 path)" /default "path of 30-default.webhook"
expect_eq "$(recv app 2 header Authorization)" "" "headers of one action sent by another"

# The default payload, against `show`.
cfw show "$ID" >"$T/show.json" || fail "show $ID failed"
recv app 3 body >"$T/body.json"
recv app 3 valid-json || fail "the default payload is not JSON: $(cat "$T/body.json")"
"$PYTHON3" - "$T/body.json" "$T/show.json" >"$T/payload-check" 2>&1 <<'EOF' ||
import json, re, sys
body = json.load(open(sys.argv[1]), object_pairs_hook=lambda p: p)
show = json.load(open(sys.argv[2]), object_pairs_hook=lambda p: p)
problems = []
keys = [k for k, _ in body]
if keys != ["type", "timestamp", "data"]:
    problems.append("top-level members %s" % keys)
top = dict(body)
if top.get("type") != "image.uploaded":
    problems.append("type %r" % top.get("type"))
if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", str(top.get("timestamp"))):
    problems.append("timestamp %r is not RFC 3339" % top.get("timestamp"))
data = top.get("data") or []
expected = show + [("previous_status", "pending"), ("event", "upload.complete")]
if data != expected:
    problems.append("data %r, expected %r" % (data, expected))
print("\n".join(problems))
sys.exit(1 if problems else 0)
EOF
	fail "the default payload: $(cat "$T/payload-check")"

# The runs: exit_code is the HTTP status, output starts with it.
expect_sql "SELECT state, attempts, exit_code FROM hook_runs WHERE id = $RUN" "done|1|200" \
	"the uploaded.webhook run"
run_output "$RUN" | head -n 1 | grep -q '^HTTP 200' ||
	fail "the run's output does not start with HTTP 200: $(run_output "$RUN")"
run_output "$RUN" | grep -q 'receiver: 200 for request 1' ||
	fail "the run's output lacks the answer's body: $(run_output "$RUN")"
cfw hooks list >"$T/list" 2>&1 || fail "hooks list failed: $(cat "$T/list")"
for h in uploaded.webhook uploaded.d/20-patch.webhook uploaded.d/30-default.webhook; do
	grep "	done	" "$T/list" | grep -q "	$h	$ID	" ||
		fail "hooks list does not show the done run of $h: $(cat "$T/list")"
done

# Another image: metadata reaches data as `show` prints it.
deliver img-meta DEPLOY_ENV=staging-eu
wait_until 60 recv_count_is app 6 || fail "the second delivery's actions made $(recv_count app) requests in all"
expect_eq "$(recv app 6 json data.metadata)" '{"userId":"u-42","n":1}' "data.metadata of the second image"
expect_eq "$(recv app 6 json data.id)" '"img-meta"' "data.id of the second image"
wait_hook_runners
exit 0
