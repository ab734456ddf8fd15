#!/bin/sh
# cfimages-webhook(8) DATABASE: the PostgreSQL backend, against a private
# cluster (tests/pglib.sh; skipped without PostgreSQL's server binaries).
#
# - `init` creates the schema (the public tables and columns in PostgreSQL
#   types: json, boolean, timestamptz, bytea, identity ids; a
#   cfimages_schema table holding version 2; the unique index that finds
#   replays), and a second `init` writes nothing;
# - the same sequence of commands and CGI deliveries (applied, duplicate,
#   stale, 404, 401, a Standard Webhooks replay, a hook run) run once on
#   SQLite and once on PostgreSQL makes `show`, `list`, `list --json`,
#   `log`, `deliveries`, `hooks list`, `stats` and `stats --prometheus`
#   print the same text, times aside (they are checked to be in the same
#   RFC 3339 form);
# - JSON is kept as sent (`show` keeps 1234567890123456789 and 1e400);
# - a hook run ends done with the claiming host recorded;
# - a webhook-id committed by another session while a delivery was in
#   flight makes that delivery a replay (the unique index, not the
#   look-up before it);
# - a database whose cfimages_schema version is newer is refused untouched;
# - with PostgreSQL stopped a long-lived `serve --listen` process answers
#   500 and leaves no row, then answers 200 again once it is back,
#   without a restart;
# - a password in the `db` URI never appears in stderr, in either form
#   (user:PASSWORD@ and password=), even when the connection fails.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/serverlib.sh"
. "$top_srcdir/tests/pglib.sh"
. "$top_srcdir/tests/hooklib.sh"

command -v python3 >/dev/null 2>&1 || skip "no python3 (the FastCGI client)"
pg_start

SECRET=pg-store-test-secret
STD_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
TIME_RE='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
HOST=$(hostname)
SQLITE_DB=$DB

mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
printf '#!/bin/sh\necho "uploaded hook for $1 ($CFIMAGES_PREVIOUS_STATUS -> $2)"\nexit 0\n' \
	>"$HOOKS/uploaded"
printf '#!/bin/sh\necho "expired hook for $1: $(cat)"\nexit 0\n' >"$HOOKS/expired"
chmod 755 "$HOOKS/uploaded" "$HOOKS/expired"

# Bodies.
write_file "$T/a-up" '{"id":"img-a","uploaded":"2024-01-01T12:00:00.000Z","requireSignedURLs":true,"variants":["https://imagedelivery.net/x/img-a/public"]}'
write_file "$T/a-fail" '{"id":"img-a","error":"boom"}'
write_file "$T/z-up" '{"id":"img-z","uploaded":"2024-01-01T12:00:00.000Z"}'
write_file "$T/b-up" '{"id":"img-b","uploaded":"2024-01-02T12:00:00.000Z","meta":{"userId":1234567890123456789,"big":1e400}}'
write_file "$T/r-up" '{"id":"img-r","uploaded":"2024-01-03T12:00:00.000Z"}'

# run NAME ARGS...: cfw ARGS; stdout in $T/NAME.out, stderr in $T/NAME.stderr, status in $RC.
run()
{
	run_name=$1
	shift
	cfw "$@" >"$T/$run_name.out" 2>"$T/$run_name.stderr"
	RC=$?
}

# signed_hex BODYFILE: a CGI delivery with a valid X-Signature.
signed_hex()
{
	cgi POST "$1" CFIMAGES_WEBHOOK_SECRET="$SECRET" HTTP_X_SIGNATURE="$(sign_hex "$SECRET" "$1")"
}

