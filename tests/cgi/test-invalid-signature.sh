#!/bin/sh
# cfimages-webhook(8) REQUEST CONTRACT row 5 and cfimages-webhook(8) AUTHENTICATION: with a secret configured, a delivery passes when
# any present signature header of any scheme verifies against any secret,
# and is otherwise answered 401 `Invalid signature` (one delivery row,
# nothing else).  Covers: hex HMAC in its four headers, upper-case hex, the
# sha256= prefix, cf-webhook-auth, Stream style, Standard Webhooks, empty
# and malformed headers, secret_file (any line matches; CRLF line ends).
# No secret is ever stored or logged.
. "$top_srcdir/tests/lib.sh"

SECRET=inv4lid-sig-s3cret
S=CFIMAGES_WEBHOOK_SECRET=$SECRET
init_db abc
write_file "$T/json" '{"id":"abc","uploaded":"2024-01-01T12:00:00.000Z"}'
write_file "$T/json2" '{"id":"abc","uploaded":"2024-01-01T12:00:00.001Z"}'
GOOD=$(sign_hex "$SECRET" "$T/json")
expect_eq "$(printf '%s' "$GOOD" | tr -d '0-9a-f' | wc -c | tr -d ' ')$(printf '%s' "$GOOD" | wc -c | tr -d ' ')" \
	064 "sign prints 64 lower-case hex digits"
UPPER=$(printf '%s' "$GOOD" | tr 'a-f' 'A-F')
WRONG=$(sign_hex "not-$SECRET" "$T/json")
OTHER_BODY=$(sign_hex "$SECRET" "$T/json2")

# accepted SCHEME VAR=VALUE...: the delivery passed authentication.
accepted()
{
	acc_scheme=$1
	shift
	cgi POST "$T/json" "$S" "$@"
	expect_answer 200 OK
	expect_eq "$(last_delivery scheme)" "'$acc_scheme'" "request $CGI_N: scheme recorded"
}

