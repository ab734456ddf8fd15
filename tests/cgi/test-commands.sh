#!/bin/sh
# cfimages-webhook(8) COMMANDS: the operator commands, their output shapes and exit statuses.
# init; register (idempotent, exit 2 on a bad id, --metadata,
# --expires-at); show (the exact key order, JSON values embedded, exit 1
# when unknown); list [--status] [--json]; log [ID] [--limit]; deliveries
# [--status]; sign in its four schemes (checked against the signature vectors (tests/vectors));
# check; --version; --help; no arguments (usage on stderr, exit 2); errors
# as "cfimages-webhook: WHAT: WHY".
. "$top_srcdir/tests/lib.sh"

TIME_RE='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'

# run NAME ARGS...: cfw ARGS, stdout in $T/NAME.out, stderr in
# $T/NAME.stderr, exit status in $RC.
run()
{
	run_name=$1
	shift
	cfw "$@" >"$T/$run_name.out" 2>"$T/$run_name.stderr"
	RC=$?
	OUT=$(cat "$T/$run_name.out")
	ERR=$(cat "$T/$run_name.stderr")
}

# --- init ---
run init init
expect_eq "$RC" 0 "init exits 0 ($ERR)"
db_exists || fail "init created no database"
if [ "$BACKEND" = postgresql ]; then
	TABLES="information_schema.tables WHERE table_schema = current_schema() AND table_name"
	VERSION='SELECT version FROM cfimages_schema'
else
	TABLES="sqlite_master WHERE type = 'table' AND name"
	VERSION='PRAGMA user_version'
	expect_sql "PRAGMA journal_mode" wal "init: WAL mode"
fi
expect_sql "SELECT count(*) FROM $TABLES IN
	('cloudflare_images', 'cloudflare_image_logs', 'webhook_deliveries', 'hook_runs')" 4 "init: the four tables"
expect_eq "$(sql "$VERSION" | grep -c '^[1-9][0-9]*$')" 1 "init: a schema version"
run init-again init
expect_eq "$RC" 0 "init on an existing database exits 0"
# Columns cfimages-webhook(8) DATABASE makes public.
for col in cloudflare_images.cloudflare_id cloudflare_images.status cloudflare_images.filename \
	cloudflare_images.metadata cloudflare_images.variants cloudflare_images.require_signed_urls \
	cloudflare_images.error cloudflare_images.uploaded_at cloudflare_images.expires_at \
	cloudflare_images.result cloudflare_images.created_at cloudflare_images.updated_at \
	cloudflare_image_logs.id cloudflare_image_logs.image_id cloudflare_image_logs.event_type \
	cloudflare_image_logs.message cloudflare_image_logs.data cloudflare_image_logs.timestamp \
	webhook_deliveries.id webhook_deliveries.received_at webhook_deliveries.status_code \
	webhook_deliveries.reason webhook_deliveries.remote_addr webhook_deliveries.scheme \
	webhook_deliveries.message_id webhook_deliveries.image_id webhook_deliveries.body_sha256 \
	webhook_deliveries.body_size hook_runs.id hook_runs.image_id hook_runs.status hook_runs.hook \
	hook_runs.state hook_runs.attempts hook_runs.exit_code hook_runs.output \
	hook_runs.next_attempt_at hook_runs.created_at hook_runs.finished_at; do
	if [ "$BACKEND" = postgresql ]; then
		q="information_schema.columns WHERE table_schema = current_schema()
			AND table_name = '${col%%.*}' AND column_name"
	else
		q="pragma_table_info('${col%%.*}') WHERE name"
	fi
	expect_sql "SELECT count(*) FROM $q = '${col#*.}'" 1 \
		"column $col exists"
done

# --- register ---
run reg register abc
expect_eq "$RC" 0 "register exits 0 ($ERR)"
run reg-again register abc
expect_eq "$RC" 0 "register again exits 0 (idempotent)"
expect_sql "SELECT count(*) FROM cloudflare_images WHERE cloudflare_id = 'abc'" 1 "one row after two registers"
expect_sql "SELECT event_type FROM cloudflare_image_logs WHERE image_id = 'abc'" registered \
	"one registered log row"
