#!/bin/sh
# cfimages-webhook(8) ACTIONS and check: an action naming its template,
# secret_file or ca_file by a relative path (here files beside it in
# hooks_dir) gets one answer from `check`, whatever directory check is run
# from, and that answer holds for the runs: when check finds nothing wrong
# the call is made and the run is done; when check reports the path the
# run fails too.  The page says which: a relative path is taken from the
# directory holding the action file, so here all is well and the call
# uses the template and the key beside the action.
#
# Mutations this catches: paths resolved against the working directory of
# whoever reads them (check run from hooks_dir says all is well, check run
# from elsewhere reports the file, and the detached runner, whose working
# directory is neither, fails every attempt).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"
. "$top_srcdir/tests/actionlib.sh"

ID=img-relative
init_db "$ID"
start_receiver app
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
printf '{"id": "{{ image.id }}", "relative": true}\n' >"$HOOKS/relative-template.json"
printf 'whsec_%s\n' "$(printf 'relative-path-key-0123456789' | base64)" >"$HOOKS/relative.key"
chmod 600 "$HOOKS/relative.key"
action_file "$HOOKS/uploaded.webhook" \
	"url = http://127.0.0.1:$RPORT/relative" \
	'template = relative-template.json' \
	'secret_file = relative.key'

# check_from DIR: `check` run with DIR as its working directory; its exit
# status in RC, and whether it reports the action in REPORTED (yes/no).
check_from()
{
	(cd "$1" && cfw check) >"$T/check.out" 2>&1
	RC=$?
	if grep '^problem' "$T/check.out" | grep -qF "$HOOKS/uploaded.webhook"; then
		REPORTED=yes
	else
		REPORTED=no
	fi
	say "check from $1: exit $RC, action reported: $REPORTED"
}
check_from "$HOOKS"
RC_HOOKS=$RC REP_HOOKS=$REPORTED
check_from /
RC_ROOT=$RC REP_ROOT=$REPORTED
check_from "$T"
expect_eq "$REP_HOOKS $RC_HOOKS" "$REP_ROOT $RC_ROOT" \
	"check's verdict on relative paths from hooks_dir and from / (the same files)"
expect_eq "$REPORTED $RC" "$REP_ROOT $RC_ROOT" "check's verdict from \$T and from /"

deliver "$ID"
RUN=$(run_id "$ID" uploaded.webhook)
[ -n "$RUN" ] || { fail "no run queued: $(sql 'SELECT hook, state FROM hook_runs')"; exit 1; }
wait_until 60 sql_is "SELECT $(sql_bool "state <> 'running' AND attempts >= 1") FROM hook_runs WHERE id = $RUN" 1 ||
	fail "the run's first attempt did not end: $(run_row "$RUN")"
kill_runners
STATE=$(run_row "$RUN" | cut -d'|' -f1)
say "the run: $(run_row "$RUN"): $(run_output "$RUN" | head -n 2)"
for verdict in "$REP_HOOKS:hooks_dir" "$REP_ROOT:/"; do
	case $verdict in
	no:*)
		expect_eq "$STATE" 'done' "the run of an action check (from ${verdict#*:}) finds nothing wrong with" ;;
	yes:*)
		[ "$STATE" != 'done' ] ||
			fail "the run of an action check (from ${verdict#*:}) reports is done: check is wrong" ;;
	esac
done
expect_eq "$REP_HOOKS $RC_HOOKS $STATE" "no 0 done" \
	"check's verdict and the run's state (paths beside the action file)"
if [ "$STATE" = 'done' ]; then
	expect_eq "$(recv app 1 json relative)" true "the relative template was used"
	[ -n "$(recv app 1 header webhook-signature)" ] || fail "the relative secret_file did not sign"
fi
exit 0
