#!/bin/sh
# cfimages-webhook(8) HOOKS, which .webhook files are actions: on a change
# into S, hooks_dir/S.webhook and hooks_dir/S.d/*.webhook are queued with
# the scripts, in this order: S, S.webhook, then S.d/ in name order (actions
# and scripts mixed), and run in that order.  An action is a regular file
# and need not be executable (0644, 0600); names starting with "." or
# ending in "~" are skipped, as is a non-executable file that is not
# .webhook.  An action writable by group or others, or owned by someone
# other than the running user or root, is refused like a script: logged,
# never queued, named by `check`.  The hook column holds the name relative
# to hooks_dir; `hooks list` shows it.
#
# Mutations this catches: .webhook files run as programs (exec fails:
# 0644) or only when executable; S.webhook queued after S.d/; the
# permission check skipped for actions; hidden or backup actions queued.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"
. "$top_srcdir/tests/actionlib.sh"

ID=img-files
init_db "$ID"
start_receiver app
mkdir -p "$HOOKS/uploaded.d"
chmod 755 "$HOOKS" "$HOOKS/uploaded.d"
LOG=$T/ran.log
script()
{
	hook_script "$HOOKS/$1" "echo \"\$(date +%s.%N) $1\" >>'$LOG'" 'sleep 0.2'
}
script uploaded
action_file "$HOOKS/uploaded.webhook" "url = http://127.0.0.1:$RPORT/uploaded.webhook"
script uploaded.d/10-script
action_file "$HOOKS/uploaded.d/20-call.webhook" "url = http://127.0.0.1:$RPORT/20-call.webhook"
chmod 600 "$HOOKS/uploaded.d/20-call.webhook"
script uploaded.d/30-script
action_file "$HOOKS/uploaded.d/40-last.webhook" "url = http://127.0.0.1:$RPORT/40-last.webhook"
# Never queued:
action_file "$HOOKS/uploaded.d/.hidden.webhook" "url = http://127.0.0.1:$RPORT/hidden"
action_file "$HOOKS/uploaded.d/50-backup.webhook~" "url = http://127.0.0.1:$RPORT/backup"
action_file "$HOOKS/uploaded.d/55-not-an-action.txt" "url = http://127.0.0.1:$RPORT/txt"
action_file "$HOOKS/uploaded.d/60-group-writable.webhook" "url = http://127.0.0.1:$RPORT/group-writable"
chmod 664 "$HOOKS/uploaded.d/60-group-writable.webhook"
action_file "$HOOKS/uploaded.d/65-world-writable.webhook" "url = http://127.0.0.1:$RPORT/world-writable"
chmod 666 "$HOOKS/uploaded.d/65-world-writable.webhook"
REFUSED="60-group-writable.webhook 65-world-writable.webhook"
if [ "$(id -u)" -eq 0 ] && id nobody >/dev/null 2>&1; then
	action_file "$HOOKS/uploaded.d/70-foreign.webhook" "url = http://127.0.0.1:$RPORT/foreign"
	chown nobody "$HOOKS/uploaded.d/70-foreign.webhook"
	REFUSED="$REFUSED 70-foreign.webhook"
else
	say "not root: the foreign-owner case is left out"
fi

deliver "$ID"
expect_sql "SELECT $(sql_concat hook ' ') FROM (SELECT hook FROM hook_runs ORDER BY id) r" \
	"uploaded uploaded.webhook uploaded.d/10-script uploaded.d/20-call.webhook uploaded.d/30-script uploaded.d/40-last.webhook" \
	"the runs queued, in order"
for r in $REFUSED; do
	grep -F "$HOOKS/uploaded.d/$r" "$CGI_ERR" | grep -q refused ||
		fail "no log line says $r is refused: $(cat "$CGI_ERR")"
done
wait_until 60 sql_is "SELECT count(*) FROM hook_runs WHERE state = 'done'" 6 ||
	fail "not all runs are done: $(sql 'SELECT hook, state, attempts, exit_code, output FROM hook_runs')"
wait_hook_runners
expect_eq "$(recv_count app)" 3 "requests the actions made"

# The order they ran in: the scripts' times and the receiver's.
n=$(recv_count app)
i=1
while [ "$i" -le "$n" ]; do
	printf '%s %s\n' "$(recv app "$i" time)" "$(recv app "$i" path | sed 's|^/||')" >>"$LOG"
	i=$((i + 1))
done
expect_eq "$(sort -n "$LOG" | sed 's/^[^ ]* //; s|^uploaded\.d/||' | tr '\n' ' ')" \
	"uploaded uploaded.webhook 10-script 20-call.webhook 30-script 40-last.webhook " \
	"the order the runs executed in"

cfw hooks list >"$T/list" 2>&1
for h in uploaded.webhook uploaded.d/20-call.webhook uploaded.d/40-last.webhook; do
	grep -q "	$h	$ID	" "$T/list" || fail "hooks list does not show $h: $(cat "$T/list")"
done

# check names each refused action, and only those.
cfw check >"$T/check.out" 2>&1
expect_eq "$?" 1 "check with refused actions"
for r in $REFUSED; do
	grep '^problem' "$T/check.out" | grep -qF "$HOOKS/uploaded.d/$r" ||
		fail "check does not name $r: $(cat "$T/check.out")"
done
grep '^problem' "$T/check.out" | grep -qF -e 20-call -e 40-last -e hidden -e backup -e not-an-action &&
	fail "check names an action that is fine or skipped: $(cat "$T/check.out")"
exit 0