for bad in '' . .. a//b /abc abc/ "$(printf 'a\001b')" "$(printf 'a\177b')" \
	"$(head -c 1025 /dev/zero | tr '\0' x)"; do
	run bad-id register "$bad"
	expect_eq "$RC" 2 "register [$bad] exits 2"
	[ -n "$ERR" ] || fail "register [$bad]: no message on stderr"
done
expect_sql "SELECT count(*) FROM cloudflare_images" 1 "no bad id registered"
run reg-meta register meta-img --metadata '{"owner":"u1","n":[1,2]}' --expires-at 2030-01-02T03:04:05Z
expect_eq "$RC" 0 "register with --metadata and --expires-at ($ERR)"
run reg-badmeta register bad-meta --metadata 'not json'
[ "$RC" -ne 0 ] || fail "register with bad --metadata exits 0"
expect_eq "$(image_status bad-meta)" "" "no image registered with bad --metadata"
run reg-badtime register bad-time --expires-at tomorrow
[ "$RC" -ne 0 ] || fail "register with a bad --expires-at exits 0"
expect_eq "$(image_status bad-time)" "" "no image registered with a bad --expires-at"

# --- show ---
run show show abc
expect_eq "$RC" 0 "show exits 0"
expect_eq "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" 1 "show prints one line"
expect_eq "$(printf '%s' "$OUT" | sed -E "s/\"$TIME_RE\"/T/g")" \
	'{"id":"abc","status":"pending","metadata":null,"variants":null,"result":null,"error":null,"uploaded_at":null,"expires_at":null,"created_at":T,"updated_at":T}' \
	"show: keys in order, missing values null"
run show-meta show meta-img
expect_eq "$(printf '%s' "$OUT" | sed -E "s/\"$TIME_RE\"/T/g")" \
	'{"id":"meta-img","status":"pending","metadata":{"owner":"u1","n":[1,2]},"variants":null,"result":null,"error":null,"uploaded_at":null,"expires_at":T,"created_at":T,"updated_at":T}' \
	"show: metadata embedded as JSON"
printf '%s' "$OUT" | grep -q '"expires_at":"2030-01-02T03:04:05.000Z"' ||
	fail "show: expires_at in UTC with milliseconds: $OUT"
run show-unknown show nobody
expect_eq "$RC" 1 "show of an unknown id exits 1"
expect_eq "$OUT" "" "show of an unknown id prints nothing on stdout"
printf '%s\n' "$ERR" | grep -q -E '^cfimages-webhook: [^:]+: .+' ||
	fail "error message shape: [$ERR]"

# Deliveries to give show, list, log and deliveries something to print.
ID=2cdc28f0-017a-49c4-9ed7-87056c83901
cfw register "$ID" >/dev/null
cgi POST "$PAYLOADS/cloudflare-upload-complete.json"
expect_answer 200 OK
write_file "$T/unknown" '{"id":"unknown-img","uploaded":"2024-01-01T12:00:00Z"}'
cgi POST "$T/unknown"
expect_answer 404 "Image not found"
run show-up show "$ID"
expect_eq "$(printf '%s' "$OUT" | sed -E "s/\"$TIME_RE\"/T/g")" \
	'{"id":"'"$ID"'","status":"uploaded","metadata":{"key":"value"},"variants":["https://imagedelivery.net/Vi7wi5KSItxGFsWRG2Us6Q/'"$ID"'/public","https://imagedelivery.net/Vi7wi5KSItxGFsWRG2Us6Q/'"$ID"'/thumbnail"],"result":null,"error":null,"uploaded_at":T,"expires_at":null,"created_at":T,"updated_at":T}' \
	"show of an uploaded image"
printf '%s' "$OUT" | grep -q '"uploaded_at":"2024-01-01T12:00:00.000Z"' || fail "show: uploaded_at value"

