#!/bin/sh
# The binary as FastCGI under a real lighttpd (mod_fastcgi, bin-path,
# max-procs 2) on 127.0.0.1, driven by curl: the status matrix through a
# real server (200 OK, 401 missing and invalid, 405 with Allow, 404, 400),
# the delivery rows, secret_file rotation without a restart, and cfimages-webhook.conf(5)'s
# rule that request parameters are never settings: headers named like our
# variables (they arrive as HTTP_CFIMAGES_WEBHOOK_*) change neither the
# database, nor the secret, nor auto_register.
. "$top_srcdir/tests/lib.sh"

[ -n "${LIGHTTPD:-}" ] && [ -x "$LIGHTTPD" ] || skip "no lighttpd (LIGHTTPD=${LIGHTTPD:-})"
CURL=${CURL:-curl}
command -v "$CURL" >/dev/null 2>&1 || skip "no curl"

SECRET=lighttpd-s3cret
ID=2cdc28f0-017a-49c4-9ed7-87056c83901
init_db "$ID"
mkdir -p "$T/www" "$HOOKS"
chmod 755 "$HOOKS"
printf 'rotated-secret-one\n' >"$T/secrets"

# A free port: the kernel's choice when python3 is there, else a random
# one; lighttpd failing to bind is retried with another.
pick_port()
{
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' &&
			return
	fi
	echo $((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000))
}

# lighttpd splits bin-path on spaces: a wrapper goes in front.
BIN_PATH=$CFW_BIN
[ -n "$CFW_WRAPPER" ] && BIN_PATH="$CFW_WRAPPER $CFW_BIN"

write_conf()
{
	cat >"$T/lighttpd.conf" <<CONF
server.bind = "127.0.0.1"
server.port = $PORT
server.document-root = "$T/www"
server.pid-file = "$T/lighttpd.pid"
server.errorlog = "$T/lighttpd.error.log"
server.modules = ( "mod_fastcgi" )
fastcgi.server = ( "/webhook" => ((
	"bin-path" => "$BIN_PATH",
	"socket" => "$T/fcgi.sock",
	"max-procs" => 2,
	"bin-environment" => (
		"CFIMAGES_WEBHOOK_CONFIG" => "$EMPTY_CONF",
		"CFIMAGES_WEBHOOK_DB" => "$DB",
		"CFIMAGES_WEBHOOK_DURABILITY" => "${DURABILITY:-full}",
		"CFIMAGES_WEBHOOK_SECRET" => "$SECRET",
		"CFIMAGES_WEBHOOK_SECRET_FILE" => "$T/secrets",
		"CFIMAGES_WEBHOOK_HOOKS_DIR" => "$HOOKS",
	),
	"check-local" => "disable",
)) )
CONF
}

LPID=
for attempt in 1 2 3 4 5; do
	PORT=$(pick_port)
	write_conf
	env -i PATH="$CGI_PATH" "$LIGHTTPD" -D -f "$T/lighttpd.conf" \
		>"$T/lighttpd.stdout" 2>"$T/lighttpd.stderr" </dev/null &
	LPID=$!
	register_pid "$LPID"
	up=
	for i in $(seq 1 100); do
		kill -0 "$LPID" 2>/dev/null || break
		if "$CURL" -s -o /dev/null "http://127.0.0.1:$PORT/" 2>/dev/null; then
			up=yes
			break
		fi
		sleep 0.1
	done
	[ -n "$up" ] && break
	kill "$LPID" 2>/dev/null
	wait "$LPID" 2>/dev/null
	unregister_pid "$LPID"
	LPID=
done
[ -n "$LPID" ] || hard_error "lighttpd did not start: $(cat "$T/lighttpd.stderr" "$T/lighttpd.error.log" 2>/dev/null | tail -8)"
URL=http://127.0.0.1:$PORT/webhook

# post FILE [curl args...]: one request; $STATUS, $BODY, $HEADERS as cgi sets them.
N=0
post()
{
	N=$((N + 1))
	post_file=$1
	shift
	DELIVERIES_BEFORE=$(delivery_count)
	"$CURL" -s -S -o "$T/resp.$N.body" -D "$T/resp.$N.headers" -w '%{http_code}' \
		-H 'Content-Type: application/json' --data-binary "@$post_file" "$@" "$URL" \
		>"$T/resp.$N.code" 2>"$T/resp.$N.stderr" || fail "curl failed: $(cat "$T/resp.$N.stderr")"
	STATUS=$(cat "$T/resp.$N.code")
	BODY=$(cat "$T/resp.$N.body")
	HEADERS=$(tr -d '\r' <"$T/resp.$N.headers")
	CGI_N=$N
}
sig()
{
	sign_hex "$1" "$2"
}

UP=$PAYLOADS/cloudflare-upload-complete.json

post "$UP" -H "X-Signature: $(sig "$SECRET" "$UP")"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status "$ID")" uploaded "applied through lighttpd"
expect_eq "$(last_delivery remote_addr)" "'127.0.0.1'" "REMOTE_ADDR from the server"
expect_eq "$(last_delivery scheme)" "'hex'" "scheme"

