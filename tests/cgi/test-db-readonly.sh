#!/bin/sh
# A database the receiver's user cannot write (cfimages-webhook.conf(5),
# db): SQLite would quietly open it read-only and create -wal and -shm with
# the database's read-only mode, so that every delivery stayed a 500 even
# after the owner fixed the mode.  Instead the open is refused before
# anything is touched: a 500 with a log line naming the file and the fix,
# no -wal or -shm created, `check` reporting the same; once the mode is
# fixed the next delivery is a 200 without any cleanup.  The same for a
# -shm left read-only (by an older version) and an unwritable directory.
#
# Root may write any file, so as root the binary runs as nobody.
. "$top_srcdir/tests/lib.sh"
sqlite_only "a read-only database file, -wal and -shm; PostgreSQL's files are the server's"

UP=$PAYLOADS/cloudflare-upload-complete.json
ID=2cdc28f0-017a-49c4-9ed7-87056c83901
DATA=$T/data
mkdir "$DATA"
DB=$DATA/webhook.db

if [ "$(id -u)" -eq 0 ]; then
	command -v setpriv >/dev/null 2>&1 || skip "no setpriv to run the binary as nobody"
	RUN_GROUP=$(id -gn nobody 2>/dev/null) || skip "no user nobody to run the binary as"
	chmod 0755 "$T"
	chown nobody "$DATA"
	AS_NOBODY="setpriv --reuid=nobody --regid=$RUN_GROUP --clear-groups"
	$AS_NOBODY test -x "$CFW_BIN" ||
		skip "nobody cannot run $CFW_BIN (set TMPDIR and the build to world-readable places)"
	CFW_WRAPPER="$AS_NOBODY $CFW_WRAPPER"
fi

# `cgi` snapshots the database with the sqlite3 shell before each request.
# As root, that shell would remove a -wal or -shm left read-only and so
# hide the very damage this test looks for: no snapshots here.
snapshot()
{
	:
}
delivery_count()
{
	echo 0
}

mode()
{
	stat -c %a "$1"
}

# The database, created by the receiver's own user; no -wal or -shm is left.
init_db "$ID"
[ -e "$DB-wal" ] || [ -e "$DB-shm" ] && hard_error "init left -wal or -shm behind"

# 1. The database file is read-only.
chmod 0400 "$DB"
cp "$DB" "$T/before.db"
cgi POST "$UP"
expect_answer 500 "Internal server error"
grep -q "error: database: $DB is not writable by uid [0-9]*.*fix: chmod u+rw $DB" "$CGI_ERR" ||
	fail "no log line naming the read-only database and the fix: $(cat "$CGI_ERR")"
[ -e "$DB-shm" ] && fail "a -shm was created (mode $(mode "$DB-shm")) for a read-only database"
[ -e "$DB-wal" ] && fail "a -wal was created (mode $(mode "$DB-wal")) for a read-only database"
cmp -s "$DB" "$T/before.db" || fail "the read-only database was modified"
cfw check >"$T/check1.out" 2>&1
expect_eq $? 1 "check on a read-only database exits 1"
grep -q "^problem: database: $DB is not writable by uid [0-9]*.*(fix: chmod u+rw $DB)\$" \
	"$T/check1.out" || fail "check does not report the read-only database: $(cat "$T/check1.out")"
grep -q '^ok: database' "$T/check1.out" && fail "check says ok: $(cat "$T/check1.out")"

# The owner fixes the mode: the next delivery is applied, nothing else to do.
chmod 0600 "$DB"
cgi POST "$UP"
expect_answer 200 OK
expect_eq "$(image_status "$ID")" uploaded "the delivery after the fix is applied"
cfw check >"$T/check2.out" 2>&1
grep -q '^ok: database' "$T/check2.out" || fail "check after the fix: $(cat "$T/check2.out")"

# 2. The directory, where SQLite creates -wal and -shm, is read-only.
chmod 0500 "$DATA"
cgi POST "$PAYLOADS/cloudflare-upload-failed.json"
expect_answer 500 "Internal server error"
grep -q "error: database: $DATA is not writable.*fix: chmod u+rwx $DATA" "$CGI_ERR" ||
	fail "no log line naming the read-only directory: $(cat "$CGI_ERR")"
cfw check >"$T/check5.out" 2>&1
expect_eq $? 1 "check with a read-only directory exits 1"
grep -q "^problem: database: $DATA is not writable" "$T/check5.out" ||
	fail "check does not report the directory: $(cat "$T/check5.out")"
chmod 0700 "$DATA"
cgi POST "$PAYLOADS/cloudflare-upload-failed.json"
expect_answer 200 OK
expect_sql "SELECT reason FROM webhook_deliveries ORDER BY id DESC LIMIT 1" stale \
	"the delivery after the directory fix is recorded"

# 3. A -shm left read-only by an older version (the database itself is fine).
write_file "$T/new.json" '{"id":"after-shm","uploaded":"2024-01-01T12:00:00.000Z"}'
: >"$DB-shm"
[ "$(id -u)" -eq 0 ] && chown nobody "$DB-shm"
chmod 0400 "$DB-shm"
cgi POST "$T/new.json" CFIMAGES_WEBHOOK_AUTO_REGISTER=yes
expect_answer 500 "Internal server error"
grep -q "error: database: $DB-shm is not writable" "$CGI_ERR" ||
	fail "no log line naming the read-only -shm: $(cat "$CGI_ERR")"
expect_eq "$(mode "$DB-shm")" 400 "the -shm is left as it was"
expect_eq "$(wc -c <"$DB-shm" | tr -d ' ')" 0 "the -shm is left as it was (size)"
[ -e "$DB-wal" ] && fail "a -wal was created beside a read-only -shm"
cfw check >"$T/check3.out" 2>&1
expect_eq $? 1 "check with a read-only -shm exits 1"
fix=$(sed -n "s|^problem: database: $DB-shm is not writable.*(fix: \(chmod u+rw [^)]*\))\$|\1|p" \
	"$T/check3.out")
expect_eq "$fix" "chmod u+rw $DB-shm" "check names the -shm and its fix"
$fix
cfw check >"$T/check4.out" 2>&1
expect_eq $? 0 "check after the -shm fix exits 0 ($(cat "$T/check4.out"))"
cgi POST "$T/new.json" CFIMAGES_WEBHOOK_AUTO_REGISTER=yes
expect_answer 200 OK
expect_eq "$(image_status after-shm)" uploaded "the delivery after the -shm fix is applied"