# --- list ---
run list list
expect_eq "$RC" 0 "list exits 0"
expect_eq "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" 3 "list: one line per image"
expect_eq "$(printf '%s\n' "$OUT" | head -1 | grep -c -F "$ID")" 1 "list: newest first"
expect_eq "$(printf '%s\n' "$OUT" | tail -1 | grep -c -F abc)" 1 "list: oldest last"
run list-up list --status uploaded
expect_eq "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" 1 "list --status uploaded: one line"
printf '%s' "$OUT" | grep -q -F "$ID" || fail "list --status uploaded shows $ID"
run list-none list --status failed
expect_eq "$RC" 0 "list --status with no match exits 0"
expect_eq "$OUT" "" "list --status failed: nothing"
run list-json list --json
expect_eq "$RC" 0 "list --json exits 0"
expect_eq "$(printf '%s\n' "$OUT" | head -1)" "$(cfw show "$ID")" "list --json lines are show's lines"
expect_eq "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" 3 "list --json: one line per image"
run list-json-status list --status pending --json
expect_eq "$(printf '%s\n' "$OUT" | grep -c '"status":"pending"')" 2 "list --status pending --json"

# --- log ---
run log log
expect_eq "$RC" 0 "log exits 0"
printf '%s\n' "$OUT" | head -1 | grep -q status_changed || fail "log: newest first ($OUT)"
expect_eq "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" 4 "log: every row"
run log-id log abc
expect_eq "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" 1 "log ID: that image's rows"
printf '%s' "$OUT" | grep -q registered || fail "log abc shows its registered row"
run log-limit log --limit 1
expect_eq "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" 1 "log --limit 1"

# --- deliveries ---
run deliveries deliveries
expect_eq "$RC" 0 "deliveries exits 0"
expect_eq "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" 2 "deliveries: every row"
printf '%s\n' "$OUT" | head -1 | grep -q 404 || fail "deliveries: newest first"
run deliveries-limit deliveries --limit 1
expect_eq "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" 1 "deliveries --limit 1"
run deliveries-404 deliveries --status 404
expect_eq "$(printf '%s\n' "$OUT" | wc -l | tr -d ' ')" 1 "deliveries --status 404: one row"
printf '%s' "$OUT" | grep -q not_found || fail "deliveries --status 404 shows the reason"
run deliveries-200 deliveries --status 200
printf '%s' "$OUT" | grep -q applied || fail "deliveries --status 200 shows the applied row"
printf '%s' "$OUT" | grep -q not_found && fail "deliveries --status 200 shows a 404"

# --- sign: the signature vectors (tests/vectors), and the shapes ---
printf '%s' '{"id":"2cdc28f0-017a-49c4-9ed7-87056c83901","uploaded":"2024-01-01T12:00:00.000Z"}' >"$T/vec"
run sign-hex sign --secret test-secret "$T/vec"
expect_eq "$OUT" "X-Signature: 66531ca36347795bbd2c01382829cda3e46e9c08882875007480d8c28d570c49" \
	"sign (hex is the default)"
run sign-hex2 sign --scheme hex --secret test-secret "$T/vec"
expect_eq "$OUT" "X-Signature: 66531ca36347795bbd2c01382829cda3e46e9c08882875007480d8c28d570c49" \
	"sign --scheme hex"
printf 'Hello, World!' >"$T/github"
run sign-github sign --scheme hex --secret "It's a Secret to Everybody" "$T/github"
expect_eq "$OUT" "X-Signature: 757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17" \
	"sign: GitHub's documented example"
run sign-cf sign --scheme cf --secret test-secret "$T/vec"
expect_eq "$OUT" "cf-webhook-auth: test-secret" "sign --scheme cf"
before=$(date +%s)
run sign-stream sign --scheme stream --secret test-secret "$T/vec"
after=$(date +%s)
expect_eq "$RC" 0 "sign --scheme stream exits 0"
printf '%s\n' "$OUT" | grep -q -E '^Webhook-Signature: time=[0-9]+,sig1=[0-9a-f]{64}$' ||
	fail "sign --scheme stream shape: [$OUT]"
t=$(printf '%s' "$OUT" | sed -n 's/.*time=\([0-9]*\),.*/\1/p')
[ -n "$t" ] && [ "$t" -ge "$before" ] && [ "$t" -le "$after" ] || fail "stream time $t is not now"
if command -v openssl >/dev/null 2>&1; then
	want=$({ printf '%s.' "$t"; cat "$T/vec"; } | openssl dgst -sha256 -hmac test-secret -r | cut -c1-64)
	expect_eq "$OUT" "Webhook-Signature: time=$t,sig1=$want" "stream signature value"
