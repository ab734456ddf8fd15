#!/bin/sh
# cfimages-webhook(8) HOOKS, actions, the payload outside a plain delivery:
# the `expire` command's change calls an expired.webhook action whose
# template sees event "expire", previous_status "pending", and as
# delivery.body the {"id":...,"status":"expired"} its hooks read; the
# default payload of that change says type image.expired.  An image whose
# row was deleted between the queuing and the attempt (an application may
# delete rows) is sent as its id and the run's status.  The payload's data
# is the image as `show` prints it at the time of the attempt, not of the
# change.
#
# Mutations this catches: the expire path building no delivery root (a
# null body); previous_status taken from the image row at attempt time (it
# is then "expired"); a deleted image failing the run for ever; the image
# snapshotted at queuing time.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"
. "$top_srcdir/tests/actionlib.sh"

init_db img-deleted img-later
cfw register img-old --expires-at 2000-01-01T00:00:00Z --metadata '{"owner":"o-1"}' >/dev/null ||
	hard_error "register img-old"
start_receiver app
mkdir -p "$HOOKS/expired.d"
chmod 755 "$HOOKS" "$HOOKS/expired.d"
printf '%s\n' '{"id": "{{ image.id }}", "status": "{{ status }}", "previous": "{{ previous_status }}",' \
	' "event": "{{ event }}", "body": "{{ delivery.body }}", "owner": "{{ image.metadata.owner }}"}' \
	>"$T/expired.json"
action_file "$HOOKS/expired.webhook" \
	"url = http://127.0.0.1:$RPORT/expired-templated" \
	"template = $T/expired.json"
action_file "$HOOKS/expired.d/10-default.webhook" "url = http://127.0.0.1:$RPORT/expired-default"

cfw expire >"$T/expire.out" 2>"$T/expire.err"
expect_eq "$?" 0 "expire exit status ($(cat "$T/expire.err"))"
wait_until 60 sql_is "SELECT count(*) FROM hook_runs WHERE state = 'done'" 2 ||
	hooks_run
wait_until 30 sql_is "SELECT count(*) FROM hook_runs WHERE state = 'done'" 2 ||
	fail "the expired actions are not done: $(sql 'SELECT hook, state, attempts, exit_code, output FROM hook_runs')"
wait_hook_runners
expect_eq "$(recv_count app)" 2 "requests of the expired actions"
expect_eq "$(recv app 1 path)" /expired-templated "the first expired action"
expect_eq "$(recv app 1 json id)" '"img-old"' "image.id after expire"
expect_eq "$(recv app 1 json status)" '"expired"' "status after expire"
expect_eq "$(recv app 1 json previous)" '"pending"' "previous_status after expire"
expect_eq "$(recv app 1 json event)" '"expire"' "event of the expire command"
expect_eq "$(recv app 1 json body)" '{"id":"img-old","status":"expired"}' "delivery.body of the expire command"
expect_eq "$(recv app 1 json owner)" '"o-1"' "image.metadata.owner after expire"
expect_eq "$(recv app 2 json type)" '"image.expired"' "type of the default payload after expire"
expect_eq "$(recv app 2 json data.previous_status)" '"pending"' "data.previous_status after expire"
expect_eq "$(recv app 2 json data.event)" '"expire"' "data.event after expire"

# A deleted image, and one changed again, between queuing and attempt:
# the first attempt gets a 500, then the rows change, then the retry.
rm -f "$HOOKS/expired.webhook" "$HOOKS/expired.d/10-default.webhook"
action_file "$HOOKS/uploaded.webhook" "url = http://127.0.0.1:$RPORT/uploaded/fail/2"
deliver img-deleted
deliver img-later
R1=$(run_id img-deleted uploaded.webhook)
R2=$(run_id img-later uploaded.webhook)
[ -n "$R1" ] && [ -n "$R2" ] || { fail "runs not queued: $(sql 'SELECT hook, state FROM hook_runs')"; exit 1; }
wait_until 60 sql_is "SELECT count(*) FROM hook_runs WHERE id IN ($R1, $R2) AND state = 'queued' AND attempts = 1" 2 ||
	fail "the first attempts: $(sql "SELECT id, state, attempts, exit_code FROM hook_runs WHERE id IN ($R1, $R2)")"
kill_runners
sql "DELETE FROM cloudflare_images WHERE cloudflare_id = 'img-deleted'"
sql "UPDATE cloudflare_images SET metadata = '{\"changed\":true}' WHERE cloudflare_id = 'img-later'"
make_due "$R1"
make_due "$R2"
hooks_run
expect_eq "$(run_row "$R1")" "done|2|200" "the run of the deleted image"
expect_eq "$(run_row "$R2")" "done|2|200" "the run of the image changed meanwhile"
n=$(recv_count app)
i=1
while [ "$i" -le "$n" ]; do
	if [ "$(recv app "$i" answer)" = 200 ]; then
		case $(recv app "$i" json data.id 2>/dev/null) in
		'"img-deleted"') DEL=$i ;;
		'"img-later"') LATER=$i ;;
		esac
	fi
	i=$((i + 1))
done
if [ -n "${DEL:-}" ]; then
	expect_eq "$(recv app "$DEL" json type)" '"image.uploaded"' "type for a deleted image"
	expect_eq "$(recv app "$DEL" json data.status)" '"uploaded"' "data.status of a deleted image (the run's)"
	recv app "$DEL" valid-json || fail "the payload of a deleted image is not JSON"
else
	fail "no successful call for the deleted image"
fi
if [ -n "${LATER:-}" ]; then
	expect_eq "$(recv app "$LATER" json data.metadata)" '{"changed":true}' \
		"data.metadata as the image is at the attempt"
else
	fail "no successful call for the image changed meanwhile"
fi
exit 0
