#!/bin/sh
# cfimages-webhook(8) REQUEST CONTRACT row 3: a CONTENT_LENGTH above max_body is answered 413 `Payload
# too large` before the body is read: the binary must answer even when the
# sender never sends the body (stdin stays open and empty here), and must
# not wait for it.  A body of exactly max_body bytes is not too large.
. "$top_srcdir/tests/lib.sh"

init_db abc
write_file "$T/empty" ''

# Stdin that never delivers a byte and never ends: a FIFO whose only
# writer sleeps.  Reading it would hang until the timeout.
mkfifo "$T/never" || hard_error "mkfifo failed"
sleep 120 >"$T/never" 2>/dev/null &
register_pid $!

saved_timeout=$CFW_TIMEOUT
CFW_TIMEOUT=10
CGI_STDIN=$T/never
cgi POST "$T/empty" CONTENT_LENGTH=2000000
CGI_STDIN=
CFW_TIMEOUT=$saved_timeout
{ [ "$CGI_RC" -eq 124 ] || [ "$CGI_RC" -eq 137 ]; } && fail "the binary waited for a body it should have refused unread"
expect_rejected 413 "Payload too large" payload_too_large
expect_eq "$(last_delivery scheme)" NULL "no scheme before authentication"

# The default max_body is 1048576 bytes: one byte more is too large.
cgi POST "$T/empty" CONTENT_LENGTH=1048577
expect_rejected 413 "Payload too large" payload_too_large
# Lengths beyond any integer type are above max_body too: 413, not a
# parse error read as an empty body.
cgi POST "$T/empty" CONTENT_LENGTH=99999999999999999999999
expect_rejected 413 "Payload too large" payload_too_large
cgi POST "$T/empty" CONTENT_LENGTH=9223372036854775808
expect_rejected 413 "Payload too large" payload_too_large
cgi POST "$T/empty" CONTENT_LENGTH=9223372036854775807
expect_rejected 413 "Payload too large" payload_too_large

# max_body from the environment: 10 bytes.
write_file "$T/ten" '{"id":"a"}'
write_file "$T/eleven" '{"id":"ab"}'
cgi POST "$T/eleven" CFIMAGES_WEBHOOK_MAX_BODY=10
expect_rejected 413 "Payload too large" payload_too_large
# Exactly max_body: read and judged (an id with nothing to apply).
cgi POST "$T/ten" CFIMAGES_WEBHOOK_MAX_BODY=10
expect_rejected 400 "Invalid payload" invalid_payload

# max_body from a configuration file.
printf '# small bodies only\nmax_body = 10\n' >"$T/small.conf"
cgi POST "$T/eleven" CFIMAGES_WEBHOOK_CONFIG="$T/small.conf"
expect_rejected 413 "Payload too large" payload_too_large

# Row 3 comes before row 4: an unsigned oversized body is 413, not 401.
cgi POST "$T/eleven" CFIMAGES_WEBHOOK_MAX_BODY=10 CFIMAGES_WEBHOOK_SECRET=s3cret-large
expect_rejected 413 "Payload too large" payload_too_large
expect_no_secret s3cret-large

# A real body just under the default limit is read and processed.
{
	printf '{"id":"abc","uploaded":"2024-01-01T12:00:00.000Z","metadata":{"pad":"'
	head -c 1048000 /dev/zero | tr '\0' 'x'
	printf '"}}'
} >"$T/big"
cgi POST "$T/big"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(last_delivery body_size)" "$(wc -c <"$T/big" | tr -d ' ')" "body_size of a 1 MB body"
