#!/bin/sh
# Throughput near the limits: every figure of the group-commit issue in one
# run, each printed as a ratio against a reference measured in the same
# run, beside its target.  Not part of `make check`: timings are never
# test assertions.
#
#   bench/limits.sh [BINARY]          default ./build/plain/cfimages-webhook
#
# Environment (defaults in brackets):
#   DURATION        seconds of each wrk run [6]
#   CONNECTIONS     wrk connections [32]
#   THREADS         wrk threads [2]
#   CGI_CONNECTIONS wrk connections of the CGI runs [8]
#   GROWTH_REQUESTS deliveries of the memory-growth run, 0 skips it [300000]
#   CGI_BIN         the binary of the CGI runs whose ratio is held to the
#                   target [the static build of `make portable` beside
#                   BINARY, portable/cfimages-webhook, which is what shared
#                   hosts run as CGI, when it has been built; else BINARY];
#                   BINARY is then measured as CGI too, for information
#   PARTS           the parts to run, a subset of "sqlite lighttpd apache nginx
#                   cgi adnanh growth" [all of them]; a figure not measured
#                   prints as "-", and so do the ratios that need it
#   KEEP_TEMP       set: keep the temporary directory
#
# Needs wrk, curl, python3, cc, lighttpd, apache2 + mod_fcgid, nginx and
# webhook (adnanh/webhook): contrib/deps.sh's BENCH_PACKAGES.  It builds
# its three references (bench/noop_fcgi.c, noop_cgi.c, sqlite_rate.c) with
# cc into a temporary directory, listens on 127.0.0.1 only, and stops
# every process it started by its PID.  See bench/README.md.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
BIN=${1:-./build/plain/cfimages-webhook}
DURATION=${DURATION:-6}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
CGI_CONNECTIONS=${CGI_CONNECTIONS:-8}
GROWTH_REQUESTS=${GROWTH_REQUESTS:-300000}
PARTS=${PARTS:-sqlite lighttpd apache nginx cgi adnanh growth}
SECRET=bench-secret-0123456789abcdef
# Signed fresh deliveries prepared per wrk thread (more than a run uses).
FRESH_PER_THREAD=${FRESH_PER_THREAD:-40000}
MODULES=/usr/lib/apache2/modules

die()
{
	printf 'bench: %s\n' "$*" >&2
	exit 1
}

