#!/bin/sh
# Side-by-side benchmark: cfimages-webhook under lighttpd mod_fastcgi against
# bench/reference_receiver.py (what a Flask snippet does, Python standard
# library only), both on 127.0.0.1, measured in the same run, printed as
# ratios.  Not part of `make check`: timings are never test assertions.
#
#   bench/run.sh [BINARY]          default ./build/plain/cfimages-webhook
#
# Environment (defaults in brackets):
#   DURATION      seconds of each wrk load run [10]
#   CONNECTIONS   wrk connections [8]
#   THREADS       wrk threads [2]
#   SEQUENTIAL    one-at-a-time curl requests per server, for latency [200]
#   DURABILITIES  which `durability` settings to run ["full normal"]
#   LEAK_REQUESTS requests of the memory-growth run, 0 to skip it [100000]
#   LEAK_WARMUP   requests before its first memory reading [10000]
#   KEEP_TEMP     set: keep the temporary directory for inspection
#
# Needs lighttpd, wrk, curl and python3 (Debian: apt-get install lighttpd
# wrk curl python3).  Builds nothing.  Every process it starts is stopped by
# its PID when it ends, however it ends.  See bench/README.md.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-./build/plain/cfimages-webhook}
DURATION=${DURATION:-10}
DURATION=${DURATION%s}
CONNECTIONS=${CONNECTIONS:-8}
THREADS=${THREADS:-2}
SEQUENTIAL=${SEQUENTIAL:-200}
DURABILITIES=${DURABILITIES:-full normal}
LEAK_REQUESTS=${LEAK_REQUESTS:-100000}
LEAK_WARMUP=${LEAK_WARMUP:-10000}

# Longest wait for a server to come up, in tenths of a second.
START_WAIT_TENTHS=100
# Cap on the duration of a request-counted wrk run, seconds.
COUNTED_RUN_CAP_S=600
# How often a request-counted run counts the rows written, seconds.
COUNT_POLL_S=0.5
# The FastCGI processes lighttpd starts (the shape contrib/lighttpd.conf ships).
MAX_PROCS=2
SECRET=bench-secret-0123456789abcdef
IMAGE_ID=bench-image-1

die()
{
	printf 'bench: %s\n' "$*" >&2
	exit 1
}

