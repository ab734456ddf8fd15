#!/bin/sh
# cfimages-webhook(8) REQUEST CONTRACT row 9: a valid delivery for an id that is not in the database,
# with auto_register off (the default), is answered 404 `Image not found`:
# one delivery row (reason not_found, the image id recorded), no image
# created, no log row, no hook run.  Every shape of cfimages-webhook(8) PAYLOADS behaves so.
# Once the id is registered, the same delivery is applied.
. "$top_srcdir/tests/lib.sh"

ID=2cdc28f0-017a-49c4-9ed7-87056c83901
JOB=550e8400-e29b-41d4-a716-446655440000
init_db someone-else
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
printf '#!/bin/sh\nexit 0\n' >"$HOOKS/uploaded"
chmod 755 "$HOOKS/uploaded"

for f in cloudflare-upload-complete cloudflare-upload-failed images-envelope-uploaded \
	notification-images-upload job-queued job-completed job-failed; do
	cgi POST "$PAYLOADS/$f.json"
	expect_rejected 404 "Image not found" not_found
	case $f in
	job-*) want=$JOB ;;
	*) want=$ID ;;
	esac
	expect_eq "$(last_delivery image_id)" "'$want'" "$f: image_id recorded"
	expect_eq "$(last_delivery scheme)" "'none'" "$f: scheme"
done
expect_sql "SELECT count(*) FROM cloudflare_images" 1 "no image created"

# auto_register explicitly off is the same.
cgi POST "$PAYLOADS/cloudflare-upload-complete.json" CFIMAGES_WEBHOOK_AUTO_REGISTER=no
expect_rejected 404 "Image not found" not_found

# Ids are compared exactly: no case folding, no trimming.
cfw register "$(printf '%s' "$ID" | tr 'a-f' 'A-F')" >/dev/null
cfw register "$ID " >/dev/null
cgi POST "$PAYLOADS/cloudflare-upload-complete.json"
expect_rejected 404 "Image not found" not_found

# Registered: the very same delivery is now applied.
cfw register "$ID" >/dev/null || fail "register $ID"
cgi POST "$PAYLOADS/cloudflare-upload-complete.json"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status "$ID")" uploaded "applied once registered"
expect_sql "SELECT count(*) FROM hook_runs WHERE image_id = '$ID'" 1 "hook queued once applied"

wait_hook_runners || fail "hook runs still running or due 10 s after the last request"
