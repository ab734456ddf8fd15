#!/bin/sh
# cfimages-webhook(8) DATABASE, "Moving up from SQLite": `copy --to URI`.
#
# An SQLite database holding every kind of row the program writes (images
# in every status, auto-registered ones, metadata with numbers no double
# holds, variants, job results, error texts from strings and objects,
# expired images, registered, ignored, duplicate and stale log rows,
# deliveries of every reason including replays and every 4xx, hook runs
# done and failed with output) and a few it cannot produce itself,
# inserted directly (a 500 row, runs queued and running, output and input
# bytes that are not UTF-8), is copied into an empty PostgreSQL database:
#
# - `show` of every image, `list`, `list --json`, `list --status S`, `log`
#   (all rows), `deliveries`, `hooks list`, `stats` and `stats
#   --prometheus` print byte-identical output from both databases;
# - the ids of the four tables are kept;
# - a delivery after the copy gets ids above every copied one (the
#   identities continue);
# - a second copy is refused ("already holds rows") and writes nothing;
#   `--append` into a database whose deliveries overlap the copied ids
#   fails and copies NOTHING, not even the tables before the overlap
#   (one transaction);
# - copying from a PostgreSQL database, or to something that is not a
#   postgresql:// URI, is a clear error.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/serverlib.sh"
. "$top_srcdir/tests/hooklib.sh"
. "$top_srcdir/tests/pglib.sh"

command -v python3 >/dev/null 2>&1 || skip "no python3 (Standard Webhooks signatures)"
START=$(date +%s)
pg_start
SECRET=copy-test-secret
STD_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
SQLITE_DB=$DB

mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
hook_script "$HOOKS/uploaded" 'echo "uploaded $1 from $CFIMAGES_PREVIOUS_STATUS: $(head -c 60)"'
hook_script "$HOOKS/failed" 'echo "failed hook for $1 gives up" >&2' 'exit 3'
hook_script "$HOOKS/expired" 'echo "expired $1: $(cat)"'
mkdir -p "$HOOKS/completed.d"
chmod 755 "$HOOKS/completed.d"
hook_script "$HOOKS/completed.d/10-first" 'echo first'
hook_script "$HOOKS/completed.d/20-second" 'printf "second\n"'

# signed BODYFILE [VAR=VALUE...]: a CGI delivery with a valid X-Signature.
signed()
{
	s_body=$1
	shift
	cgi POST "$s_body" CFIMAGES_WEBHOOK_SECRET="$SECRET" CFIMAGES_WEBHOOK_HOOK_ATTEMPTS=1 \
		HTTP_X_SIGNATURE="$(sign_hex "$SECRET" "$s_body")" "$@"
}

