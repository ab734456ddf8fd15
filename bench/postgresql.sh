#!/bin/sh
# PostgreSQL beside SQLite, same load, same run: fresh transitions (each
# delivery moves a different registered image from pending to uploaded)
# per second at durability full and normal, with p99 latency, under
# lighttpd with two FastCGI processes; and, as the reference, PostgreSQL's
# own rate of one-row INSERT commits (pgbench, one connection per
# process) with synchronous_commit on and off, measured in the same run.
# Prints ratios.  Not part of `make check`: timings are never assertions.
#
#   bench/postgresql.sh [BINARY]     default ./build/plain/cfimages-webhook
#
# Environment (defaults in brackets):
#   DURATION      seconds of each load run [8]
#   CONNECTIONS   wrk connections [8]
#   THREADS       wrk threads [2]
#   KEEP_TEMP     set: keep the temporary directory
#
# Needs lighttpd, wrk, python3 and PostgreSQL's server binaries (Debian:
# apt-get install lighttpd wrk python3 postgresql).  As root, the cluster
# runs as the postgres user.  Every process it starts is stopped by PID.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-./build/plain/cfimages-webhook}
DURATION=${DURATION:-8}
CONNECTIONS=${CONNECTIONS:-8}
THREADS=${THREADS:-2}
MAX_PROCS=2
SECRET=bench-secret-0123456789abcdef
# Deliveries prepared per wrk thread and run: more than a run can send.
BODIES_PER_THREAD=$((DURATION * 4000))

die()
{
	printf 'bench: %s\n' "$*" >&2
	exit 1
}

case $BIN in
/*) ;;
*) BIN=$PWD/$BIN ;;
esac
[ -x "$BIN" ] || die "no executable binary at $BIN"
for tool in wrk python3; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is missing"
done
LIGHTTPD=$(command -v lighttpd 2>/dev/null || echo /usr/sbin/lighttpd)
[ -x "$LIGHTTPD" ] || die "lighttpd is missing"
PG_BINDIR=
for d in /usr/lib/postgresql/*/bin; do
	[ -x "$d/initdb" ] && PG_BINDIR=$d
done
[ -n "$PG_BINDIR" ] || die "PostgreSQL's server binaries are missing (apt-get install postgresql)"

