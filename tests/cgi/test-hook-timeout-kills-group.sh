#!/bin/sh
# cfimages-webhook(8) HOOKS: when hook_timeout has passed, the hook's whole process group
# gets TERM, then KILL: a child the hook started in the background dies
# with it.  The run records the death by signal (exit_code -15, or -9 for
# a hook that ignores TERM and is killed after the grace period) and says
# in its output that hook_timeout killed it.  TERM goes to the whole group
# (a background child trapping it sees it), the group has the grace period
# to finish (a hook trapping TERM gets to write a file a second later),
# and once the hook has exited what is left of its group is killed (a
# background child ignoring TERM does not outlive it).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

ID=img-timeout
STUBBORN=img-stubborn
GRACEFUL=img-graceful
init_db "$ID" "$STUBBORN" "$GRACEFUL"
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
# The background child's PID and the hook's own, written next to the
# hooks directory (the hook's working directory).  For img-graceful: a
# child that records the TERM it gets, a child that ignores TERM, and a
# TERM trap that takes a second before it writes its file.
hook_script "$HOOKS/uploaded" \
	'if [ "$CFIMAGES_IMAGE_ID" = img-graceful ]; then' \
	'	(trap "echo term >../child-term; exit 0" TERM; sleep 60 & wait) &' \
	'	(trap "" TERM; exec sleep 60) &' \
	'	echo $! >../orphan' \
	'	trap "sleep 1; echo graceful >../graceful; exit 0" TERM' \
	'	echo "hook started"' \
	'	sleep 60' \
	'	exit 0' \
	'fi' \
	'[ "$CFIMAGES_IMAGE_ID" = img-stubborn ] && trap "" TERM' \
	'sleep 60 &' \
	'echo $! >"../child.$CFIMAGES_IMAGE_ID"' \
	'echo $$ >"../hook.$CFIMAGES_IMAGE_ID"' \
	'echo "hook started"' \
	'sleep 60' \
	'echo "hook not killed"'

# Seconds: long enough for the hook to get to its sleep on a busy machine.
TIMEOUT=2

# run_killed ID: delivers for ID and waits for its one attempt to end.
run_killed()
{
	write_file "$T/$1.json" "{\"id\":\"$1\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}"
	cgi POST "$T/$1.json" CFIMAGES_WEBHOOK_HOOK_TIMEOUT=$TIMEOUT CFIMAGES_WEBHOOK_HOOK_ATTEMPTS=1
	expect_answer 200 OK
	wait_until 30 sql_is "SELECT state FROM hook_runs WHERE image_id = '$1'" failed ||
		fail "$1: the run did not end failed: $(sql "SELECT state, exit_code, output FROM hook_runs WHERE image_id = '$1'")"
}

# gone PID: the process has ended (a zombie waiting for its parent counts).
gone()
{
	! alive "$1"
}

# check_dead ID: the hook and its background child are gone.
check_dead()
{
	for what in hook child; do
		if [ ! -s "$T/$what.$1" ]; then
			fail "$1: the hook did not record its $what's PID"
			continue
		fi
		pid=$(cat "$T/$what.$1")
		wait_until 5 gone "$pid" || fail "$1: the $what ($pid) outlived the timeout"
	done
}

start=$(date +%s)
run_killed "$ID"
check_dead "$ID"
expect_sql "SELECT exit_code FROM hook_runs WHERE image_id = '$ID'" -15 \
	"exit_code of a hook killed by TERM"
out=$(sql "SELECT output FROM hook_runs WHERE image_id = '$ID'")
case $out in
"hook started"*hook_timeout*) ;;
*) fail "the output of the killed hook does not mention hook_timeout: [$out]" ;;
esac
case $out in
*"not killed"*) fail "the hook went on after the timeout: [$out]" ;;
esac

# TERM ignored (by the hook and its foreground child, the background one
# is started with TERM ignored as well): KILL after the grace period (5 s).
run_killed "$STUBBORN"
check_dead "$STUBBORN"
expect_sql "SELECT exit_code FROM hook_runs WHERE image_id = '$STUBBORN'" -9 \
	"exit_code of a hook that ignored TERM"
case $(sql "SELECT output FROM hook_runs WHERE image_id = '$STUBBORN'") in
*hook_timeout*) ;;
*) fail "the output of the stubborn hook does not mention hook_timeout" ;;
esac
# TERM to the group, a grace period, then KILL to what is left.
run_killed "$GRACEFUL"
wait_until 5 test -s "$T/child-term" ||
	fail "the hook's background child did not get TERM at the timeout (only the hook did?)"
[ -s "$T/graceful" ] ||
	fail "a hook trapping TERM was not given the grace period to finish"
if [ -s "$T/orphan" ]; then
	orphan=$(cat "$T/orphan")
	wait_until 5 gone "$orphan" ||
		fail "a background child ignoring TERM ($orphan) outlived the hook killed at the timeout"
else
	fail "the graceful hook did not record its background child's PID"
fi
[ $(($(date +%s) - start)) -lt 50 ] || fail "took $(($(date +%s) - start)) s (the hooks sleep 60 s)"
exit 0
