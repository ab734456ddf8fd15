#!/bin/sh
# cfimages-webhook(8) HOOKS, a signed action (secret_file): the request
# carries the Standard Webhooks headers webhook-id, webhook-timestamp and
# webhook-signature, and the npm standardwebhooks package (the reference
# library, as an application would use it) verifies them, for a whsec_ key
# (base64 after the prefix) and for a key of raw bytes.  A tampered body or
# the wrong key is refused by the same verifier (so the check can fail).
# A secret_file of two keys (a rotation) signs with each: the request
# verifies with either.  An action without secret_file sends no signature.
#
# Mutations this catches: the HMAC over the body alone (not id.timestamp.
# body); the whsec_ key used as text instead of base64-decoded; a raw key
# base64-decoded; a timestamp in milliseconds; hex instead of base64.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"
. "$top_srcdir/tests/actionlib.sh"

need_standardwebhooks
init_db img-whsec img-raw img-rotation
start_receiver app
mkdir -p "$HOOKS/uploaded.d"
chmod 755 "$HOOKS" "$HOOKS/uploaded.d"
printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64 | tr -d '\n')" >"$T/whsec.key"
printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64 | tr -d '\n')" >"$T/wrong.key"
printf 'raw-signing-key: not base64 at all!' >"$T/raw.key"
printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64 | tr -d '\n')" >"$T/new.key"
cat "$T/whsec.key" "$T/new.key" >"$T/rotation.key"
chmod 600 "$T/whsec.key" "$T/raw.key" "$T/rotation.key"
action_file "$HOOKS/uploaded.webhook" \
	"url = http://127.0.0.1:$RPORT/signed" \
	"secret_file = $T/whsec.key"
action_file "$HOOKS/uploaded.d/10-unsigned.webhook" "url = http://127.0.0.1:$RPORT/unsigned"
action_file "$HOOKS/failed.webhook" \
	"url = http://127.0.0.1:$RPORT/raw" \
	"secret_file = $T/raw.key"

deliver img-whsec
wait_until 60 recv_count_is app 2 || fail "the uploaded actions made $(recv_count app) requests"
wait_hook_runners
expect_eq "$(recv app 1 path)" /signed "the first request"
for h in webhook-id webhook-timestamp webhook-signature; do
	[ -n "$(recv app 1 header "$h")" ] || fail "the signed request has no $h header"
done
recv app 1 header webhook-timestamp | grep -qx '[0-9]\{10\}' ||
	fail "webhook-timestamp is not seconds: $(recv app 1 header webhook-timestamp)"
recv app 1 header webhook-signature | grep -q '^v1,' ||
	fail "webhook-signature is not v1,...: $(recv app 1 header webhook-signature)"
expect_eq "$(sw_verify app 1 "$T/whsec.key")" verified "standardwebhooks verify() of the whsec_ signature"
recv app 1 body | sed 's/image\.uploaded/image.failed/' >"$T/tampered"
cmp -s "$T/tampered" "$T/sw.body" && hard_error "the tampering changed nothing"
SW_BODY=$T/tampered sw_verify app 1 "$T/whsec.key" >/dev/null &&
	fail "standardwebhooks accepted a tampered body: the verifier proves nothing"
sw_verify app 1 "$T/wrong.key" >/dev/null && fail "standardwebhooks accepted the wrong key"
expect_eq "$(recv app 2 path)" /unsigned "the second request"
expect_eq "$(recv app 2 header webhook-signature)" "" "webhook-signature of an unsigned action"

write_file "$T/failed.json" '{"id":"img-raw","error":"broken","timestamp":"2024-01-01T12:00:00.000Z"}'
cgi POST "$T/failed.json"
expect_answer 200 OK
wait_until 60 recv_count_is app 3 || fail "the failed action made no request"
wait_hook_runners
expect_eq "$(recv app 3 path)" /raw "the third request"
expect_eq "$(sw_verify app 3 "$T/raw.key" raw)" verified "standardwebhooks verify() of the raw-key signature"

# Two keys: two signatures, each verifies.
action_file "$HOOKS/draft.webhook" \
	"url = http://127.0.0.1:$RPORT/rotation" \
	"secret_file = $T/rotation.key"
write_file "$T/draft.json" '{"id":"img-rotation","draft":true}'
cgi POST "$T/draft.json"
expect_answer 200 OK
wait_until 60 recv_count_is app 4 || fail "the draft action made no request"
wait_hook_runners
expect_eq "$(recv app 4 path)" /rotation "the fourth request"
expect_eq "$(recv app 4 header webhook-signature | tr ' ' '\n' | grep -c '^v1,')" 2 \
	"v1 signatures with two keys"
expect_eq "$(sw_verify app 4 "$T/whsec.key")" verified "verify() with the old key of a rotation"
expect_eq "$(sw_verify app 4 "$T/new.key")" verified "verify() with the new key of a rotation"
sw_verify app 4 "$T/wrong.key" >/dev/null && fail "standardwebhooks accepted the wrong key (rotation)"
exit 0
