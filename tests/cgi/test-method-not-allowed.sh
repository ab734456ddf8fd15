#!/bin/sh
# cfimages-webhook(8) REQUEST CONTRACT row 2: a method other than POST is answered 405 with an
# `Allow: POST` header, whatever the body, and recorded as
# method_not_allowed; nothing else changes.  Row 2 comes after row 1
# (allow_from) and before every later row: even a request that is also too
# large, unsigned or not JSON gets 405.
. "$top_srcdir/tests/lib.sh"

init_db abc
write_file "$T/empty" ''
write_file "$T/json" '{"id":"abc","uploaded":"2024-01-01T12:00:00.000Z"}'

for method in GET HEAD PUT DELETE PATCH OPTIONS post; do
	cgi "$method" "$T/empty" CONTENT_LENGTH=
	expect_rejected 405 "Method not allowed" method_not_allowed
	expect_eq "$(header Allow)" "POST" "$method: Allow header"
	expect_eq "$(last_delivery scheme)" "NULL" "$method: scheme of a request refused before authentication"
done

# A valid delivery sent with the wrong method changes nothing.
cgi PUT "$T/json"
expect_rejected 405 "Method not allowed" method_not_allowed
expect_eq "$(image_status abc)" pending "PUT did not apply the delivery"

# 405 before 413, 401 and 400.
cgi GET "$T/empty" CONTENT_LENGTH=2000000 CFIMAGES_WEBHOOK_SECRET=s3cret
expect_rejected 405 "Method not allowed" method_not_allowed
expect_eq "$(header Allow)" "POST" "405 before 413: Allow header"

# No REQUEST_METHOD at all is not POST either.
cgi "" "$T/json"
expect_rejected 405 "Method not allowed" method_not_allowed

# A POST carries no Allow header.
cgi POST "$T/json"
expect_answer 200 OK
expect_eq "$(header Allow)" "" "a 200 has no Allow header"
