#!/bin/sh
# cfimages-webhook(8) DESCRIPTION: started as CGI (GATEWAY_INTERFACE set, fd 0 the body) the binary
# answers one request whatever its arguments: a CGI server turns an
# ISINDEX query ("?init+x") into command-line arguments, so argv must
# never select an operator command, a database or a configuration there.
. "$top_srcdir/tests/lib.sh"

init_db abc
write_file "$T/json" '{"id":"abc","uploaded":"2024-01-01T12:00:00.000Z"}'
len=$(wc -c <"$T/json" | tr -d ' ')

# cgi_args ARGS...: one CGI request (the usual environment) with ARGS.
cgi_args()
{
	CGI_N=$((CGI_N + 1))
	CGI_OUT=$T/cgi.$CGI_N.out
	CGI_ERR=$T/cgi.$CGI_N.err
	DELIVERIES_BEFORE=$(delivery_count)
	run_binary 8 PATH="$CGI_PATH" GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=POST \
		CONTENT_LENGTH="$len" REMOTE_ADDR=127.0.0.1 CFIMAGES_WEBHOOK_CONFIG="$EMPTY_CONF" \
		CFIMAGES_WEBHOOK_DB="$DB" CFIMAGES_WEBHOOK_HOOKS_DIR="$HOOKS" "$@" \
		<"$T/json" >"$CGI_OUT" 2>"$CGI_ERR"
	CGI_RC=$?
	expect_eq "$CGI_RC" 0 "request $CGI_N ($*): exit status"
	parse_answer "$CGI_OUT"
}

cgi_args --db "$T/evil.db" init
expect_answer 200 OK
expect_one_delivery applied 200
[ -e "$T/evil.db" ] && fail "argv chose the database of a CGI request"
cgi_args --config "$T/evil.conf" show abc
expect_answer 200 OK
expect_one_delivery duplicate 200
cgi_args --help
expect_answer 200 OK
cgi_args sign --secret x /etc/passwd
expect_answer 200 OK
grep -q X-Signature "$CGI_OUT" && fail "argv ran sign in a CGI request"
cgi_args serve --listen "$T/evil.sock"
expect_answer 200 OK
[ -e "$T/evil.sock" ] && fail "argv started serve in a CGI request"
