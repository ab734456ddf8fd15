#!/bin/sh
# cfimages-webhook(8) REQUEST CONTRACT row 8 and cfimages-webhook(8) PAYLOADS: a valid payload of an event type this program
# does not act on is answered 200 `Ignored`, recorded as one delivery row
# (reason ignored), and changes no image, log row or hook run: Cloudflare's
# "Save and Test" probe, other notification alert types, image.* and job.*
# events we do not act on (their rest is not validated), an Images
# notification whose data carries no id.  Authentication still comes first.
. "$top_srcdir/tests/lib.sh"

ID=2cdc28f0-017a-49c4-9ed7-87056c83901
init_db "$ID" abc
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
for s in uploaded failed draft queued completed expired pending; do
	printf '#!/bin/sh\nexit 0\n' >"$HOOKS/$s"
	chmod 755 "$HOOKS/$s"
done

# ignored FILE: 200 Ignored, nothing but the delivery row.
ignored()
{
	cgi POST "$1"
	expect_rejected 200 Ignored ignored
	expect_eq "$(last_delivery scheme)" "'none'" "request $CGI_N: scheme"
}
ignored_json()
{
	write_file "$T/body" "$1"
	ignored "$T/body"
}

ignored "$PAYLOADS/notification-test-probe.json"
ignored "$PAYLOADS/notification-other-alert.json"
ignored "$PAYLOADS/notification-image-resizing.json"

ignored_json '{"text":"Hello World! This is a test message sent from https://cloudflare.com."}'
ignored_json '{"event":"image.deleted","timestamp":"2025-01-15T10:30:45.123Z","image":{"id":"abc"}}'
ignored_json '{"event":"image.deleted","image":"not even an object"}'
ignored_json '{"event":"image.variant_created","image":{"id":"abc","uploaded":"2025-01-15T10:30:45.000Z"}}'
ignored_json '{"event":"job.unknown","job_id":"abc"}'
ignored_json '{"event":"job.started","job_id":42}'
ignored_json '{"event":"job.cancelled"}'
ignored_json '{"event":"user.created","id":"abc","uploaded":"2025-01-15T10:30:45.000Z"}'
ignored_json '{"alert_type":"universal_ssl_event_type","data":"anything"}'
ignored_json '{"alert_type":"image_resizing_notification","data":{"id":"abc","uploaded":"2024-01-01T12:00:00.000Z"}}'

# An Images notification whose data carries no id (cfimages-webhook(8) PAYLOADS): answered
# Ignored (an unknown shape must not make Cloudflare retry) and "kept in
# full in its log row": one cloudflare_image_logs row holding the body
# byte for byte; still no image and no hook run.
kept_in_full()
{
	write_file "$T/body" "$1"
	logs=$(sql "SELECT count(*) FROM cloudflare_image_logs")
	images=$(sql "SELECT * FROM cloudflare_images ORDER BY cloudflare_id")
	runs=$(sql "SELECT count(*) FROM hook_runs")
	cgi POST "$T/body"
	expect_answer 200 Ignored
	expect_one_delivery ignored 200
	expect_sql "SELECT count(*) FROM cloudflare_image_logs" $((logs + 1)) \
		"request $CGI_N: one log row keeps the unrecognized Images notification"
	sql_text data "FROM cloudflare_image_logs ORDER BY id DESC LIMIT 1" >"$T/kept"
	cmp -s "$T/kept" "$T/body" || fail "request $CGI_N: the log row's data is not the body in full"
	expect_eq "$(sql "SELECT * FROM cloudflare_images ORDER BY cloudflare_id")" "$images" \
		"request $CGI_N: no image touched"
	expect_sql "SELECT count(*) FROM hook_runs" "$runs" "request $CGI_N: no hook run"
}
kept_in_full '{"name":"Images","text":"something happened","data":{"count":3},"ts":1704110400,"alert_type":"image_notification"}'
kept_in_full '{"name":"Images","text":"x","data":{},"alert_type":"images_upload_notification"}'
# No data object at all is the same unknown shape.
kept_in_full '{"name":"Images","text":"x","data":"abc","alert_type":"image_notification"}'
kept_in_full '{"name":"Images","text":"x","alert_type":"image_notification"}'

expect_eq "$(image_status "$ID")" pending "image untouched by ignored deliveries"
expect_eq "$(image_status abc)" pending "abc untouched by ignored deliveries"
expect_sql "SELECT count(*) FROM hook_runs" 0 "no hook run queued"

# Authentication still comes first: an unsigned probe is refused when a
# secret is configured, a signed one is Ignored.
SECRET=ign0red-s3cret
cgi POST "$PAYLOADS/notification-test-probe.json" CFIMAGES_WEBHOOK_SECRET="$SECRET"
expect_rejected 401 "Missing signature" missing_signature
cgi POST "$PAYLOADS/notification-test-probe.json" CFIMAGES_WEBHOOK_SECRET="$SECRET" \
	HTTP_CF_WEBHOOK_AUTH="$SECRET"
expect_rejected 200 Ignored ignored
expect_eq "$(last_delivery scheme)" "'cf-webhook-auth'" "scheme of a signed probe"
expect_no_secret "$SECRET"

wait_hook_runners || fail "hook runs still running or due 10 s after the last request"