# refused [BODYFILE] VAR=VALUE...: 401 Invalid signature, nothing changed.
refused()
{
	ref_body=$T/json
	case $1 in
	/*) ref_body=$1; shift ;;
	esac
	cgi POST "$ref_body" "$S" "$@"
	expect_rejected 401 "Invalid signature" invalid_signature
	expect_eq "$(last_delivery scheme)" NULL "request $CGI_N: no scheme for a refused signature"
}

# Hex HMAC: wrong secret, another body, one byte changed, truncated,
# not hex, empty, prefix alone.
refused HTTP_X_SIGNATURE="$WRONG"
refused HTTP_X_SIGNATURE="$OTHER_BODY"
refused HTTP_X_SIGNATURE="$(printf '%s' "$GOOD" | cut -c1-63)"
refused HTTP_X_SIGNATURE="$(printf '%s' "$GOOD" | cut -c1-63)g"
refused HTTP_X_SIGNATURE="${GOOD}00"
refused HTTP_X_SIGNATURE=
refused HTTP_X_SIGNATURE=sha256=
refused HTTP_X_SIGNATURE="sha1=$GOOD"
refused HTTP_X_HUB_SIGNATURE_256="$WRONG"
# The body changed by one byte after signing.
sed 's/abc/abd/' "$T/json" >"$T/json.changed"
refused "$T/json.changed" HTTP_X_SIGNATURE="$GOOD"
# A body with one byte appended (the signature covers every byte).
{ cat "$T/json"; printf ' '; } >"$T/json.space"
refused "$T/json.space" HTTP_X_SIGNATURE="$GOOD"

# Hex HMAC accepted in each header, either case, with or without sha256=.
# (The first applies the delivery; the rest are duplicates: still 200 OK.)
accepted hex HTTP_X_SIGNATURE="$GOOD"
expect_eq "$(image_status abc)" uploaded "a signed delivery is applied"
accepted hex HTTP_X_SIGNATURE="$UPPER"
accepted hex HTTP_X_SIGNATURE="sha256=$GOOD"
accepted hex HTTP_X_CLOUDFLARE_SIGNATURE="sha256=$UPPER"
accepted hex HTTP_X_IMGGO_SIGNATURE="$GOOD"
accepted hex HTTP_X_HUB_SIGNATURE_256="sha256=$GOOD"
# One valid header among invalid ones is enough.
accepted hex HTTP_X_SIGNATURE="$WRONG" HTTP_X_HUB_SIGNATURE_256="sha256=$GOOD"

# cf-webhook-auth: the header equals the secret.
accepted cf-webhook-auth HTTP_CF_WEBHOOK_AUTH="$SECRET"
refused HTTP_CF_WEBHOOK_AUTH="${SECRET}x"
refused HTTP_CF_WEBHOOK_AUTH="$(printf '%s' "$SECRET" | cut -c2-)"
refused HTTP_CF_WEBHOOK_AUTH="$(printf '%s' "$SECRET" | tr 'a-z' 'A-Z')"
refused HTTP_CF_WEBHOOK_AUTH=
refused HTTP_CF_WEBHOOK_AUTH="$GOOD"

# Stream style, as `sign` makes it, then with a timestamp far outside
# the tolerance, and malformed.
STREAM=$(cfw sign --scheme stream --secret "$SECRET" "$T/json" | sed -n 's/^Webhook-Signature: //p')
accepted stream HTTP_WEBHOOK_SIGNATURE="$STREAM"
if command -v openssl >/dev/null 2>&1; then
	old=$(($(date +%s) - 3600))
	sig=$({ printf '%s.' "$old"; cat "$T/json"; } | openssl dgst -sha256 -hmac "$SECRET" -r | cut -c1-64)
	refused HTTP_WEBHOOK_SIGNATURE="time=$old,sig1=$sig"
	now=$(date +%s)
	sig=$({ printf '%s.' "$now"; cat "$T/json"; } | openssl dgst -sha256 -hmac "$SECRET" -r | cut -c1-64)
	accepted stream HTTP_WEBHOOK_SIGNATURE="time=$now,sig1=$sig"
	refused HTTP_WEBHOOK_SIGNATURE="time=$now,sig1=$WRONG"
	refused HTTP_WEBHOOK_SIGNATURE="time=$((now - 1)),sig1=$sig"
fi
refused HTTP_WEBHOOK_SIGNATURE="time=,sig1="
refused HTTP_WEBHOOK_SIGNATURE="time=abc,sig1=$GOOD"

# Standard Webhooks with a whsec_ secret; a raw secret is used as bytes.
WHSEC=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
cfw sign --scheme standard --secret "$WHSEC" "$T/json" >"$T/std" ||
	fail "sign --scheme standard failed"
STD_ID=$(sed -n 's/^webhook-id: //p' "$T/std")
STD_TS=$(sed -n 's/^webhook-timestamp: //p' "$T/std")
STD_SIG=$(sed -n 's/^webhook-signature: //p' "$T/std")
cgi POST "$T/json" CFIMAGES_WEBHOOK_SECRET="$WHSEC" HTTP_WEBHOOK_ID="$STD_ID" \
	HTTP_WEBHOOK_TIMESTAMP="$STD_TS" HTTP_WEBHOOK_SIGNATURE="v1a,xxxx $STD_SIG"
expect_answer 200 OK
expect_eq "$(last_delivery scheme)" "'standard'" "Standard Webhooks scheme"
expect_eq "$(last_delivery message_id)" "'$STD_ID'" "webhook-id stored as message_id"
cgi POST "$T/json" CFIMAGES_WEBHOOK_SECRET="$WHSEC" HTTP_WEBHOOK_ID="${STD_ID}x" \
	HTTP_WEBHOOK_TIMESTAMP="$STD_TS" HTTP_WEBHOOK_SIGNATURE="$STD_SIG"
expect_rejected 401 "Invalid signature" invalid_signature
cgi POST "$T/json" CFIMAGES_WEBHOOK_SECRET="$WHSEC" HTTP_WEBHOOK_ID="$STD_ID" \
	HTTP_WEBHOOK_TIMESTAMP="$((STD_TS - 3600))" HTTP_WEBHOOK_SIGNATURE="$STD_SIG"
expect_rejected 401 "Invalid signature" invalid_signature
cgi POST "$T/json" CFIMAGES_WEBHOOK_SECRET="$WHSEC" HTTP_WEBHOOK_ID="$STD_ID" \
	HTTP_WEBHOOK_TIMESTAMP="$STD_TS" HTTP_WEBHOOK_SIGNATURE="garbage"
expect_rejected 401 "Invalid signature" invalid_signature
cfw sign --scheme standard --secret "$SECRET" "$T/json" >"$T/std.raw"
accepted standard HTTP_WEBHOOK_ID="$(sed -n 's/^webhook-id: //p' "$T/std.raw")" \
	HTTP_WEBHOOK_TIMESTAMP="$(sed -n 's/^webhook-timestamp: //p' "$T/std.raw")" \
	HTTP_WEBHOOK_SIGNATURE="$(sed -n 's/^webhook-signature: //p' "$T/std.raw")"

# A present but invalid header is not rescued by the absence of others,
# and counts as present (401 Invalid, not Missing).
refused HTTP_X_IMGGO_SIGNATURE=zz

# secret_file: every line is a secret (rotation), blank lines ignored.
printf 'first-old-secret\n\n%s\n' "$SECRET" >"$T/secrets"
chmod 600 "$T/secrets"
cgi POST "$T/json" CFIMAGES_WEBHOOK_SECRET_FILE="$T/secrets" HTTP_X_SIGNATURE="$GOOD"
expect_answer 200 OK
OLD_SIG=$(sign_hex first-old-secret "$T/json")
cgi POST "$T/json" CFIMAGES_WEBHOOK_SECRET_FILE="$T/secrets" HTTP_X_SIGNATURE="$OLD_SIG"
expect_answer 200 OK
# A rewritten file re-read by a long-lived process (each CGI request is a
# new process, so there is no copy held to go stale here) is
# tests/servers/test-secret-file-rotation.sh.
# CRLF line ends do not become part of the secret.
printf 'first-old-secret\r\n%s\r\n' "$SECRET" >"$T/secrets"
cgi POST "$T/json" CFIMAGES_WEBHOOK_SECRET_FILE="$T/secrets" HTTP_X_SIGNATURE="$GOOD"
expect_answer 200 OK

# The image moved once; every other accepted delivery was a duplicate.
expect_sql "SELECT count(*) FROM cloudflare_image_logs WHERE event_type = 'status_changed'" 1 \
	"one status change for all accepted deliveries"

expect_no_secret "$SECRET"
expect_no_secret first-old-secret
expect_no_secret "$WHSEC"
expect_no_secret MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
