#!/bin/sh
# cfimages-webhook.conf(5): in FastCGI mode the request's parameters are never read as
# settings (the php-fpm PHP_VALUE lesson): anyone able to connect to the
# socket could otherwise choose the database, the secret, the hooks
# directory.  A FastCGI client (libfcgi's cgi-fcgi, which sends its whole
# environment as parameters) talks to `serve --listen` and sends
# CFIMAGES_WEBHOOK_* parameters: none has any effect.  Then cfimages-webhook(8) DESCRIPTION:
# `serve` answers many requests in one process and exits 0 on SIGTERM.
. "$top_srcdir/tests/lib.sh"

CGI_FCGI=${CGI_FCGI:-$(command -v cgi-fcgi 2>/dev/null)}
[ -n "$CGI_FCGI" ] && [ -x "$CGI_FCGI" ] || skip "no cgi-fcgi (Debian: libfcgi-bin)"

SECRET=fcgi-params-s3cret
ID=2cdc28f0-017a-49c4-9ed7-87056c83901
init_db "$ID"
mkdir -p "$HOOKS" "$T/evil-hooks"
chmod 755 "$HOOKS" "$T/evil-hooks"
printf '#!/bin/sh\ntouch "%s/evil-hook-ran"\n' "$T" >"$T/evil-hooks/uploaded"
chmod 755 "$T/evil-hooks/uploaded"
printf 'auto_register = yes\n' >"$T/evil.conf"
SOCK=$T/fcgi.sock

# shellcheck disable=SC2086 # the wrapper is a list of words
env -i PATH="$CGI_PATH" CFIMAGES_WEBHOOK_CONFIG="$EMPTY_CONF" CFIMAGES_WEBHOOK_DB="$DB" \
	CFIMAGES_WEBHOOK_SECRET="$SECRET" CFIMAGES_WEBHOOK_HOOKS_DIR="$HOOKS" \
	$CFW_WRAPPER "$CFW_BIN" serve --listen "$SOCK" </dev/null >"$T/serve.stdout" 2>"$T/serve.stderr" &
SPID=$!
register_pid "$SPID"
i=0
while [ ! -S "$SOCK" ] && [ $i -lt 100 ]; do
	kill -0 "$SPID" 2>/dev/null || break
	sleep 0.1
	i=$((i + 1))
done
[ -S "$SOCK" ] || hard_error "serve --listen did not create $SOCK: $(cat "$T/serve.stderr")"

# fcgi FILE [VAR=VALUE...]: one FastCGI request with these parameters.
fcgi()
{
	fc_file=$1
	shift
	CGI_N=$((CGI_N + 1))
	CGI_OUT=$T/fcgi.$CGI_N.out
	DELIVERIES_BEFORE=$(delivery_count)
	snapshot >"$T/before.snap"
	timeout -k 5 "$CFW_TIMEOUT" env -i PATH="$CGI_PATH" GATEWAY_INTERFACE=CGI/1.1 \
		REQUEST_METHOD=POST CONTENT_LENGTH="$(wc -c <"$fc_file" | tr -d ' ')" \
		REMOTE_ADDR=127.0.0.1 "$@" "$CGI_FCGI" -bind -connect "$SOCK" \
		<"$fc_file" >"$CGI_OUT" 2>"$T/fcgi.$CGI_N.stderr" ||
		fail "request $CGI_N: cgi-fcgi failed: $(cat "$T/fcgi.$CGI_N.stderr")"
	parse_answer "$CGI_OUT"
}

UP=$PAYLOADS/cloudflare-upload-complete.json
GOOD=HTTP_X_SIGNATURE=$(sign_hex "$SECRET" "$UP")

fcgi "$UP" "$GOOD" CFIMAGES_WEBHOOK_DB="$T/evil.db" CFIMAGES_WEBHOOK_HOOKS_DIR="$T/evil-hooks" \
	CFIMAGES_WEBHOOK_CONFIG="$T/evil.conf" CFIMAGES_WEBHOOK_MAX_BODY=1 \
	CFIMAGES_WEBHOOK_ALLOW_FROM=10.0.0.0/8 CFIMAGES_WEBHOOK_DB_MODE=0666
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status "$ID")" uploaded "applied to the configured database"
[ -e "$T/evil.db" ] && fail "a request parameter chose the database"
expect_sql "SELECT count(*) FROM hook_runs" 0 "no hook run from a parameter's hooks_dir"

