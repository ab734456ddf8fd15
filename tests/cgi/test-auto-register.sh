#!/bin/sh
# cfimages-webhook.conf(5) auto_register and cfimages-webhook(8) STATUSES: with auto_register = yes an unknown id
# is created instead of answering 404, the delivery applied to it (its
# previous status being the empty string) and its hooks queued.  The
# setting works from the environment and from the configuration file,
# and the environment wins over the file.
. "$top_srcdir/tests/lib.sh"

ID=2cdc28f0-017a-49c4-9ed7-87056c83901
JOB=550e8400-e29b-41d4-a716-446655440000
init_db
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
printf '#!/bin/sh\nexit 0\n' >"$HOOKS/uploaded"
chmod 755 "$HOOKS/uploaded"

cgi POST "$PAYLOADS/cloudflare-upload-complete.json" CFIMAGES_WEBHOOK_AUTO_REGISTER=yes
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status "$ID")" uploaded "auto-registered image status"
expect_sql "SELECT $(sql_json metadata '$.key'), json_array_length(variants), $(sql_bool 'created_at <= updated_at')
	FROM cloudflare_images WHERE cloudflare_id = '$ID'" "value|2|1" "auto-registered image fields"
expect_sql "SELECT event_type FROM cloudflare_image_logs WHERE image_id = '$ID' ORDER BY id" \
	status_changed "one status_changed log row"
expect_sql "SELECT hook, status FROM hook_runs WHERE image_id = '$ID'" "uploaded|uploaded" \
	"the uploaded hook is queued"
cfw show "$ID" >/dev/null || fail "show of an auto-registered image"

# The same delivery again: a duplicate, not a second image.
cgi POST "$PAYLOADS/cloudflare-upload-complete.json" CFIMAGES_WEBHOOK_AUTO_REGISTER=yes
expect_answer 200 OK
expect_one_delivery duplicate 200
expect_sql "SELECT count(*) FROM cloudflare_images" 1 "still one image"

# A failure for an unknown job, from the configuration file.
printf 'auto_register = yes\n' >"$T/auto.conf"
cgi POST "$PAYLOADS/job-failed.json" CFIMAGES_WEBHOOK_CONFIG="$T/auto.conf"
expect_answer 200 OK
expect_one_delivery applied 200
expect_sql "SELECT status, error FROM cloudflare_images WHERE cloudflare_id = '$JOB'" \
	"failed|Image URL is not accessible" "auto-registered failed job"

# The environment wins over the file.
write_file "$T/new" '{"id":"brand-new","uploaded":"2024-01-01T12:00:00Z"}'
cgi POST "$T/new" CFIMAGES_WEBHOOK_CONFIG="$T/auto.conf" CFIMAGES_WEBHOOK_AUTO_REGISTER=no
expect_rejected 404 "Image not found" not_found
printf 'auto_register = no\n' >"$T/noauto.conf"
cgi POST "$T/new" CFIMAGES_WEBHOOK_CONFIG="$T/noauto.conf" CFIMAGES_WEBHOOK_AUTO_REGISTER=yes
expect_answer 200 OK
expect_eq "$(image_status brand-new)" uploaded "environment yes over file no"

# Ignored and invalid deliveries never create an image.
write_file "$T/ignored" '{"event":"image.deleted","image":{"id":"ghost"}}'
cgi POST "$T/ignored" CFIMAGES_WEBHOOK_AUTO_REGISTER=yes
expect_rejected 200 Ignored ignored
write_file "$T/invalid" '{"id":"ghost","uploaded":"never"}'
cgi POST "$T/invalid" CFIMAGES_WEBHOOK_AUTO_REGISTER=yes
expect_rejected 400 "Invalid payload" invalid_payload
expect_eq "$(image_status ghost)" "" "no image created for ignored or invalid deliveries"

wait_hook_runners || fail "hook runs still running or due 10 s after the last request"
