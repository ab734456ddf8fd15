#!/bin/sh
# FastCGI mode as mod_fcgid, lighttpd's bin-path and spawn-fcgi start it:
# the listening socket on fd 0 (cfimages-webhook(8) DESCRIPTION), without a web server.
#
# spawn-fcgi -n binds a unix socket, puts it on fd 0 and execs the binary;
# cgi-fcgi -bind -connect (libfcgi's client) sends each request, its
# environment becoming the FastCGI parameters.  Checked: the status
# matrix basics, all answered by the one process (an accept loop, not one
# request and exit); parameters named CFIMAGES_WEBHOOK_* are not settings
# (cgi-fcgi sends the whole environment lib.sh's cgi builds, and a hostile
# client could send anything); SIGTERM while idle exits 0 within 2 s.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/serverlib.sh"

SPAWN_FCGI=${SPAWN_FCGI:-$(command -v spawn-fcgi)}
CGI_FCGI=${CGI_FCGI:-$(command -v cgi-fcgi)}
[ -n "$SPAWN_FCGI" ] && [ -x "$SPAWN_FCGI" ] || skip "no spawn-fcgi"
[ -n "$CGI_FCGI" ] && [ -x "$CGI_FCGI" ] || skip "no cgi-fcgi (libfcgi-bin)"

SECRET=spawn-test-secret
START_SECONDS=10
STOP_SECONDS=2
SOCK=$T/fcgi.sock
EVIL=$T/evil.db

mkdir -p "$HOOKS"
init_db img-a img-b

start_spawn_fcgi CFIMAGES_WEBHOOK_SECRET="$SECRET"

write_file "$T/a.json" '{"id":"img-a","uploaded":"2024-01-01T12:00:00.000Z"}'
signed_fcgi "$T/a.json"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status img-a)" uploaded "the image status after a signed delivery"

signed_fcgi "$T/a.json"
expect_answer 200 OK
expect_one_delivery duplicate 200

fcgi POST "$T/a.json"
expect_rejected 401 "Missing signature" missing_signature

write_file "$T/empty" ''
fcgi GET "$T/empty" CONTENT_LENGTH=
expect_rejected 405 "Method not allowed" method_not_allowed
expect_eq "$(header Allow)" POST "the Allow header of a 405"

write_file "$T/bad.json" '{"id":"img-a","uploaded":"2024-01-01T12:00:00.000Z",}'
signed_fcgi "$T/bad.json"
expect_rejected 400 "Invalid JSON" invalid_json

# Parameters named like settings.  Unsigned: were SECRET= a setting, it
# would pass.  Signed, unknown id: were AUTO_REGISTER one, it would be
# created.  Signed, known id: applied to the real database, not EVIL.
write_file "$T/b.json" '{"id":"img-b","uploaded":"2024-01-01T12:00:00.000Z"}'
fcgi POST "$T/b.json" CFIMAGES_WEBHOOK_SECRET= CFIMAGES_WEBHOOK_DB="$EVIL" \
	CFIMAGES_WEBHOOK_CONFIG="$T/missing.conf"
expect_rejected 401 "Missing signature" missing_signature
write_file "$T/new.json" '{"id":"img-new","uploaded":"2024-01-01T12:00:00.000Z"}'
signed_fcgi "$T/new.json" CFIMAGES_WEBHOOK_AUTO_REGISTER=yes CFIMAGES_WEBHOOK_DB="$EVIL"
expect_rejected 404 "Image not found" not_found
signed_fcgi "$T/b.json" CFIMAGES_WEBHOOK_DB="$EVIL" CFIMAGES_WEBHOOK_HOOKS_DIR="$T" \
	CFIMAGES_WEBHOOK_MAX_BODY=1
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status img-b)" uploaded "the delivery with CFIMAGES_WEBHOOK_DB as a parameter"
[ -e "$EVIL" ] && fail "a FastCGI parameter created $EVIL"

# One process answered everything.
alive "$APP_PID" || fail "the FastCGI process is gone after the requests (exited: $(cat "$T/app.stderr"))"
expect_sql "SELECT count(*) FROM webhook_deliveries" 8 "deliveries recorded by the one process"

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
