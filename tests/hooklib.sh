# Helpers of the hook tests (cfimages-webhook(8) HOOKS), sourced after tests/lib.sh.
#
# Hooks run after the answer, in a detached runner: these wait for their
# effects with bounded polls, and at exit kill (by PID) whatever the test
# left behind.

# The processes of this test that may outlive a request: those whose
# working directory is in $T (hooks run in $HOOKS) or whose environment
# names $T (the detached runner inherits CFIMAGES_WEBHOOK_DB, a hook gets
# CFIMAGES_DB) or, in the PostgreSQL pass, the test's database URI (never
# just its name: a PostgreSQL backend's title, which names its database,
# overwrites its environment in /proc).  Never this shell.
leftover_pids()
{
	if [ "$BACKEND" = postgresql ]; then
		set -- -e "$T" -e "$DB"
	else
		set -- -e "$T"
	fi
	{
		grep -laF "$@" /proc/[0-9]*/environ 2>/dev/null |
			sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p'
		find /proc/[0-9]*/cwd -maxdepth 0 \( -lname "$T" -o -lname "$T/*" \) 2>/dev/null |
			sed -n 's|^/proc/\([0-9]*\)/cwd$|\1|p'
	} | sort -u | grep -vx -e "$$"
}

# Of those, the detached hook runners.
runner_pids()
{
	for rp in $(leftover_pids); do
		tr '\0' ' ' <"/proc/$rp/cmdline" 2>/dev/null | grep -q 'hooks run --detached' &&
			echo "$rp"
	done
}

kill_leftovers()
{
	kl_i=0
	while [ "$kl_i" -lt 10 ]; do
		kl_pids=$(leftover_pids)
		[ -n "$kl_pids" ] || return 0
		# shellcheck disable=SC2086 # a list of PIDs
		kill -KILL $kl_pids 2>/dev/null
		sleep 0.2
		kl_i=$((kl_i + 1))
	done
}

# Stops the detached runners (e.g. one lingering for a retry) so that the
# test alone decides when a due run is taken up.
kill_runners()
{
	kr_i=0
	while [ "$kr_i" -lt 50 ]; do
		kr_pids=$(runner_pids)
		[ -n "$kr_pids" ] || return 0
		# shellcheck disable=SC2086 # a list of PIDs
		kill -KILL $kr_pids 2>/dev/null
		sleep 0.1
		kr_i=$((kr_i + 1))
	done
	fail "could not stop the hook runners $(runner_pids)"
}

# shellcheck disable=SC2154 # hk_rc is set when the trap runs
trap 'hk_rc=$?; kill_leftovers; cleanup "$hk_rc"' EXIT

# wait_until SECONDS COMMAND...: polls COMMAND every 0.1 s until it
# succeeds; false when it never did.
wait_until()
{
	wu_n=$(($1 * 10))
	shift
	while ! "$@"; do
		[ "$wu_n" -gt 0 ] || return 1
		sleep 0.1
		wu_n=$((wu_n - 1))
	done
	return 0
}

# sql_is SQL EXPECTED: the output of SQL is EXPECTED (a condition).
sql_is()
{
	[ "$(sql "$1" 2>/dev/null)" = "$2" ]
}

no_runner()
{
	[ -z "$(runner_pids)" ]
}

# queue_due_run IMAGE BODYFILE: a queued run of $HOOKS/uploaded for
# IMAGE, due long ago, BODYFILE its input.
queue_due_run()
{
	sql "INSERT INTO hook_runs (image_id, status, hook, path, state, attempts,
		next_attempt_at, created_at, previous_status, event, input)
		VALUES ('$1', 'uploaded', 'uploaded', '$HOOKS/uploaded', 'queued', 0,
		'2000-01-01T00:00:00.000Z', '2000-01-01T00:00:00.000Z', 'pending', 'upload.complete',
		$(sql_file_blob "$2"))"
}

# hook_script PATH LINES...: an executable (0755) shell script.
hook_script()
{
	hs_path=$1
	shift
	{
		echo '#!/bin/sh'
		printf '%s\n' "$@"
	} >"$hs_path"
	chmod 755 "$hs_path"
}