# signed_std BODYFILE: a CGI delivery with Standard Webhooks headers, the
# webhook-id $MSG_ID (new ones come from `sign`).
signed_std()
{
	cfw sign --scheme standard --secret "$STD_SECRET" "$1" >"$T/std.headers" || fail "sign $1"
	[ -n "${MSG_ID:-}" ] || MSG_ID=$(sed -n 's/^webhook-id: //p' "$T/std.headers")
	ss_ts=$(sed -n 's/^webhook-timestamp: //p' "$T/std.headers")
	# The signature covers the id: sign again with ours.
	ss_sig=$(python3 -c 'import base64, hashlib, hmac, sys
key = base64.b64decode(sys.argv[1].split("_", 1)[1])
msg = ("%s.%s." % (sys.argv[2], sys.argv[3])).encode() + open(sys.argv[4], "rb").read()
print("v1," + base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode())' \
		"$STD_SECRET" "$MSG_ID" "$ss_ts" "$1")
	cgi POST "$1" CFIMAGES_WEBHOOK_SECRET="$STD_SECRET" HTTP_WEBHOOK_ID="$MSG_ID" \
		HTTP_WEBHOOK_TIMESTAMP="$ss_ts" HTTP_WEBHOOK_SIGNATURE="$ss_sig"
}

# wait_runs: waits (at most 20 s) until no hook run is queued or running,
# through the binary, so it works on either backend.
wait_runs()
{
	wr_i=0
	while [ "$wr_i" -lt 200 ]; do
		cfw hooks list >"$T/wait.out" 2>/dev/null
		grep -q -E '	(queued|running)	' "$T/wait.out" || return 0
		sleep 0.1
		wr_i=$((wr_i + 1))
	done
	fail "$BACKEND: hook runs still queued or running: $(cat "$T/wait.out")"
}

# sequence BACKEND: the same commands and deliveries on the database $DB;
# the commands' outputs, times replaced by TIME, in $T/BACKEND.*.
sequence()
{
	BACKEND=$1
	run "$BACKEND.init" init
	expect_eq "$RC" 0 "$BACKEND: init ($(cat "$T/$BACKEND.init.stderr"))"
	for id in img-a img-b img-c; do
		run "$BACKEND.register" register "$id"
		expect_eq "$RC" 0 "$BACKEND: register $id ($(cat "$T/$BACKEND.register.stderr"))"
	done
	run "$BACKEND.register" register img-d --metadata '{"n":1e400}' \
		--expires-at 2030-01-02T03:04:05+02:00
	expect_eq "$RC" 0 "$BACKEND: register img-d ($(cat "$T/$BACKEND.register.stderr"))"

	signed_hex "$T/a-up"
	expect_answer 200 OK
	wait_runs
	signed_hex "$T/a-up"
	expect_answer 200 OK
	signed_hex "$T/a-fail"
	expect_answer 200 OK
	signed_hex "$T/z-up"
	expect_answer 404 "Image not found"
	cgi POST "$T/a-up" CFIMAGES_WEBHOOK_SECRET="$SECRET" \
		HTTP_X_SIGNATURE=0000000000000000000000000000000000000000000000000000000000000000
	expect_answer 401 "Invalid signature"
	MSG_ID=msg_pgstore_b
	signed_std "$T/b-up"
	expect_answer 200 OK
	signed_std "$T/b-up"
	expect_answer 200 OK
	MSG_ID=
	wait_runs

	# The outbox and the writes of cron's commands: an image past its
	# expiry (its `expired` hook run by `expire` itself), a run queued
	# again and run by `hooks run`, a prune that keeps everything.
	run "$BACKEND.register" register img-e --expires-at 2020-01-01T00:30:00+01:00
	expect_eq "$RC" 0 "$BACKEND: register img-e ($(cat "$T/$BACKEND.register.stderr"))"
	capture expire
	capture hooks retry 1
	capture hooks run
	capture prune --older-than 3650

	for cmd in "show img-a" "show img-b" "show img-c" "show img-d" "show img-e" "list" \
		"list --json" "list --status uploaded" "log" "log img-a --limit 2" "deliveries" \
		"deliveries --status 200" "hooks list" "stats" "stats --prometheus"; do
		# shellcheck disable=SC2086 # the words of the command
		capture $cmd
	done
}

# capture ARGS...: runs the command, which must exit 0, and keeps its
# output with times replaced by TIME in $T/BACKEND.NAME.norm, NAME listed
# in $T/BACKEND.list.
capture()
{
	name=$BACKEND.$(printf '%s' "$*" | tr -c 'a-z0-9' '_')
	run "$name" "$@"
	expect_eq "$RC" 0 "$BACKEND: $* exits 0 ($(cat "$T/$name.stderr"))"
	sed -E "s/$TIME_RE/TIME/g" "$T/$name.out" >"$T/$name.norm"
	printf '%s\n' "$name" >>"$T/$BACKEND.list"
}

# --- The reference run on SQLite. ---
: >"$T/sqlite.list"
DB=$SQLITE_DB
sequence sqlite

# --- The same on PostgreSQL. ---
: >"$T/pg.list"
DB=$PG_URI
run pg.first-init init
expect_eq "$RC" 0 "init on an empty PostgreSQL database ($(cat "$T/pg.first-init.stderr"))"
expect_eq "$(psql_q 'SELECT version FROM cfimages_schema')" 2 "cfimages_schema holds version 2, one row"
expect_eq "$(psql_q "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename IN
	('cloudflare_images', 'cloudflare_image_logs', 'webhook_deliveries', 'hook_runs')")" 4 \
	"init: the four tables"
xmin=$(psql_q 'SELECT xmin FROM cfimages_schema')
sequence pg
expect_eq "$(psql_q 'SELECT xmin FROM cfimages_schema')" "$xmin" \
	"a second init writes nothing (the version row is the first init's)"
expect_eq "$(grep -c . "$T/pg.init.stderr")" 0 \
	"a second init prints nothing on stderr: $(cat "$T/pg.init.stderr")"

# The PostgreSQL types of cfimages-webhook(8) DATABASE.
expect_eq "$(psql_q "SELECT table_name || '.' || column_name || ' ' || data_type
	FROM information_schema.columns WHERE table_schema = 'public' AND (table_name, column_name) IN (
	('cloudflare_images', 'metadata'), ('cloudflare_images', 'variants'),
	('cloudflare_images', 'result'), ('cloudflare_images', 'require_signed_urls'),
	('cloudflare_images', 'uploaded_at'), ('cloudflare_images', 'expires_at'),
	('cloudflare_images', 'created_at'), ('cloudflare_image_logs', 'data'),
	('cloudflare_image_logs', 'timestamp'), ('webhook_deliveries', 'received_at'),
	('hook_runs', 'input'), ('hook_runs', 'lease_until'), ('hook_runs', 'host'),
	('hook_runs', 'next_attempt_at')) ORDER BY 1")" \
	"cloudflare_image_logs.data json
cloudflare_image_logs.timestamp timestamp with time zone
cloudflare_images.created_at timestamp with time zone
cloudflare_images.expires_at timestamp with time zone
cloudflare_images.metadata json
cloudflare_images.require_signed_urls boolean
cloudflare_images.result json
cloudflare_images.uploaded_at timestamp with time zone
cloudflare_images.variants json
hook_runs.host text
hook_runs.input bytea
hook_runs.lease_until timestamp with time zone
hook_runs.next_attempt_at timestamp with time zone
webhook_deliveries.received_at timestamp with time zone" "column types"
expect_eq "$(psql_q "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public'
	AND column_name = 'id' AND is_identity = 'YES' AND data_type = 'bigint' ORDER BY 1")" \
	"cloudflare_image_logs
hook_runs
webhook_deliveries" "bigint identity ids"
expect_eq "$(psql_q "SELECT count(*) FROM pg_indexes WHERE indexdef LIKE 'CREATE UNIQUE INDEX %'
	AND tablename = 'webhook_deliveries' AND indexdef LIKE '%(message_id)%'")" 1 \
	"a unique index on the message ids of applied deliveries"

# What the deliveries did, in the database.
expect_eq "$(psql_q "SELECT status_code || ' ' || reason || ' ' || coalesce(message_id, '-')
	FROM webhook_deliveries ORDER BY id")" "200 applied -
200 duplicate -
200 stale -
404 not_found -
401 invalid_signature -
200 applied msg_pgstore_b
200 replay msg_pgstore_b" "delivery rows"
expect_eq "$(psql_q "SELECT require_signed_urls FROM cloudflare_images WHERE cloudflare_id = 'img-a'")" \
	t "require_signed_urls stored as a boolean"
expect_eq "$(psql_q "SELECT state || ' ' || attempts || ' ' || coalesce(host, 'NULL') || ' ' ||
	(lease_until > started_at) FROM hook_runs ORDER BY id")" "done 1 $HOST true
done 1 $HOST true
done 1 $HOST true" "hook runs done, with the host that ran them and a lease"
expect_eq "$(psql_q "SELECT convert_from(input, 'UTF8') FROM hook_runs ORDER BY id LIMIT 1")" \
	"$(cat "$T/a-up")" "a hook run keeps the body as its input (bytea)"
expect_eq "$(psql_q "SELECT metadata::text FROM cloudflare_images WHERE cloudflare_id = 'img-b'")" \
	'{"userId":1234567890123456789,"big":1e400}' "metadata stored as the exact text sent"
grep -q '"metadata":{"userId":1234567890123456789,"big":1e400}' "$T/pg.show_img_b.out" ||
	fail "show img-b lost the exact digits: $(cat "$T/pg.show_img_b.out")"
grep -q '"expires_at":"2030-01-02T01:04:05.000Z"' "$T/pg.show_img_d.out" ||
	fail "show img-d: expires_at not in UTC with milliseconds: $(cat "$T/pg.show_img_d.out")"

# The same text on both backends, times aside.
while read -r name; do
	other=sqlite.${name#pg.}
	if ! cmp -s "$T/$other.norm" "$T/$name.norm"; then
		fail "${name#pg.}: PostgreSQL prints differently from SQLite:
$(diff "$T/$other.norm" "$T/$name.norm" | head -20)"
	fi
	expect_eq "$(grep -o -E "$TIME_RE" "$T/$name.out" | wc -l)" \
		"$(grep -o -E "$TIME_RE" "$T/$other.out" | wc -l)" "${name#pg.}: as many times"
	[ -s "$T/$name.out" ] || fail "${name#pg.}: no output"
done <"$T/pg.list"

# --- A replay found by the unique index: another session commits the same
# webhook-id while this delivery is in flight (the look-up before the
# transaction could not see it).  That session runs its INSERT, the
# delivery then waits on it at its own INSERT, and only then the other
# session commits. ---
run reg-r register img-r
logs_before=$(psql_q 'SELECT count(*) FROM cloudflare_image_logs')
mkfifo "$T/race.fifo" || hard_error "mkfifo"
"$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKDIR" -p "$PG_PORT" -U cfw -d cfw \
	<"$T/race.fifo" >"$T/race.out" 2>&1 &
race_pid=$!
register_pid "$race_pid"
exec 3>"$T/race.fifo"
printf "BEGIN;\nINSERT INTO webhook_deliveries (received_at, status_code, reason, message_id,
	image_id) VALUES (now(), 200, 'applied', 'msg_race', 'img-r');\n" >&3
# poll_activity CONDITION: waits (at most 30 s) until a session matches.
poll_activity()
{
	pa_i=0
	until [ "$(psql_q "SELECT count(*) FROM pg_stat_activity WHERE $1")" -ge 1 ]; do
		[ "$pa_i" -lt 300 ] || return 1
		sleep 0.1
		pa_i=$((pa_i + 1))
	done
}
poll_activity "state = 'idle in transaction' AND query LIKE 'INSERT INTO webhook_deliveries%'" ||
	fail "the racing session did not insert: $(cat "$T/race.out")"
(
	poll_activity "wait_event_type = 'Lock' AND application_name = 'cfimages-webhook'" ||
		echo "the delivery never waited for the racing session" >"$T/race.nowait"
	printf 'COMMIT;\n' >&3
) &
committer=$!
MSG_ID=msg_race
signed_std "$T/r-up" 3>&-
MSG_ID=
wait "$committer"
exec 3>&-
wait "$race_pid"
unregister_pid "$race_pid"
[ -f "$T/race.nowait" ] && fail "$(cat "$T/race.nowait")"
expect_answer 200 OK
expect_eq "$(psql_q "SELECT status_code || ' ' || reason FROM webhook_deliveries
	WHERE message_id = 'msg_race' ORDER BY id")" "200 applied
200 replay" "the delivery that lost the race is recorded as a replay"
expect_eq "$(psql_q 'SELECT count(*) FROM cloudflare_image_logs')" "$logs_before" \
	"a replay adds no log row"
expect_eq "$(psql_q "SELECT status FROM cloudflare_images WHERE cloudflare_id = 'img-r'")" pending \
	"a replay leaves the image alone"
grep -q 'applied meanwhile by another process (replay)' "$CGI_ERR" ||
	fail "no log line for the replay: $(cat "$CGI_ERR")"

# --- A newer schema is refused, untouched. ---
psql_q 'UPDATE cloudflare_images SET updated_at = updated_at' >/dev/null
psql_q 'UPDATE cfimages_schema SET version = 3' >/dev/null
snap=$(psql_q 'SELECT count(*), max(xmin::text) FROM cfimages_schema')
run newer list
expect_eq "$RC" 1 "list on a newer schema exits 1"
grep -q 'has schema version 3, newer than this program.s 2; refusing to touch it' "$T/newer.stderr" ||
	fail "newer schema: no refusal on stderr: $(cat "$T/newer.stderr")"
run newer-init init
expect_eq "$RC" 1 "init on a newer schema exits 1"
expect_eq "$(psql_q 'SELECT count(*), max(xmin::text) FROM cfimages_schema')" "$snap" \
	"the newer schema is left untouched"
psql_q 'UPDATE cfimages_schema SET version = 2' >/dev/null

# --- Passwords never shown.  The cluster trusts every local user, so a
# connection that fails needs a wrong port. ---
PW_URI="postgresql://cfw:Hunter2secret@/cfw?host=$PG_SOCKDIR&port=1"
run pw-user --db "$PW_URI" list
expect_eq "$RC" 1 "list on an unreachable database exits 1"
grep -q 'cfw:\*\*\*@' "$T/pw-user.stderr" || fail "the error does not show the URI masked: $(cat "$T/pw-user.stderr")"
run pw-param --db "postgresql:///cfw?host=$PG_SOCKDIR&port=1&password=Hunter3secret&user=cfw" list
expect_eq "$RC" 1 "list on an unreachable database exits 1"
grep -q 'password=\*\*\*' "$T/pw-param.stderr" || fail "the error does not show password= masked: $(cat "$T/pw-param.stderr")"
for f in "$T"/pw-*.stderr; do
	grep -q -e Hunter2secret -e Hunter3secret "$f" && fail "a password appears in $(basename "$f"): $(cat "$f")"
done

# --- PostgreSQL stopped and started again under a long-lived process. ---
SERVE_URI="postgresql://cfw:Serve4secret@/cfw?host=$PG_SOCKDIR&port=$PG_PORT&user=cfw"
cat >"$T/post.py" <<'EOF'
import hashlib, hmac, os, sys
sys.path.insert(0, os.path.join(os.environ["top_srcdir"], "tests"))
import fcgiclient as fc
sock, secret, path = sys.argv[1], sys.argv[2], sys.argv[3]
body = open(path, "rb").read()
params = {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)),
          "CONTENT_TYPE": "application/json", "REMOTE_ADDR": "127.0.0.1",
          "SCRIPT_NAME": "/webhook",
          "HTTP_X_SIGNATURE": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}
