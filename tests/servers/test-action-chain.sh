#!/bin/sh
# Two receivers chained (cfimages-webhook(8) HOOKS, outbound actions, and
# the Standard Webhooks payload shape): instance A, FastCGI under one
# lighttpd, has an action uploaded.webhook posting to instance B, FastCGI
# under another lighttpd, signed (secret_file, a whsec_ key that is B's
# secret).  A delivery to A moves the image to uploaded; A's action calls
# B with the default payload; B verifies A's signature (its delivery row:
# 200, scheme standard, the webhook-id kept), applies it (`show` on B: the
# image uploaded, A's metadata), and runs B's own hook with the event
# image.uploaded.  A copy of a signed call (another action of A, recorded
# by a plain receiver) replayed to B passes; the same with its body
# tampered is refused 401 Invalid signature, so B really checked.  When
# B's answer to a call is lost (a relay drops it), A's retry carries the
# same webhook-id and B answers it as a replay, applying nothing twice.
#
# Mutations this catches: B not reading the Standard Webhooks shape (400
# Invalid payload, or data's null members refused); A signing something
# else than B verifies (id.timestamp.body); A's runner not started from
# the FastCGI process under lighttpd; B taking the signature on trust; a
# webhook-id that changes between attempts (B would apply the retry).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"
. "$top_srcdir/tests/actionlib.sh"

[ -n "${LIGHTTPD:-}" ] && [ -x "$LIGHTTPD" ] || skip "no lighttpd (LIGHTTPD=${LIGHTTPD:-})"
CURL=${CURL:-curl}
command -v "$CURL" >/dev/null 2>&1 || skip "no curl"

ID=chain/2024/img-8f3e
SECRET_A=chain-a-s3cret
WHSEC=whsec_$(head -c 32 /dev/urandom | base64 | tr -d '\n')
DB_A=$DB
DB_B=$T/b.db
HOOKS_B=$T/b-hooks
ID2=chain/2024/img-lost-answer
init_db "$ID" "$ID2"
DB=$DB_B
init_db "$ID" "$ID2"
DB=$DB_A
printf '%s\n' "$WHSEC" >"$T/a-outbound.key"
chmod 600 "$T/a-outbound.key"
start_receiver copy
COPY_PORT=$RPORT
mkdir -p "$T/www" "$HOOKS/uploaded.d" "$HOOKS_B"
chmod 755 "$HOOKS" "$HOOKS/uploaded.d" "$HOOKS_B"
hook_script "$HOOKS_B/uploaded" \
	"printf '%s %s %s\n' \"\$1\" \"\$CFIMAGES_EVENT\" \"\$CFIMAGES_PREVIOUS_STATUS\" >'$T/b-hook.out'"

# lighttpd splits bin-path on spaces: a wrapper goes in front.
BIN_PATH=$CFW_BIN
[ -n "$CFW_WRAPPER" ] && BIN_PATH="$CFW_WRAPPER $CFW_BIN"

