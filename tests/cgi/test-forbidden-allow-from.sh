#!/bin/sh
# cfimages-webhook(8) REQUEST CONTRACT row 1: a sender whose REMOTE_ADDR is outside allow_from gets 403
# `Forbidden` before anything else is looked at (method, size, signature,
# body), and the refusal is one webhook_deliveries row (reason forbidden,
# no scheme) that records the address.  Addresses inside the list, IPv6
# ones and IPv4-mapped IPv6 ones, pass.
. "$top_srcdir/tests/lib.sh"

init_db abc
write_file "$T/json" '{"id":"abc","uploaded":"2024-01-01T12:00:00.000Z"}'
write_file "$T/empty" ''
ALLOW=CFIMAGES_WEBHOOK_ALLOW_FROM="10.0.0.0/8, 192.168.1.0/24,2001:db8::/32"

for addr in 127.0.0.1 11.0.0.1 192.168.2.1 9.255.255.255 2001:db9::1 ::1 not-an-address; do
	cgi POST "$T/json" "$ALLOW" REMOTE_ADDR="$addr"
	expect_rejected 403 Forbidden forbidden
	expect_eq "$(last_delivery remote_addr)" "'$addr'" "$addr: remote_addr recorded"
	expect_eq "$(last_delivery scheme)" NULL "$addr: no scheme before authentication"
done

# No REMOTE_ADDR at all is not inside the list.
cgi POST "$T/json" "$ALLOW" REMOTE_ADDR=
expect_rejected 403 Forbidden forbidden

# Row 1 comes before rows 2 (method), 3 (size), 4 (signature) and 6 (JSON).
cgi GET "$T/empty" "$ALLOW"
expect_rejected 403 Forbidden forbidden
expect_eq "$(header Allow)" "" "403 carries no Allow header"
cgi POST "$T/empty" "$ALLOW" CONTENT_LENGTH=2000000
expect_rejected 403 Forbidden forbidden
cgi POST "$T/json" "$ALLOW" CFIMAGES_WEBHOOK_SECRET=s3cret-allow
expect_rejected 403 Forbidden forbidden
write_file "$T/bad" '{"id":'
cgi POST "$T/bad" "$ALLOW"
expect_rejected 403 Forbidden forbidden

# The same setting in a configuration file.
printf 'allow_from = 10.0.0.0/8\n' >"$T/allow.conf"
cgi POST "$T/json" CFIMAGES_WEBHOOK_CONFIG="$T/allow.conf"
expect_rejected 403 Forbidden forbidden

# Inside the list: the delivery goes on (and is applied once).
cgi POST "$T/json" "$ALLOW" REMOTE_ADDR=10.1.2.3
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(last_delivery remote_addr)" "'10.1.2.3'" "remote_addr of an accepted delivery"
expect_eq "$(image_status abc)" uploaded "a delivery from inside allow_from is applied"
for addr in 192.168.1.254 2001:db8:1::5 ::ffff:10.9.8.7; do
	cgi POST "$T/json" "$ALLOW" REMOTE_ADDR="$addr"
	expect_answer 200 OK
	expect_one_delivery duplicate 200
done

# Without allow_from, any address is accepted.
cgi POST "$T/json" REMOTE_ADDR=203.0.113.9
expect_answer 200 OK