s = fc.connect(sock)
s.sendall(fc.request_bytes(params, body))
status, _, answer = fc.read_answer(s)
print(status, answer)
EOF
SOCK=$T/fcgi.sock
# shellcheck disable=SC2086 # the wrapper is a list of words
env -i PATH="$CGI_PATH" CFIMAGES_WEBHOOK_CONFIG="$EMPTY_CONF" CFIMAGES_WEBHOOK_DB="$SERVE_URI" \
	CFIMAGES_WEBHOOK_HOOKS_DIR="$HOOKS" CFIMAGES_WEBHOOK_SECRET="$SECRET" \
	CFIMAGES_WEBHOOK_AUTO_REGISTER=true \
	$CFW_WRAPPER "$CFW_BIN" serve --listen "$SOCK" </dev/null >/dev/null 2>"$T/serve.stderr" &
serve_pid=$!
register_pid "$serve_pid"
i=0
while ! grep -q "listening on" "$T/serve.stderr" 2>/dev/null; do
	alive "$serve_pid" || hard_error "serve --listen failed: $(cat "$T/serve.stderr")"
	[ "$i" -lt 300 ] || hard_error "serve did not listen"
	sleep 0.1
	i=$((i + 1))
done
post()
{
	write_file "$T/serve.body" "{\"id\":\"$1\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}"
	python3 "$T/post.py" "$SOCK" "$SECRET" "$T/serve.body" 2>&1
}
expect_eq "$(post srv-before)" "200 OK" "serve: a delivery before PostgreSQL stops"
pg_stop
expect_eq "$(post srv-down)" "500 Internal server error" "serve: a delivery while PostgreSQL is down"
grep -q 'cannot reconnect' "$T/serve.stderr" ||
	fail "serve: no error line for the lost database: $(tail -5 "$T/serve.stderr")"
