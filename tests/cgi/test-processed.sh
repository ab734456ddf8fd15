#!/bin/sh
# cfimages-webhook(8) REQUEST CONTRACT row 11, cfimages-webhook(8) PAYLOADS and cfimages-webhook(8) DATABASE: each sample delivery of
# tests/vectors/payloads gets the answer and leaves the status its
# README.md table gives (the table is read here, so the two cannot drift
# apart), with its id registered first in a fresh database.  An applied
# delivery stores its fields (metadata and variants as JSON, the error
# text, a job's result), one status_changed log row holding the raw body
# byte for byte, and one delivery row with the body's size and SHA-256.
. "$top_srcdir/tests/lib.sh"

ID=2cdc28f0-017a-49c4-9ed7-87056c83901
JOB=550e8400-e29b-41d4-a716-446655440000
TABLE=$PAYLOADS/README.md
[ -f "$TABLE" ] || hard_error "no $TABLE"

# The table's rows: file, answer, status afterwards.
awk -F'|' '/^\| *[a-z0-9-]+\.json/ {
	split($2, f, " "); a = $3; s = $4
	gsub(/^ +| +$/, "", a); gsub(/^ +| +$/, "", s)
	print f[1] "|" a "|" s
}' "$TABLE" >"$T/table"
rows=$(wc -l <"$T/table" | tr -d ' ')
expect_eq "$rows" "$(ls "$PAYLOADS"/*.json | wc -l | tr -d ' ')" "README table rows = sample files"

# The log row's data, exactly as stored, into a file.
log_data()
{
	sql_text data "FROM cloudflare_image_logs WHERE event_type = 'status_changed'" >"$1"
}

# Checks what cfimages-webhook(8) DATABASE says an applied sample leaves behind.
applied()
{
	file=$1 id=$2
	expect_one_delivery applied 200
	expect_eq "$(last_delivery image_id)" "'$id'" "$file: delivery image_id"
	expect_eq "$(last_delivery scheme)" "'none'" "$file: delivery scheme"
	expect_sql "SELECT $(sql_is_time received_at)
		FROM webhook_deliveries ORDER BY id DESC LIMIT 1" 1 "$file: received_at is UTC with milliseconds"
	expect_eq "$(last_delivery body_size)" "$(wc -c <"$PAYLOADS/$file" | tr -d ' ')" "$file: body_size"
	expect_eq "$(last_delivery body_sha256)" "'$(sha256sum <"$PAYLOADS/$file" | cut -c1-64)'" \
		"$file: body_sha256"
	expect_sql "SELECT count(*) FROM cloudflare_image_logs WHERE image_id = '$id' AND event_type = 'status_changed'" \
		1 "$file: one status_changed log row"
	log_data "$T/logdata"
	cmp -s "$T/logdata" "$PAYLOADS/$file" || fail "$file: the log row's data is not the raw body"
	expect_sql "SELECT $(sql_bool "updated_at >= created_at AND $(sql_is_time updated_at) = 1") FROM cloudflare_images WHERE cloudflare_id = '$id'" \
		1 "$file: updated_at is a UTC time with milliseconds"
}