case $BIN in
/*) ;;
*) BIN=$PWD/$BIN ;;
esac
[ -x "$BIN" ] || die "no executable binary at $BIN (build it first, or pass its path)"
BIN=$(readlink -f "$BIN")
if [ -z "${CGI_BIN:-}" ] && [ -x "$(dirname "$BIN")/portable/cfimages-webhook" ]; then
	CGI_BIN=$(dirname "$BIN")/portable/cfimages-webhook
fi
CGI_BIN=$(readlink -f "${CGI_BIN:-$BIN}")
[ -x "$CGI_BIN" ] || die "no executable CGI binary at $CGI_BIN"
for tool in wrk curl python3 cc; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (contrib/deps.sh: BENCH_PACKAGES)"
done
LIGHTTPD=$(command -v lighttpd 2>/dev/null || echo /usr/sbin/lighttpd)
APACHE2=$(command -v apache2 2>/dev/null || echo /usr/sbin/apache2)
NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
WEBHOOK=$(command -v webhook 2>/dev/null || echo /usr/bin/webhook)

PIDS=
T=$(mktemp -d "${TMPDIR:-/tmp}/cfw-limits.XXXXXX") || die "mktemp -d failed"
chmod 0755 "$T"
# Resolved: a runner names its configuration by the resolved path of the
# binary's directory (Apache's copy), which stop_runners looks for.
T=$(cd "$T" && pwd -P)
# Our hook runners (`hooks run --detached`, a process group of their own,
# which outlive the server) of the sites under $T: after a run of fresh
# transitions they still have a backlog of hooks to run, and would take the
# CPU from the next measurement.
stop_runners()
{
	sr_pids=
	for d in /proc/[0-9]*; do
		sr_cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
		case $sr_cmd in
		*"--config $T/"*" hooks run "*) sr_pids="$sr_pids ${d#/proc/}" ;;
		esac
	done
	[ -n "$sr_pids" ] || return 0
	kill $sr_pids 2>/dev/null
	# Gone before the next measurement starts (at most 5 s).
	i=0
	while [ "$i" -lt 50 ] && kill -0 $sr_pids 2>/dev/null; do
		sleep 0.1
		i=$((i + 1))
	done
	return 0
}

cleanup()
{
	trap - EXIT HUP INT TERM
	for pid in $PIDS; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in $PIDS; do
		wait "$pid" 2>/dev/null || true
	done
	stop_runners
	if [ -n "${KEEP_TEMP:-}" ]; then
		printf 'bench: kept %s\n' "$T" >&2
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT
trap 'exit 130' HUP INT TERM

# Stops one process we started (lighttpd, Apache and nginx stop their own
# children), and the hook runners it left.
stop_pid()
{
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	stop_runners
	rest=
	for pid in $PIDS; do
		[ "$pid" = "$1" ] || rest="$rest $pid"
	done
	PIDS=$rest
}

free_port()
{
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_http()
{
	i=0
	while [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 000 ]; do
		i=$((i + 1))
		[ "$i" -lt 100 ] || return 1
		sleep 0.1
	done
}

# The processes running $2 (an executable's path) whose parent is $1.
children_running()
{
	for d in /proc/[0-9]*; do
		[ "$(readlink "$d/exe" 2>/dev/null)" = "$2" ] || continue
		ppid=$(sed 's/^.*) //' "$d/stat" 2>/dev/null | awk '{ print $2 }') || continue
		[ "$ppid" = "$1" ] && printf '%s ' "${d#/proc/}"
	done
	return 0
}

private_dirty_kib()
{
	awk '/^Private_Dirty:/ { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0
}

# --- references --------------------------------------------------------------

cc -O2 -o "$T/noop.fcgi" "$here/noop_fcgi.c" -lfcgi || die "cannot build noop_fcgi.c (libfcgi-dev)"
cc -O2 -o "$T/noop.cgi" "$here/noop_cgi.c" || die "cannot build noop_cgi.c"
# The same no-op, static with musl as `make portable` builds ours (for
# information): glibc's start-up identifies the CPU with CPUID
# instructions, which a virtual machine may make slow, and musl skips it.
if command -v musl-gcc >/dev/null 2>&1; then
	musl-gcc -static -O2 -o "$T/noop-musl.cgi" "$here/noop_cgi.c" ||
		die "cannot build noop_cgi.c with musl-gcc"
fi
cc -O2 -o "$T/sqlite_rate" "$here/sqlite_rate.c" -lsqlite3 || die "cannot build sqlite_rate.c"

# site DIR DURABILITY [nohook]: config, database with registered images,
# the signed fresh bodies (DIR/bodies.N, one per wrk thread), one signed
# duplicate body (DIR/body.json, DIR/signature), and a hook for uploaded
# (`exit 0`: each fresh transition queues a run, which a runner executes
# meanwhile, as on a site with a hook), unless nohook.
site()
{
	mkdir -p "$1/hooks" "$1/www"
	chmod 0755 "$1" "$1/hooks" "$1/www"
	if [ "${3:-}" != nohook ]; then
		printf '#!/bin/sh\nexit 0\n' >"$1/hooks/uploaded"
		chmod 0755 "$1/hooks/uploaded"
	fi
	cat >"$1/cfimages-webhook.conf" <<CONF
secret = $SECRET
db = $1/webhook.db
hooks_dir = $1/hooks
durability = $2
CONF
	"$BIN" --config "$1/cfimages-webhook.conf" init >/dev/null
	python3 - "$1" "$THREADS" "$FRESH_PER_THREAD" "$SECRET" <<'PY'
import hashlib, hmac, sqlite3, sys
d, threads, per, secret = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].encode()
def body(i):
    return ('{"id":"%s","uploaded":"2024-05-01T12:00:00.000Z","variants":["https://imagedelivery.net/Vi7wi5KSItxGFsWRG2Us6Q/%s/public"],"metadata":{"user":"bench"},"requireSignedURLs":false}' % (i, i)).encode()
ids = ["dup-image"] + ["img-%d-%d" % (t, n) for t in range(threads) for n in range(per)]
db = sqlite3.connect(d + "/webhook.db")
db.executemany("INSERT INTO cloudflare_images (cloudflare_id) VALUES (?)", [(i,) for i in ids])
db.commit()
for t in range(threads):
    with open("%s/bodies.%d" % (d, t), "wb") as f:
        for n in range(per):
            b = body("img-%d-%d" % (t, n))
            f.write(hmac.new(secret, b, hashlib.sha256).hexdigest().encode() + b"\t" + b + b"\n")
b = body("dup-image")
open(d + "/body.json", "wb").write(b)
open(d + "/signature", "w").write("X-Signature: " + hmac.new(secret, b, hashlib.sha256).hexdigest())
PY
	chmod -R a+rwX "$1"
	# Writable by others, the hooks would be refused (and no fresh
	# transition would queue a run).
	chmod -R 0755 "$1/hooks"
}

# wrk_run URL DIR fresh|dup OUT [CONNECTIONS]
wrk_run()
{
	if [ "$3" = fresh ]; then
		BENCH_BODIES=$2/bodies wrk -t"$THREADS" -c"${5:-$CONNECTIONS}" -d"${DURATION}s" --latency \
			-s "$here/fresh.lua" "$1" >"$4" 2>&1 &
	else
		BENCH_BODY=$2/body.json BENCH_SIGNATURE=$(cat "$2/signature") \
			wrk -t"$THREADS" -c"${5:-$CONNECTIONS}" -d"${DURATION}s" --latency \
			-s "$here/post.lua" "$1" >"$4" 2>&1 &
	fi
	wr=$!
	PIDS="$PIDS $wr"
	wait "$wr" || die "wrk failed: $(cat "$4")"
	rest=
	for pid in $PIDS; do
		[ "$pid" = "$wr" ] || rest="$rest $pid"
	done
	PIDS=$rest
}

# field OUT rps|p99|errors
field()
{
	awk -v want="$2" '
	function ms(v) {
		if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
		if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
		if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
		return v + 0
	}
	/^Requests\/sec:/ { rps = $2 }
	$1 == "99%" { p99 = ms($2) }
	/^ *Non-2xx or 3xx responses:/ { err += $NF }
	/^ *Socket errors:/ { for (i = 3; i <= NF; i += 2) { v = $i; sub(/,/, "", v); err += v } }
	END {
		if (want == "rps") printf "%.0f\n", rps
		else if (want == "p99") printf "%.2f\n", p99
		else print err + 0
	}' "$1"
}

# io_written PID...: bytes the processes wrote with write(2) and its
# kin (database, WAL, answers, log lines), from /proc/PID/io's wchar.
io_written()
{
	iw=0
	for pid in "$@"; do
		v=$(awk '/^wchar:/ { print $2 }' "/proc/$pid/io" 2>/dev/null) || v=0
		iw=$((iw + ${v:-0}))
	done
	echo "$iw"
}

# exec_ms [VAR=VALUE...] PROGRAM ARGS...: milliseconds per run of PROGRAM
# in an environment of just the VAR=VALUE given, run 200 times in a row.
exec_ms()
{
	python3 - "$@" <<'PY'
import subprocess, sys, time
args, env = sys.argv[1:], {}
while args and "=" in args[0] and not args[0].startswith("/"):
    k, v = args.pop(0).split("=", 1)
    env[k] = v
t = time.monotonic()
for _ in range(200):
    subprocess.run(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
print("%.2f" % ((time.monotonic() - t) / 200 * 1000))
PY
}

# rows DB: the delivery rows in DB.
rows()
{
	python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM webhook_deliveries").fetchone()[0])' "$1"
}

# first_post URL DIR: the duplicate body's first delivery (pending -> uploaded).
first_post()
{
	code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
		-H "$(cat "$2/signature")" --data-binary "@$2/body.json" "$1")
	[ "$code" = 200 ] || die "the first delivery to $1 answered $code"
}

# --- servers -------------------------------------------------------------------

# lighttpd_fcgi DIR PORT BINARY: mod_fastcgi, bin-path, max-procs 2.  Sets SERVER_PID.
lighttpd_fcgi()
{
	cat >"$1/lighttpd.conf" <<CONF
server.modules = ("mod_fastcgi")
server.bind = "127.0.0.1"
server.port = $2
server.document-root = "$1/www"
server.errorlog = "$1/lighttpd-error.log"
fastcgi.server = ("/webhook" => ((
	"bin-path" => "$3",
	"socket" => "$1/fcgi.sock",
	"max-procs" => 2,
	"check-local" => "disable",
	"bin-environment" => ("CFIMAGES_WEBHOOK_CONFIG" => "$1/cfimages-webhook.conf"),
)))
CONF
	"$LIGHTTPD" -D -f "$1/lighttpd.conf" </dev/null >>"$1/lighttpd-error.log" 2>&1 &
	SERVER_PID=$!
	PIDS="$PIDS $SERVER_PID"
	wait_http "http://127.0.0.1:$2/webhook" || die "lighttpd did not start: $(tail -3 "$1/lighttpd-error.log")"
}

# lighttpd_cgi DIR PORT PROGRAM: mod_cgi runs PROGRAM (copied next to the
# site's configuration, where the binary looks for it) for /webhook.cgi.
lighttpd_cgi()
{
	mkdir -p "$1/cgi"
	cp "$3" "$1/cgi/webhook.cgi"
	cp "$1/cfimages-webhook.conf" "$1/cgi/cfimages-webhook.conf"
	chmod -R a+rX "$1/cgi"
	cat >"$1/lighttpd-cgi.conf" <<CONF
server.modules = ("mod_cgi")
server.bind = "127.0.0.1"
server.port = $2
server.document-root = "$1/cgi"
server.errorlog = "$1/lighttpd-cgi-error.log"
cgi.assign = (".cgi" => "")
CONF
	"$LIGHTTPD" -D -f "$1/lighttpd-cgi.conf" </dev/null >>"$1/lighttpd-cgi-error.log" 2>&1 &
	SERVER_PID=$!
	PIDS="$PIDS $SERVER_PID"
	wait_http "http://127.0.0.1:$2/" || die "lighttpd (CGI) did not start"
}

# apache_fcgid DIR PORT PROGRAM: Apache, event MPM, mod_fcgid with at
# most 4 processes (each one request at a time), PROGRAM as webhook.fcgi.
apache_fcgid()
{
	mkdir -p "$1/htdocs" "$1/fcgid" "$1/logs"
	cp "$3" "$1/htdocs/webhook.fcgi"
	cp "$1/cfimages-webhook.conf" "$1/htdocs/cfimages-webhook.conf"
	user_lines=
	if [ "$(id -u)" -eq 0 ]; then
		user_lines="User nobody
Group $(id -gn nobody)"
		chown -R nobody "$1"
	fi
	cat >"$1/httpd.conf" <<CONF
ServerRoot "$1"
ServerName 127.0.0.1
Listen 127.0.0.1:$2
PidFile "$1/logs/httpd.pid"
ErrorLog "$1/logs/error.log"
LogLevel warn
$user_lines
LoadModule mpm_event_module "$MODULES/mod_mpm_event.so"
LoadModule authz_core_module "$MODULES/mod_authz_core.so"
LoadModule mime_module "$MODULES/mod_mime.so"
LoadModule fcgid_module "$MODULES/mod_fcgid.so"
TypesConfig /dev/null
DocumentRoot "$1/htdocs"
FcgidIPCDir "$1/fcgid"
FcgidProcessTableFile "$1/fcgid/shm"
FcgidMaxProcesses 4
FcgidMaxProcessesPerClass 4
FcgidMinProcessesPerClass 4
FcgidSpawnScoreUpLimit 100
FcgidMaxRequestsPerProcess 0
<Directory "$1/htdocs">
	Options +ExecCGI
	AddHandler fcgid-script .fcgi
	Require all granted
</Directory>
CONF
	setsid "$APACHE2" -f "$1/httpd.conf" -DFOREGROUND >"$1/logs/stdout" 2>&1 &
	SERVER_PID=$!
	PIDS="$PIDS $SERVER_PID"
	wait_http "http://127.0.0.1:$2/" || die "apache did not start: $(tail -3 "$1/logs/error.log")"
}

# nginx_serve DIR PORT: `serve --listen` on a unix socket, nginx in front.
# Sets SERVER_PID (nginx) and SERVE_PID.
nginx_serve()
{
	mkdir -p "$1/nginx"
	CFIMAGES_WEBHOOK_CONFIG="$1/cfimages-webhook.conf" "$BIN" serve --listen "$1/serve.sock" \
		--socket-mode 0666 </dev/null >/dev/null 2>"$1/serve.err" &
	SERVE_PID=$!
	PIDS="$PIDS $SERVE_PID"
	i=0
	while [ ! -S "$1/serve.sock" ]; do
		i=$((i + 1))
		[ "$i" -lt 100 ] || die "serve did not start: $(tail -3 "$1/serve.err")"
		sleep 0.1
	done
	user_line=
	[ "$(id -u)" -eq 0 ] && user_line="user root;"
	cat >"$1/nginx.conf" <<CONF
$user_line
worker_processes 2;
daemon off;
pid $1/nginx/nginx.pid;
error_log $1/nginx/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $1/nginx/body;
	fastcgi_temp_path $1/nginx/fastcgi;
	proxy_temp_path $1/nginx/proxy;
	uwsgi_temp_path $1/nginx/uwsgi;
	scgi_temp_path $1/nginx/scgi;
	server {
		listen 127.0.0.1:$2;
		location /webhook {
			include /etc/nginx/fastcgi_params;
			fastcgi_pass unix:$1/serve.sock;
		}
	}
}
CONF
	"$NGINX" -c "$1/nginx.conf" </dev/null >"$1/nginx/stdout" 2>&1 &
	SERVER_PID=$!
	PIDS="$PIDS $SERVER_PID"
	wait_http "http://127.0.0.1:$2/" || die "nginx did not start: $(tail -3 "$1/nginx/error.log")"
}

# adnanh_webhook DIR PORT: webhook with an HMAC rule running /bin/true and
# answering after it (include-command-output-in-response: synchronous).
adnanh_webhook()
{
	cat >"$1/hooks.json" <<JSON
[{"id": "webhook", "execute-command": "/bin/true", "include-command-output-in-response": true,
  "trigger-rule": {"match": {"type": "payload-hmac-sha256", "secret": "$SECRET",
    "parameter": {"source": "header", "name": "X-Signature"}}}}]
JSON
	"$WEBHOOK" -hooks "$1/hooks.json" -ip 127.0.0.1 -port "$2" </dev/null >"$1/webhook.log" 2>&1 &
	SERVER_PID=$!
	PIDS="$PIDS $SERVER_PID"
	wait_http "http://127.0.0.1:$2/" || die "webhook did not start: $(tail -3 "$1/webhook.log")"
}

# --- the runs ------------------------------------------------------------------

# measure NAME URL DIR fresh|dup [CONNECTIONS]: one wrk run; keeps NAME_rps, NAME_p99.
measure()
{
	printf 'bench: %s ...\n' "$1" >&2
	wrk_run "$2" "$3" "$4" "$T/$1.wrk" "${5:-}"
	eval "$1_rps=$(field "$T/$1.wrk" rps)"
	eval "$1_p99=$(field "$T/$1.wrk" p99)"
	e=$(field "$T/$1.wrk" errors)
	[ "$e" -eq 0 ] || printf 'bench: WARNING: %s: %s answers other than 2xx\n' "$1" "$e" >&2
}

# part NAME: whether PARTS holds NAME.
part()
{
	case " $PARTS " in *" $1 "*) return 0 ;; esac
	return 1
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if part sqlite; then
	printf 'bench: SQLite alone ...\n' >&2
	sq_full=$("$T/sqlite_rate" "$T/rate-full.db" FULL "$DURATION")
	sq_normal=$("$T/sqlite_rate" "$T/rate-normal.db" NORMAL "$DURATION")
fi

if part lighttpd; then
	# The ceiling: the no-op responder under the same lighttpd.
	site "$T/noop" normal
	port=$(free_port)
	lighttpd_fcgi "$T/noop" "$port" "$T/noop.fcgi"
	measure noop "http://127.0.0.1:$port/webhook" "$T/noop" dup
	stop_pid "$SERVER_PID"

	for dur in normal full; do
		site "$T/l-$dur" "$dur"
		port=$(free_port)
		lighttpd_fcgi "$T/l-$dur" "$port" "$BIN"
		first_post "http://127.0.0.1:$port/webhook" "$T/l-$dur"
		measure "dup_$dur" "http://127.0.0.1:$port/webhook" "$T/l-$dur" dup
		w0=$(io_written $(children_running "$SERVER_PID" "$BIN"))
		n0=$(rows "$T/l-$dur/webhook.db")
		measure "fresh_$dur" "http://127.0.0.1:$port/webhook" "$T/l-$dur" fresh
		w1=$(io_written $(children_running "$SERVER_PID" "$BIN"))
		n1=$(rows "$T/l-$dur/webhook.db")
		eval "wbytes_$dur=$(( (w1 - w0) / (n1 - n0 > 0 ? n1 - n0 : 1) ))"
		mem=0
		for pid in $(children_running "$SERVER_PID" "$BIN"); do
			m=$(private_dirty_kib "$pid")
			[ "$m" -gt "$mem" ] && mem=$m
		done
		eval "mem_$dur=$mem"
		stop_pid "$SERVER_PID"
	done
	# The write path alone: no hook, so no run queued nor executed.
	site "$T/l-nohook" full nohook
	port=$(free_port)
	lighttpd_fcgi "$T/l-nohook" "$port" "$BIN"
	first_post "http://127.0.0.1:$port/webhook" "$T/l-nohook"
	measure fresh_nohook "http://127.0.0.1:$port/webhook" "$T/l-nohook" fresh
	stop_pid "$SERVER_PID"
fi
# apache_site NAME PROGRAM MEASURE fresh|dup [nohook]: a site under
# Apache, warmed up (mod_fcgid starts its processes as load comes), then
# measured as MEASURE.
apache_site()
{
	site "$T/$1" full ${5:-}
	port=$(free_port)
	apache_fcgid "$T/$1" "$port" "$2"
	[ "$2" = "$T/noop.fcgi" ] || first_post "http://127.0.0.1:$port/webhook.fcgi" "$T/$1"
	DURATION_SAVED=$DURATION
	DURATION=2
	measure apache_warm "http://127.0.0.1:$port/webhook.fcgi" "$T/$1" dup
	DURATION=$DURATION_SAVED
	measure "$3" "http://127.0.0.1:$port/webhook.fcgi" "$T/$1" "$4"
	stop_pid "$SERVER_PID"
}

if part apache; then
	apache_site apache-noop "$T/noop.fcgi" apache_noop dup
	apache_site apache "$BIN" apache_fresh_full fresh
	# The same without a hook: the write path alone, for information.
	apache_site apache-nohook "$BIN" apache_fresh_nohook fresh nohook
fi
if part nginx; then
	site "$T/nginx" full
	port=$(free_port)
	nginx_serve "$T/nginx" "$port"
	first_post "http://127.0.0.1:$port/webhook" "$T/nginx"
	measure nginx_fresh_full "http://127.0.0.1:$port/webhook" "$T/nginx" fresh
	stop_pid "$SERVER_PID"
	stop_pid "$SERVE_PID"
	site "$T/nginx-n" normal
	port=$(free_port)
	nginx_serve "$T/nginx-n" "$port"
	first_post "http://127.0.0.1:$port/webhook" "$T/nginx-n"
	measure nginx_dup_normal "http://127.0.0.1:$port/webhook" "$T/nginx-n" dup
	stop_pid "$SERVER_PID"
	stop_pid "$SERVE_PID"
fi
if part cgi; then
	site "$T/cgi" normal
	port=$(free_port)
	lighttpd_cgi "$T/cgi" "$port" "$CGI_BIN"
	first_post "http://127.0.0.1:$port/webhook.cgi" "$T/cgi"
	measure cgi_ours "http://127.0.0.1:$port/webhook.cgi" "$T/cgi" dup "$CGI_CONNECTIONS"
	stop_pid "$SERVER_PID"
	if [ "$CGI_BIN" != "$BIN" ]; then
		site "$T/cgi-bin" normal
		port=$(free_port)
		lighttpd_cgi "$T/cgi-bin" "$port" "$BIN"
		first_post "http://127.0.0.1:$port/webhook.cgi" "$T/cgi-bin"
		measure cgi_bin "http://127.0.0.1:$port/webhook.cgi" "$T/cgi-bin" dup "$CGI_CONNECTIONS"
		stop_pid "$SERVER_PID"
	fi
	site "$T/cgi-noop" normal
	port=$(free_port)
	lighttpd_cgi "$T/cgi-noop" "$port" "$T/noop.cgi"
	measure cgi_noop "http://127.0.0.1:$port/webhook.cgi" "$T/cgi-noop" dup "$CGI_CONNECTIONS"
	stop_pid "$SERVER_PID"
	if [ -x "$T/noop-musl.cgi" ]; then
		site "$T/cgi-noop-musl" normal
		port=$(free_port)
		lighttpd_cgi "$T/cgi-noop-musl" "$port" "$T/noop-musl.cgi"
		measure cgi_noop_musl "http://127.0.0.1:$port/webhook.cgi" "$T/cgi-noop-musl" dup \
			"$CGI_CONNECTIONS"
		stop_pid "$SERVER_PID"
		exec_noop_musl=$(exec_ms REQUEST_METHOD=GET GATEWAY_INTERFACE=CGI/1.1 "$T/noop-musl.cgi")
	fi

	printf 'bench: exec costs ...\n' >&2
	exec_noop=$(exec_ms REQUEST_METHOD=GET GATEWAY_INTERFACE=CGI/1.1 "$T/noop.cgi")
	exec_hook=$(exec_ms "$T/cgi/hooks/uploaded")
	exec_version=$(exec_ms REQUEST_METHOD=GET GATEWAY_INTERFACE=CGI/1.1 \
		CFIMAGES_WEBHOOK_CONFIG="$T/cgi/cfimages-webhook.conf" "$CGI_BIN")
fi
if part adnanh; then
	site "$T/adnanh" full
	port=$(free_port)
	adnanh_webhook "$T/adnanh" "$port"
	measure adnanh "http://127.0.0.1:$port/hooks/webhook" "$T/adnanh" dup
	stop_pid "$SERVER_PID"
fi
# Memory growth: duplicates at `normal`, readings as the count grows.
growth=
if part growth && [ "$GROWTH_REQUESTS" -gt 0 ]; then
	site "$T/growth" normal
	port=$(free_port)
	lighttpd_fcgi "$T/growth" "$port" "$BIN"
	first_post "http://127.0.0.1:$port/webhook" "$T/growth"
	pids=$(children_running "$SERVER_PID" "$BIN")
	done_n=0
	step=$((GROWTH_REQUESTS / 4))
	while [ "$done_n" -lt "$GROWTH_REQUESTS" ]; do
		printf 'bench: memory growth, %s of %s deliveries ...\n' "$done_n" "$GROWTH_REQUESTS" >&2
		goal=$((done_n + step))
		# wrk only knows durations: it is stopped once the rows are in.
		BENCH_BODY=$T/growth/body.json BENCH_SIGNATURE=$(cat "$T/growth/signature") \
			BENCH_REQUESTS=$((step / THREADS)) wrk -t"$THREADS" -c"$CONNECTIONS" -d600s \
			-s "$here/post.lua" "http://127.0.0.1:$port/webhook" >"$T/growth.wrk" 2>&1 &
		gw=$!
		PIDS="$PIDS $gw"
		while kill -0 "$gw" 2>/dev/null; do
			sleep 1
			done_n=$(rows "$T/growth/webhook.db")
			[ "$done_n" -lt "$goal" ] || kill -INT "$gw" 2>/dev/null || true
		done
		stop_pid "$gw"
		done_n=$(rows "$T/growth/webhook.db")
		line="  after $done_n:"
		for pid in $pids; do
			line="$line $(private_dirty_kib "$pid") KiB"
		done
		growth="$growth$line
"
	done
	[ "$(children_running "$SERVER_PID" "$BIN")" = "$pids" ] ||
		growth="${growth}  WARNING: the FastCGI processes changed: no conclusion
"
	stop_pid "$SERVER_PID"
fi

# --- the report ----------------------------------------------------------------

# What PARTS left out prints as "-".
for v in sq_full sq_normal noop dup_normal dup_full fresh_normal fresh_full fresh_nohook apache_noop \
	apache_fresh_full apache_fresh_nohook nginx_fresh_full nginx_dup_normal cgi_ours cgi_bin cgi_noop cgi_noop_musl \
	adnanh; do
	case $v in sq_*) eval ": \"\${$v:=-}\"" ;; *) eval ": \"\${${v}_rps:=-}\" \"\${${v}_p99:=-}\"" ;; esac
done
for v in mem_full wbytes_full wbytes_normal exec_noop exec_noop_musl exec_hook exec_version; do
	eval ": \"\${$v:=-}\""
done

# ratio A B: A / B with two decimals ("-" when either is missing).
ratio()
{
	awk -v a="$1" -v b="$2" 'BEGIN { if (a != "-" && b != "-" && b > 0) printf "%.2f", a / b; else print "-" }'
}
# check R OP TARGET: "met" or "NOT met".
check()
{
	awk -v r="$1" -v op="$2" -v t="$3" 'BEGIN {
		ok = (op == ">=") ? (r + 0 >= t + 0) : (r + 0 <= t + 0)
		print (r == "-") ? "-" : (ok ? "met" : "NOT met") }'
}
# info NAME VALUE: a ratio shown for information, held to no target.
info()
{
	printf '  %-58s %8s  (information)\n' "$1" "$2"
}
row()
{
	printf '  %-58s %8s  %-3s %-5s %s\n' "$1" "$2" "$3" "$4" "$(check "$2" "$3" "$4")"
}

printf '\ncfimages-webhook limits: %s\n' "$("$BIN" --version 2>/dev/null | head -1)"
[ "$CGI_BIN" = "$BIN" ] || printf 'CGI runs: %s\n' "$("$CGI_BIN" --version 2>/dev/null | tr '\n' ' ')"
printf '%s CPUs (%s), %s; disk: %s; load average before: %s\n' "$(nproc)" \
	"$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$(uname -sr)" \
	"$(findmnt -no FSTYPE -T "$T" 2>/dev/null || echo ?)" "$LOAD_BEFORE"
printf 'wrk -t%s -c%s -d%ss; lighttpd max-procs 2; Apache event + mod_fcgid, 4 processes; nginx + serve\n\n' \
	"$THREADS" "$CONNECTIONS" "$DURATION"
printf '  %-58s %8s %8s\n' "figure" "req/s" "p99 ms"
printf '  %-58s %8s\n' "SQLite alone, WAL, 2 one-row INSERTs per tx, FULL (tx/s)" "$sq_full"
printf '  %-58s %8s\n' "SQLite alone, same, NORMAL (tx/s)" "$sq_normal"
printf '  %-58s %8s %8s\n' "no-op FastCGI responder (lighttpd)" "$noop_rps" "$noop_p99"
printf '  %-58s %8s %8s\n' "ours, duplicates, normal (lighttpd)" "$dup_normal_rps" "$dup_normal_p99"
printf '  %-58s %8s %8s\n' "ours, duplicates, full (lighttpd)" "$dup_full_rps" "$dup_full_p99"
printf '  %-58s %8s %8s\n' "ours, fresh transitions, normal (lighttpd)" "$fresh_normal_rps" "$fresh_normal_p99"
printf '  %-58s %8s %8s\n' "ours, fresh transitions, full (lighttpd)" "$fresh_full_rps" "$fresh_full_p99"
printf '  %-58s %8s %8s\n' "ours, fresh transitions, full, no hook (lighttpd)" "$fresh_nohook_rps" "$fresh_nohook_p99"
printf '  %-58s %8s %8s\n' "no-op FastCGI responder (Apache mod_fcgid)" "$apache_noop_rps" "$apache_noop_p99"
printf '  %-58s %8s %8s\n' "ours, fresh transitions, full (Apache mod_fcgid)" "$apache_fresh_full_rps" "$apache_fresh_full_p99"
printf '  %-58s %8s %8s\n' "ours, fresh transitions, full, no hook (Apache mod_fcgid)" "$apache_fresh_nohook_rps" "$apache_fresh_nohook_p99"
printf '  %-58s %8s %8s\n' "ours, fresh transitions, full (nginx + serve)" "$nginx_fresh_full_rps" "$nginx_fresh_full_p99"
printf '  %-58s %8s %8s\n' "ours, duplicates, normal (nginx + serve)" "$nginx_dup_normal_rps" "$nginx_dup_normal_p99"
if [ "$CGI_BIN" != "$BIN" ]; then
	printf '  %-58s %8s %8s\n' "ours as CGI, static portable build, duplicates, normal" "$cgi_ours_rps" "$cgi_ours_p99"
	printf '  %-58s %8s %8s\n' "ours as CGI, this (dynamic) build, same" "$cgi_bin_rps" "$cgi_bin_p99"
else
	printf '  %-58s %8s %8s\n' "ours as CGI, duplicates, normal (lighttpd mod_cgi, -c$CGI_CONNECTIONS)" "$cgi_ours_rps" "$cgi_ours_p99"
fi
printf '  %-58s %8s %8s\n' "no-op C CGI (lighttpd mod_cgi, -c$CGI_CONNECTIONS)" "$cgi_noop_rps" "$cgi_noop_p99"
printf '  %-58s %8s %8s\n' "no-op C CGI, static musl build (same)" "$cgi_noop_musl_rps" "$cgi_noop_musl_p99"
printf '  %-58s %8s %8s\n' "adnanh/webhook, HMAC rule + /bin/true, synchronous" "$adnanh_rps" "$adnanh_p99"
printf '  %-58s %8s KiB\n' "private dirty memory, largest FastCGI process (full)" "$mem_full"
printf '  %-58s %8s B\n' "bytes written per fresh delivery, full (wchar: db, WAL, answer, log)" "$wbytes_full"
printf '  %-58s %8s B\n' "bytes written per fresh delivery, normal" "$wbytes_normal"
printf '  %-58s %8s ms\n' "one exec of the no-op C CGI answering a GET" "$exec_noop"
printf '  %-58s %8s ms\n' "one exec of the same, static musl build" "$exec_noop_musl"
printf '  %-58s %8s ms\n' "one exec of the sites' hook (a /bin/sh script, exit 0)" "$exec_hook"
printf '  %-58s %8s ms\n' "one exec of ours answering a GET (405, its row recorded)" "$exec_version"
printf '\n  %-58s %8s  target\n' "ratio" "value"
row "duplicates at normal / no-op responder" "$(ratio "$dup_normal_rps" "$noop_rps")" ">=" 0.8
row "fresh at full / SQLite alone at FULL" "$(ratio "$fresh_full_rps" "$sq_full")" ">=" 1.5
row "fresh at full / adnanh/webhook" "$(ratio "$fresh_full_rps" "$adnanh_rps")" ">=" 3
row "fresh at full / fresh at normal" "$(ratio "$fresh_full_rps" "$fresh_normal_rps")" ">=" 0.7
info "fresh at full, no hook / SQLite alone at FULL" "$(ratio "$fresh_nohook_rps" "$sq_full")"
row "p99 duplicates at normal / no-op responder's p99" "$(ratio "$dup_normal_p99" "$noop_p99")" "<=" 2
row "Apache mod_fcgid fresh at full / SQLite alone at FULL" "$(ratio "$apache_fresh_full_rps" "$sq_full")" ">=" 0.8
info "Apache mod_fcgid fresh at full / no-op under Apache" "$(ratio "$apache_fresh_full_rps" "$apache_noop_rps")"
info "Apache mod_fcgid fresh at full, no hook / SQLite alone at FULL" "$(ratio "$apache_fresh_nohook_rps" "$sq_full")"
row "CGI per-request cost: ours / no-op C CGI" "$(ratio "$cgi_noop_rps" "$cgi_ours_rps")" "<=" 2
[ "$CGI_BIN" = "$BIN" ] ||
	info "CGI per-request cost, dynamic build / no-op C CGI" "$(ratio "$cgi_noop_rps" "$cgi_bin_rps")"
info "CGI per-request cost: ours / no-op static musl build" "$(ratio "$cgi_noop_musl_rps" "$cgi_ours_rps")"
row "private dirty memory per FastCGI process, MiB" "$(ratio "$mem_full" 1024)" "<=" 4
if [ -n "$growth" ]; then
	printf '\n  memory growth, private dirty KiB of each FastCGI process (duplicates, normal):\n%s' "$growth"
fi