pg_restart
expect_eq "$(post srv-after)" "200 OK" "serve: a delivery after PostgreSQL is back (same process)"
expect_eq "$(post srv-after-2)" "200 OK" "serve: and the next one"
# A restart between two deliveries: the first one after it still succeeds
# (the closed connection is found before anything is sent on it, or the
# delivery is retried on a new one).
pg_stop
pg_restart
expect_eq "$(post srv-bounce)" "200 OK" "serve: the first delivery after a restart between two"
alive "$serve_pid" || fail "serve: the process died"
expect_eq "$(psql_q "SELECT image_id || ' ' || status_code || ' ' || reason FROM webhook_deliveries
	WHERE image_id LIKE 'srv-%' ORDER BY id")" "srv-before 200 applied
srv-after 200 applied
srv-after-2 200 applied
srv-bounce 200 applied" "serve: rows of the deliveries (none for the one answered 500)"
expect_eq "$(psql_q "SELECT message FROM cloudflare_image_logs WHERE image_id = 'srv-before'")" \
	"(new) -> uploaded" "serve: an auto-registered image's previous status is empty"
expect_eq "$(psql_q "SELECT count(*) FROM cloudflare_images WHERE cloudflare_id = 'srv-down'")" 0 \
	"serve: nothing of the delivery answered 500"
