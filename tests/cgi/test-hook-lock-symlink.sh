#!/bin/sh
# cfimages-webhook(8), HOOKS: the runners' lock file DB-hooks.lock sits in
# the database's directory, which the db_mode group may write.  A symbolic
# link planted there is never followed: the file it points at keeps its
# mode (here a 0600 file would otherwise become db_mode 0660), and the
# refusal is logged.  Anything but a regular file of ours is refused too.
# A lock file the runner creates gets db_mode; one that exists keeps its
# mode.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"
sqlite_only "the runners' lock file beside the database file (PostgreSQL runners take advisory locks)"

MODE=CFIMAGES_WEBHOOK_DB_MODE=0660
LOCK=$DB-hooks.lock
cfw "$MODE" init >/dev/null || hard_error "init failed"
for id in img-lock-1 img-lock-2 img-lock-3; do
	cfw "$MODE" register "$id" >/dev/null || hard_error "register $id failed"
done
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
hook_script "$HOOKS/uploaded" "echo \"\$CFIMAGES_IMAGE_ID\" >>'$T/ran.log'"

mode()
{
	stat -c %a "$1"
}
# deliver ID: a delivery for ID, which queues a run of the hook.
deliver()
{
	write_file "$T/$1.json" "{\"id\":\"$1\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}"
	cgi POST "$T/$1.json" "$MODE"
	expect_answer 200 OK
	expect_sql "SELECT count(*) FROM hook_runs WHERE image_id = '$1'" 1 "runs queued for $1"
}

# A private file of ours, and a link to it where the lock file goes.
write_file "$T/private" "owner only"
chmod 600 "$T/private"
ln -s "$T/private" "$LOCK"
deliver img-lock-1
# The runner the request started refuses the lock and leaves; give it the
# time to do the harm it must not do.
wait_until 10 no_runner || fail "the hook runner did not exit"
sleep 0.5
expect_eq "$(mode "$T/private")" 600 "mode of the file the planted link points at (request)"
# Its stderr is /dev/null under CGI: the detached runner itself, with a
# stderr to read.
cfw "$MODE" hooks run --detached >"$T/detached.out" 2>"$T/detached.err"
expect_eq "$?" 0 "hooks run --detached exit status"
expect_eq "$(mode "$T/private")" 600 "mode of the file the planted link points at (runner)"
[ -L "$LOCK" ] || fail "the planted link was replaced"
grep -q "$LOCK refused: it is a symbolic link" "$T/detached.err" ||
	fail "the refused lock file is not logged: $(cat "$T/detached.err")"
expect_sql "SELECT state FROM hook_runs WHERE image_id = 'img-lock-1'" queued \
	"the run, left queued while the lock file is unusable"

# A FIFO or a directory in its place: refused, without hanging.
rm -f "$LOCK"
mkfifo "$LOCK" || hard_error "mkfifo"
cfw "$MODE" hooks run --detached >"$T/fifo.out" 2>"$T/fifo.err"
expect_eq "$?" 0 "hooks run --detached with a FIFO as lock file"
grep -q "$LOCK refused" "$T/fifo.err" || fail "the FIFO is not refused: $(cat "$T/fifo.err")"

# No lock file: the runner creates one with db_mode and runs the hooks.
rm -f "$LOCK"
deliver img-lock-2
wait_until 20 sql_is "SELECT count(*) FROM hook_runs WHERE state = 'done'" 2 ||
	fail "the runs did not run once the link was gone: $(sql "SELECT image_id, state FROM hook_runs")"
if [ -f "$LOCK" ] && [ ! -L "$LOCK" ]; then
	expect_eq "$(mode "$LOCK")" 660 "mode of a lock file the runner created (db_mode)"
else
	fail "the runner did not create a regular lock file"
fi

# An existing lock file keeps its mode.
wait_until 10 no_runner || fail "the hook runner did not exit"
chmod 640 "$LOCK"
deliver img-lock-3
wait_until 20 sql_is "SELECT state FROM hook_runs WHERE image_id = 'img-lock-3'" done ||
	fail "the run did not run with an existing lock file"
expect_eq "$(mode "$LOCK")" 640 "mode of an existing lock file"
wait_hook_runners
exit 0
