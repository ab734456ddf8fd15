#!/bin/sh
# cfimages-webhook(8) HOOKS: runs that are due - a retry whose time has come, a run left
# running by a process that died - are also picked up by later requests,
# not only by `hooks run`.  The retry, in another process, gets the same
# stdin bytes as the first attempt (the body is kept with the run).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

ID=img-due
init_db "$ID" img-other img-stale
mkdir -p "$HOOKS" "$T/out"
chmod 755 "$HOOKS"
# Fails its first attempt, succeeds afterwards; keeps each attempt's stdin.
hook_script "$HOOKS/uploaded" \
	"cat >'$T/out/'\"\$CFIMAGES_IMAGE_ID.\$CFIMAGES_HOOK_ATTEMPT\"" \
	'[ "$CFIMAGES_HOOK_ATTEMPT" -gt 1 ] || [ "$CFIMAGES_IMAGE_ID" != img-due ]'

{
	printf '{\n  "id": "%s",\n  "uploaded": "2024-01-01T12:00:00.000Z",\n' "$ID"
	printf '  "metadata": {"note": "caf\303\251\\n", "n": 1}\n}\n'
} >"$T/u.json"
cgi POST "$T/u.json"
expect_answer 200 OK
RUN=$(sql "SELECT id FROM hook_runs WHERE image_id = '$ID'")
[ -n "$RUN" ] || hard_error "no hook run queued"
wait_until 20 sql_is "SELECT state, attempts FROM hook_runs WHERE id = $RUN" "queued|1" ||
	fail "the first attempt did not fail as planned: $(sql "SELECT state, attempts, output FROM hook_runs WHERE id = $RUN")"
kill_runners

# Due now; a later request that queues nothing itself (a duplicate).
sql "UPDATE hook_runs SET next_attempt_at = '2000-01-01T00:00:00.000Z' WHERE id = $RUN"
cgi POST "$T/u.json"
expect_answer 200 OK
expect_one_delivery duplicate 200
wait_until 20 sql_is "SELECT state, attempts FROM hook_runs WHERE id = $RUN" "done|2" ||
	fail "the due retry was not picked up after a request: $(sql "SELECT state, attempts FROM hook_runs WHERE id = $RUN")"
cmp -s "$T/out/$ID.1" "$T/u.json" || fail "stdin of attempt 1 is not the body"
cmp -s "$T/out/$ID.2" "$T/u.json" || fail "stdin of the retry is not the body"

# A run left running long ago by a dead process (no process group
# recorded): a later request has it taken up again.
wait_until 20 no_runner || fail "a hook runner is still there 20 s later"
write_file "$T/s.json" '{"id":"img-stale","uploaded":"2024-01-01T12:00:00.000Z"}'
sql "INSERT INTO hook_runs (image_id, status, hook, path, state, attempts,
	next_attempt_at, created_at, started_at, previous_status, event, input)
	VALUES ('img-stale', 'uploaded', 'uploaded', '$HOOKS/uploaded', 'running', 1,
	'2000-01-01T00:00:00.000Z', '2000-01-01T00:00:00.000Z', '2000-01-01T00:00:00.000Z',
	'pending', 'upload.complete', $(sql_file_blob "$T/s.json"))"
STALE=$(sql "SELECT id FROM hook_runs WHERE image_id = 'img-stale'")
write_file "$T/other.json" '{"id":"img-other","error":"no hooks for failed"}'
cgi POST "$T/other.json"
expect_answer 200 OK
expect_one_delivery applied 200
wait_until 20 sql_is "SELECT state, attempts FROM hook_runs WHERE id = $STALE" "done|2" ||
	fail "the stale run was not taken up after a request: $(sql "SELECT state, attempts, output FROM hook_runs WHERE id = $STALE")"
cmp -s "$T/out/img-stale.2" "$T/s.json" || fail "stdin of the taken-up run"
exit 0
