#!/bin/sh
# cfimages-webhook(8) HOOKS and 8: a hook run executes hooks_dir/HOOK, rebuilt from the
# configured hooks directory and the run's hook name, never the path
# stored in its row: an application that may write the database (db_mode
# 0660 shares it with a group) must not be able to choose a program to run
# with the receiver's rights.  A row naming another program, a name that
# climbs out of the directory, or a name no discovery would queue, runs
# nothing; and a relative hooks_dir is taken from the working directory at
# start-up, so hooks still run although they run inside it.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

init_db img-a img-b img-c img-d img-e
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
hook_script "$HOOKS/uploaded" "echo \"\$CFIMAGES_IMAGE_ID\" >>'$T/ran.log'"
# A program of ours that must never run: owned by us, mode 0755, outside
# the hooks directory.
hook_script "$T/evil" "touch '$T/pwned'"

# queue IMAGE HOOK PATH: a due run as an application could insert it.
queue()
{
	sql "INSERT INTO hook_runs (image_id, status, hook, path, next_attempt_at, created_at,
		previous_status, event, input)
		VALUES ('$1', 'uploaded', '$2', '$3', '2000-01-01T00:00:00.000Z',
		'2000-01-01T00:00:00.000Z', 'pending', 'upload.complete', $(sql_blob "'{}'"))"
}
queue img-a uploaded "$T/evil"
queue img-b "uploaded.d/../../evil" "$T/evil"
queue img-c "../evil" "$T/evil"
queue img-d "$T/evil" "$T/evil"
cfw hooks run >"$T/run.out" 2>"$T/run.err"
expect_eq "$?" 0 "hooks run exit status ($(cat "$T/run.err"))"
[ -e "$T/pwned" ] && fail "a program named only by a hook_runs row was executed"
expect_eq "$(cat "$T/ran.log" 2>/dev/null)" img-a \
	"the row naming hook 'uploaded' ran hooks_dir/uploaded, whatever its path column said"
expect_sql "SELECT image_id || ':' || state FROM hook_runs WHERE image_id != 'img-a'
	AND output LIKE '%refused%' ORDER BY image_id" "img-b:queued
img-c:queued
img-d:queued" "the other rows refused (and left for retries until they fail)"

# A relative hooks_dir: the CGI runs with its working directory in $T.
rm -f "$T/ran.log"
write_file "$T/json" '{"id":"img-e","uploaded":"2024-01-01T12:00:00.000Z"}'
cd "$T" || hard_error "cd $T"
cgi POST "$T/json" CFIMAGES_WEBHOOK_HOOKS_DIR=hooks
expect_answer 200 OK
wait_until 10 test -s "$T/ran.log" ||
	fail "the hook did not run with a relative hooks_dir: $(sql "SELECT state, output FROM hook_runs WHERE image_id = 'img-e'")"
expect_eq "$(cat "$T/ran.log" 2>/dev/null)" img-e "the hook ran for img-e"
wait_hook_runners