while IFS='|' read -r file answer after; do
	drop_db
	init_db "$ID" "$JOB"
	cgi POST "$PAYLOADS/$file"
	expect_eq "$STATUS $BODY" "$answer" "$file: answer"
	case $file in
	job-*) id=$JOB ;;
	*) id=$ID ;;
	esac
	case $after in
	unchanged | —)
		expect_rejected "${answer%% *}" "${answer#* }" ignored
		expect_eq "$(image_status "$ID")" pending "$file: $ID stays pending"
		expect_eq "$(image_status "$JOB")" pending "$file: $JOB stays pending"
		continue
		;;
	esac
	expect_eq "$(image_status "$id")" "$after" "$file: status afterwards"
	expect_eq "$(cfw show "$id" | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')" "$after" "$file: show status"
	applied "$file" "$id"

	# The fields each sample carries.
	case $file in
	cloudflare-upload-complete.json)
		expect_sql "SELECT $(sql_json metadata '$.key'), json_array_length(variants),
			$(sql_json variants '$[1]'), $(sql_bool require_signed_urls), $(sql_time uploaded_at), error
			FROM cloudflare_images WHERE cloudflare_id = '$id'" \
			"value|2|https://imagedelivery.net/Vi7wi5KSItxGFsWRG2Us6Q/$ID/thumbnail|1|2024-01-01T12:00:00.000Z|" \
			"$file: stored fields"
		expect_sql "SELECT $(sql_bool "$(sql_json_valid metadata) = 1 AND $(sql_json_valid variants) = 1") FROM cloudflare_images WHERE cloudflare_id = '$id'" \
			1 "$file: metadata and variants are JSON"
		;;
	cloudflare-upload-failed.json)
		expect_sql "SELECT error, $(sql_bool 'metadata IS NULL'), $(sql_bool 'variants IS NULL') FROM cloudflare_images WHERE cloudflare_id = '$id'" \
			"Image processing failed|1|1" "$file: stored error"
		;;
	images-envelope-uploaded.json)
		expect_sql "SELECT filename, $(sql_json metadata '$.userId'), $(sql_json metadata '$.source'),
			json_array_length(variants), $(sql_bool require_signed_urls), $(sql_time uploaded_at)
			FROM cloudflare_images WHERE cloudflare_id = '$id'" \
			"profile.jpg|user_12345|profile_upload|2|0|2025-01-15T10:30:45.000Z" "$file: stored fields"
		;;
	standard-webhooks-image-uploaded.json)
		# "type" read as "event", "data" as "image" (another receiver's outbound action)
		expect_sql "SELECT $(sql_json metadata '$.userId'), json_array_length(variants)
			FROM cloudflare_images WHERE cloudflare_id = '$id'" \
			"user_12345|1" "$file: stored fields"
		;;
	notification-images-upload.json)
		expect_sql "SELECT $(sql_json metadata '$.key'), $(sql_json variants '$[0]'),
			json_array_length(variants), $(sql_bool require_signed_urls), $(sql_time uploaded_at)
			FROM cloudflare_images WHERE cloudflare_id = '$id'" \
			"value|https://imagedelivery.net/Vi7wi5KSItxGFsWRG2Us6Q/$ID/public|1|1|2024-01-01T12:00:00.000Z" \
			"$file: stored fields"
		;;
	job-queued.json)
		expect_sql "SELECT $(sql_bool 'result IS NULL'), $(sql_bool 'error IS NULL') FROM cloudflare_images WHERE cloudflare_id = '$id'" \
			"1|1" "$file: nothing but the status"
		;;
	job-completed.json)
		expect_sql "SELECT $(sql_json_valid result), $(sql_json result '$.vendor_name'),
			$(sql_json result '$.invoice_number'), $(sql_json_number result '$.total_amount'),
			$(sql_bool 'error IS NULL')
			FROM cloudflare_images WHERE cloudflare_id = '$id'" \
			"1|Acme Corporation|INV-2024-001|1942.92|1" "$file: stored result"
		;;
	job-failed.json)
		expect_sql "SELECT error, $(sql_bool 'result IS NULL') FROM cloudflare_images WHERE cloudflare_id = '$id'" \
			"Image URL is not accessible|1" "$file: stored error (the error object's message)"
		;;
	*)
		fail "$file: no field checks for this sample (add them here)"
		;;
	esac
done <"$T/table"

# A job's whole life on one image: queued, then completed.
drop_db
init_db "$JOB"
cgi POST "$PAYLOADS/job-queued.json"
expect_answer 200 OK
cgi POST "$PAYLOADS/job-completed.json"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status "$JOB")" completed "queued then completed"
expect_sql "SELECT count(*) FROM cloudflare_image_logs WHERE image_id = '$JOB' AND event_type = 'status_changed'" \
	2 "two status changes"

# A job error object with a code and no message.  cfimages-webhook(8) PAYLOADS says both "an
# error object's message (else its code) is the stored error text" and
# "error ... is a string or an object with a string message": either the
# code is stored, or the payload is refused; nothing in between.
drop_db
init_db "$JOB"
write_file "$T/job-code" '{"event":"job.failed","job_id":"'"$JOB"'","error":{"code":"invalid_image"}}'
cgi POST "$T/job-code"
if [ "$STATUS" = 200 ]; then
	expect_sql "SELECT status, error FROM cloudflare_images WHERE cloudflare_id = '$JOB'" \
		"failed|invalid_image" "job error without message: the code is stored"
else
	expect_rejected 400 "Invalid payload" invalid_payload
fi