fi
run sign-std sign --scheme standard --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw "$T/vec"
expect_eq "$RC" 0 "sign --scheme standard exits 0"
expect_eq "$(printf '%s\n' "$OUT" | sed 's/:.*//' | tr '\n' ' ')" \
	"webhook-id webhook-timestamp webhook-signature " "sign --scheme standard: three headers in order"
printf '%s\n' "$OUT" | grep -q -E '^webhook-id: [!-~]+$' || fail "webhook-id shape"
printf '%s\n' "$OUT" | grep -q -E '^webhook-timestamp: [0-9]+$' || fail "webhook-timestamp shape"
printf '%s\n' "$OUT" | grep -q -E '^webhook-signature: v1,[A-Za-z0-9+/]{43}=$' || fail "webhook-signature shape"
if command -v openssl >/dev/null 2>&1; then
	sid=$(printf '%s\n' "$OUT" | sed -n 's/^webhook-id: //p')
	sts=$(printf '%s\n' "$OUT" | sed -n 's/^webhook-timestamp: //p')
	key=$(printf '%s' MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw | base64 -d | od -An -tx1 | tr -d ' \n')
	want=$({ printf '%s.%s.' "$sid" "$sts"; cat "$T/vec"; } |
		openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | base64)
	expect_eq "$(printf '%s\n' "$OUT" | sed -n 's/^webhook-signature: //p')" "v1,$want" \
		"standard signature value"
fi
CFW_STDIN=$T/vec
run sign-stdin sign --secret test-secret -
CFW_STDIN=
expect_eq "$OUT" "X-Signature: 66531ca36347795bbd2c01382829cda3e46e9c08882875007480d8c28d570c49" \
	"sign - reads the body from stdin"
printf 'secret = from-config\n' >"$T/sign.conf"
run sign-conf --config "$T/sign.conf" sign --scheme cf "$T/vec"
expect_eq "$OUT" "cf-webhook-auth: from-config" "sign takes the secret from the configuration"
run sign-nosecret sign "$T/vec"
expect_eq "$RC" 1 "sign without any secret exits 1"
run sign-badscheme sign --scheme rot13 --secret x "$T/vec"
expect_eq "$RC" 2 "sign --scheme rot13 is a usage error"
run sign-nofile sign --secret x "$T/no-such-file"
expect_eq "$RC" 1 "sign of a missing file exits 1"

# --- stats ---
# Exactly: every line whole, so a wrong count (11 for 1) or an extra or
# missing group is caught.  No hook has run, so hook_runs has no rows.
TAB=$(printf '\t')
run stats stats
expect_eq "$RC" 0 "stats exits 0"
expect_eq "$OUT" "images${TAB}pending${TAB}2
images${TAB}uploaded${TAB}1
deliveries${TAB}200${TAB}1
deliveries${TAB}404${TAB}1" "stats: counts by status and by delivery code"
run stats-prom stats --prometheus
expect_eq "$RC" 0 "stats --prometheus exits 0"
expect_eq "$OUT" '# HELP cfimages_webhook_images Images by status.
# TYPE cfimages_webhook_images gauge
cfimages_webhook_images{status="pending"} 2
cfimages_webhook_images{status="uploaded"} 1
# HELP cfimages_webhook_deliveries Recorded deliveries by HTTP status code.
# TYPE cfimages_webhook_deliveries gauge
cfimages_webhook_deliveries{code="200"} 1
cfimages_webhook_deliveries{code="404"} 1
# HELP cfimages_webhook_hook_runs Hook runs by state.
# TYPE cfimages_webhook_hook_runs gauge' "stats --prometheus: the whole exposition"
# Prometheus text format: comments, or `name{labels} value`.
bad=$(printf '%s\n' "$OUT" | grep -v -E '^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+|[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? [0-9]+(\.[0-9]+)?)$')
expect_eq "$bad" "" "stats --prometheus: every line in the text format"
for m in $(printf '%s\n' "$OUT" | sed -n 's/^\([a-z_:]*\)[{ ].*/\1/p' | sort -u); do
	printf '%s\n' "$OUT" | grep -q "^# TYPE $m " || fail "prometheus: no TYPE line for $m"