# standard BODYFILE MSG_ID: a CGI delivery with Standard Webhooks headers.
standard()
{
	st_ts=$(date +%s)
	st_sig=$(python3 -c 'import base64, hashlib, hmac, sys
key = base64.b64decode(sys.argv[1].split("_", 1)[1])
msg = ("%s.%s." % (sys.argv[2], sys.argv[3])).encode() + open(sys.argv[4], "rb").read()
print("v1," + base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode())' \
		"$STD_SECRET" "$2" "$st_ts" "$1")
	cgi POST "$1" CFIMAGES_WEBHOOK_SECRET="$STD_SECRET" HTTP_WEBHOOK_ID="$2" \
		HTTP_WEBHOOK_TIMESTAMP="$st_ts" HTTP_WEBHOOK_SIGNATURE="$st_sig"
}

# --- The SQLite database, through the program. ---
init_db img-up img-fail img-err-obj img-stale img-draft img-std img-pending \
	550e8400-e29b-41d4-a716-446655440000 job-failed job-queued
cfw register img-meta --metadata '{"big":123456789012345678901234567890,"f":1e400,"neg":-0.0,"s":"\u00e9"}' \
	--expires-at 2099-12-31T23:59:59.5+05:30 >/dev/null || fail "register img-meta"
cfw register img-old --expires-at 2020-01-01T00:00:00Z >/dev/null || fail "register img-old"
cfw register img-draft-old --expires-at 2020-06-01T12:00:00-07:00 >/dev/null || fail "register img-draft-old"

write_file "$T/up" '{"id":"img-up","uploaded":"2024-01-01T12:00:00.000Z","requireSignedURLs":true,"variants":["https://imagedelivery.net/a/img-up/public","https://imagedelivery.net/a/img-up/thumb"],"metadata":{"userId":98765432109876543210,"x":[1,2.50,3e-7]}}'
signed "$T/up"
expect_answer 200 OK
signed "$T/up"
expect_answer 200 OK # duplicate
write_file "$T/fail" '{"id":"img-fail","error":"decoding failed: bad header","timestamp":"2024-01-02T00:00:00Z"}'
signed "$T/fail"
expect_answer 200 OK
write_file "$T/err-obj" '{"event":"image.failed","timestamp":"2024-01-03T00:00:00Z","image":{"id":"img-err-obj","error":{"message":"too large","code":"E9"}}}'
signed "$T/err-obj"
expect_answer 200 OK
write_file "$T/stale-up" '{"id":"img-stale","uploaded":"2024-01-04T00:00:00Z"}'
write_file "$T/stale-fail" '{"id":"img-stale","error":"late failure"}'
signed "$T/stale-up"
signed "$T/stale-fail"
expect_answer 200 OK # stale
write_file "$T/draft" '{"id":"img-draft","draft":true}'
write_file "$T/draft-old" '{"id":"img-draft-old","draft":true}'
signed "$T/draft"
signed "$T/draft-old"
signed "$PAYLOADS/job-completed.json"
expect_answer 200 OK
write_file "$T/job-failed" '{"event":"job.failed","job_id":"job-failed","error":{"code":"invalid_image"}}'
signed "$T/job-failed"
write_file "$T/job-queued" '{"event":"job.queued","job_id":"job-queued"}'
signed "$T/job-queued"
write_file "$T/auto" '{"id":"auto/reg/1","uploaded":"2024-02-01T00:00:00Z"}'
signed "$T/auto" CFIMAGES_WEBHOOK_AUTO_REGISTER=yes
expect_answer 200 OK
write_file "$T/auto-fail" '{"id":"auto-failed","error":"never uploaded"}'
signed "$T/auto-fail" CFIMAGES_WEBHOOK_AUTO_REGISTER=yes
write_file "$T/std" '{"event":"image.uploaded","timestamp":"2024-03-01T00:00:00Z","image":{"id":"img-std","uploaded":"2024-03-01T00:00:00Z"}}'
standard "$T/std" msg_copy_1
expect_answer 200 OK
standard "$T/std" msg_copy_1
expect_answer 200 OK # replay
write_file "$T/ign" '{"name":"n","text":"t","data":{"note":"no id here","n":1e999},"ts":1700000000,"alert_type":"image_notification"}'
signed "$T/ign"
expect_answer 200 Ignored
signed "$PAYLOADS/notification-test-probe.json"
expect_answer 200 Ignored
signed "$PAYLOADS/notification-image-resizing.json"
write_file "$T/unknown" '{"id":"nobody","uploaded":"2024-01-01T00:00:00Z"}'
signed "$T/unknown"
expect_answer 404 "Image not found"
cgi POST "$T/up" CFIMAGES_WEBHOOK_SECRET="$SECRET"
expect_answer 401 "Missing signature"
cgi POST "$T/up" CFIMAGES_WEBHOOK_SECRET="$SECRET" HTTP_X_SIGNATURE=00ff
expect_answer 401 "Invalid signature"
cgi GET "$T/up"
expect_answer 405 "Method not allowed"
cgi POST "$T/up" CONTENT_LENGTH=99999999
expect_answer 413 "Payload too large"
cgi POST "$T/up" REMOTE_ADDR=192.0.2.7 CFIMAGES_WEBHOOK_ALLOW_FROM=127.0.0.0/8
expect_answer 403 Forbidden
printf '{"id":"x","uploaded":"\377\376"}' >"$T/badjson"
signed "$T/badjson"
expect_answer 400 "Invalid JSON"
write_file "$T/badpayload" '{"id":"a/../b","uploaded":"2024-01-01T00:00:00Z"}'
signed "$T/badpayload"
expect_answer 400 "Invalid payload"
cfw expire >/dev/null 2>&1 || fail "expire"
wait_hook_runners || fail "the hook runners did not finish"

# Rows the program does not produce on demand, inserted directly: a 500
# delivery, runs queued (a retry far ahead) and running (its lease far
# ahead), output and input that are not UTF-8, an empty input.
sql "INSERT INTO webhook_deliveries (received_at, status_code, reason, remote_addr, scheme,
	image_id, body_sha256, body_size) VALUES ('2024-05-05T05:05:05.005Z', 500, 'internal_error',
	'2001:db8::1', 'hex', 'img-up', '$(printf x | sha256sum | cut -c1-64)', 1)" ||
	hard_error "insert a delivery"
