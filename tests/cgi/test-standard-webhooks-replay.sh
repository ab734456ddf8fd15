#!/bin/sh
# cfimages-webhook(8) REQUEST CONTRACT: a Standard Webhooks webhook-id that already produced a 200 is
# answered 200 `OK` again without re-applying anything (the sender's retry
# of a delivery whose answer was lost): a delivery row with reason replay,
# no log row, no hook run.  A webhook-id whose earlier answer was not a
# 200 (here a 404) is processed normally on retry.
. "$top_srcdir/tests/lib.sh"

SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
ID=2cdc28f0-017a-49c4-9ed7-87056c83901
init_db "$ID"
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
for s in uploaded failed; do
	printf '#!/bin/sh\nexit 0\n' >"$HOOKS/$s"
	chmod 755 "$HOOKS/$s"
done

# signed FILE: sets $H1 $H2 $H3 to the Standard Webhooks headers for FILE.
signed()
{
	cfw sign --scheme standard --secret "$SECRET" "$1" >"$T/headers" || fail "sign $1"
	H1=HTTP_WEBHOOK_ID=$(sed -n 's/^webhook-id: //p' "$T/headers")
	H2=HTTP_WEBHOOK_TIMESTAMP=$(sed -n 's/^webhook-timestamp: //p' "$T/headers")
	H3=HTTP_WEBHOOK_SIGNATURE=$(sed -n 's/^webhook-signature: //p' "$T/headers")
}
S=CFIMAGES_WEBHOOK_SECRET=$SECRET

UP=$PAYLOADS/cloudflare-upload-complete.json
signed "$UP"
cgi POST "$UP" "$S" "$H1" "$H2" "$H3"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(last_delivery message_id)" "'${H1#*=}'" "message_id stored"
logs=$(sql "SELECT count(*) FROM cloudflare_image_logs")
runs=$(sql "SELECT count(*) FROM hook_runs")

# The identical retry: replay.
cgi POST "$UP" "$S" "$H1" "$H2" "$H3"
expect_rejected 200 OK replay
expect_eq "$(last_delivery scheme)" "'standard'" "replay: scheme"
expect_eq "$(last_delivery message_id)" "'${H1#*=}'" "replay: message_id"
expect_sql "SELECT count(*) FROM cloudflare_image_logs" "$logs" "a replay adds no log row (not even a duplicate)"
expect_sql "SELECT count(*) FROM hook_runs" "$runs" "a replay queues no hook"

# A replay is still authenticated first: the same id with a bad signature.
cgi POST "$UP" "$S" "$H1" "$H2" HTTP_WEBHOOK_SIGNATURE=v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
expect_rejected 401 "Invalid signature" invalid_signature

# A new message id for the same content: a duplicate, not a replay.
signed "$UP"
cgi POST "$UP" "$S" "$H1" "$H2" "$H3"
expect_answer 200 OK
expect_one_delivery duplicate 200

# A message first answered 404, retried after the image was registered:
# applied, not a replay.
write_file "$T/late" '{"id":"late-img","error":"boom"}'
signed "$T/late"
cgi POST "$T/late" "$S" "$H1" "$H2" "$H3"
expect_rejected 404 "Image not found" not_found
cfw register late-img >/dev/null
cgi POST "$T/late" "$S" "$H1" "$H2" "$H3"
expect_answer 200 OK
expect_one_delivery applied 200
expect_sql "SELECT status, error FROM cloudflare_images WHERE cloudflare_id = 'late-img'" "failed|boom" \
	"the retried message is applied"
cgi POST "$T/late" "$S" "$H1" "$H2" "$H3"
expect_rejected 200 OK replay

# Without Standard Webhooks headers, repeating a delivery is a duplicate
# (there is no message id to recognise).
cgi POST "$UP" "$S" HTTP_X_SIGNATURE="$(cfw sign --secret "$SECRET" "$UP" | sed -n 's/^X-Signature: //p')"
expect_answer 200 OK
expect_one_delivery duplicate 200
expect_eq "$(last_delivery message_id)" NULL "no message_id without webhook-id"
expect_no_secret "$SECRET"

wait_hook_runners || fail "hook runs still running or due 10 s after the last request"
