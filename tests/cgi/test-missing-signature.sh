#!/bin/sh
# cfimages-webhook(8) REQUEST CONTRACT row 4: when a secret is configured (environment, configuration
# file or secret_file), a delivery carrying no header of any supported
# scheme is answered 401 `Missing signature`, whatever its body, and
# changes nothing but its delivery row.  The secret never reaches the
# database or the log.
. "$top_srcdir/tests/lib.sh"

SECRET=m1ss1ng-s3cret-value
init_db abc
write_file "$T/json" '{"id":"abc","uploaded":"2024-01-01T12:00:00.000Z"}'

cgi POST "$T/json" CFIMAGES_WEBHOOK_SECRET="$SECRET"
expect_rejected 401 "Missing signature" missing_signature
expect_eq "$(last_delivery scheme)" NULL "scheme of an unauthenticated delivery"
expect_eq "$(last_delivery image_id)" NULL "an unauthenticated body is not parsed for an id"

# Headers that are not signature headers do not count.
cgi POST "$T/json" CFIMAGES_WEBHOOK_SECRET="$SECRET" HTTP_AUTHORIZATION="Bearer $SECRET" \
	HTTP_X_SIGNATURE_256=00 HTTP_SIGNATURE=00 HTTP_WEBHOOK_ID=msg_1 HTTP_WEBHOOK_TIMESTAMP=1
expect_rejected 401 "Missing signature" missing_signature

# Row 4 comes before row 6: an unsigned body that is not even JSON.
write_file "$T/notjson" 'this is not JSON'
cgi POST "$T/notjson" CFIMAGES_WEBHOOK_SECRET="$SECRET"
expect_rejected 401 "Missing signature" missing_signature
write_file "$T/empty" ''
cgi POST "$T/empty" CFIMAGES_WEBHOOK_SECRET="$SECRET"
expect_rejected 401 "Missing signature" missing_signature

# The secret from a configuration file.
printf 'secret = %s\n' "$SECRET" >"$T/secret.conf"
cgi POST "$T/json" CFIMAGES_WEBHOOK_CONFIG="$T/secret.conf"
expect_rejected 401 "Missing signature" missing_signature

# The secrets from a secret_file.
printf 'old-%s\n%s\n' "$SECRET" "$SECRET" >"$T/secrets"
cgi POST "$T/json" CFIMAGES_WEBHOOK_SECRET_FILE="$T/secrets"
expect_rejected 401 "Missing signature" missing_signature

# Without any secret the same delivery is accepted.
cgi POST "$T/json"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(last_delivery scheme)" "'none'" "scheme of a delivery accepted without a secret"

expect_no_secret "$SECRET"