kill "$serve_pid"
wait_gone "$serve_pid" 100 2>/dev/null || { sleep 5; kill -KILL "$serve_pid" 2>/dev/null; }
wait "$serve_pid" 2>/dev/null
unregister_pid "$serve_pid"
grep -q Serve4secret "$T/serve.stderr" && fail "serve: the password appears in stderr"
grep -q 'cfw:\*\*\*@' "$T/serve.stderr" ||
	fail "serve: the database is not named (masked) in its errors: $(grep -i 'reconnect' "$T/serve.stderr" | head -2)"
# Every error line about the lost database is one line naming it.
grep 'cannot reconnect' "$T/serve.stderr" | grep -v -q 'store: postgresql://cfw:\*\*\*@' &&
	fail "serve: an error line without the database's masked name"
# check: the database is reached and its schema known; db_mode, which
# means nothing for PostgreSQL, is pointed out when it is set.
DB=$PG_URI
cfw check >"$T/check.out" 2>&1
grep -q '^ok: database postgresql://.*(PostgreSQL, schema version 2)$' "$T/check.out" ||
	fail "check: no ok line for the PostgreSQL database: $(cat "$T/check.out")"
grep -q db_mode "$T/check.out" && fail "check: db_mode mentioned although unset"
cfw CFIMAGES_WEBHOOK_DB_MODE=0660 check >"$T/check.out" 2>&1
grep -q '^warning: db_mode is set but means nothing for a PostgreSQL database' "$T/check.out" ||
	fail "check: db_mode set for PostgreSQL is not pointed out: $(cat "$T/check.out")"