# A parameter cannot replace the secret.
fcgi "$UP" CFIMAGES_WEBHOOK_SECRET=attacker HTTP_X_SIGNATURE="$(sign_hex attacker "$UP")"
expect_rejected 401 "Invalid signature" invalid_signature
# Nor switch auto_register on (directly or through a config file).
write_file "$T/unknown" '{"id":"not-registered","uploaded":"2024-01-01T12:00:00Z"}'
fcgi "$T/unknown" HTTP_X_SIGNATURE="$(sign_hex "$SECRET" "$T/unknown")" \
	CFIMAGES_WEBHOOK_AUTO_REGISTER=yes CFIMAGES_WEBHOOK_CONFIG="$T/evil.conf"
expect_rejected 404 "Image not found" not_found
# Nor set a tolerance wide enough for an old timestamp.
if command -v openssl >/dev/null 2>&1; then
	old=$(($(date +%s) - 7200))
	sig=$({ printf '%s.' "$old"; cat "$UP"; } | openssl dgst -sha256 -hmac "$SECRET" -r | cut -c1-64)
	fcgi "$UP" HTTP_WEBHOOK_SIGNATURE="time=$old,sig1=$sig" CFIMAGES_WEBHOOK_TOLERANCE=86400
	expect_rejected 401 "Invalid signature" invalid_signature
fi

# One process, many requests.
i=0
while [ $i -lt 25 ]; do
	i=$((i + 1))
	fcgi "$UP" "$GOOD"
	expect_answer 200 OK
	expect_one_delivery duplicate 200
done
kill -0 "$SPID" 2>/dev/null || fail "serve died"
[ -e "$T/evil.db" ] && fail "a request parameter chose the database"
[ -e "$T/evil-hook-ran" ] && fail "a hook from a parameter's hooks_dir ran"
expect_no_secret "$SECRET" # in the database and serve.stderr

# SIGTERM: exit 0.
kill "$SPID"
wait "$SPID"
expect_eq $? 0 "serve exits 0 on SIGTERM"
unregister_pid "$SPID"

# Without a secret: a parameter cannot impose one either, and the
# "no secret" warning comes once per process, not once per request (cfimages-webhook(8) AUTHENTICATION).
rm -f "$SOCK"
# shellcheck disable=SC2086 # the wrapper is a list of words
env -i PATH="$CGI_PATH" CFIMAGES_WEBHOOK_CONFIG="$EMPTY_CONF" CFIMAGES_WEBHOOK_DB="$DB" \
	CFIMAGES_WEBHOOK_HOOKS_DIR="$HOOKS" \
	$CFW_WRAPPER "$CFW_BIN" serve --listen "$SOCK" </dev/null >"$T/serve2.stdout" 2>"$T/serve2.stderr" &
SPID=$!
register_pid "$SPID"
i=0
while [ ! -S "$SOCK" ] && [ $i -lt 100 ]; do
	kill -0 "$SPID" 2>/dev/null || break
	sleep 0.1
	i=$((i + 1))
done
[ -S "$SOCK" ] || hard_error "serve --listen did not create $SOCK: $(cat "$T/serve2.stderr")"
fcgi "$UP" CFIMAGES_WEBHOOK_SECRET=imposed
expect_answer 200 OK
expect_eq "$(last_delivery scheme)" "'none'" "a parameter imposed no secret"
fcgi "$UP"
expect_answer 200 OK
fcgi "$UP"
expect_answer 200 OK
kill "$SPID"
wait "$SPID"
unregister_pid "$SPID"
expect_eq "$(grep -c -i 'secret' "$T/serve2.stderr")" 1 \
	"one no-secret warning for three requests: $(cat "$T/serve2.stderr")"
