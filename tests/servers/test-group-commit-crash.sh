#!/bin/sh
# cfimages-webhook(8) DATABASE: with group commit a 200 still means
# committed.  `serve --listen` (durability = full, or $DURABILITY) takes deliveries of
# distinct images from 16 client threads at once, so that its writer
# commits them in batches; it is killed with SIGKILL in the middle.
# Every delivery answered 200 before the kill must then be in the
# database (its image uploaded, its 200 delivery row, its one hook run),
# the database must pass PRAGMA integrity_check, no image may have more
# than one delivery row or hook run, and a new process must take
# deliveries on the same database.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/serverlib.sh"
. "$top_srcdir/tests/hooklib.sh"

command -v python3 >/dev/null 2>&1 || skip "no python3"
[ "$BACKEND" = postgresql ] && skip "an SQLite file test"
SECRET=group-commit-crash-secret
START_SECONDS=10
COUNT=1200
SOCK=$T/fcgi.sock
# Answers to see before the kill, and how long to wait for them at most.
BEFORE_KILL=150
WAIT_TENTHS=600

mkdir -p "$HOOKS"
write_file "$HOOKS/uploaded" '#!/bin/sh
exit 0'
chmod 0755 "$HOOKS/uploaded"
init_db
python3 -c '
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.executemany("INSERT INTO cloudflare_images (cloudflare_id) VALUES (?)",
               [("img-%d" % i,) for i in range(int(sys.argv[2]))])
db.commit()' "$DB" "$COUNT" || hard_error "cannot register the images"

start()
{
	env -i PATH="$CGI_PATH" CFIMAGES_WEBHOOK_CONFIG="$EMPTY_CONF" CFIMAGES_WEBHOOK_DB="$DB" \
		CFIMAGES_WEBHOOK_HOOKS_DIR="$HOOKS" CFIMAGES_WEBHOOK_SECRET="$SECRET" \
		CFIMAGES_WEBHOOK_DURABILITY="${DURABILITY:-full}" CFIMAGES_WEBHOOK_LOG_LEVEL=debug \
		$CFW_WRAPPER "$CFW_BIN" serve --listen "$SOCK" \
		</dev/null >/dev/null 2>"$T/serve.$1.stderr" &
	SERVE_PID=$!
	register_pid "$SERVE_PID"
	i=0
	while ! grep -q "listening on" "$T/serve.$1.stderr" 2>/dev/null; do
		alive "$SERVE_PID" || hard_error "serve failed: $(cat "$T/serve.$1.stderr")"
		[ "$i" -lt $((START_SECONDS * 10)) ] || hard_error "serve did not listen"
		sleep 0.1
		i=$((i + 1))
	done
}

start 1
: >"$T/answers"
python3 "$top_srcdir/tests/servers/groupcommit.py" crash "$SOCK" "$SECRET" "$COUNT" 16 \
	"$T/answers" 2>"$T/driver.err" &
DRIVER_PID=$!
register_pid "$DRIVER_PID"
i=0
while [ "$(wc -l <"$T/answers")" -lt "$BEFORE_KILL" ] && [ "$i" -lt "$WAIT_TENTHS" ]; do
	sleep 0.1
	i=$((i + 1))
done
kill -KILL "$SERVE_PID"
wait_gone "$SERVE_PID" 100 || hard_error "serve survived SIGKILL"
unregister_pid "$SERVE_PID"
wait "$DRIVER_PID"
unregister_pid "$DRIVER_PID"
# The last line may be cut short by the kill: only whole lines count.
grep '^img-[0-9]* [0-9][0-9]*$' "$T/answers" >"$T/answered"
ACKED=$(grep -c ' 200$' "$T/answered")
[ "$ACKED" -ge "$BEFORE_KILL" ] || hard_error "only $ACKED deliveries answered 200 before the kill"
NOT_OK=$(grep -vc ' 200$' "$T/answered")
expect_eq "$NOT_OK" 0 "answers other than 200 before the kill ($(grep -v ' 200$' "$T/answered" | head -3))"
say "$ACKED deliveries answered 200 before SIGKILL; $(grep -c 'deliveries in one transaction' "$T/serve.1.stderr") batches of several"

expect_eq "$(sql "PRAGMA integrity_check")" ok "the database's integrity after SIGKILL"
# Every acknowledged delivery is there: ids into a table, one query.
sed -n 's/^\(img-[0-9]*\) 200$/\1/p' "$T/answered" >"$T/acked"
LOST=$(python3 -c '
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
lost = []
for line in open(sys.argv[2]):
    i = line.strip()
    ok = db.execute("""SELECT (SELECT status FROM cloudflare_images WHERE cloudflare_id = ?1) = ?2
        AND (SELECT count(*) FROM webhook_deliveries WHERE image_id = ?1 AND status_code = 200
             AND reason = ?3) = 1
        AND (SELECT count(*) FROM hook_runs WHERE image_id = ?1) = 1""",
        (i, "uploaded", "applied")).fetchone()[0]
    if not ok:
        lost.append(i)
print(len(lost), " ".join(lost[:5]))' "$DB" "$T/acked")
expect_eq "$LOST" "0 " "acknowledged deliveries missing after SIGKILL"
expect_eq "$(sql "SELECT count(*) FROM (SELECT image_id FROM webhook_deliveries GROUP BY image_id HAVING count(*) > 1)")" \
	0 "images with more than one delivery row"
expect_eq "$(sql "SELECT count(*) FROM (SELECT image_id FROM hook_runs GROUP BY image_id HAVING count(*) > 1)")" \
	0 "images with more than one hook run"
expect_eq "$(sql "SELECT count(*) FROM cloudflare_images WHERE status = 'uploaded'")" \
	"$(sql "SELECT count(*) FROM webhook_deliveries WHERE reason = 'applied'")" \
	"an uploaded image for every applied delivery row"

# A new process on the same database.
start 2
python3 "$top_srcdir/tests/servers/groupcommit.py" crash "$SOCK" "$SECRET" "$COUNT" 4 \
	"$T/answers2" 2>"$T/driver2.err" &
DRIVER_PID=$!
register_pid "$DRIVER_PID"
wait "$DRIVER_PID"
unregister_pid "$DRIVER_PID"
expect_eq "$(grep -vc ' 200$' "$T/answers2")" 0 "answers other than 200 after the restart"
expect_eq "$(sql "SELECT count(*) FROM cloudflare_images WHERE status = 'uploaded'")" "$COUNT" \
	"every image uploaded once the second process is done"
kill -TERM "$SERVE_PID"
wait_gone "$SERVE_PID" 100 || kill -KILL "$SERVE_PID" 2>/dev/null
unregister_pid "$SERVE_PID"
expect_eq "$(sql "PRAGMA integrity_check")" ok "the database's integrity at the end"
grep -q "AddressSanitizer\|runtime error\|ThreadSanitizer\|^==[0-9]*== " "$T/serve.1.stderr" "$T/serve.2.stderr" &&
	fail "sanitizer or valgrind report: $(grep -h -m3 "Sanitizer\|runtime error\|^==[0-9]*== " "$T/serve.1.stderr" "$T/serve.2.stderr")"
# The detached hook runners the deliveries started (one may linger for a
# retry) are this test's to stop.
kill_leftovers
exit 0
