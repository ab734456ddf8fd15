#!/bin/sh
# secret_file is re-read when it changes, in one long-lived FastCGI
# process (cfimages-webhook.conf(5), SECRET FILE): rotation needs no
# restart.  The hard case first: the file rewritten in place with a secret
# of the same size, its modification time put back (same device, inode,
# size and mtime; only the change time moved).  Then a rename over it with
# the same size and mtime, a line added (another size) and the old line
# removed.  Each time the retired secret is refused (401 `Invalid
# signature`) and the new one accepted, by the same process.
#
# spawn-fcgi -n puts the listening socket on fd 0 and execs the binary, as
# mod_fcgid and lighttpd's bin-path do; cgi-fcgi (libfcgi-bin) sends the
# requests.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/serverlib.sh"

SPAWN_FCGI=${SPAWN_FCGI:-$(command -v spawn-fcgi)}
CGI_FCGI=${CGI_FCGI:-$(command -v cgi-fcgi)}
[ -n "$SPAWN_FCGI" ] && [ -x "$SPAWN_FCGI" ] || skip "no spawn-fcgi"
[ -n "$CGI_FCGI" ] && [ -x "$CGI_FCGI" ] || skip "no cgi-fcgi (libfcgi-bin)"
command -v stat >/dev/null 2>&1 || skip "no stat(1)"

START_SECONDS=10
# The program re-reads a file changed less than 2 s before it read it,
# whatever its times say; past that only the file's identity and times
# decide, and those are what this test is about.
SETTLE_SECONDS=3
SOCK=$T/fcgi.sock
SECRETS=$T/secrets
# Secrets of the same length (24 bytes and a newline each).
OLD=rotation-old-secret-AAAA
NEW=rotation-new-secret-BBBB
NEXT=rotation-nxt-secret-CCCC
LAST=rotation-lst-secret-DDDD

printf '%s\n' "$OLD" >"$SECRETS"
chmod 600 "$SECRETS"
CREATED=$(date +%s)

mkdir -p "$HOOKS"
init_db img-a

start_spawn_fcgi CFIMAGES_WEBHOOK_SECRET_FILE="$SECRETS"
while [ $(($(date +%s) - CREATED)) -lt "$SETTLE_SECONDS" ]; do
	sleep 0.2
done

write_file "$T/a.json" '{"id":"img-a","uploaded":"2024-01-01T12:00:00.000Z"}'

# accepted SECRET WHAT / refused SECRET WHAT: a delivery signed with SECRET.
accepted()
{
	SECRET=$1
	signed_fcgi "$T/a.json"
	expect_eq "$STATUS $BODY" "200 OK" "$2: a delivery signed with $1"
}
refused()
{
	SECRET=$1
	signed_fcgi "$T/a.json"
	expect_rejected 401 "Invalid signature" invalid_signature
	[ "$STATUS" = 401 ] || fail "$2: the retired secret $1 is still accepted"
}

# identity FILE: what an in-place rewrite must keep for this test to mean
# anything: device, inode, size and modification time to the nanosecond.
identity()
{
	stat -c '%d %i %s %y' "$1"
}

accepted "$OLD" "the first secret"
accepted "$OLD" "the first secret, from the copy held"

# In place, same size, mtime put back: only st_ctime moved.
BEFORE=$(identity "$SECRETS")
touch -r "$SECRETS" "$T/mtime.ref"
printf '%s\n' "$NEW" 1<>"$SECRETS"
touch -r "$T/mtime.ref" "$SECRETS"
AFTER=$(identity "$SECRETS")
[ "$BEFORE" = "$AFTER" ] || hard_error "the rewrite changed more than the contents: [$BEFORE] [$AFTER]"
[ "$(cat "$SECRETS")" = "$NEW" ] || hard_error "the rewrite did not take: $(cat "$SECRETS")"
refused "$OLD" "rewritten in place, same size and mtime"
accepted "$NEW" "rewritten in place, same size and mtime"

# Renamed over, same size and mtime (a new inode), once the copy held is
# of a settled file again.
while [ $(($(date +%s) - $(stat -c %Z "$SECRETS"))) -lt "$SETTLE_SECONDS" ]; do
	sleep 0.2
done
accepted "$NEW" "the rewritten file, settled"
printf '%s\n' "$NEXT" >"$SECRETS.new"
touch -r "$SECRETS" "$SECRETS.new"
mv "$SECRETS.new" "$SECRETS"
refused "$NEW" "renamed over, same size and mtime"
accepted "$NEXT" "renamed over, same size and mtime"

# Rotation proper: a line added (both accepted), then the old one removed.
printf '%s\n%s\n' "$NEXT" "$LAST" >"$SECRETS"
accepted "$NEXT" "a new line added"
accepted "$LAST" "a new line added"
printf '%s\n' "$LAST" >"$SECRETS"
refused "$NEXT" "the old line removed"
accepted "$LAST" "the old line removed"

# All of it answered by the one process.
alive "$APP_PID" || fail "the FastCGI process is gone: $(cat "$T/app.stderr")"
expect_sql "SELECT count(*) FROM webhook_deliveries" 11 "deliveries recorded by the one process"
grep -q "AddressSanitizer\|runtime error" "$T/app.stderr" && fail "app.stderr: $(head -5 "$T/app.stderr")"
for s in "$OLD" "$NEW" "$NEXT" "$LAST"; do
	expect_no_secret "$s"
done
exit 0