# A draft: "draft": true.
drop_db
init_db "$ID"
write_file "$T/draft" '{"id":"'"$ID"'","draft":true}'
cgi POST "$T/draft"
expect_answer 200 OK
expect_eq "$(image_status "$ID")" draft "draft: true"

# The recognition rules of cfimages-webhook(8) PAYLOADS, one image each (registered first).
# shape NAME JSON STATUS: JSON (with ID for the image's id) leaves STATUS.
shape()
{
	cfw register "$1" >/dev/null || fail "register $1"
	write_file "$T/shape" "$(printf '%s' "$2" | sed "s/ID/$1/g")"
	cgi POST "$T/shape"
	expect_answer 200 OK
	expect_one_delivery applied 200
	expect_eq "$(image_status "$1")" "$3" "$1: status"
}
U='"uploaded":"2024-01-01T12:00:00Z"'
shape err-wins '{"id":"ID",'"$U"',"error":"it broke"}' failed
expect_sql "SELECT error FROM cloudflare_images WHERE cloudflare_id = 'err-wins'" "it broke" \
	"error wins over uploaded: the error is stored"
shape draft-up '{"id":"ID",'"$U"',"draft":true}' draft
shape not-draft '{"id":"ID",'"$U"',"draft":false}' uploaded
shape variants-only '{"id":"ID","variants":["http://example.com/ID/public"]}' uploaded
shape err-object '{"id":"ID","error":{"message":"too big","code":"5400"}}' failed
expect_sql "SELECT error FROM cloudflare_images WHERE cloudflare_id = 'err-object'" "too big" \
	"an error object's message is stored"
shape env-failed '{"event":"image.failed","image":{"id":"ID","error":"bad image"}}' failed
shape env-upload-failed '{"event":"image.upload_failed","image":{"id":"ID"},"error":"upload failed"}' failed
shape env-meta '{"event":"image.uploaded","image":{"id":"ID","meta":{"a":"b"}}}' uploaded
expect_sql "SELECT $(sql_json metadata '$.a') FROM cloudflare_images WHERE cloudflare_id = 'env-meta'" \
	b "meta is stored as metadata"
shape notif-images '{"alert_type":"images_upload_complete","data":{"id":"ID",'"$U"'},"text":"x"}' uploaded
shape notif-error '{"alert_type":"image_notification","data":{"id":"ID","error":"rejected"}}' failed
expect_sql "SELECT error FROM cloudflare_images WHERE cloudflare_id = 'notif-error'" rejected \
	"notification error stored"
shape event-first '{"event":"job.queued","job_id":"ID","alert_type":"image_notification","id":"other"}' queued
shape alert-before-flat '{"alert_type":"image_notification","data":{"id":"ID",'"$U"'},"id":"other","error":"x"}' \
	uploaded
expect_eq "$(image_status other)" "" "only the recognized shape's id is touched"

# Times are stored in UTC with milliseconds (cfimages-webhook(8) DATABASE), whatever the offset.
for pair in '2024-01-01T12:00:00.5+02:00=2024-01-01T10:00:00.500Z' \
	'2024-01-01T00:00:00-00:30=2024-01-01T00:30:00.000Z' \
	'2024-01-01T12:00:00.123456789Z=2024-01-01T12:00:00.123Z' \
	'2024-02-29T23:59:59Z=2024-02-29T23:59:59.000Z'; do
	n=$((${n:-0} + 1))
	shape "time-$n" '{"id":"ID","uploaded":"'"${pair%%=*}"'"}' uploaded
	expect_sql "SELECT $(sql_time uploaded_at) FROM cloudflare_images WHERE cloudflare_id = 'time-$n'" "${pair#*=}" \
		"uploaded ${pair%%=*} stored in UTC"
done

# `show` of a completed job embeds its result as JSON.
drop_db
init_db "$JOB"
cgi POST "$PAYLOADS/job-completed.json"
cfw show "$JOB" >"$T/show.json"
# (sqlite3 as the JSON reader of the command's output, in both passes)
expect_eq "$("$SQLITE3" -batch -noheader :memory: "SELECT json_valid(CAST(readfile('$T/show.json') AS TEXT)),
	json_extract(CAST(readfile('$T/show.json') AS TEXT), '\$.result.invoice_number'),
	json_type(CAST(readfile('$T/show.json') AS TEXT), '\$.result')")" \
	"1|INV-2024-001|object" "show: the result is embedded as a JSON object"
