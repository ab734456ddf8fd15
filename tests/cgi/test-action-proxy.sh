#!/bin/sh
# cfimages-webhook(8) HOOKS, proxies: an action takes no proxy from the
# environment (http_proxy, HTTP_PROXY, https_proxy, ALL_PROXY; in CGI mode
# HTTP_PROXY may even come from a request's Proxy: header, "httpoxy"): it
# connects to its URL directly.  With `proxy = URL` in the action it goes
# through that proxy, and only then.
#
# Mutations this catches: libcurl left to read the proxy variables (the
# environment's proxy receiver gets the calls); the proxy key ignored.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"
. "$top_srcdir/tests/actionlib.sh"

init_db img-direct img-proxied
start_receiver envproxy
ENVPROXY=http://127.0.0.1:$RPORT
start_receiver proxy
PROXY=http://127.0.0.1:$RPORT
start_receiver app
APP=http://127.0.0.1:$RPORT
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
action_file "$HOOKS/uploaded.webhook" "url = $APP/direct"
action_file "$HOOKS/failed.webhook" "url = $APP/via-proxy" "proxy = $PROXY"
set -- http_proxy="$ENVPROXY" HTTP_PROXY="$ENVPROXY" https_proxy="$ENVPROXY" \
	HTTPS_PROXY="$ENVPROXY" ALL_PROXY="$ENVPROXY" all_proxy="$ENVPROXY"

deliver img-direct "$@"
RUN=$(run_id img-direct uploaded.webhook)
[ -n "$RUN" ] || { fail "no run queued: $(sql 'SELECT hook, state FROM hook_runs')"; exit 1; }
wait_until 60 run_is "$RUN" "done|1" ||
	fail "the direct action: $(sql "SELECT state, attempts, exit_code, output FROM hook_runs WHERE id = $RUN")"
expect_eq "$(recv_count app)" 1 "requests the endpoint got directly"
expect_eq "$(recv app 1 path)" /direct "the direct request's path"
expect_eq "$(recv_count envproxy)" 0 "requests through the environment's proxy"

write_file "$T/failed.json" '{"id":"img-proxied","error":"broken","timestamp":"2024-01-01T12:00:00.000Z"}'
cgi POST "$T/failed.json" "$@"
expect_answer 200 OK
RUN2=$(run_id img-proxied failed.webhook)
wait_until 60 run_is "$RUN2" "done|1" ||
	fail "the proxied action: $(sql "SELECT state, attempts, exit_code, output FROM hook_runs WHERE id = $RUN2")"
expect_eq "$(recv_count proxy)" 1 "requests through the action's proxy"
expect_eq "$(recv proxy 1 request_line)" "POST $APP/via-proxy HTTP/1.1" \
	"the request line the proxy got"
expect_eq "$(recv_count app)" 1 "requests the endpoint got directly (the proxied one went to the proxy)"
expect_eq "$(recv_count envproxy)" 0 "requests through the environment's proxy"
exit 0