# --- PostgreSQL restarted while a hook runs: the runner's connection got
# the server's FATAL ("terminating connection due to administrator
# command") while idle, and still looks open when the hook ends.  Its
# outcome is recorded on a new connection (done, one attempt); before,
# the UPDATE went out on the dead connection, was taken for a commit of
# unknown outcome, and the run, left running, ran again after its lease.
SLOW=$T/slowhooks
mkdir -p "$SLOW"
chmod 755 "$SLOW"
printf '#!/bin/sh\necho started >>"%s"\nsleep 4\n' "$T/slow.count" >"$SLOW/uploaded"
chmod 755 "$SLOW/uploaded"
psql_q "INSERT INTO hook_runs (image_id, status, hook, path, state, attempts, next_attempt_at,
	created_at, previous_status, event, input)
	VALUES ('img-slow', 'uploaded', 'uploaded', '$SLOW/uploaded', 'queued', 0,
	'2000-01-01T00:00:00.000Z', '2000-01-01T00:00:00.000Z', 'pending', 'upload.complete',
	decode('7b7d', 'hex'))" >/dev/null
SLOW_RUN=$(psql_q "SELECT id FROM hook_runs WHERE image_id = 'img-slow'")
cfw CFIMAGES_WEBHOOK_HOOKS_DIR="$SLOW" hooks run >/dev/null 2>"$T/slow.stderr" &
slow_pid=$!
register_pid "$slow_pid"
wait_until 30 test -s "$T/slow.count" || fail "the slow hook did not start: $(cat "$T/slow.stderr")"
pg_stop
pg_restart
wait "$slow_pid"
unregister_pid "$slow_pid"
expect_eq "$(psql_q "SELECT state || '|' || attempts FROM hook_runs WHERE id = $SLOW_RUN")" \
	"done|1" "a restart while a hook runs: its outcome is recorded ($(cat "$T/slow.stderr"))"
