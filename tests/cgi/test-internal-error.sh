#!/bin/sh
# cfimages-webhook(8) REQUEST CONTRACT row 10 and cfimages-webhook(8) DATABASE: anything unexpected (the database cannot be
# opened, it was written by a newer version, it stays locked past the busy
# timeout) is answered 500 `Internal server error`, and a 500 means that
# nothing of the delivery's effect was committed: the sender's retry is
# then applied exactly once.  A newer database is refused, not touched.
# In the PostgreSQL pass: a database that does not exist, and another
# session holding locks past the timeout (a newer PostgreSQL schema is
# tests/servers/test-postgresql-store.sh's).
. "$top_srcdir/tests/lib.sh"

ID=2cdc28f0-017a-49c4-9ed7-87056c83901
UP=$PAYLOADS/cloudflare-upload-complete.json

if [ "$BACKEND" = postgresql ]; then
	# The database cannot be opened: it does not exist (and is not created).
	ABSENT=$PG_DB_NAME-absent
	cgi POST "$UP" CFIMAGES_WEBHOOK_DB="$(printf '%s' "$DB" | sed "s|:///$PG_DB_NAME?|:///$ABSENT?|")"
	expect_answer 500 "Internal server error"
	expect_eq "$(pg_admin "SELECT count(*) FROM pg_database WHERE datname = '$ABSENT'")" 0 \
		"something was created for a database that does not exist"
else
	# The database cannot be created: its directory does not exist.
	cgi POST "$UP" CFIMAGES_WEBHOOK_DB="$T/no/such/dir/webhook.db"
	expect_answer 500 "Internal server error"
	[ -e "$T/no" ] && fail "something was created for an impossible database path"
	# Its path is a directory.
	mkdir -p "$T/adir.db"
	cgi POST "$UP" CFIMAGES_WEBHOOK_DB="$T/adir.db"
	expect_answer 500 "Internal server error"

	# A database from a newer version: refused, left exactly as it was.
	NEWER=$T/newer.db
	"$SQLITE3" "$NEWER" 'CREATE TABLE app_data(x); INSERT INTO app_data VALUES (42); PRAGMA user_version = 999;'
	cp "$NEWER" "$T/newer.copy"
	cgi POST "$UP" CFIMAGES_WEBHOOK_DB="$NEWER"
	expect_answer 500 "Internal server error"
	cmp -s "$NEWER" "$T/newer.copy" || fail "the newer database was modified"
	expect_eq "$(sql_db "$NEWER" 'PRAGMA user_version')" 999 "newer database: version kept"
	expect_eq "$(sql_db "$NEWER" "SELECT count(*) FROM sqlite_master WHERE name = 'webhook_deliveries'")" 0 \
		"newer database: no table added"
	cfw CFIMAGES_WEBHOOK_DB="$NEWER" check >"$T/check.out" 2>&1
	expect_eq $? 1 "check on a newer database exits 1"
	cfw CFIMAGES_WEBHOOK_DB="$NEWER" init >/dev/null 2>&1
	[ $? -ne 0 ] || fail "init on a newer database exits 0"
	cmp -s "$NEWER" "$T/newer.copy" || fail "check or init modified the newer database"
fi

# An application's own tables in a version-0 database are kept.
if [ "$BACKEND" = postgresql ]; then
	sql 'CREATE TABLE app_data(x INTEGER); INSERT INTO app_data VALUES (7);'
else
	"$SQLITE3" "$DB" 'CREATE TABLE app_data(x); INSERT INTO app_data VALUES (7);'
fi
init_db "$ID"
expect_sql "SELECT x FROM app_data" 7 "the application's table survives init"

# Locked past the busy timeout: 500, nothing committed.
# A sqlite3 shell fed through a FIFO takes the write lock, says so, and
# keeps it until the FIFO is closed.  In PostgreSQL: a psql session that
# locks the tables against writers (readers go on, as with SQLite's lock).
mkfifo "$T/lock.fifo"
if [ "$BACKEND" = postgresql ]; then
	"$PSQL" -X -q -A -t -d "$DB" <"$T/lock.fifo" >"$T/lock.out" 2>&1 &
else
	"$SQLITE3" -cmd '.timeout 5000' "$DB" <"$T/lock.fifo" >"$T/lock.out" 2>&1 &
fi
LOCKER=$!
register_pid $LOCKER
exec 3>"$T/lock.fifo"
if [ "$BACKEND" = postgresql ]; then
	printf "BEGIN;\nLOCK TABLE cloudflare_images, cloudflare_image_logs, webhook_deliveries, hook_runs IN EXCLUSIVE MODE;\nINSERT INTO app_data VALUES (8);\nSELECT 'locked';\n" >&3
else
	printf "BEGIN IMMEDIATE;\nINSERT INTO app_data VALUES (8);\nSELECT 'locked';\n" >&3
fi
i=0
until grep -q '^locked$' "$T/lock.out" 2>/dev/null || [ $i -ge 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
grep -q '^locked$' "$T/lock.out" || hard_error "could not lock the database: $(cat "$T/lock.out")"
before=$(snapshot)
start=$(date +%s)
cgi POST "$UP"
expect_answer 500 "Internal server error"
[ $(($(date +%s) - start)) -ge 2 ] || fail "the 500 came before any busy wait"
exec 3>&- # EOF: the locking shell rolls back and exits
if [ "$BACKEND" = postgresql ]; then
	wait "$LOCKER"
	unregister_pid "$LOCKER"
else
	i=0
	until "$SQLITE3" -cmd '.timeout 0' "$DB" 'BEGIN IMMEDIATE; ROLLBACK;' >/dev/null 2>&1 || [ $i -ge 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
fi
expect_eq "$(snapshot)" "$before" "a 500 committed nothing"
expect_eq "$(image_status "$ID")" pending "a 500 applied nothing"
expect_sql "SELECT count(*) FROM webhook_deliveries WHERE status_code = 200" 0 "no 200 delivery row"

# The sender's retry is applied, once.
cgi POST "$UP"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status "$ID")" uploaded "the retry is applied"
expect_sql "SELECT count(*) FROM cloudflare_image_logs WHERE event_type = 'status_changed'" 1 \
	"one status change in all"