NOW_SQL="strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
sql "INSERT INTO hook_runs (image_id, status, hook, path, state, attempts, exit_code, output,
	next_attempt_at, created_at, previous_status, event, input)
	VALUES ('img-pending', 'uploaded', 'uploaded', '$HOOKS/uploaded', 'queued', 2, -9,
	'bytes: ' || CAST(X'C3A9FF00FE41' AS TEXT) || ' end', '2099-01-01T00:00:00.000Z', $NOW_SQL,
	'pending', 'upload.complete', X'7B2269223A2200FF80C0AF227D0A');
	INSERT INTO hook_runs (image_id, status, hook, path, state, attempts, next_attempt_at,
	created_at, previous_status, event, input, started_at, pgid, pg_start, lease_until, host)
	VALUES ('img-draft', 'draft', 'draft', '$HOOKS/draft', 'running', 1, $NOW_SQL, $NOW_SQL,
	'pending', 'upload.draft', X'', $NOW_SQL, 999999, 12345, '2099-01-01T00:00:00.000Z',
	'other-node');
	INSERT INTO hook_runs (image_id, status, hook, path, state, attempts, exit_code, output,
	next_attempt_at, created_at, finished_at, previous_status, event, input)
	VALUES ('img-fail', 'failed', 'failed.d/9-tab', '$HOOKS/failed.d/9-tab', 'failed', 5, NULL,
	'tab	and' || char(10) || 'newline, \"quotes\" and \\backslash', $NOW_SQL, $NOW_SQL, $NOW_SQL,
	'', 'upload.failed', NULL)" || hard_error "insert hook runs"

# Every kind of row is there.
expect_eq "$(sql "SELECT group_concat(status, ' ') FROM (SELECT DISTINCT status FROM cloudflare_images ORDER BY 1)")" \
	"completed draft expired failed pending queued uploaded" "images in every status"
expect_eq "$(sql "SELECT group_concat(event_type, ' ') FROM (SELECT DISTINCT event_type FROM cloudflare_image_logs ORDER BY 1)")" \
	"duplicate expired ignored registered stale status_changed" "log rows of every type"
expect_eq "$(sql "SELECT group_concat(reason, ' ') FROM (SELECT DISTINCT reason FROM webhook_deliveries ORDER BY 1)")" \
	"applied duplicate forbidden ignored internal_error invalid_json invalid_payload invalid_signature method_not_allowed missing_signature not_found payload_too_large replay stale" \
	"deliveries of every reason"
expect_eq "$(sql "SELECT group_concat(state, ' ') FROM (SELECT DISTINCT state FROM hook_runs ORDER BY 1)")" \
	"done failed queued running" "hook runs in every state"