case $BIN in
/*) ;;
*) BIN=$PWD/$BIN ;;
esac
if ! [ -f "$BIN" ] || ! [ -x "$BIN" ]; then
	die "no executable binary at $BIN (build it first, or pass its path)"
fi
for tool in lighttpd wrk curl python3; do
	command -v "$tool" >/dev/null 2>&1 ||
		[ -x "/usr/sbin/$tool" ] || die "$tool is missing (Debian: apt-get install -y lighttpd wrk curl python3)"
done
LIGHTTPD=$(command -v lighttpd 2>/dev/null || echo /usr/sbin/lighttpd)
for n in "$DURATION" "$CONNECTIONS" "$THREADS" "$SEQUENTIAL" "$LEAK_REQUESTS" "$LEAK_WARMUP"; do
	case $n in
	'' | *[!0-9]*) die "DURATION, CONNECTIONS, THREADS, SEQUENTIAL, LEAK_*: whole numbers please" ;;
	esac
done
[ "$THREADS" -le "$CONNECTIONS" ] || die "THREADS must not exceed CONNECTIONS (a wrk rule)"
CLK_TCK=$(getconf CLK_TCK)

# --- processes and cleanup ---------------------------------------------------

PIDS=
T=$(mktemp -d "${TMPDIR:-/tmp}/cfw-bench.XXXXXX") || die "mktemp -d failed"

# Stops every process this script started, by PID, then removes $T.
cleanup()
{
	trap - EXIT HUP INT TERM
	for pid in $PIDS; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in $PIDS; do
		wait "$pid" 2>/dev/null || true
	done
	# lighttpd stops its FastCGI children itself; any it left behind are
	# ours too (their parent was our lighttpd), and are stopped by PID.
	for pid in $CHILDREN_SEEN; do
		if is_our_fcgi "$pid"; then
			kill "$pid" 2>/dev/null || true
		fi
	done
	if [ -n "${KEEP_TEMP:-}" ]; then
		printf 'bench: kept %s\n' "$T" >&2
	else
		rm -rf "$T"
	fi
}
CHILDREN_SEEN=
trap cleanup EXIT
trap 'exit 130' HUP INT TERM

forget_pid()
{
	fp_rest=
	for pid in $PIDS; do
		[ "$pid" = "$1" ] || fp_rest="$fp_rest $pid"
	done
	PIDS=$fp_rest
}

# Stops one process we started and waits for it.
stop_pid()
{
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	forget_pid "$1"
}

# True when PID is alive and runs $BIN.
is_our_fcgi()
{
	[ "$(readlink "/proc/$1/exe" 2>/dev/null)" = "$BIN" ]
}

# The PIDs of the processes running $BIN whose parent is PID $1.
fcgi_children()
{
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		[ -r "$d/stat" ] || continue
		ppid=$(sed 's/^.*) //' "$d/stat" 2>/dev/null | awk '{ print $2 }') || continue
		[ "$ppid" = "$1" ] && is_our_fcgi "$p" && printf '%s\n' "$p"
	done
	return 0
}

# Private_Dirty of PID $1, KiB.
private_dirty_kib()
{
	awk '/^Private_Dirty:/ { print $2; found = 1 } END { if (!found) print "?" }' \
		"/proc/$1/smaps_rollup" 2>/dev/null || echo "?"
}

# CPU time (user + system) of the given PIDs together, in clock ticks.
cpu_ticks()
{
	ct_sum=0
	for pid in "$@"; do
		t=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }') || t=0
		ct_sum=$((ct_sum + ${t:-0}))
	done
	echo "$ct_sum"
}

# Two free TCP ports on 127.0.0.1.
free_ports()
{
	python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))'
}

# wait_http URL: until something answers at URL.
wait_http()
{
	wh_i=0
	while ! curl -s -o /dev/null "$1"; do
		wh_i=$((wh_i + 1))
		[ "$wh_i" -lt "$START_WAIT_TENTHS" ] || return 1
		sleep 0.1
	done
}

# --- the two servers ---------------------------------------------------------

# setup_site DIR DURABILITY: configuration, databases, hook, body, signature.
setup_site()
{
	ss_dir=$1
	mkdir -p "$ss_dir/hooks" "$ss_dir/www"
	chmod 0755 "$ss_dir/hooks"
	printf '#!/bin/sh\nexit 0\n' >"$ss_dir/hooks/uploaded"
	chmod 0755 "$ss_dir/hooks/uploaded"
	cat >"$ss_dir/cfimages-webhook.conf" <<CONF
secret = $SECRET
db = $ss_dir/webhook.db
hooks_dir = $ss_dir/hooks
durability = $2
CONF
	chmod 0600 "$ss_dir/cfimages-webhook.conf"
	"$BIN" --config "$ss_dir/cfimages-webhook.conf" init >/dev/null
	"$BIN" --config "$ss_dir/cfimages-webhook.conf" register "$IMAGE_ID" >/dev/null
	# The reference gets a database of the same layout, made by the same init.
	"$BIN" --config "$ss_dir/cfimages-webhook.conf" --db "$ss_dir/reference.db" init >/dev/null
	"$BIN" --config "$ss_dir/cfimages-webhook.conf" --db "$ss_dir/reference.db" \
		register "$IMAGE_ID" >/dev/null
	# A Cloudflare Images direct-upload success, the seeds' shape.
	printf '%s' '{"id":"'"$IMAGE_ID"'","uploaded":"2024-05-01T12:00:00.000Z","variants":["https://imagedelivery.net/Vi7wi5KSItxGFsWRG2Us6Q/'"$IMAGE_ID"'/public"],"metadata":{"user":"bench"},"requireSignedURLs":false}' \
		>"$ss_dir/body.json"
	"$BIN" sign --scheme hex --secret "$SECRET" "$ss_dir/body.json" >"$ss_dir/signature"
	grep -q '^X-Signature: [0-9a-f]\{64\}$' "$ss_dir/signature" ||
		die "unexpected output of sign: $(cat "$ss_dir/signature")"
}

# start_ours DIR PORT: lighttpd + mod_fastcgi, MAX_PROCS processes of $BIN.
# Sets OURS_PID (lighttpd) and OURS_CHILDREN (the FastCGI processes).
start_ours()
{
	cat >"$1/lighttpd.conf" <<CONF
server.modules = ("mod_fastcgi")
server.bind = "127.0.0.1"
server.port = $2
server.document-root = "$1/www"
server.errorlog = "$1/lighttpd-error.log"
fastcgi.server = ("/webhook" => ((
	"bin-path" => "$BIN",
	"socket" => "$1/fcgi.sock",
	"max-procs" => $MAX_PROCS,
	"check-local" => "disable",
	"bin-environment" => ("CFIMAGES_WEBHOOK_CONFIG" => "$1/cfimages-webhook.conf"),
)))
CONF
	"$LIGHTTPD" -D -f "$1/lighttpd.conf" </dev/null >>"$1/lighttpd-error.log" 2>&1 &
	OURS_PID=$!
	PIDS="$PIDS $OURS_PID"
	wait_http "http://127.0.0.1:$2/webhook" || die "lighttpd did not start: $(tail -5 "$1/lighttpd-error.log")"
	OURS_CHILDREN=$(fcgi_children "$OURS_PID" | tr '\n' ' ')
	[ -n "$OURS_CHILDREN" ] || die "no FastCGI process of $BIN under lighttpd"
	CHILDREN_SEEN="$CHILDREN_SEEN $OURS_CHILDREN"
}

# start_reference DIR PORT SYNCHRONOUS: sets REF_PID.
start_reference()
{
	python3 "$here/reference_receiver.py" --port "$2" --db "$1/reference.db" \
		--secret "$SECRET" --synchronous "$3" </dev/null >"$1/reference.out" 2>"$1/reference.err" &
	REF_PID=$!
	PIDS="$PIDS $REF_PID"
	wait_http "http://127.0.0.1:$2/" || die "the reference did not start: $(tail -5 "$1/reference.err")"
}

# --- measuring ---------------------------------------------------------------

# post URL DIR: one signed delivery with curl; prints "CODE SECONDS".
post()
{
	curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X POST \
		-H 'Content-Type: application/json' -H "$(cat "$2/signature")" \
		--data-binary "@$2/body.json" "$1"
}

# run_wrk URL DIR OUT: a wrk load run of DURATION seconds, its report into
# OUT.  In the background and waited for, so that a signal to this script
# is handled at once (the shell defers traps until a foreground child ends).
run_wrk()
{
	BENCH_BODY=$2/body.json BENCH_SIGNATURE=$(cat "$2/signature") \
		wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$here/post.lua" "$1" \
		>"$3" 2>&1 &
	rw_pid=$!
	PIDS="$PIDS $rw_pid"
	rw_status=0
	wait "$rw_pid" || rw_status=$?
	forget_pid "$rw_pid"
	[ "$rw_status" -eq 0 ] || die "wrk failed: $(cat "$3")"
}

# run_counted URL DIR OUT N: about N requests (wrk only knows durations).
# Each wrk thread stops sending after its share; wrk itself only ends when
# its duration is over or on SIGINT, so the delivery rows are counted every
# COUNT_POLL_S and wrk is interrupted once all N are in the database.
run_counted()
{
	rc_target=$(($(count_rows "$2/webhook.db") + $4))
	BENCH_BODY=$2/body.json BENCH_SIGNATURE=$(cat "$2/signature") \
		BENCH_REQUESTS=$((($4 + THREADS - 1) / THREADS)) \
		wrk -t"$THREADS" -c"$CONNECTIONS" -d"${COUNTED_RUN_CAP_S}s" -s "$here/post.lua" "$1" \
		>"$3" 2>&1 &
	rc_pid=$!
	PIDS="$PIDS $rc_pid"
	while kill -0 "$rc_pid" 2>/dev/null; do
		sleep "$COUNT_POLL_S"
		[ "$(count_rows "$2/webhook.db")" -ge "$rc_target" ] || continue
		kill -INT "$rc_pid" 2>/dev/null || true
		break
	done
	rc_status=0
	wait "$rc_pid" || rc_status=$?
	forget_pid "$rc_pid"
	[ "$rc_status" -eq 0 ] || die "wrk failed: $(cat "$3")"
}

# wrk_field OUT NAME: requests/sec ("rps"), latency percentiles in ms ("p50",
# "p99"), failed answers ("errors": non-2xx plus socket errors), requests.
wrk_field()
{
	awk -v want="$2" '
	function ms(v) {
		if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
		if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
		if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
		if (v ~ /m$/)  return substr(v, 1, length(v) - 1) * 60000
		return v + 0
	}
	/^Requests\/sec:/ { rps = $2 }
	$1 == "50%" { p50 = ms($2) }
	$1 == "99%" { p99 = ms($2) }
	/requests in/ { n = $1 }
	/^ *Non-2xx or 3xx responses:/ { err += $NF }
	/^ *Socket errors:/ {
		for (i = 3; i <= NF; i += 2) { v = $i; sub(/,/, "", v); err += v }
	}
	END {
		if (want == "rps") print rps + 0
		else if (want == "p50") print p50 + 0
		else if (want == "p99") print p99 + 0
		else if (want == "requests") print n + 0
		else print err + 0
	}' "$1"
}

# percentile FILE P: the P-th percentile (nearest rank) of the numbers in FILE.
percentile()
{
	sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 }
		END { r = int((p / 100) * NR + 0.999999); if (r < 1) r = 1; print v[r] }'
}

# count_rows DB: 200-answered delivery rows.
count_rows()
{
	python3 -c '
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(db.execute("SELECT count(*) FROM webhook_deliveries WHERE status_code = 200").fetchone()[0])' "$1"
}

# --- the table -----------------------------------------------------------------

ROWS=

# row METRIC OURS REFERENCE KIND: KIND is "higher" (more is better),
# "lower" (less is better, time) or "memory" (less is better, space).
row()
{
	ROWS="$ROWS$1|$2|$3|$4
"
}

print_table()
{
	printf '%s' "$ROWS" | awk -F'|' '
	function ratio(o, r, kind,   x) {
		if (o == "" || r == "" || o == "?" || r == "?" || o + 0 <= 0 || r + 0 <= 0)
			return "-"
		x = (kind == "higher") ? o / r : r / o
		if (x > 0.95 && x < 1.05)
			return sprintf("about the same (%.2f)", x)
		if (kind == "memory")
			return x >= 1 ? sprintf("%.1fx less memory", x) : sprintf("%.1fx more memory", 1 / x)
		return x >= 1 ? sprintf("%.1fx faster", x) : sprintf("%.1fx slower", 1 / x)
	}
	# Rates and times: whole numbers from 100 up, else two decimals.
	function num(v) {
		if (v !~ /^[0-9]+\.[0-9]+$/) return v
		return v + 0 >= 100 ? sprintf("%.0f", v) : sprintf("%.2f", v)
	}
	BEGIN { printf "  %-44s %12s %12s   %s\n", "metric", "ours", "reference", "ratio" }
	{ printf "  %-44s %12s %12s   %s\n", $1, num($2), num($3), ($4 == "info" ? "" : ratio($2, $3, $4)) }'
	ROWS=
}

# --- one durability setting --------------------------------------------------

# bench_durability full|normal
bench_durability()
{
	dur=$1
	case $dur in
	full) sync=FULL ;;
	normal) sync=NORMAL ;;
	*) die "DURABILITIES: full or normal, not $dur" ;;
	esac
	dir=$T/$dur
	setup_site "$dir" "$dur"
	# shellcheck disable=SC2046 # two port numbers into $1 $2
	set -- $(free_ports)
	ours_url=http://127.0.0.1:$1/webhook
	ref_url=http://127.0.0.1:$2/webhook
	start_ours "$dir" "$1"
	start_reference "$dir" "$2" "$sync"

	# The first delivery changes the image's status (pending -> uploaded,
	# and our hook runs once); every later one is a duplicate of it.
	for url in "$ours_url" "$ref_url"; do
		code=$(post "$url" "$dir" | cut -d' ' -f1)
		[ "$code" = 200 ] || die "first delivery to $url answered $code"
	done

	printf 'bench: durability = %s: wrk %ss each, %s connections ...\n' "$dur" "$DURATION" \
		"$CONNECTIONS" >&2
	# shellcheck disable=SC2086 # a list of PIDs
	c0=$(cpu_ticks "$OURS_PID" $OURS_CHILDREN)
	run_wrk "$ours_url" "$dir" "$dir/wrk-ours.txt"
	# shellcheck disable=SC2086 # a list of PIDs
	c1=$(cpu_ticks "$OURS_PID" $OURS_CHILDREN)
	r0=$(cpu_ticks "$REF_PID")
	run_wrk "$ref_url" "$dir" "$dir/wrk-ref.txt"
	r1=$(cpu_ticks "$REF_PID")

	# One request at a time, alternating, so that both see the same noise.
	printf 'bench: durability = %s: %s sequential requests each ...\n' "$dur" "$SEQUENTIAL" >&2
	: >"$dir/seq-ours" && : >"$dir/seq-ref"
	seq_bad=0
	i=0
	while [ "$i" -lt "$SEQUENTIAL" ]; do
		for side in ours ref; do
			[ "$side" = ours ] && url=$ours_url || url=$ref_url
			# shellcheck disable=SC2046 # "CODE SECONDS" into $1 $2
			set -- $(post "$url" "$dir")
			[ "$1" = 200 ] || seq_bad=$((seq_bad + 1))
			awk -v s="$2" 'BEGIN { print s * 1000 }' >>"$dir/seq-$side"
		done
		i=$((i + 1))
	done

	# Memory after the load.
	mem_max=0
	mem_sum=0
	for pid in $OURS_CHILDREN; do
		m=$(private_dirty_kib "$pid")
		[ "$m" = "?" ] && continue
		mem_sum=$((mem_sum + m))
		[ "$m" -gt "$mem_max" ] && mem_max=$m
	done
	mem_lighttpd=$(private_dirty_kib "$OURS_PID")
	mem_ref=$(private_dirty_kib "$REF_PID")
	alive=$(fcgi_children "$OURS_PID" | tr '\n' ' ')
	[ "$alive" = "$OURS_CHILDREN" ] ||
		printf 'bench: WARNING: FastCGI processes changed during the run (%s -> %s)\n' \
			"$OURS_CHILDREN" "$alive" >&2

	stop_pid "$REF_PID"
	stop_pid "$OURS_PID"

	n_ours=$(wrk_field "$dir/wrk-ours.txt" requests)
	n_ref=$(wrk_field "$dir/wrk-ref.txt" requests)
	cpu_ours=$(awk -v t=$((c1 - c0)) -v n="$n_ours" -v hz="$CLK_TCK" \
		'BEGIN { if (n > 0) printf "%.0f", t / hz * 1e6 / n; else print "?" }')
	cpu_ref=$(awk -v t=$((r1 - r0)) -v n="$n_ref" -v hz="$CLK_TCK" \
		'BEGIN { if (n > 0) printf "%.0f", t / hz * 1e6 / n; else print "?" }')

	# statfs names ext4 "ext2/ext3"; findmnt knows better.
	fstype=$(findmnt -no FSTYPE -T "$dir" 2>/dev/null || stat -f -c %T "$dir")
	printf '\ndurability = %s (SQLite synchronous=%s, WAL), database on %s\n' "$dur" "$sync" \
		"$fstype"
	row "throughput, requests/s (wrk ${DURATION}s)" "$(wrk_field "$dir/wrk-ours.txt" rps)" \
		"$(wrk_field "$dir/wrk-ref.txt" rps)" higher
	row "latency under load, p50 ms" "$(wrk_field "$dir/wrk-ours.txt" p50)" \
		"$(wrk_field "$dir/wrk-ref.txt" p50)" lower
	row "latency under load, p99 ms" "$(wrk_field "$dir/wrk-ours.txt" p99)" \
		"$(wrk_field "$dir/wrk-ref.txt" p99)" lower
	row "server CPU per request, us (under load)" "$cpu_ours" "$cpu_ref" lower
	row "single request, median ms (curl x$SEQUENTIAL)" "$(percentile "$dir/seq-ours" 50)" \
		"$(percentile "$dir/seq-ref" 50)" lower
	row "single request, p99 ms" "$(percentile "$dir/seq-ours" 99)" \
		"$(percentile "$dir/seq-ref" 99)" lower
	row "private dirty KiB, one FastCGI process" "$mem_max" "$mem_ref" memory
	row "private dirty KiB, all $MAX_PROCS FastCGI processes" "$mem_sum" "$mem_ref" memory
	if [ "$mem_lighttpd" != "?" ]; then
		row "  ... plus lighttpd itself" "$((mem_sum + mem_lighttpd))" "$mem_ref" memory
	fi
	row "requests answered other than 200 (wrk)" "$(wrk_field "$dir/wrk-ours.txt" errors)" \
		"$(wrk_field "$dir/wrk-ref.txt" errors)" info
	row "200 delivery rows in the database" "$(count_rows "$dir/webhook.db")" \
		"$(count_rows "$dir/reference.db")" info
	print_table
	[ "$seq_bad" -eq 0 ] || printf '  WARNING: %s sequential requests were not answered 200\n' "$seq_bad"
}

# --- memory growth -----------------------------------------------------------

# fcgi_memory PID: "pid:KiB ..." for each FastCGI child of PID, then the
# total KiB alone on the last line.
fcgi_memory()
{
	fm=
	fm_sum=0
	for pid in $(fcgi_children "$1"); do
		m=$(private_dirty_kib "$pid")
		fm="$fm $pid:${m}KiB"
		[ "$m" = "?" ] || fm_sum=$((fm_sum + m))
	done
	printf '%s\n%s\n' "${fm# }" "$fm_sum"
}

# The memory of our FastCGI processes after 1, LEAK_WARMUP, half of
# LEAK_REQUESTS and LEAK_REQUESTS deliveries: a leak grows with the count,
# a cache fills once and stays.
bench_growth()
{
	dir=$T/growth
	setup_site "$dir" normal
	# shellcheck disable=SC2046 # two port numbers into $1 $2
	set -- $(free_ports)
	url=http://127.0.0.1:$1/webhook
	start_ours "$dir" "$1"
	code=$(post "$url" "$dir" | cut -d' ' -f1)
	[ "$code" = 200 ] || die "first delivery to $url answered $code"
	m0=$(fcgi_memory "$OURS_PID")
	growth_lines="$(printf '  after %9s requests   %6s KiB   (%s)' 1 "$(echo "$m0" | tail -1)" \
		"$(echo "$m0" | head -1)")"
	errs=0
	half=$(((LEAK_WARMUP + LEAK_REQUESTS) / 2))
	[ "$half" -gt "$LEAK_WARMUP" ] || half=$LEAK_WARMUP
	done_n=0
	for goal in "$LEAK_WARMUP" "$half" "$LEAK_REQUESTS"; do
		[ "$goal" -gt "$done_n" ] || continue
		printf 'bench: memory growth: up to %s requests ...\n' "$goal" >&2
		run_counted "$url" "$dir" "$dir/wrk-growth.txt" "$((goal - done_n))"
		errs=$((errs + $(wrk_field "$dir/wrk-growth.txt" errors)))
		done_n=$(count_rows "$dir/webhook.db")
		m=$(fcgi_memory "$OURS_PID")
		[ "$goal" = "$LEAK_WARMUP" ] && { n_first=$done_n; m_first=$(echo "$m" | tail -1); }
		growth_lines="$growth_lines
$(printf '  after %9s requests   %6s KiB   (%s)' "$done_n" "$(echo "$m" | tail -1)" "$(echo "$m" | head -1)")"
	done
	stop_pid "$OURS_PID"

	printf '\nmemory growth of ours (durability = normal; private dirty memory, both FastCGI processes,\n'
	printf 'and each as pid:KiB)\n%s\n' "$growth_lines"
	printf '  growth from %s to %s requests: %+d KiB\n' "$n_first" "$done_n" \
		"$(($(echo "$m" | tail -1) - m_first))"
	[ "$errs" -eq 0 ] || printf '  WARNING: %s answers were not 200\n' "$errs"
	# A process that died and was restarted would hide a leak.
	[ "$(echo "$m0" | head -1 | sed 's/:[^ ]*//g')" = "$(echo "$m" | head -1 | sed 's/:[^ ]*//g')" ] ||
		printf '  WARNING: the FastCGI processes changed during the run: no conclusion\n'
}

# --- main ----------------------------------------------------------------------

printf 'cfimages-webhook benchmark: %s\n' "$("$BIN" --version 2>/dev/null | head -1)"
printf '%s CPUs, %s; wrk -t%s -c%s -d%ss; lighttpd max-procs %s; reference: %s\n' \
	"$(nproc 2>/dev/null || echo ?)" "$(uname -sr)" "$THREADS" "$CONNECTIONS" "$DURATION" \
	"$MAX_PROCS" "$(python3 --version 2>&1) http.server + sqlite3 $(python3 -c 'import sqlite3; print(sqlite3.sqlite_version)')"
printf 'Every request is the same signed delivery (X-Signature, hex HMAC-SHA256):\n'
printf 'after the first, each one is a duplicate: verified, parsed, logged, committed.\n'
printf 'Ratios: "faster" = reference time / ours (or our rate / its rate); "less memory" = reference / ours.\n'

for dur in $DURABILITIES; do
	bench_durability "$dur"
done
if [ "$LEAK_REQUESTS" -gt 0 ]; then
	[ "$LEAK_WARMUP" -lt "$LEAK_REQUESTS" ] || die "LEAK_WARMUP must be below LEAK_REQUESTS"
	bench_growth
fi
