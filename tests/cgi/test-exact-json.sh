#!/bin/sh
# metadata, variants and result are stored as the exact JSON text the
# sender sent for them (cfimages-webhook(8), STORAGE): a number a double
# cannot hold keeps every digit, 1e400 stays 1e400 (not null), escapes
# and whitespace inside the value stay as written; in every payload shape
# that carries them.  `show` embeds the stored text as JSON on one line,
# less the whitespace between tokens, without re-printing any number.
. "$top_srcdir/tests/lib.sh"

# column ID COLUMN: the column's text exactly, through a file (newlines kept).
column()
{
	sql_text "$2" "FROM cloudflare_images WHERE cloudflare_id = '$1'"
}

# The flat shape, pretty-printed by the sender.
META='{"userId":1234567890123456789,"big":1e400,"f":0.10000000000000001,"s":"caf\u00e9 \/"}'
VARIANTS='["https:\/\/imagedelivery.net\/a\/flat\/public"]'
printf '{\n  "id": "flat",\n  "uploaded": "2024-01-01T12:00:00.000Z",\n  "metadata": {\n    "userId": 1234567890123456789,\n    "big": 1e400\n  },\n  "variants": %s\n}\n' \
	"$VARIANTS" >"$T/flat.json"
cgi POST "$T/flat.json" CFIMAGES_WEBHOOK_AUTO_REGISTER=yes
expect_answer 200 OK
expect_eq "$(column flat metadata)" '{
    "userId": 1234567890123456789,
    "big": 1e400
  }' "flat: metadata stored as sent"
expect_eq "$(column flat variants)" "$VARIANTS" "flat: variants stored as sent"
cfw show flat >"$T/show.out"
expect_eq $? 0 "show exits 0"
expect_eq "$(wc -l <"$T/show.out" | tr -d ' ')" 1 "show prints one line"
grep -q '"metadata":{"userId":1234567890123456789,"big":1e400},"variants":\["https:\\/\\/imagedelivery.net\\/a\\/flat\\/public"\],' \
	"$T/show.out" || fail "show: metadata and variants not as sent: $(cat "$T/show.out")"

# The Images envelope: the image object's metadata, not the envelope's.
write_file "$T/envelope.json" '{"event":"image.uploaded","metadata":{"top":1},"image":{"id":"env","uploaded":"2024-01-01T12:00:00Z","metadata":'"$META"'}}'
cgi POST "$T/envelope.json" CFIMAGES_WEBHOOK_AUTO_REGISTER=yes
expect_answer 200 OK
expect_eq "$(column env metadata)" "$META" "envelope: metadata stored as sent"
cfw show env >"$T/show.out"
grep -q -F '"metadata":'"$META"',' "$T/show.out" ||
	fail "show: envelope metadata not as sent: $(cat "$T/show.out")"

# A Cloudflare notification: data's meta.
write_file "$T/notification.json" '{"name":"n","text":"t","alert_type":"image_notification","data":{"id":"note","uploaded":"2024-01-01T12:00:00Z","meta":'"$META"'}}'
cgi POST "$T/notification.json" CFIMAGES_WEBHOOK_AUTO_REGISTER=yes
expect_answer 200 OK
expect_eq "$(column note metadata)" "$META" "notification: meta stored as sent"

# A job event: its result.
RESULT='{"total_amount":1942.920,"count":18446744073709551617,"tiny":1e-400}'
write_file "$T/job.json" '{"event":"job.completed","job_id":"job","result":'"$RESULT"'}'
cgi POST "$T/job.json" CFIMAGES_WEBHOOK_AUTO_REGISTER=yes
expect_answer 200 OK
expect_eq "$(column job result)" "$RESULT" "job: result stored as sent"
cfw show job >"$T/show.out"
grep -q -F '"result":'"$RESULT"',' "$T/show.out" ||
	fail "show: job result not as sent: $(cat "$T/show.out")"
