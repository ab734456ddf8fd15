#!/bin/sh
# cfimages-webhook(8) STATUSES: the same delivery twice is a duplicate (200 OK, delivery reason
# duplicate, a duplicate log row, the image row untouched, no hook queued
# again); a delivery out of uploaded or completed into another status is
# stale (200 OK, reason stale, a stale log row, the status stays); moves
# out of other statuses are applied.
. "$top_srcdir/tests/lib.sh"

ID=2cdc28f0-017a-49c4-9ed7-87056c83901
JOB=550e8400-e29b-41d4-a716-446655440000
init_db "$ID" "$JOB"
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
for s in uploaded failed draft queued completed; do
	printf '#!/bin/sh\nexit 0\n' >"$HOOKS/$s"
	chmod 755 "$HOOKS/$s"
done

image_row()
{
	sql "SELECT * FROM cloudflare_images WHERE cloudflare_id = '$1'"
}
log_types()
{
	sql "SELECT $(sql_concat event_type) FROM (SELECT event_type FROM cloudflare_image_logs WHERE image_id = '$1' ORDER BY id) AS l"
}
hook_runs()
{
	sql "SELECT count(*) FROM hook_runs WHERE image_id = '$1'"
}

UP=$PAYLOADS/cloudflare-upload-complete.json
FAILED=$PAYLOADS/cloudflare-upload-failed.json

cgi POST "$UP"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(hook_runs "$ID")" 1 "first delivery queues the uploaded hook"
row=$(image_row "$ID")

# The same delivery again: a duplicate.
cgi POST "$UP"
expect_answer 200 OK
expect_one_delivery duplicate 200
expect_eq "$(image_row "$ID")" "$row" "a duplicate leaves the image row untouched"
expect_eq "$(log_types "$ID")" "registered,status_changed,duplicate" "log rows after a duplicate"
expect_eq "$(hook_runs "$ID")" 1 "a duplicate queues no hook run"
# Another shape saying the same thing is a duplicate too.
cgi POST "$PAYLOADS/images-envelope-uploaded.json"
expect_answer 200 OK
expect_one_delivery duplicate 200
expect_eq "$(image_row "$ID")" "$row" "a duplicate in another shape leaves the row untouched"

# uploaded, then failed: stale, status stays uploaded, no error stored.
cgi POST "$FAILED"
expect_answer 200 OK
expect_one_delivery stale 200
expect_eq "$(image_status "$ID")" uploaded "status after a stale failure"
expect_eq "$(image_row "$ID")" "$row" "a stale delivery leaves the image row untouched"
expect_eq "$(log_types "$ID")" "registered,status_changed,duplicate,duplicate,stale" \
	"log rows after a stale delivery"
expect_eq "$(hook_runs "$ID")" 1 "a stale delivery queues no hook run"
# uploaded, then draft: stale as well.
write_file "$T/draft" '{"id":"'"$ID"'","draft":true}'
cgi POST "$T/draft"
expect_answer 200 OK
expect_one_delivery stale 200
expect_eq "$(image_status "$ID")" uploaded "status after a stale draft"

# completed is final too: queued -> completed -> failed is stale.
cgi POST "$PAYLOADS/job-queued.json"
expect_one_delivery applied 200
cgi POST "$PAYLOADS/job-completed.json"
expect_one_delivery applied 200
jrow=$(image_row "$JOB")
cgi POST "$PAYLOADS/job-failed.json"
expect_answer 200 OK
expect_one_delivery stale 200
expect_eq "$(image_row "$JOB")" "$jrow" "completed then failed: row untouched"
cgi POST "$PAYLOADS/job-queued.json"
expect_one_delivery stale 200
expect_eq "$(image_status "$JOB")" completed "completed then queued: still completed"
expect_eq "$(hook_runs "$JOB")" 2 "hooks of queued and completed only"

# Out of a status that is not final, a delivery is applied: failed ->
# uploaded (a retried upload), draft -> uploaded, failed twice = duplicate.
cfw register other >/dev/null
write_file "$T/f" '{"id":"other","error":"boom"}'
write_file "$T/u" '{"id":"other","uploaded":"2024-02-02T00:00:00Z"}'
cgi POST "$T/f"
expect_one_delivery applied 200
expect_sql "SELECT status, error FROM cloudflare_images WHERE cloudflare_id = 'other'" "failed|boom" \
	"failed with its error"
cgi POST "$T/f"
expect_one_delivery duplicate 200
cgi POST "$T/u"
expect_answer 200 OK
expect_one_delivery applied 200
expect_sql "SELECT status, $(sql_bool 'error IS NULL'), $(sql_time uploaded_at) FROM cloudflare_images WHERE cloudflare_id = 'other'" \
	"uploaded|1|2024-02-02T00:00:00.000Z" "failed then uploaded: applied, error cleared"
expect_eq "$(log_types other)" "registered,status_changed,duplicate,status_changed" "log rows of other"
cfw register drafty >/dev/null
write_file "$T/d" '{"id":"drafty","draft":true}'
write_file "$T/du" '{"id":"drafty","uploaded":"2024-02-02T00:00:00Z"}'
cgi POST "$T/d"
expect_one_delivery applied 200
cgi POST "$T/du"
expect_one_delivery applied 200
expect_eq "$(image_status drafty)" uploaded "draft then uploaded"

expect_sql "SELECT count(*) FROM cloudflare_image_logs WHERE event_type = 'duplicate' AND image_id = '$ID'" \
	2 "one duplicate log row per duplicate delivery"

# expired is not final: an upload that arrives after `expire` is applied.
cfw register late --expires-at 2001-01-01T00:00:00Z >/dev/null
cfw expire >/dev/null || fail "expire failed"
expect_eq "$(image_status late)" expired "expired by the expire command"
write_file "$T/late" '{"id":"late","uploaded":"2024-02-02T00:00:00Z"}'
cgi POST "$T/late"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status late)" uploaded "expired then uploaded: applied"

wait_hook_runners || fail "hook runs still running or due 10 s after the last request"
