#!/bin/sh
# cfimages-webhook(8) DATABASE, PostgreSQL: a hook run's lease is given and
# judged by the database server's clock, never a node's.  Node A claims a
# run whose hook waits; node B, whose clock is an hour ahead (libfaketime),
# runs `hooks run` meanwhile: it must neither take the run up as stale nor
# kill its hook, so the hook runs once, to its end, and the run is done
# after one attempt.
# Wrong change caught: leases computed from the node's clock
# (lease_until = the claimer's now + lease, compared with the reader's now):
# B then finds the run stale, kills A's hook and runs it again.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/pglib.sh"

LIBFAKETIME=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)
[ -n "$LIBFAKETIME" ] || skip "libfaketime is not installed (Debian package faketime)"
pg_start
DB=$PG_URI
BACKEND=postgresql
PSQL=$PG_BINDIR/psql

mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
# The hook notes its start, waits (bounded) for the test's go-ahead, notes its end.
cat >"$HOOKS/uploaded" <<HOOK
#!/bin/sh
echo "start \$\$" >>"$T/hook.log"
i=0
while [ ! -e "$T/release" ] && [ \$i -lt 600 ]; do sleep 0.1; i=\$((i + 1)); done
echo "end \$\$" >>"$T/hook.log"
HOOK
chmod 755 "$HOOKS/uploaded"

init_db img-lease
psql_q "INSERT INTO hook_runs (image_id, status, hook, path, state, attempts, next_attempt_at,
	created_at, previous_status, event, input)
	VALUES ('img-lease', 'uploaded', 'uploaded', '$HOOKS/uploaded', 'queued', 0, now(), now(),
	'pending', 'upload.complete', ''::bytea)" || hard_error "could not queue a run"

# Node A: claims the run and waits in its hook.
cfw CFIMAGES_WEBHOOK_HOOK_TIMEOUT=120 hooks run >"$T/a.out" 2>"$T/a.err" &
A=$!
register_pid "$A"
i=0
until grep -q '^start' "$T/hook.log" 2>/dev/null; do
	[ "$i" -lt 600 ] || { touch "$T/release"; fail "node A's hook never started: $(cat "$T/a.err")"; exit 1; }
	sleep 0.1
	i=$((i + 1))
done
expect_eq "$(psql_q "SELECT state || ' ' || attempts FROM hook_runs")" "running 1" \
	"the run is claimed by node A"

# Node B, an hour ahead, with a short hook_timeout (so a lease of its own
# making would long have passed): nothing is due, nothing is stale.
# (libfaketime comes before an ASan build's runtime: verify_asan_link_order=0.)
cfw LD_PRELOAD="$LIBFAKETIME" FAKETIME="+1h" ASAN_OPTIONS=verify_asan_link_order=0 \
	CFIMAGES_WEBHOOK_HOOK_TIMEOUT=5 hooks run >"$T/b.out" 2>"$T/b.err"
expect_eq "$?" 0 "node B's hooks run ($(head -c 1000 "$T/b.err"))"
expect_eq "$(cat "$T/b.out")" "ran 0 hook runs" "node B ran nothing"
if grep -q 'taken up again\|killing' "$T/b.err"; then
	fail "node B took up node A's live run: $(cat "$T/b.err")"
fi
expect_eq "$(psql_q "SELECT state || ' ' || attempts FROM hook_runs")" "running 1" \
	"node A still holds the run"

touch "$T/release"
wait "$A"
expect_eq "$?" 0 "node A's hooks run"
unregister_pid "$A"
expect_eq "$(grep -c '^start' "$T/hook.log")" 1 "the hook started once"
expect_eq "$(grep -c '^end' "$T/hook.log")" 1 "the hook ran to its end"
expect_eq "$(psql_q "SELECT state || ' ' || attempts FROM hook_runs")" "done 1" \
	"the run is done after one attempt"
exit 0
