#!/bin/sh
# The portable build needs nothing from the host (cfimages-webhook(8)
# PORTABLE BUILD): its binary runs as CGI in an empty root -- a directory
# holding only the binary, its configuration, a database directory, a
# hooks directory and, for the hook (a shell script), a static busybox as
# /bin/sh -- entered with chroot.  No /lib, no /usr, no /etc; of the
# kernel's interfaces only /dev/null (a detached hook runner puts its
# standard descriptors there, and SQLite will not open a database on
# descriptor 0, 1 or 2) and /proc (the program finds itself through
# /proc/self/exe to start its hook runner), the latter mounted in a mount
# namespace of the run's own (unshare --mount): the host never sees it.  Every row
# of the request contract is answered as it should (403, 405, 413, 401
# missing, 401 invalid, 400 invalid JSON, 400 invalid payload, 200 Ignored,
# 404, 500, 200 OK), each recorded in the database, and the hook of the
# change runs with the delivery's body on its stdin.
#
# Run by `make check-portable` with CFW_BIN the portable binary; skipped
# for a binary that is not static (the plain build's).
. "$top_srcdir/tests/lib.sh"

file "$CFW_BIN" 2>/dev/null | grep -qE 'static(ally|-pie) linked' ||
	skip "$CFW_BIN is not a static executable (make check-portable runs this)"
BUSYBOX=${BUSYBOX:-/bin/busybox}
file "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' ||
	skip "no static busybox for the hook's /bin/sh (Debian: busybox-static)"
[ "$(id -u)" -eq 0 ] || skip "entering an empty root with /proc mounted needs root"
CHROOT=$(command -v chroot) || skip "no chroot"
UNSHARE=$(command -v unshare) || skip "no unshare (util-linux)"
"$UNSHARE" --mount true 2>/dev/null || skip "unshare --mount is not allowed here"

SECRET=empty-root-secret-0123456789
ROOT=$T/root
mkdir -p "$ROOT/data" "$ROOT/hooks" "$ROOT/bin" "$ROOT/proc" "$ROOT/dev" || hard_error "mkdir failed"
chmod 0755 "$ROOT" "$ROOT/hooks" "$ROOT/bin"
mknod -m 0666 "$ROOT/dev/null" c 1 3 || skip "cannot make $ROOT/dev/null (mknod)"
cp "$CFW_BIN" "$ROOT/webhook.fcgi" || hard_error "cannot copy the binary"
cp "$BUSYBOX" "$ROOT/bin/busybox" && ln -s busybox "$ROOT/bin/sh" || hard_error "cannot copy busybox"
cat >"$ROOT/cfimages-webhook.conf" <<CONF
secret = $SECRET
db = /data/webhook.db
hooks_dir = /hooks
CONF
chmod 0600 "$ROOT/cfimages-webhook.conf"
# The hook: shell built-ins only (busybox sh), its arguments and stdin to a file.
cat >"$ROOT/hooks/uploaded" <<'HOOK'
#!/bin/sh
body=
while IFS= read -r line || [ -n "$line" ]; do body="$body$line"; done
printf '%s %s %s %s\n' "$1" "$2" "$CFIMAGES_EVENT" "$body" >>/data/hook-ran
HOOK
chmod 0755 "$ROOT/hooks/uploaded"

# What the root holds: nothing but these.
expect_eq "$(cd "$ROOT" && find . | sort | tr '\n' ' ')" \
	". ./bin ./bin/busybox ./bin/sh ./cfimages-webhook.conf ./data ./dev ./dev/null ./hooks ./hooks/uploaded ./proc ./webhook.fcgi " \
	"the empty root's contents"

# Every run goes through this wrapper: paths under $ROOT in the settings
# the helpers pass become the paths the binary sees inside the root.
cat >"$T/in-root" <<WRAP
#!/bin/sh
for v in CFIMAGES_WEBHOOK_DB CFIMAGES_WEBHOOK_HOOKS_DIR CFIMAGES_WEBHOOK_CONFIG; do
	eval "val=\\\${\$v-}"
	case \$val in "$ROOT"/*) export "\$v=\${val#"$ROOT"}" ;; esac
done
exec "$UNSHARE" --mount --propagation private -- /bin/sh -c \\
	'mount -t proc proc "\$0/proc" && exec "$CHROOT" "\$0" /webhook.fcgi "\$@"' "$ROOT" "\$@"
WRAP
chmod 0755 "$T/in-root"
CFW_BIN=$T/in-root
CFW_WRAPPER= # valgrind cannot follow into the root
DB=$ROOT/data/webhook.db
HOOKS=$ROOT/hooks
EMPTY_CONF=$ROOT/cfimages-webhook.conf

# sign FILE: the hex HMAC-SHA256 of FILE under the secret (host openssl).
sign()
{
	openssl dgst -sha256 -hmac "$SECRET" -hex <"$1" | sed 's/^.*= *//'
}

