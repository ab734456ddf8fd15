#!/bin/sh
# cfimages-webhook(8) DATABASE, PostgreSQL: two web nodes on one database.
#
# Two private lighttpd instances (each mod_fastcgi bin-path with max-procs
# 2 of the binary, each in its own UTS namespace with its own host name
# when we are root) share one PostgreSQL database.  The application
# registers many ids itself (one INSERT ... SELECT generate_series, as
# the public interface allows), then every id's signed `uploaded`
# delivery is sent to BOTH nodes at the same moment.  The contract across
# nodes:
#
# - every answer is 200 OK (the loser of each race is a duplicate, not a
#   500 or a deadlock);
# - every id ends `uploaded`, with exactly one `applied` delivery row and
#   one `duplicate` row, one `status_changed` and one `duplicate` log row;
# - each id's `uploaded` hook ran exactly once in total across both nodes:
#   one hook run per id, done on its first attempt, and one line in the
#   file the hooks append to.  Each node has its own hooks_dir whose
#   script writes that node's name (hooks get a clean environment, so the
#   name is in the script), and the node that ran each run is the one
#   hook_runs.host names: a run is executed from the claiming node's own
#   hooks_dir.
#
# PGNODES_IDS sets the number of ids (3000; 200 under CFW_WRAPPER).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/serverlib.sh"
. "$top_srcdir/tests/hooklib.sh"
. "$top_srcdir/tests/pglib.sh"
. "$top_srcdir/tests/pgnodeslib.sh"

if [ -n "$CFW_WRAPPER" ]; then
	N=${PGNODES_IDS:-200}
else
	N=${PGNODES_IDS:-3000}
fi
SECRET=two-nodes-secret
START=$(date +%s)
pg_start
DB=$PG_URI
cfw init >"$T/init.out" 2>&1 || hard_error "init: $(cat "$T/init.out")"

# The application registers the ids itself.
pgq "INSERT INTO cloudflare_images (cloudflare_id)
	SELECT 'n-' || lpad(g::text, 5, '0') FROM generate_series(0, $N - 1) AS g" >/dev/null
expect_eq "$(pgq "SELECT count(*) FROM cloudflare_images WHERE status = 'pending'")" "$N" \
	"$N pending ids registered by the application"

# Identical hooks but for the node's name.
: >"$T/hooks.log"
for node in A B; do
	node_hook "$node" uploaded "echo \"$node \$1 \$CFIMAGES_HOOK_RUN_ID \$CFIMAGES_HOOK_ATTEMPT\" >>'$T/hooks.log'"
done
node_start A
node_start B
say "$N ids, each delivered to $NODE_URL_A and $NODE_URL_B at once${NODE_HOSTS:+ (hosts cfw-A, cfw-B)}"

load pair "$NODE_URL_A" "$NODE_URL_B" "$SECRET" n- "$N" 8 "$T/answers" ||
	fail "the load client failed"
SENT=$(date +%s)
say "deliveries answered in $((SENT - START)) s (cluster start included)"

# Every answer 200 OK.
expect_eq "$(grep -c ' 200 OK$' "$T/answers")" $((2 * N)) "answers 200 OK"
grep -v ' 200 OK$' "$T/answers" | head -5 | while read -r line; do
	fail "answer: $line"
done

# The database.
expect_eq "$(pgq "SELECT status || ' ' || count(*) FROM cloudflare_images GROUP BY status")" \
	"uploaded $N" "every id ends uploaded"
expect_eq "$(pgq "SELECT reason || ' ' || status_code || ' ' || count(*) FROM webhook_deliveries
	GROUP BY reason, status_code ORDER BY 1")" "applied 200 $N
duplicate 200 $N" "delivery rows: one applied and one duplicate per id, in all"
expect_eq "$(pgq "SELECT count(*) FROM (SELECT image_id FROM webhook_deliveries GROUP BY image_id
	HAVING count(*) FILTER (WHERE reason = 'applied') = 1
	AND count(*) FILTER (WHERE reason = 'duplicate') = 1) AS one_each")" "$N" \
	"ids with exactly one applied and one duplicate delivery row"
expect_eq "$(pgq "SELECT event_type || ' ' || count(*) FROM cloudflare_image_logs
	GROUP BY event_type ORDER BY 1")" "duplicate $N
status_changed $N" "log rows: one change and one duplicate per id"

# The hooks: wait until every run is finished (bounded).
i=0
while [ "$(pgq "SELECT count(*) FROM hook_runs WHERE state IN ('queued', 'running')")" != 0 ]; do
	[ "$i" -lt 1200 ] || break
	sleep 0.1
	i=$((i + 1))
done
say "hook runs finished $(($(date +%s) - SENT)) s after the last answer"
expect_eq "$(pgq "SELECT state || ' ' || attempts || ' ' || coalesce(exit_code::text, 'NULL') ||
	' ' || count(*) FROM hook_runs GROUP BY state, attempts, exit_code ORDER BY 1")" "done 1 0 $N" \
	"one hook run per id, each done on its first attempt"
expect_eq "$(pgq "SELECT count(DISTINCT image_id) FROM hook_runs WHERE hook = 'uploaded'")" "$N" \
	"the hook runs cover every id"
expect_eq "$(pgq "SELECT count(*) FROM hook_runs WHERE host IS NULL OR host = ''")" 0 \
	"hook_runs.host is set on every run"
expect_eq "$(wc -l <"$T/hooks.log" | tr -d ' ')" "$N" "hook executions across both nodes"
expect_eq "$(awk '{ print $2 }' "$T/hooks.log" | sort -u | wc -l | tr -d ' ')" "$N" \
	"distinct ids in the hook executions"
awk '{ print $2 }' "$T/hooks.log" | sort | uniq -d | head -5 | while read -r id; do
	fail "the hook of $id ran more than once: $(grep " $id " "$T/hooks.log" | tr '\n' ';')"
done
expect_eq "$(awk '$4 != 1' "$T/hooks.log" | head -3)" "" "every execution was a first attempt"
say "hook executions per node: $(awk '{ print $1 }' "$T/hooks.log" | sort | uniq -c | tr -s ' \n' ' ')"

# The node that ran each run is the one its row names (its own hooks_dir).
if [ -n "$NODE_HOSTS" ]; then
	pgq "SELECT id || ' ' || host FROM hook_runs ORDER BY id" >"$T/run-hosts"
	awk '{ print $3 " cfw-" $1 }' "$T/hooks.log" | sort -n >"$T/run-nodes"
	if ! cmp -s "$T/run-hosts" "$T/run-nodes"; then
		fail "hook_runs.host does not name the node whose hook ran:
$(diff "$T/run-hosts" "$T/run-nodes" | head -10)"
	fi
	expect_eq "$(pgq "SELECT count(*) FROM hook_runs WHERE host NOT IN ('cfw-A', 'cfw-B')")" 0 \
		"hook_runs.host names one of the two nodes"
else
	expect_eq "$(pgq "SELECT DISTINCT host FROM hook_runs")" "$(hostname)" "hook_runs.host"
fi

# Both nodes still answer, and their FastCGI processes are alive.
for node in A B; do
	[ -n "$(node_apps "$node")" ] || fail "node $node has no FastCGI process left"
done
[ -n "$CFW_WRAPPER" ] && node_valgrind_errors
grep -h -i 'error' "$T"/lighttpd-*.error.log 2>/dev/null | grep -v 'server started' | head -5 |
	while read -r line; do say "lighttpd: $line"; done
say "total $(($(date +%s) - START)) s"
exit 0