post "$UP"
expect_answer 401 "Missing signature"
expect_one_delivery missing_signature 401

post "$UP" -H "X-Signature: $(sig wrong "$UP")"
expect_answer 401 "Invalid signature"
expect_one_delivery invalid_signature 401

N=$((N + 1))
"$CURL" -s -o "$T/resp.$N.body" -D "$T/resp.$N.headers" -w '%{http_code}' "$URL" >"$T/resp.$N.code"
STATUS=$(cat "$T/resp.$N.code") BODY=$(cat "$T/resp.$N.body") HEADERS=$(tr -d '\r' <"$T/resp.$N.headers")
expect_answer 405 "Method not allowed"
expect_eq "$(header Allow)" POST "GET: Allow header"
expect_sql "SELECT reason FROM webhook_deliveries ORDER BY id DESC LIMIT 1" method_not_allowed "GET recorded"

write_file "$T/unknown" '{"id":"not-registered","uploaded":"2024-01-01T12:00:00Z"}'
post "$T/unknown" -H "X-Signature: $(sig "$SECRET" "$T/unknown")"
expect_answer 404 "Image not found"
expect_one_delivery not_found 404

write_file "$T/bad" '{"id":"abc",'
post "$T/bad" -H "X-Signature: $(sig "$SECRET" "$T/bad")"
expect_answer 400 "Invalid JSON"
expect_one_delivery invalid_json 400

write_file "$T/badp" '{"id":"a//b","uploaded":"2024-01-01T12:00:00Z"}'
post "$T/badp" -H "X-Signature: $(sig "$SECRET" "$T/badp")"
expect_answer 400 "Invalid payload"
expect_one_delivery invalid_payload 400

post "$PAYLOADS/notification-test-probe.json" -H "cf-webhook-auth: $SECRET"
expect_answer 200 Ignored
expect_one_delivery ignored 200

# Many requests over the two processes: each is answered and recorded.
i=0
while [ $i -lt 20 ]; do
	i=$((i + 1))
	post "$UP" -H "X-Hub-Signature-256: sha256=$(sig "$SECRET" "$UP")"
	expect_answer 200 OK
	expect_one_delivery duplicate 200
done

# secret_file rotation in long-lived processes: no restart needed.
post "$UP" -H "X-Signature: $(sig rotated-secret-one "$UP")"
expect_answer 200 OK
printf 'rotated-secret-two-longer\n' >"$T/secrets.new"
mv "$T/secrets.new" "$T/secrets"
i=0
while [ $i -lt 4 ]; do # enough to reach both processes
	i=$((i + 1))
	post "$UP" -H "X-Signature: $(sig rotated-secret-one "$UP")"
	expect_answer 401 "Invalid signature"
	post "$UP" -H "X-Signature: $(sig rotated-secret-two-longer "$UP")"
	expect_answer 200 OK
done

# Request parameters are never settings (cfimages-webhook.conf(5)).
post "$UP" -H "X-Signature: $(sig "$SECRET" "$UP")" \
	-H "Cfimages-Webhook-Db: $T/evil.db" -H "Cfimages-Webhook-Hooks-Dir: $T/evil-hooks" \
	-H "Cfimages-Webhook-Config: $T/evil.conf" -H "Cfimages-Webhook-Log-Level: debug"
expect_answer 200 OK
expect_one_delivery duplicate 200
[ -e "$T/evil.db" ] && fail "a request header chose the database: $T/evil.db exists"
post "$UP" -H "Cfimages-Webhook-Secret: attacker" -H "X-Signature: $(sig attacker "$UP")"
expect_answer 401 "Invalid signature"
post "$T/unknown" -H "Cfimages-Webhook-Auto-Register: yes" -H "X-Signature: $(sig "$SECRET" "$T/unknown")"
expect_answer 404 "Image not found"
post "$UP" -H "Cfimages-Webhook-Allow-From: 10.0.0.0/8" -H "X-Signature: $(sig "$SECRET" "$UP")"
expect_answer 200 OK
[ -e "$T/evil.db" ] && fail "a request header chose the database: $T/evil.db exists"
expect_eq "$(image_status not-registered)" "" "a request header turned auto_register on"

# The secrets never reach the database or the server's error log.
for f in "$T/lighttpd.error.log" "$T/lighttpd.stderr"; do
	[ -f "$f" ] && cp "$f" "$T/$(basename "$f").stderr"
done
expect_no_secret "$SECRET"
expect_no_secret rotated-secret-one
expect_no_secret rotated-secret-two-longer

# Stopping lighttpd stops the FastCGI processes it started.
CHILDREN=$(ps -o pid= --ppid "$LPID" 2>/dev/null)
for c in $CHILDREN; do
	register_pid "$c"
done
[ -n "$CHILDREN" ] || fail "no FastCGI process under lighttpd"
kill "$LPID"
wait "$LPID"
unregister_pid "$LPID"
for c in $CHILDREN; do
	i=0
	while kill -0 "$c" 2>/dev/null && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -0 "$c" 2>/dev/null && fail "FastCGI process $c outlived lighttpd"
done