done

# --- prune ---
sql "UPDATE webhook_deliveries SET received_at = '2001-01-01T00:00:00.000Z' WHERE status_code = 404;
	UPDATE cloudflare_image_logs SET timestamp = '2001-01-01T00:00:00.000Z' WHERE image_id = 'abc'"
images=$(sql "SELECT * FROM cloudflare_images ORDER BY cloudflare_id")
run prune prune
expect_eq "$RC" 0 "prune exits 0 ($ERR)"
expect_sql "SELECT count(*) FROM webhook_deliveries WHERE status_code = 404" 0 "prune deletes old deliveries"
expect_sql "SELECT count(*) FROM webhook_deliveries" 1 "prune keeps recent deliveries"
expect_sql "SELECT count(*) FROM cloudflare_image_logs WHERE image_id = 'abc'" 0 "prune deletes old log rows"
expect_sql "SELECT count(*) FROM cloudflare_image_logs WHERE image_id = '$ID'" 2 "prune keeps recent log rows"
expect_eq "$(sql "SELECT * FROM cloudflare_images ORDER BY cloudflare_id")" "$images" "prune never touches images"
sql "UPDATE webhook_deliveries SET received_at = $(sql_now_plus -864000)"
run prune-days prune --older-than 11
expect_sql "SELECT count(*) FROM webhook_deliveries" 1 "prune --older-than 11 keeps a 10-day-old row"
run prune-days2 prune --older-than 9
expect_sql "SELECT count(*) FROM webhook_deliveries" 0 "prune --older-than 9 deletes a 10-day-old row"
run prune-bad prune --older-than soon
expect_eq "$RC" 2 "prune --older-than soon is a usage error"

# --- check ---
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
printf '#!/bin/sh\nexit 0\n' >"$HOOKS/uploaded"
chmod 755 "$HOOKS/uploaded"
run check CFIMAGES_WEBHOOK_SECRET=chk-secret check
expect_eq "$RC" 0 "check on a good setup exits 0 ($OUT $ERR)"
grep -q chk-secret "$T/check.out" "$T/check.stderr" && fail "check prints the secret"
chmod 777 "$HOOKS/uploaded"
run check-ww CFIMAGES_WEBHOOK_SECRET=chk-secret check
expect_eq "$RC" 1 "check with a world-writable hook exits 1"
printf '%s %s' "$OUT" "$ERR" | grep -q -F "$HOOKS/uploaded" || fail "check names the world-writable hook"
chmod 755 "$HOOKS/uploaded"
run check-nodb CFIMAGES_WEBHOOK_SECRET=chk-secret CFIMAGES_WEBHOOK_DB="$T/missing/none.db" check
expect_eq "$RC" 1 "check with no database exits 1"
[ -e "$T/missing/none.db" ] && fail "check created a database"

# --- version, help, usage ---
run version --version
expect_eq "$RC" 0 "--version exits 0"
printf '%s\n' "$OUT" | grep -q -E '^cfimages-webhook [0-9]' || fail "--version output: [$OUT]"
# The libraries built in, so a support question can be answered from one line.
printf '%s\n' "$OUT" | grep -q -E 'SQLite 3\.[0-9]+.*, (libpq [0-9]+|libpq: not built in).*OpenSSL [0-9].*cJSON [0-9]' ||
	fail "--version does not list the libraries: [$OUT]"
run help --help
expect_eq "$RC" 0 "--help exits 0"
printf '%s' "$OUT" | grep -q -i usage || fail "--help prints usage on stdout"
run noargs
expect_eq "$RC" 2 "no arguments exits 2"
expect_eq "$OUT" "" "no arguments: nothing on stdout"
printf '%s' "$ERR" | grep -q -i usage || fail "no arguments: usage on stderr"
run unknown frobnicate
expect_eq "$RC" 2 "an unknown command exits 2"
printf '%s' "$ERR" | grep -q frobnicate || fail "the unknown command is named"
run show-noarg show
expect_eq "$RC" 2 "show without an id is a usage error"