expect_eq "$(wc -l <"$T/slow.count" | tr -d ' ')" 1 "the hook ran once"
grep -q 'outcome is unknown' "$T/slow.stderr" &&
	fail "the outcome was taken for unknown: $(cat "$T/slow.stderr")"

# Passwords libpq reads where a naive masking would not look: '?' and '#'
# inside the userinfo, a percent-encoded parameter name, an unencoded '@'
# or '/' in the password (libpq ends the userinfo at the first '@' or '/',
# and shows the rest as a host name or a port), and the client key's
# passphrase; an '@' in a query value, not the end of a userinfo.
for uri in 'postgresql://u:Mask1?secret@127.0.0.1:1/db' 'postgresql://u:Mask2#secret@127.0.0.1:1/db' \
	"postgresql:///db?pass%77ord=Mask3secret&host=$T/nowhere" \
	'postgresql://u:Mask4@Hid4den@127.0.0.1:1/db' 'postgresql://u:Mask5/Hid5den@127.0.0.1:1/db' \
	"postgresql:///db?sslpassword=Mask6secret&host=$T/nowhere" \
	'postgresql://127.0.0.1:1/db?password=Mask7@Hid7den'; do
	DB=$uri
	cfw check >"$T/mask.out" 2>&1
	grep -q 'Mask[0-9]\|Hid[4-7]den' "$T/mask.out" &&
		fail "check shows the password of $uri: $(grep -i 'Mask\|Hid' "$T/mask.out")"
	grep -q '\*\*\*' "$T/mask.out" || fail "check does not name $uri masked: $(cat "$T/mask.out")"
done
DB=$PG_URI

expect_no_secret Hunter2secret
expect_no_secret Serve4secret
exit 0
