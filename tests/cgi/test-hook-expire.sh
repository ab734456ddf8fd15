#!/bin/sh
# cfimages-webhook(8) HOOKS and 10: `expire` marks pending images whose expires_at has passed
# as expired and queues their `expired` hooks, which run with
# CFIMAGES_EVENT=expire and {"id":…,"status":"expired"} on stdin; so are
# draft ones.  An image not yet expired, or uploaded, is left alone.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

init_db
cfw register img-old --expires-at 2000-01-01T00:00:00Z >/dev/null || hard_error "register img-old"
cfw register img-future --expires-at 2999-01-01T00:00:00Z >/dev/null || hard_error "register img-future"
cfw register img-done --expires-at 2000-01-01T00:00:00Z >/dev/null || hard_error "register img-done"
cfw register img-draft --expires-at 2000-01-01T00:00:00Z >/dev/null || hard_error "register img-draft"
sql "UPDATE cloudflare_images SET status = 'uploaded' WHERE cloudflare_id = 'img-done';
	UPDATE cloudflare_images SET status = 'draft' WHERE cloudflare_id = 'img-draft'"
mkdir -p "$HOOKS" "$T/out"
chmod 755 "$HOOKS"
hook_script "$HOOKS/expired" \
	"out='$T/out'/\$1" \
	'mkdir "$out" || exit 1' \
	'cat >"$out/stdin"' \
	'printf "%s\n" "$1" "$2" >"$out/argv"' \
	'tr "\0" "\n" </proc/$$/environ | sort >"$out/env"'

cfw expire >"$T/expire.out" 2>"$T/expire.err"
expect_eq "$?" 0 "expire exit status ($(cat "$T/expire.err"))"
expect_eq "$(image_status img-old)" expired "the expired image"
expect_eq "$(image_status img-future)" pending "the image not yet expired"
expect_eq "$(image_status img-done)" uploaded "the uploaded image"
expect_eq "$(image_status img-draft)" expired "the expired draft"
expect_sql "SELECT image_id, status, hook, event FROM hook_runs ORDER BY image_id" \
	"img-draft|expired|expired|expire
img-old|expired|expired|expire" "the hook runs queued by expire"
wait_until 20 sql_is "SELECT $(sql_concat state) FROM hook_runs" done,done ||
	fail "the expired hook did not run: $(sql "SELECT state, exit_code, output FROM hook_runs")"
RUN=$(sql "SELECT id FROM hook_runs WHERE image_id = 'img-old'")
OUT=$T/out/img-old
write_file "$T/expected-stdin" '{"id":"img-old","status":"expired"}'
cmp -s "$OUT/stdin" "$T/expected-stdin" || fail "stdin of the expired hook: [$(cat "$OUT/stdin")]"
expect_eq "$(cat "$OUT/argv" 2>/dev/null)" "img-old
expired" "argv of the expired hook"
expect_eq "$(grep '^CFIMAGES_' "$OUT/env" 2>/dev/null)" "CFIMAGES_DB=$(hook_db)
CFIMAGES_EVENT=expire
CFIMAGES_HOOK_ATTEMPT=1
CFIMAGES_HOOK_RUN_ID=$RUN
CFIMAGES_IMAGE_ID=img-old
CFIMAGES_PREVIOUS_STATUS=pending
CFIMAGES_STATUS=expired" "the expired hook's environment"
expect_sql "SELECT count(*) FROM cloudflare_image_logs WHERE image_id = 'img-old'
	AND event_type = 'expired'" 1 "the log row of the expiry"
expect_eq "$(sed -n 's/^CFIMAGES_PREVIOUS_STATUS=//p' "$T/out/img-draft/env" 2>/dev/null)" draft \
	"CFIMAGES_PREVIOUS_STATUS of the expired draft"
write_file "$T/expected-stdin" '{"id":"img-draft","status":"expired"}'
cmp -s "$T/out/img-draft/stdin" "$T/expected-stdin" || fail "stdin of the draft's expired hook"

# Again: nothing more to expire, no new run.
cfw expire >"$T/expire.out" 2>"$T/expire.err"
expect_eq "$?" 0 "second expire exit status"
expect_sql "SELECT count(*) FROM hook_runs" 2 "hook runs after a second expire"
wait_until 20 no_runner || fail "a hook runner is still there 20 s later"
exit 0