pick_port()
{
	"$PYTHON3" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_lighttpd NAME DB HOOKS_DIR SECRET: instance NAME under a lighttpd
# of its own on 127.0.0.1; sets LPORT.
start_lighttpd()
{
	sl_name=$1
	sl_pid=
	for _ in 1 2 3 4 5; do
		LPORT=$(pick_port)
		cat >"$T/$sl_name.lighttpd.conf" <<CONF
server.bind = "127.0.0.1"
server.port = $LPORT
server.document-root = "$T/www"
server.pid-file = "$T/$sl_name.lighttpd.pid"
server.errorlog = "$T/$sl_name.error.log"
server.modules = ( "mod_fastcgi" )
fastcgi.server = ( "/webhook" => ((
	"bin-path" => "$BIN_PATH",
	"socket" => "$T/$sl_name.fcgi.sock",
	"max-procs" => 1,
	"bin-environment" => (
		"CFIMAGES_WEBHOOK_CONFIG" => "$EMPTY_CONF",
		"CFIMAGES_WEBHOOK_DB" => "$2",
		"CFIMAGES_WEBHOOK_HOOKS_DIR" => "$3",
		"CFIMAGES_WEBHOOK_SECRET" => "$4",
	),
	"check-local" => "disable",
)) )
CONF
		env -i PATH="$CGI_PATH" "$LIGHTTPD" -D -f "$T/$sl_name.lighttpd.conf" \
			>"$T/$sl_name.lighttpd.out" 2>"$T/$sl_name.lighttpd.err" </dev/null &
		sl_pid=$!
		register_pid "$sl_pid"
		sl_i=0
		while [ "$sl_i" -lt 100 ] && alive "$sl_pid"; do
			"$CURL" -s -o /dev/null "http://127.0.0.1:$LPORT/" 2>/dev/null && return 0
			sleep 0.1
			sl_i=$((sl_i + 1))
		done
		kill "$sl_pid" 2>/dev/null
		wait "$sl_pid" 2>/dev/null
		unregister_pid "$sl_pid"
	done
	hard_error "lighttpd $sl_name did not start: $(tail -5 "$T/$sl_name.lighttpd.err" "$T/$sl_name.error.log" 2>/dev/null)"
}

start_lighttpd b "$DB_B" "$HOOKS_B" "$WHSEC"
PORT_B=$LPORT
action_file "$HOOKS/uploaded.webhook" \
	'# tell instance B' \
	"url = http://127.0.0.1:$PORT_B/webhook" \
	"secret_file = $T/a-outbound.key"
action_file "$HOOKS/uploaded.d/50-copy.webhook" \
	"url = http://127.0.0.1:$COPY_PORT/copy" \
	"secret_file = $T/a-outbound.key"
start_lighttpd a "$DB_A" "$HOOKS" "$SECRET_A"
PORT_A=$LPORT

# post PORT FILE [CURL-ARGS...]: one POST to instance PORT's /webhook;
# STATUS and BODY.
N=0
post()
{
	N=$((N + 1))
	p_port=$1
	p_file=$2
	shift 2
	STATUS=$("$CURL" -sS -m 30 -o "$T/post.$N.body" -w '%{http_code}' \
		-H 'Content-Type: application/json' --data-binary "@$p_file" "$@" \
		"http://127.0.0.1:$p_port/webhook" 2>"$T/post.$N.err") ||
		fail "curl to port $p_port failed: $(cat "$T/post.$N.err")"
	BODY=$(cat "$T/post.$N.body")
}

write_file "$T/up.json" "{\"id\":\"$ID\",\"uploaded\":\"2024-01-01T12:00:00.000Z\",\"metadata\":{\"userId\":\"user_12345\",\"note\":\"caf\\u00e9 \\\"q\\\"\"},\"requireSignedURLs\":false}"
post "$PORT_A" "$T/up.json" -H "X-Signature: $(sign_hex "$SECRET_A" "$T/up.json")"
expect_eq "$STATUS $BODY" "200 OK" "A's answer to the delivery"
expect_eq "$(image_status "$ID")" uploaded "the image on A"

RUN=$(run_id "$ID" uploaded.webhook)
[ -n "$RUN" ] || { fail "A queued no run for uploaded.webhook: $(sql 'SELECT hook, state FROM hook_runs')"; exit 1; }
wait_until 60 run_is "$RUN" "done|1" ||
	fail "A's call to B: $(sql "SELECT state, attempts, exit_code, output FROM hook_runs WHERE id = $RUN")"
expect_eq "$(run_row "$RUN")" "done|1|200" "A's run of the action calling B"
run_output "$RUN" | grep -qx 'OK' ||
	fail "A's run output lacks B's answer OK: $(run_output "$RUN")"

# B verified and applied it.
expect_eq "$(sql_db "$DB_B" "SELECT status_code, reason, scheme FROM webhook_deliveries ORDER BY id DESC LIMIT 1")" \
	"200|applied|standard" "B's delivery row for A's call"
[ -n "$(sql_db "$DB_B" "SELECT message_id FROM webhook_deliveries ORDER BY id DESC LIMIT 1")" ] ||
	fail "B kept no webhook-id for A's call"
cfw CFIMAGES_WEBHOOK_DB="$DB_B" show "$ID" >"$T/b-show.json" || fail "show on B failed"
"$PYTHON3" - "$T/b-show.json" <<'EOF' >"$T/b-show.check" 2>&1 ||
import json, sys
img = json.load(open(sys.argv[1]))
problems = []
if img.get("status") != "uploaded":
    problems.append("status %r" % img.get("status"))
if img.get("metadata") != {"userId": "user_12345", "note": 'caf\u00e9 "q"'}:
    problems.append("metadata %r" % img.get("metadata"))
print("\n".join(problems))
sys.exit(1 if problems else 0)
EOF
	fail "the image on B: $(cat "$T/b-show.check") ($(cat "$T/b-show.json"))"
wait_until 30 test -s "$T/b-hook.out" || fail "B's own uploaded hook did not run"
expect_eq "$(cat "$T/b-hook.out" 2>/dev/null)" "$ID image.uploaded pending" "B's hook: id, event, previous status"

# A signed copy: replayed to B it passes; tampered it is refused.
wait_until 60 recv_count_is copy 1 || fail "the copy action made no request"
recv copy 1 body >"$T/copy.body"
H1=$(recv copy 1 header webhook-id)
H2=$(recv copy 1 header webhook-timestamp)
H3=$(recv copy 1 header webhook-signature)
sed 's/user_12345/user_66666/' "$T/copy.body" >"$T/copy.tampered"
cmp -s "$T/copy.body" "$T/copy.tampered" && hard_error "the tampering changed nothing"
post "$PORT_B" "$T/copy.tampered" -H "webhook-id: $H1" -H "webhook-timestamp: $H2" -H "webhook-signature: $H3"
expect_eq "$STATUS $BODY" "401 Invalid signature" "B's answer to a tampered copy"
expect_eq "$(sql_db "$DB_B" "SELECT status_code, reason FROM webhook_deliveries ORDER BY id DESC LIMIT 1")" \
	"401|invalid_signature" "B's delivery row for the tampered copy"
post "$PORT_B" "$T/copy.body" -H "webhook-id: $H1" -H "webhook-timestamp: $H2" -H "webhook-signature: $H3"
expect_eq "$STATUS $BODY" "200 OK" "B's answer to the untampered copy"
expect_eq "$(sql_db "$DB_B" "SELECT status_code, reason, scheme FROM webhook_deliveries ORDER BY id DESC LIMIT 1")" \
	"200|duplicate|standard" "B's delivery row for the copy"
post "$PORT_B" "$T/copy.body"
expect_eq "$STATUS $BODY" "401 Missing signature" "B's answer to the copy without its headers"
cfw CFIMAGES_WEBHOOK_DB="$DB_B" show "$ID" | grep -q user_66666 && fail "the tampered copy changed the image on B"

# A lost answer: B applies A's call but its answer never reaches A (a
# relay drops it); A's retry carries the same webhook-id, which B answers
# as a replay: 200 OK, nothing applied twice.
start_receiver relay --forward "http://127.0.0.1:$PORT_B" --drop-first 1
action_file "$HOOKS/failed.webhook" \
	"url = http://127.0.0.1:$RPORT/webhook" \
	"secret_file = $T/a-outbound.key"
write_file "$T/fail.json" "{\"id\":\"$ID2\",\"error\":\"transcode failed\",\"timestamp\":\"2024-01-01T12:00:00.000Z\"}"
post "$PORT_A" "$T/fail.json" -H "X-Signature: $(sign_hex "$SECRET_A" "$T/fail.json")"
expect_eq "$STATUS $BODY" "200 OK" "A's answer to the failed delivery"
RUN2=$(run_id "$ID2" failed.webhook)
[ -n "$RUN2" ] || { fail "A queued no run for failed.webhook"; exit 1; }
wait_until 60 run_is "$RUN2" "queued|1" ||
	fail "A's call whose answer was lost: $(sql "SELECT state, attempts, exit_code, output FROM hook_runs WHERE id = $RUN2")"
kill_runners
expect_eq "$(sql_db "$DB_B" "SELECT status FROM cloudflare_images WHERE cloudflare_id = '$ID2'")" failed \
	"the image on B after the call whose answer was lost"
expect_eq "$(sql_db "$DB_B" "SELECT status_code, reason, scheme FROM webhook_deliveries ORDER BY id DESC LIMIT 1")" \
	"200|applied|standard" "B's delivery row for the call whose answer was lost"
MID=$(sql_db "$DB_B" "SELECT message_id FROM webhook_deliveries ORDER BY id DESC LIMIT 1")
LOGS=$(sql_db "$DB_B" "SELECT count(*) FROM cloudflare_image_logs WHERE image_id = '$ID2'")
make_due "$RUN2"
hooks_run CFIMAGES_WEBHOOK_SECRET="$SECRET_A"
expect_eq "$(run_row "$RUN2")" "done|2|200" "A's run after its retry"
expect_eq "$(recv_count relay)" 2 "calls through the relay"
expect_eq "$(recv relay 2 header webhook-id)" "$(recv relay 1 header webhook-id)" "webhook-id of A's retry"
expect_eq "$(sql_db "$DB_B" "SELECT status_code, reason, message_id FROM webhook_deliveries ORDER BY id DESC LIMIT 1")" \
	"200|replay|$MID" "B's delivery row for A's retry"
expect_eq "$(sql_db "$DB_B" "SELECT count(*) FROM cloudflare_image_logs WHERE image_id = '$ID2'")" "$LOGS" \
	"log rows on B after the replay"

for f in "$T"/a.error.log "$T"/b.error.log; do
	[ -f "$f" ] && cp "$f" "$f.stderr"
done
expect_no_secret "${WHSEC#whsec_}"
DB=$DB_B
expect_no_secret "${WHSEC#whsec_}"
DB=$DB_A
exit 0