# --- The copy. ---
cfw copy --to "$PG_URI" >"$T/copy.out" 2>"$T/copy.err"
expect_eq "$?" 0 "copy exits 0 ($(cat "$T/copy.err"))"
say "$(cat "$T/copy.out")"

# compare NAME ARGS...: the command prints the same bytes on both.
compare()
{
	c_name=$(printf '%s' "$*" | tr -c 'a-zA-Z0-9' '_')
	cfw --db "$SQLITE_DB" "$@" >"$T/sqlite.$c_name" 2>"$T/sqlite.$c_name.err"
	c_rc1=$?
	cfw --db "$PG_URI" "$@" >"$T/pg.$c_name" 2>"$T/pg.$c_name.err"
	c_rc2=$?
	expect_eq "$c_rc2" "$c_rc1" "$*: exit status ($(cat "$T/pg.$c_name.err"))"
	[ -s "$T/sqlite.$c_name" ] || fail "$*: no output on SQLite ($(cat "$T/sqlite.$c_name.err"))"
	if ! cmp -s "$T/sqlite.$c_name" "$T/pg.$c_name"; then
		fail "$*: PostgreSQL prints differently from SQLite:
$(diff "$T/sqlite.$c_name" "$T/pg.$c_name" | head -20)"
	fi
}
sql 'SELECT cloudflare_id FROM cloudflare_images ORDER BY 1' >"$T/ids"
while read -r id; do
	compare show "$id"
done <"$T/ids"
compare list
compare list --json
for s in pending draft queued uploaded completed failed expired; do
	compare list --status "$s"
done
compare log --limit 1000000
compare log img-up --limit 1000000
compare deliveries --limit 1000000
compare deliveries --status 401
# A hook's output bytes that are not UTF-8 become U+FFFD in PostgreSQL
# (as a hook's output is stored there in the first place); the rest is
# the same.
cfw --db "$SQLITE_DB" hooks list | LC_ALL=C sed 's/\xff/\xef\xbf\xbd/g' >"$T/sqlite.hooks-list"
cfw --db "$PG_URI" hooks list >"$T/pg.hooks-list"
# (SQLite's text ends at the NUL byte: so does the copy.)
grep -q "| bytes: é$(printf '\357\277\275')\$" "$T/pg.hooks-list" ||
	fail "hooks list: the output that is not UTF-8: $(grep bytes "$T/pg.hooks-list")"
cmp -s "$T/sqlite.hooks-list" "$T/pg.hooks-list" ||
	fail "hooks list: PostgreSQL prints differently from SQLite (U+FFFD aside):
$(diff "$T/sqlite.hooks-list" "$T/pg.hooks-list" | head -20)"
compare hooks list --state failed
compare stats
compare stats --prometheus

# The ids are kept.
for t in cloudflare_image_logs webhook_deliveries hook_runs; do
	expect_eq "$(psql_q "SELECT string_agg(id::text, ',' ORDER BY id) FROM $t")" \
		"$(sql "SELECT group_concat(id, ',') FROM (SELECT id FROM $t ORDER BY id)")" "$t: ids kept"
done
expect_eq "$(psql_q "SELECT encode(input, 'hex') FROM hook_runs WHERE image_id = 'img-pending'")" \
	"7b2269223a2200ff80c0af227d0a" "binary hook input kept byte for byte"
expect_eq "$(psql_q "SELECT metadata::text FROM cloudflare_images WHERE cloudflare_id = 'img-meta'")" \
	'{"big":123456789012345678901234567890,"f":1e400,"neg":-0.0,"s":"\u00e9"}' "metadata kept as text"

# The identities continue after the copied ids.
MAX_D=$(psql_q 'SELECT max(id) FROM webhook_deliveries')
MAX_L=$(psql_q 'SELECT max(id) FROM cloudflare_image_logs')
MAX_H=$(psql_q 'SELECT max(id) FROM hook_runs')
DB=$PG_URI
write_file "$T/new" '{"id":"img-pending","uploaded":"2024-06-01T00:00:00Z"}'
signed "$T/new"
expect_answer 200 OK
expect_eq "$(psql_q "SELECT (id > $MAX_D) FROM webhook_deliveries WHERE image_id = 'img-pending'")" t \
	"a new delivery's id is above the copied ones ($MAX_D)"