PIDS=
T=$(mktemp -d "${TMPDIR:-/tmp}/cfw-bench-pg.XXXXXX") || die "mktemp -d failed"
cleanup()
{
	trap - EXIT HUP INT TERM
	for pid in $PIDS; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in $PIDS; do
		while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	done
	if [ -n "${KEEP_TEMP:-}" ]; then
		echo "bench: kept $T"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' HUP INT TERM

as_owner()
{
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# --- the cluster ---------------------------------------------------------------

chmod 0755 "$T"
mkdir -p "$T/pg"
[ "$(id -u)" -eq 0 ] && chown postgres "$T/pg"
PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_owner "$PG_BINDIR/initdb" -D "$T/pg/data" -A trust -U cfw -E UTF8 --no-locale >"$T/initdb.log" 2>&1 ||
	die "initdb failed: $(tail -3 "$T/initdb.log")"
as_owner "$PG_BINDIR/pg_ctl" -D "$T/pg/data" -l "$T/pg/server.log" -w -t 60 \
	-o "-k $T/pg -p $PG_PORT -c listen_addresses= -c max_connections=50" start >/dev/null ||
	die "PostgreSQL did not start: $(tail -3 "$T/pg/server.log")"
PIDS="$PIDS $(head -1 "$T/pg/data/postmaster.pid")"
psql_run()
{
	"$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$T/pg" -p "$PG_PORT" -U cfw "$@"
}

# PostgreSQL's own commit rate: one-row INSERTs, one connection per FastCGI
# process, synchronous_commit as given.
pg_commit_rate()
{
	psql_run -d postgres -c "SET client_min_messages = warning" \
		-c "DROP DATABASE IF EXISTS pgbench_ref" -c "CREATE DATABASE pgbench_ref"
	psql_run -d pgbench_ref -c "CREATE TABLE t (id bigserial PRIMARY KEY, v text)"
	printf "INSERT INTO t (v) VALUES ('x');\n" >"$T/insert.sql"
	PGOPTIONS="-c synchronous_commit=$1" "$PG_BINDIR/pgbench" -n -h "$T/pg" -p "$PG_PORT" -U cfw \
		-c "$MAX_PROCS" -j "$MAX_PROCS" -T "$DURATION" -f "$T/insert.sql" pgbench_ref 2>/dev/null |
		awk '/^tps/ { printf "%d", $3 }'
}

# --- our receiver under lighttpd ---------------------------------------------

# site DIR DB DURABILITY N: configuration, schema, N registered images and
# the signed deliveries for the wrk threads.
site()
{
	mkdir -p "$1/www" "$1/hooks"
	chmod 0755 "$1/hooks"
	cat >"$1/cfimages-webhook.conf" <<CONF
secret = $SECRET
db = $2
hooks_dir = $1/hooks
durability = $3
log_level = warn
CONF
	"$BIN" --config "$1/cfimages-webhook.conf" init >/dev/null
	python3 - "$1" "$4" "$THREADS" "$SECRET" <<'PY'
import hashlib, hmac, sys
d, n, threads, secret = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].encode()
with open(d + "/ids.txt", "w") as ids:
    for t in range(threads):
        with open("%s/bodies.%d" % (d, t), "w") as out:
            for i in range(n):
                image = "bench-%d-%d" % (t, i)
                ids.write(image + "\n")
                body = ('{"id":"%s","uploaded":"2024-05-01T12:00:00.000Z","variants":'
                        '["https://imagedelivery.net/x/%s/public"],"metadata":{"user":"bench"}}'
                        % (image, image))
                sig = hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
                out.write(sig + "\t" + body + "\n")
PY
}

register_sqlite()
{
	python3 - "$1/webhook.db" "$1/ids.txt" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
with open(sys.argv[2]) as f:
    db.executemany("INSERT INTO cloudflare_images (cloudflare_id) VALUES (?)",
                   ((line.strip(),) for line in f))
db.commit()
PY
}

register_pg()
{
	psql_run -d "$2" -c "\\copy cloudflare_images (cloudflare_id) FROM '$1/ids.txt'"
}

# run DIR PORT: lighttpd with MAX_PROCS processes, then wrk; prints "RPS P99MS".
run()
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
	r_pid=$!
	PIDS="$PIDS $r_pid"
	i=0
	until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $2), 1)" 2>/dev/null; do
		i=$((i + 1))
		[ "$i" -lt 100 ] || die "lighttpd did not start"
		sleep 0.1
	done
	BENCH_BODIES=$1/bodies wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency \
		-s "$here/fresh.lua" "http://127.0.0.1:$2/webhook" >"$1/wrk.txt" 2>&1 || die "wrk failed"
	kill "$r_pid"
	wait "$r_pid" 2>/dev/null || true
	awk '/^Requests\/sec:/ { rps = $2 }
	     /^ +99%/ { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 }
	                else if (v ~ /ms$/) sub(/ms$/, "", v)
	                else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }; p99 = v }
	     END { printf "%d %.2f", rps, p99 }' "$1/wrk.txt"
}

# check_rows DIR DB: the applied deliveries counted, for the report.
applied_sqlite()
{
	python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT count(*) FROM webhook_deliveries WHERE reason = 'applied'\").fetchone()[0])" "$1"
}

printf 'bench: %s CPUs; wrk -t%s -c%s -d%ss; lighttpd max-procs %s; fresh transitions\n' \
	"$(nproc)" "$THREADS" "$CONNECTIONS" "$DURATION" "$MAX_PROCS"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PG_ON=$(pg_commit_rate on)
PG_OFF=$(pg_commit_rate off)
printf '%-12s %-8s %10s %9s %10s  %s\n' backend durability "req/s" "p99 ms" applied "ratio"
for dur in full normal; do
	d=$T/sqlite-$dur
	site "$d" "$d/webhook.db" "$dur" "$BODIES_PER_THREAD"
	register_sqlite "$d"
	set -- $(run "$d" "$port")
	printf '%-12s %-8s %10s %9s %10s\n' sqlite "$dur" "$1" "$2" "$(applied_sqlite "$d/webhook.db")"

	d=$T/pg-$dur
	psql_run -d postgres -c "CREATE DATABASE bench_$dur"
	uri="postgresql:///bench_$dur?host=$T/pg&port=$PG_PORT&user=cfw"
	site "$d" "$uri" "$dur" "$BODIES_PER_THREAD"
	register_pg "$d" "bench_$dur"
	set -- $(run "$d" "$port")
	ref=$PG_ON
	[ "$dur" = normal ] && ref=$PG_OFF
	applied=$(psql_run -d "bench_$dur" -c "SELECT count(*) FROM webhook_deliveries WHERE reason = 'applied'")
	printf '%-12s %-8s %10s %9s %10s  %s\n' postgresql "$dur" "$1" "$2" "$applied" \
		"$(awk -v a="$1" -v b="$ref" 'BEGIN { printf "%.2fx PostgreSQL'"'"'s own one-row commit rate (%d tx/s)", a / b, b }')"
done
printf 'reference: pgbench one-row INSERT, %s connections: %s tx/s synchronous_commit=on, %s tx/s off\n' \
	"$MAX_PROCS" "$PG_ON" "$PG_OFF"
