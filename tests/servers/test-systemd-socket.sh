#!/bin/sh
# FastCGI mode under systemd socket activation (cfimages-webhook(8) DESCRIPTION): the listening
# socket on fd 3 with LISTEN_PID and LISTEN_FDS, as a .socket unit without
# StandardInput=socket passes it (contrib/systemd/).  No systemd needed:
# systemd-socket-activate binds the socket, waits for the first
# connection and execs the binary with the same variables.  Requests go
# through cgi-fcgi (libfcgi's client).  Also: LISTEN_FDS meant for another
# process (LISTEN_PID not ours) is not socket activation.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/serverlib.sh"

ACTIVATE=${SYSTEMD_SOCKET_ACTIVATE:-$(command -v systemd-socket-activate)}
CGI_FCGI=${CGI_FCGI:-$(command -v cgi-fcgi)}
[ -n "$ACTIVATE" ] && [ -x "$ACTIVATE" ] || skip "no systemd-socket-activate"
[ -n "$CGI_FCGI" ] && [ -x "$CGI_FCGI" ] || skip "no cgi-fcgi (libfcgi-bin)"

SECRET=systemd-test-secret
START_SECONDS=10
STOP_SECONDS=2
SOCK=$T/fcgi.sock

mkdir -p "$HOOKS"
init_db img-a

# The units of contrib/systemd/ parse cleanly (systemd-analyze needs no
# running systemd; ExecStart must name an existing program).
if command -v systemd-analyze >/dev/null 2>&1; then
	mkdir -p "$T/units"
	for u in cfimages-webhook.socket cfimages-webhook.service; do
		[ -f "$top_srcdir/contrib/systemd/$u" ] || hard_error "no contrib/systemd/$u"
		sed "s|/usr/local/bin/cfimages-webhook|$CFW_BIN|" "$top_srcdir/contrib/systemd/$u" \
			>"$T/units/$u"
	done
	SYSTEMD_LOG_LEVEL=info systemd-analyze verify --man=no \
		"$T/units/cfimages-webhook.socket" "$T/units/cfimages-webhook.service" \
		>"$T/verify.out" 2>&1
	if grep -q "cfimages-webhook\.s" "$T/verify.out"; then
		fail "systemd-analyze verify: $(grep "cfimages-webhook\.s" "$T/verify.out" | head -5)"
	fi
	grep -q "^ListenStream=/run/cfimages-webhook/fcgi.sock$" "$T/units/cfimages-webhook.socket" ||
		fail "the socket unit does not listen where contrib/nginx.conf connects"
fi

# LISTEN_* for some other process: not FastCGI, so no command is usage.
cfw LISTEN_PID=1 LISTEN_FDS=1 >"$T/usage.out" 2>"$T/usage.err"
expect_eq "$?" 2 "LISTEN_PID of another process, no command: usage exit status"

# The activator passes only the variables named with -E.
# shellcheck disable=SC2086 # the wrapper is a list of words
env -i PATH="$CGI_PATH" CFIMAGES_WEBHOOK_CONFIG="$EMPTY_CONF" \
	CFIMAGES_WEBHOOK_DB="$DB" CFIMAGES_WEBHOOK_HOOKS_DIR="$HOOKS" \
	CFIMAGES_WEBHOOK_SECRET="$SECRET" \
	"$ACTIVATE" -l "$SOCK" -E PATH -E CFIMAGES_WEBHOOK_CONFIG -E CFIMAGES_WEBHOOK_DB \
	-E CFIMAGES_WEBHOOK_HOOKS_DIR -E CFIMAGES_WEBHOOK_SECRET \
	$CFW_WRAPPER "$CFW_BIN" </dev/null >"$T/app.stdout" 2>"$T/app.stderr" &
APP_PID=$!
register_pid "$APP_PID"
i=0
while ! grep -q "^Listening on" "$T/app.stderr" 2>/dev/null; do
	alive "$APP_PID" || hard_error "systemd-socket-activate failed: $(cat "$T/app.stderr")"
	[ "$i" -lt $((START_SECONDS * 10)) ] || hard_error "no socket after $START_SECONDS s"
	sleep 0.1
	i=$((i + 1))
done

write_file "$T/a.json" '{"id":"img-a","uploaded":"2024-01-01T12:00:00.000Z"}'
fcgi POST "$T/a.json" HTTP_X_SIGNATURE="$(sign_hex "$SECRET" "$T/a.json")"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status img-a)" uploaded "the image status after a signed delivery"
grep -q "Execing" "$T/app.stderr" || fail "systemd-socket-activate did not exec the binary"

fcgi POST "$T/a.json"
expect_rejected 401 "Missing signature" missing_signature

write_file "$T/empty" ''
fcgi GET "$T/empty" CONTENT_LENGTH=
expect_rejected 405 "Method not allowed" method_not_allowed
expect_eq "$(header Allow)" POST "the Allow header of a 405"

alive "$APP_PID" || fail "the activated process is gone after the requests: $(cat "$T/app.stderr")"

kill -TERM "$APP_PID"
i=0
while alive "$APP_PID" && [ "$i" -lt $((STOP_SECONDS * 10)) ]; do
	sleep 0.1
	i=$((i + 1))
done
if alive "$APP_PID"; then
	fail "still running $STOP_SECONDS s after SIGTERM"
	kill -KILL "$APP_PID"
fi
wait "$APP_PID"
expect_eq "$?" 0 "exit status after SIGTERM"
unregister_pid "$APP_PID"
grep -q "AddressSanitizer\|runtime error" "$T/app.stderr" && fail "app.stderr: $(head -5 "$T/app.stderr")"
expect_no_secret "$SECRET"
exit 0