init_db img-1
expect_eq "$(image_status img-1)" pending "init and register inside the root"

write_file "$T/ok.json" '{"id":"img-1","uploaded":"2024-01-01T12:00:00.000Z","variants":["https://imagedelivery.net/h/img-1/public"]}'
write_file "$T/unknown.json" '{"id":"img-unknown","uploaded":"2024-01-01T12:00:00.000Z"}'
write_file "$T/bad.json" '{"id":"img-1",'
write_file "$T/payload.json" '{"id":"","uploaded":"2024-01-01T12:00:00.000Z"}'
write_file "$T/probe.json" '{"text":"Hello World! This is a test message sent from https://cloudflare.com."}'

cgi POST "$T/ok.json" REMOTE_ADDR=192.0.2.1 CFIMAGES_WEBHOOK_ALLOW_FROM=10.0.0.0/8 HTTP_X_SIGNATURE="$(sign "$T/ok.json")"
expect_rejected 403 Forbidden forbidden
cgi GET "$T/ok.json"
expect_rejected 405 "Method not allowed" method_not_allowed
expect_eq "$(header Allow)" POST "the Allow header of a 405"
cgi POST "$T/ok.json" CFIMAGES_WEBHOOK_MAX_BODY=16 HTTP_X_SIGNATURE="$(sign "$T/ok.json")"
expect_rejected 413 "Payload too large" payload_too_large
cgi POST "$T/ok.json"
expect_rejected 401 "Missing signature" missing_signature
cgi POST "$T/ok.json" HTTP_X_SIGNATURE="$(printf '%064d' 0)"
expect_rejected 401 "Invalid signature" invalid_signature
cgi POST "$T/bad.json" HTTP_X_SIGNATURE="$(sign "$T/bad.json")"
expect_rejected 400 "Invalid JSON" invalid_json
cgi POST "$T/payload.json" HTTP_X_SIGNATURE="$(sign "$T/payload.json")"
expect_rejected 400 "Invalid payload" invalid_payload
cgi POST "$T/probe.json" HTTP_X_SIGNATURE="$(sign "$T/probe.json")"
expect_answer 200 Ignored
expect_one_delivery ignored 200
cgi POST "$T/unknown.json" HTTP_X_SIGNATURE="$(sign "$T/unknown.json")"
expect_rejected 404 "Image not found" not_found
# The database cannot be created: its directory does not exist (500).
cgi POST "$T/ok.json" CFIMAGES_WEBHOOK_DB="$ROOT/no/such/dir/webhook.db" HTTP_X_SIGNATURE="$(sign "$T/ok.json")"
expect_answer 500 "Internal server error"
[ -e "$ROOT/no" ] && fail "something was created for an impossible database path"

cgi POST "$T/ok.json" HTTP_X_SIGNATURE="$(sign "$T/ok.json")"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status img-1)" uploaded "the image status after a signed delivery"
# The hook ran inside the root (detached, after the answer): busybox sh.
wait_hook_runners || fail "the hook runs did not finish within 10 s"
expect_eq "$(cat "$ROOT/data/hook-ran" 2>/dev/null)" "img-1 uploaded upload.complete $(cat "$T/ok.json")" \
	"the hook's arguments, event and stdin"
expect_sql "SELECT state, exit_code FROM hook_runs" "done|0" "the hook run"
expect_no_secret "$SECRET"

# Operator commands work in the root too.
cfw show img-1 >"$T/show.out" 2>"$T/show.err"
expect_eq $? 0 "show inside the root ($(cat "$T/show.err"))"
grep -q '"status":"uploaded"' "$T/show.out" || fail "show: $(cat "$T/show.out")"
exit 0
