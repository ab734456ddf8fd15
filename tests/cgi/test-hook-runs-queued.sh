#!/bin/sh
# cfimages-webhook(8) HOOKS: on a change into status S, every executable regular file
# hooks_dir/S and hooks_dir/S.d/* (in name order; names starting with "."
# or ending in "~" skipped) gets one hook_runs row, committed with the
# change, holding the hook and the delivery's body as received.  A hook
# writable by group or others is refused (no row) and logged, as is a
# hooks directory writable by others.
. "$top_srcdir/tests/lib.sh"

ID=2cdc28f0-017a-49c4-9ed7-87056c83901
init_db "$ID" second third
mkdir -p "$HOOKS/uploaded.d" "$HOOKS/uploaded.d/40-dir" "$HOOKS/failed.d"
chmod 755 "$HOOKS" "$HOOKS/uploaded.d" "$HOOKS/uploaded.d/40-dir" "$HOOKS/failed.d"
hook()
{
	printf '#!/bin/sh\nexit 0\n' >"$HOOKS/$1"
	chmod "$2" "$HOOKS/$1"
}
hook uploaded 755
hook uploaded.d/20-b 755
hook uploaded.d/10-a 700
hook uploaded.d/.hidden 755
hook 'uploaded.d/x~' 755
hook uploaded.d/30-not-executable 644
hook uploaded.d/05-world-writable 757
hook uploaded.d/06-group-writable 775
hook failed 755
hook uploaded.bak 755
ln -s "$HOOKS/uploaded" "$HOOKS/uploaded.d/50-link"
ln -s "$HOOKS/nowhere" "$HOOKS/uploaded.d/60-dangling"

# The sample is pretty-printed JSON with newlines: the input must be it,
# byte for byte.
BODY_FILE=$PAYLOADS/cloudflare-upload-complete.json
cgi POST "$BODY_FILE"
expect_answer 200 OK
expect_one_delivery applied 200
expect_sql "SELECT hook FROM hook_runs WHERE image_id = '$ID' ORDER BY id" \
	"uploaded
uploaded.d/10-a
uploaded.d/20-b
uploaded.d/50-link" "hook_runs rows: the hook, then uploaded.d in name order"
expect_sql "SELECT DISTINCT status FROM hook_runs" uploaded "hook runs are for status uploaded"
expect_sql "SELECT count(*) FROM hook_runs WHERE state IN ('queued', 'running', 'done')
	AND attempts >= 0 AND $(sql_is_time created_at) = 1
	AND $(sql_is_time next_attempt_at) = 1" 4 "hook runs are queued (or already taken up)"
i=0
for h in uploaded uploaded.d/10-a uploaded.d/20-b uploaded.d/50-link; do
	i=$((i + 1))
	sql_bytes input "FROM hook_runs WHERE hook = '$h'" >"$T/input"
	cmp -s "$T/input" "$BODY_FILE" || fail "hook run $h: input is not the delivery's body"
done
for refused in 05-world-writable 06-group-writable; do
	grep -q "$refused" "$CGI_ERR" || fail "the refused hook $refused is not logged"
done

# A duplicate queues nothing more.
cgi POST "$BODY_FILE"
expect_one_delivery duplicate 200
expect_sql "SELECT count(*) FROM hook_runs" 4 "no hook run for a duplicate"

# Only the new status's hooks: a failure queues hooks_dir/failed.
write_file "$T/failed" '{"id":"second","error":"broken"}'
cgi POST "$T/failed"
expect_answer 200 OK
expect_sql "SELECT hook FROM hook_runs WHERE image_id = 'second'" failed "only the failed hook"
sql_bytes input "FROM hook_runs WHERE image_id = 'second'" >"$T/input"
cmp -s "$T/input" "$T/failed" || fail "failed hook run: input is not the delivery's body"

# A world-writable hook (chmod 0777) is refused: no row, and a log line.
chmod 777 "$HOOKS/failed"
write_file "$T/failed3" '{"id":"third","error":"broken"}'
cgi POST "$T/failed3"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status third)" failed "the change itself is applied"
expect_sql "SELECT count(*) FROM hook_runs WHERE image_id = 'third'" 0 "no run for a world-writable hook"
grep -q "$HOOKS/failed" "$CGI_ERR" || fail "the refused world-writable hook is not logged"

# A hooks directory writable by others: no hook of it runs.
chmod 755 "$HOOKS/failed"
chmod 777 "$HOOKS"
cfw register fourth >/dev/null
write_file "$T/failed4" '{"id":"fourth","error":"broken"}'
cgi POST "$T/failed4"
expect_answer 200 OK
expect_sql "SELECT count(*) FROM hook_runs WHERE image_id = 'fourth'" 0 "no run from a world-writable hooks_dir"
grep -q "$HOOKS" "$CGI_ERR" || fail "the refused hooks_dir is not logged"
chmod 755 "$HOOKS"

# No hooks directory at all: the delivery is still applied.
cfw register fifth >/dev/null
write_file "$T/u5" '{"id":"fifth","uploaded":"2024-01-01T00:00:00Z"}'
cgi POST "$T/u5" CFIMAGES_WEBHOOK_HOOKS_DIR="$T/no-such-dir"
expect_answer 200 OK
expect_eq "$(image_status fifth)" uploaded "applied without a hooks directory"
expect_sql "SELECT count(*) FROM hook_runs WHERE image_id = 'fifth'" 0 "no runs without hooks"

wait_hook_runners || fail "hook runs still running or due 10 s after the last request"
