#!/bin/sh
# A secret is never logged or stored in the database, not even at
# log_level = debug (cfimages-webhook.conf(5), log_level): a representative
# set of requests -- every scheme accepted and refused, cf-webhook-auth
# whose header value is the secret itself (and the secret with a byte
# added), refusals before and after authentication, an ignored probe, an
# unknown id, a Standard Webhooks replay, a configuration error -- and a few
# operator commands, all at debug, then every byte written to stderr and a
# dump of the database are searched for each secret.
. "$top_srcdir/tests/lib.sh"

SECRET=n3ver-logged-secret-value-0042
WHSEC=whsec_TmV2ZXJMb2dnZWRXaHNlY0tleTAwNDIh
WHSEC_KEY=TmV2ZXJMb2dnZWRXaHNlY0tleTAwNDIh
FILE_SECRET=n3ver-logged-file-secret-0077
init_db abc img-std
mkdir -p "$HOOKS"
printf '%s\n%s\n' "$FILE_SECRET" "$WHSEC" >"$T/secrets"
chmod 600 "$T/secrets"
CONF=$T/debug.conf
printf 'secret = %s\nsecret_file = %s\nlog_level = debug\nallow_from = 127.0.0.0/8\n' \
	"$SECRET" "$T/secrets" >"$CONF"
chmod 600 "$CONF"
C=CFIMAGES_WEBHOOK_CONFIG=$CONF

write_file "$T/json" '{"id":"abc","uploaded":"2024-01-01T12:00:00.000Z"}'
write_file "$T/std.json" '{"id":"img-std","uploaded":"2024-01-01T12:00:00.000Z"}'
write_file "$T/unknown.json" '{"id":"nobody","uploaded":"2024-01-01T12:00:00.000Z"}'
write_file "$T/probe.json" '{"text":"Hello World! This is a test message sent from https://cloudflare.com."}'
write_file "$T/bad.json" '{"id":"abc",'
write_file "$T/payload.json" '{"id":""}'
HEX=$(sign_hex "$SECRET" "$T/json")

# answer STATUS BODY VAR=VALUE... on $T/json (or BODYFILE first when it
# starts with a slash).
answer()
{
	an_status=$1
	an_text=$2
	shift 2
	an_body=$T/json
	case $1 in
	/*) an_body=$1; shift ;;
	esac
	cgi POST "$an_body" "$C" "$@"
	expect_answer "$an_status" "$an_text"
}

# Accepted: each scheme, each kind of secret.
answer 200 OK HTTP_X_SIGNATURE="$HEX"
answer 200 OK HTTP_X_HUB_SIGNATURE_256="sha256=$(sign_hex "$FILE_SECRET" "$T/json")"
answer 200 OK HTTP_CF_WEBHOOK_AUTH="$SECRET"
answer 200 OK HTTP_CF_WEBHOOK_AUTH="$FILE_SECRET"
STREAM=$(cfw sign --scheme stream --secret "$SECRET" "$T/json" | sed -n 's/^Webhook-Signature: //p')
answer 200 OK HTTP_WEBHOOK_SIGNATURE="$STREAM"
cfw sign --scheme standard --secret "$WHSEC" "$T/std.json" >"$T/std" || fail "sign --scheme standard"
STD_ID=$(sed -n 's/^webhook-id: //p' "$T/std")
STD_TS=$(sed -n 's/^webhook-timestamp: //p' "$T/std")
STD_SIG=$(sed -n 's/^webhook-signature: //p' "$T/std")
answer 200 OK "$T/std.json" HTTP_WEBHOOK_ID="$STD_ID" HTTP_WEBHOOK_TIMESTAMP="$STD_TS" \
	HTTP_WEBHOOK_SIGNATURE="$STD_SIG"
expect_one_delivery applied 200
answer 200 OK "$T/std.json" HTTP_WEBHOOK_ID="$STD_ID" HTTP_WEBHOOK_TIMESTAMP="$STD_TS" \
	HTTP_WEBHOOK_SIGNATURE="$STD_SIG"
expect_one_delivery replay 200

# Refused at authentication: wrong signatures, the secret with a byte
# added or cut (the header then holds almost all of it), missing.
answer 401 "Invalid signature" HTTP_X_SIGNATURE="$(sign_hex "x$SECRET" "$T/json")"
answer 401 "Invalid signature" HTTP_CF_WEBHOOK_AUTH="${SECRET}x"
answer 401 "Invalid signature" HTTP_CF_WEBHOOK_AUTH="x${FILE_SECRET}"
answer 401 "Invalid signature" HTTP_CF_WEBHOOK_AUTH="$(printf '%s' "$SECRET" | cut -c2-)"
answer 401 "Invalid signature" HTTP_WEBHOOK_SIGNATURE="time=1,sig1=$HEX"
answer 401 "Invalid signature" HTTP_WEBHOOK_ID=msg_x HTTP_WEBHOOK_TIMESTAMP="$STD_TS" \
	HTTP_WEBHOOK_SIGNATURE="v1,$WHSEC_KEY"
answer 401 "Missing signature" HTTP_AUTHORIZATION="Bearer $SECRET"

# Refused before authentication, the secret in a header all the same.
cgi GET "$T/json" "$C" HTTP_CF_WEBHOOK_AUTH="$SECRET"
expect_answer 405 "Method not allowed"
cgi POST "$T/json" "$C" REMOTE_ADDR=192.0.2.1 HTTP_CF_WEBHOOK_AUTH="$SECRET"
expect_answer 403 Forbidden
cgi POST "$T/json" "$C" CONTENT_LENGTH=99999999 HTTP_CF_WEBHOOK_AUTH="$SECRET"
expect_answer 413 "Payload too large"

# Authenticated, then refused or ignored.
answer 400 "Invalid JSON" "$T/bad.json" HTTP_CF_WEBHOOK_AUTH="$SECRET"
answer 400 "Invalid payload" "$T/payload.json" HTTP_CF_WEBHOOK_AUTH="$SECRET"
answer 404 "Image not found" "$T/unknown.json" HTTP_CF_WEBHOOK_AUTH="$SECRET"
answer 200 Ignored "$T/probe.json" HTTP_CF_WEBHOOK_AUTH="$SECRET"
grep -q 'debug: ' "$CGI_ERR" || fail "log_level = debug logs nothing at debug: $(cat "$CGI_ERR")"

# A configuration error naming the secret's line, and a blank-lined
# secret_file, still at debug.
printf 'log_level = debug\nsecret = %s\nsecrte = %s\n' "$SECRET" "$SECRET" >"$T/broken.conf"
cgi POST "$T/json" CFIMAGES_WEBHOOK_CONFIG="$T/broken.conf" HTTP_CF_WEBHOOK_AUTH="$SECRET"
expect_answer 500 "Internal server error"

# Operator commands at debug (sign prints a secret by design: not here).
for cmd in check deliveries log "show abc" "hooks list" stats; do
	# shellcheck disable=SC2086 # the command is a list of words
	cfw --config "$CONF" $cmd >"$T/cmd.$CGI_N.$(echo "$cmd" | tr ' ' _).stderr" 2>&1
done

# Every stderr, every command output, the database files and a dump.
db_dump >"$T/dump.sql" ||
	fail "the database cannot be dumped"
grep -q img-std "$T/dump.sql" || fail "the dump holds no delivery: $(head -5 "$T/dump.sql")"
for s in "$SECRET" "$FILE_SECRET" "$WHSEC" "$WHSEC_KEY"; do
	expect_no_secret "$s"
	grep -q -F -e "$s" "$T/dump.sql" && fail "the secret $s is in the database dump"
done
exit 0