expect_eq "$(psql_q "SELECT (id > $MAX_L) FROM cloudflare_image_logs WHERE image_id = 'img-pending'
	AND event_type = 'status_changed'")" t "a new log row's id is above the copied ones ($MAX_L)"
expect_eq "$(psql_q "SELECT count(*) FROM hook_runs WHERE id > $MAX_H")" 1 \
	"a new hook run's id is above the copied ones ($MAX_H)"
DB=$SQLITE_DB

# A second copy is refused and writes nothing.
snap()
{
	psql_q "SELECT (SELECT count(*) FROM cloudflare_images) || ' ' ||
		(SELECT count(*) FROM cloudflare_image_logs) || ' ' ||
		(SELECT count(*) FROM webhook_deliveries) || ' ' || (SELECT count(*) FROM hook_runs)"
}
before=$(snap)
cfw copy --to "$PG_URI" >"$T/copy2.out" 2>"$T/copy2.err"
expect_eq "$?" 1 "a second copy exits 1"
grep -q 'already holds rows' "$T/copy2.err" || fail "second copy: no refusal: $(cat "$T/copy2.err")"
expect_eq "$(snap)" "$before" "a refused copy writes nothing"

# --append into a database whose deliveries overlap: nothing at all.
psql_q 'CREATE DATABASE cfw2' >/dev/null || hard_error "createdb cfw2"
URI2="postgresql:///cfw2?host=$PG_SOCKDIR&port=$PG_PORT&user=cfw"
cfw --db "$URI2" init >/dev/null 2>&1 || hard_error "init cfw2"
OVERLAP=$(sql 'SELECT max(id) FROM webhook_deliveries')
psql2()
{
	"$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_SOCKDIR" -p "$PG_PORT" -U cfw -d cfw2 -c "$1"
}
psql2 "INSERT INTO webhook_deliveries (id, received_at, status_code, reason) VALUES
	($OVERLAP, now(), 200, 'applied')" >/dev/null || hard_error "insert into cfw2"
cfw copy --to "$URI2" --append >"$T/copy3.out" 2>"$T/copy3.err"
expect_eq "$?" 1 "--append with overlapping ids exits 1"
grep -q 'nothing copied' "$T/copy3.err" || fail "--append: no clear error: $(cat "$T/copy3.err")"
expect_eq "$(psql2 "SELECT (SELECT count(*) FROM cloudflare_images) || ' ' ||
	(SELECT count(*) FROM cloudflare_image_logs) || ' ' || (SELECT count(*) FROM webhook_deliveries)
	|| ' ' || (SELECT count(*) FROM hook_runs)")" "0 0 1 0" \
	"a failed --append copies nothing, not even the images and log rows before the overlap"

# Wrong directions.
cfw --db "$PG_URI" copy --to "$URI2" >"$T/copy4.out" 2>"$T/copy4.err"
expect_eq "$?" 1 "copy from PostgreSQL exits 1"
grep -q 'copy reads an SQLite database' "$T/copy4.err" || fail "copy from PostgreSQL: $(cat "$T/copy4.err")"
cfw copy --to "$T/other.db" >"$T/copy5.out" 2>"$T/copy5.err"
expect_eq "$?" 1 "copy to a path exits 1"
grep -q 'expected a postgresql:// or postgres:// URI' "$T/copy5.err" || fail "copy to a path: $(cat "$T/copy5.err")"
[ -e "$T/other.db" ] && fail "copy to a path created $T/other.db"
for f in "$T"/copy4.err "$T"/copy5.err; do
	grep -q '^cfimages-webhook: copy: ' "$f" || fail "$(basename "$f"): not in the error form: $(cat "$f")"
done
say "total $(($(date +%s) - START)) s"
exit 0
