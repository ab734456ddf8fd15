#!/bin/sh
# `cfimages-webhook serve --listen` behind a real nginx (cfimages-webhook(8) DESCRIPTION-4).
#
# Three serve processes share one database: one on a unix socket (with
# --socket-mode, since nginx's workers run as another user when we are
# root), one on 127.0.0.1:PORT and, when the loopback has ::1, one on
# [::1]:PORT.  A private nginx (prefix, pid, logs and temp paths in $T) on
# 127.0.0.1 passes /webhook (the location of contrib/nginx.conf), /tcp4
# and /tcp6 to them.  Checked through curl:
# the status matrix basics (signed delivery applied, 401, 405 + Allow,
# 400); FastCGI parameters named like settings (fastcgi_param
# CFIMAGES_WEBHOOK_DB ...) are not settings; a request in flight when
# SIGTERM arrives is finished, and then the process exits 0; SIGTERM while
# idle exits 0 within 2 s; the unix socket file is removed on exit.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/serverlib.sh"

NGINX=${NGINX:-}
CURL=${CURL:-}
[ -n "$NGINX" ] && [ -x "$NGINX" ] || skip "no nginx (NGINX is empty)"
[ -n "$CURL" ] && [ -x "$CURL" ] || skip "no curl (CURL is empty)"
command -v setsid >/dev/null 2>&1 || skip "no setsid (util-linux)"

SECRET=nginx-test-secret
# Seconds to wait for a server to listen, and for a process to exit
# after SIGTERM when idle (promptly).
START_SECONDS=10
STOP_SECONDS=2

# start_serve NAME SPEC: `serve --listen SPEC` in the background, in a
# clean environment (settings from CFIMAGES_WEBHOOK_* only), stderr to
# $T/NAME.stderr.  Waits until it says it listens.  Sets SERVE_PID.
# Returns 1 (process gone) when the bind failed with EADDRINUSE, so the
# caller can try another port; any other failure is a hard error.
start_serve()
{
	ss_err=$T/$1.stderr
	# shellcheck disable=SC2086 # the wrapper is a list of words
	env -i PATH="$CGI_PATH" CFIMAGES_WEBHOOK_CONFIG="$EMPTY_CONF" \
		CFIMAGES_WEBHOOK_DB="$DB" CFIMAGES_WEBHOOK_HOOKS_DIR="$HOOKS" \
		CFIMAGES_WEBHOOK_SECRET="$SECRET" CFIMAGES_WEBHOOK_LOG_LEVEL=debug \
		$CFW_WRAPPER "$CFW_BIN" serve --listen "$2" --socket-mode 0666 \
		</dev/null >"$T/$1.stdout" 2>"$ss_err" &
	SERVE_PID=$!
	register_pid "$SERVE_PID"
	ss_i=0
	while ! grep -q "listening on" "$ss_err" 2>/dev/null; do
		if ! alive "$SERVE_PID"; then
			wait "$SERVE_PID" 2>/dev/null
			unregister_pid "$SERVE_PID"
			grep -q -i "address already in use" "$ss_err" && return 1
			hard_error "serve --listen $2 failed: $(cat "$ss_err")"
		fi
		[ "$ss_i" -lt $((START_SECONDS * 10)) ] ||
			hard_error "serve --listen $2 did not listen within $START_SECONDS s"
		sleep 0.1
		ss_i=$((ss_i + 1))
	done
	return 0
}

# start_serve_tcp NAME HOST: start_serve on HOST:a free port (retried
# on a collision).  Sets SERVE_PID and SERVE_PORT.
start_serve_tcp()
{
	st_try=0
	while [ "$st_try" -lt 5 ]; do
		SERVE_PORT=$(free_port)
		case $2 in
		*:*) st_spec="[$2]:$SERVE_PORT" ;;
		*) st_spec="$2:$SERVE_PORT" ;;
		esac
		start_serve "$1" "$st_spec" && return 0
		st_try=$((st_try + 1))
	done
	hard_error "serve could not bind a port on $2"
}

# stop_serve PID NAME: SIGTERM, then its exit status must be 0 and come
# within STOP_SECONDS.
stop_serve()
{
	kill -TERM "$1" 2>/dev/null || fail "$2: the serve process was already gone"
	if ! wait_gone "$1" $((STOP_SECONDS * 10)); then
		fail "$2: still running $STOP_SECONDS s after SIGTERM"
		kill -KILL "$1" 2>/dev/null
	fi
	wait "$1"
	ss_rc=$?
	unregister_pid "$1"
	expect_eq "$ss_rc" 0 "$2: exit status after SIGTERM"
}

if [ "$(id -u)" -eq 0 ]; then
	# nginx's workers drop to nobody: it must reach $T and the socket.
	NGINX_GROUP=$(id -gn nobody 2>/dev/null) || skip "no user nobody to run nginx's workers as"
	USER_LINE="user nobody $NGINX_GROUP;"
	chmod 0755 "$T"
else
	USER_LINE=
fi
mkdir -p "$T/logs" "$T/temp" "$T/html" "$HOOKS" || hard_error "mkdir failed"

# nginx resolves `include fastcgi_params;` against the directory of its
# configuration, $T: a copy of the system's file (or a minimal one) there.
SYSTEM_PARAMS=${NGINX_FASTCGI_PARAMS:-/etc/nginx/fastcgi_params}
FASTCGI_PARAMS=$T/fastcgi_params
if [ -f "$SYSTEM_PARAMS" ]; then
	cp "$SYSTEM_PARAMS" "$FASTCGI_PARAMS" || hard_error "cannot copy $SYSTEM_PARAMS"
else
	cat >"$FASTCGI_PARAMS" <<'EOF'
fastcgi_param QUERY_STRING $query_string;
fastcgi_param REQUEST_METHOD $request_method;
fastcgi_param CONTENT_TYPE $content_type;
fastcgi_param CONTENT_LENGTH $content_length;
fastcgi_param SCRIPT_NAME $fastcgi_script_name;
fastcgi_param REQUEST_URI $request_uri;
fastcgi_param SERVER_PROTOCOL $server_protocol;
fastcgi_param GATEWAY_INTERFACE CGI/1.1;
fastcgi_param REMOTE_ADDR $remote_addr;
fastcgi_param REMOTE_PORT $remote_port;
fastcgi_param SERVER_ADDR $server_addr;
fastcgi_param SERVER_PORT $server_port;
fastcgi_param SERVER_NAME $server_name;
EOF
fi

# /webhook is the location of contrib/nginx.conf, pointed at our socket.
CONTRIB=$top_srcdir/contrib/nginx.conf
[ -f "$CONTRIB" ] || hard_error "no $CONTRIB"
CONTRIB_LOCATION=$(sed -n '/^location = \/webhook {/,/^}/p' "$CONTRIB" |
	sed "s|/run/cfimages-webhook/fcgi.sock|$T/fcgi.sock|")
[ -n "$CONTRIB_LOCATION" ] || hard_error "no location = /webhook block in $CONTRIB"

init_db img-unix img-tcp4 img-tcp6 img-param img-flight

# --- the three serve processes ---------------------------------------------
SOCK=$T/fcgi.sock
start_serve unix "$SOCK"
UNIX_PID=$SERVE_PID
[ -S "$SOCK" ] || fail "serve --listen $SOCK: no socket file"
expect_eq "$(stat -c %a "$SOCK")" 666 "--socket-mode 0666: the socket's mode"

start_serve_tcp tcp4 127.0.0.1
TCP4_PID=$SERVE_PID
TCP4_PORT=$SERVE_PORT

HAVE_V6=
if grep -q '^0\{31\}1 ' /proc/net/if_inet6 2>/dev/null; then
	start_serve_tcp tcp6 ::1
	TCP6_PID=$SERVE_PID
	TCP6_PORT=$SERVE_PORT
	HAVE_V6=yes
	# Really IPv6: libfcgi's own FCGX_OpenSocket would have made a unix
	# socket file named "[::1]:PORT" in the working directory instead.
	[ -e "[::1]:$TCP6_PORT" ] && fail "serve --listen [::1]:$TCP6_PORT created a file"
	ss -ltn 2>/dev/null | grep -q "\[::1\]:$TCP6_PORT " ||
		{ command -v ss >/dev/null 2>&1 && fail "nothing listens on [::1]:$TCP6_PORT"; }
else
	say "no ::1 on the loopback: the IPv6 part is skipped"
fi

# --- nginx -----------------------------------------------------------------
write_nginx_conf()
{
	if [ -n "$HAVE_V6" ]; then
		nc_v6="location = /tcp6 { include $FASTCGI_PARAMS; fastcgi_pass [::1]:$TCP6_PORT; }"
	else
		nc_v6=
	fi
	cat >"$T/nginx.conf" <<EOF
$USER_LINE
worker_processes 1;
pid $T/logs/nginx.pid;
error_log $T/logs/error.log info;
events {
	worker_connections 64;
}
http {
	access_log $T/logs/access.log;
	client_body_temp_path $T/temp/body;
	fastcgi_temp_path $T/temp/fastcgi;
	proxy_temp_path $T/temp/proxy;
	scgi_temp_path $T/temp/scgi;
	uwsgi_temp_path $T/temp/uwsgi;
	server {
		listen 127.0.0.1:$PORT;
		root $T/html;
$CONTRIB_LOCATION
		location = /tcp4 {
			include $FASTCGI_PARAMS;
			fastcgi_pass 127.0.0.1:$TCP4_PORT;
		}
		$nc_v6
		# Parameters named like settings, as a hostile (or careless)
		# server configuration would send them: never settings.
		location = /param {
			include $FASTCGI_PARAMS;
			fastcgi_param CFIMAGES_WEBHOOK_DB $T/evil.db;
			fastcgi_param CFIMAGES_WEBHOOK_SECRET "";
			fastcgi_param CFIMAGES_WEBHOOK_AUTO_REGISTER yes;
			fastcgi_param CFIMAGES_WEBHOOK_HOOKS_DIR $T;
			fastcgi_param CFIMAGES_WEBHOOK_CONFIG $T/evil.conf;
			fastcgi_pass unix:$SOCK;
		}
		# The body reaches the application as it arrives (the in-flight test).
		location = /stream {
			include $FASTCGI_PARAMS;
			fastcgi_request_buffering off;
			fastcgi_pass unix:$SOCK;
		}
	}
}
EOF
}

NGINX_PID=
nginx_try=0
while :; do
	PORT=$(free_port)
	write_nginx_conf
	setsid "$NGINX" -p "$T" -c "$T/nginx.conf" -g 'daemon off;' \
		>"$T/logs/nginx.stdout" 2>&1 &
	NGINX_PID=$!
	register_pid "$NGINX_PID"
	ng_i=0
	while alive "$NGINX_PID" && [ "$ng_i" -lt $((START_SECONDS * 10)) ]; do
		ng_code=$("$CURL" -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$PORT/")
		[ "$ng_code" != "000" ] && break
		sleep 0.1
		ng_i=$((ng_i + 1))
	done
	alive "$NGINX_PID" && [ "$ng_code" != "000" ] && break
	alive "$NGINX_PID" && hard_error "nginx did not answer within $START_SECONDS s"
	wait "$NGINX_PID" 2>/dev/null
	unregister_pid "$NGINX_PID"
	nginx_try=$((nginx_try + 1))
	if [ "$nginx_try" -ge 3 ] ||
		! grep -q -i "address already in use" "$T/logs/nginx.stdout" "$T/logs/error.log" 2>/dev/null; then
		hard_error "nginx did not start: $(cat "$T/logs/nginx.stdout"; tail -5 "$T/logs/error.log" 2>/dev/null)"
	fi
done
say "nginx $NGINX_PID on 127.0.0.1:$PORT"

# --- the status matrix over the unix socket --------------------------------
write_file "$T/unix.json" '{"id":"img-unix","uploaded":"2024-01-01T12:00:00.000Z"}'
signed_post /webhook "$T/unix.json"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status img-unix)" uploaded "unix socket: the image status after a signed delivery"
expect_eq "$(last_delivery remote_addr)" "'127.0.0.1'" "unix socket: REMOTE_ADDR from nginx"

http POST /webhook "$T/unix.json"
expect_rejected 401 "Missing signature" missing_signature

http GET /webhook ""
expect_rejected 405 "Method not allowed" method_not_allowed
expect_eq "$(header Allow)" POST "unix socket: the Allow header of a 405"

write_file "$T/bad.json" '{"id":"img-unix"} trailing'
signed_post /webhook "$T/bad.json"
expect_rejected 400 "Invalid JSON" invalid_json

write_file "$T/unknown.json" '{"id":"img-nobody","uploaded":"2024-01-01T12:00:00.000Z"}'
signed_post /webhook "$T/unknown.json"
expect_rejected 404 "Image not found" not_found

# --- TCP, IPv4 and IPv6 ----------------------------------------------------
write_file "$T/tcp4.json" '{"id":"img-tcp4","uploaded":"2024-01-01T12:00:00.000Z"}'
signed_post /tcp4 "$T/tcp4.json"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status img-tcp4)" uploaded "127.0.0.1:$TCP4_PORT: the image status"
http GET /tcp4 ""
expect_rejected 405 "Method not allowed" method_not_allowed

if [ -n "$HAVE_V6" ]; then
	write_file "$T/tcp6.json" '{"id":"img-tcp6","uploaded":"2024-01-01T12:00:00.000Z"}'
	signed_post /tcp6 "$T/tcp6.json"
	expect_answer 200 OK
	expect_one_delivery applied 200
	expect_eq "$(image_status img-tcp6)" uploaded "[::1]:$TCP6_PORT: the image status"
	http POST /tcp6 "$T/tcp6.json"
	expect_rejected 401 "Missing signature" missing_signature
fi

# --- FastCGI parameters are not settings -----------------------------------
# An unsigned request: were CFIMAGES_WEBHOOK_SECRET "" a setting, it would
# pass; were AUTO_REGISTER, an unknown id would be created.
write_file "$T/param.json" '{"id":"img-param","uploaded":"2024-01-01T12:00:00.000Z"}'
http POST /param "$T/param.json"
expect_rejected 401 "Missing signature" missing_signature
write_file "$T/param2.json" '{"id":"img-param-new","uploaded":"2024-01-01T12:00:00.000Z"}'
signed_post /param "$T/param2.json"
expect_rejected 404 "Image not found" not_found
signed_post /param "$T/param.json"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status img-param)" uploaded "fastcgi_param CFIMAGES_WEBHOOK_DB: the delivery went to the configured database"
[ -e "$T/evil.db" ] && fail "a FastCGI parameter created $T/evil.db"

# --- SIGTERM while idle ----------------------------------------------------
stop_serve "$TCP4_PID" "tcp4 (idle)"
if [ -n "$HAVE_V6" ]; then
	stop_serve "$TCP6_PID" "tcp6 (idle)"
fi

# --- SIGTERM with a request in flight --------------------------------------
# nginx streams the body (fastcgi_request_buffering off): the first half
# now, the rest after a pause.  Once the serve process has accepted the
# connection (one more descriptor in /proc/PID/fd) it gets SIGTERM; it
# must still read the whole body, answer 200 OK, then exit 0.
write_file "$T/flight.json" '{"id":"img-flight","uploaded":"2024-01-01T12:00:00.000Z"}'
FLIGHT_LEN=$(wc -c <"$T/flight.json" | tr -d ' ')
FLIGHT_SIG=$(sign_hex "$SECRET" "$T/flight.json")
fd_count()
{
	ls "/proc/$1/fd" 2>/dev/null | wc -l | tr -d ' '
}
FDS_IDLE=$(fd_count "$UNIX_PID")
DELIVERIES_BEFORE=$(delivery_count)
{
	head -c 20 "$T/flight.json"
	sleep 1
	tail -c +21 "$T/flight.json"
} | "$CURL" -sS -m 10 -X POST -T - -H "Content-Length: $FLIGHT_LEN" -H "Transfer-Encoding:" \
	-H "Content-Type: application/json" -H "X-Signature: $FLIGHT_SIG" \
	-o "$T/flight.body" -D "$T/flight.head" -w '%{http_code}' \
	"http://127.0.0.1:$PORT/stream" >"$T/flight.status" 2>"$T/flight.err" &
FLIGHT_PID=$!
register_pid "$FLIGHT_PID"
fl_i=0
while [ "$(fd_count "$UNIX_PID")" -le "$FDS_IDLE" ] && [ "$fl_i" -lt 50 ]; do
	sleep 0.02
	fl_i=$((fl_i + 1))
done
if [ "$(fd_count "$UNIX_PID")" -le "$FDS_IDLE" ]; then
	fail "in flight: the serve process never accepted the streamed request"
fi
# (libfcgi reads the parameters right after accept: let it.)
sleep 0.2
kill -TERM "$UNIX_PID"
wait "$FLIGHT_PID"
unregister_pid "$FLIGHT_PID"
expect_eq "$(cat "$T/flight.status")" 200 "in flight: the status of the request SIGTERM interrupted ($(cat "$T/flight.body" "$T/flight.err"))"
expect_eq "$(cat "$T/flight.body")" OK "in flight: the body"
expect_eq "$(image_status img-flight)" uploaded "in flight: the delivery was applied"
expect_one_delivery applied 200
if ! wait_gone "$UNIX_PID" $((STOP_SECONDS * 10)); then
	fail "in flight: still running $STOP_SECONDS s after the request finished"
	kill -KILL "$UNIX_PID" 2>/dev/null
fi
wait "$UNIX_PID"
expect_eq "$?" 0 "in flight: the exit status after SIGTERM"
unregister_pid "$UNIX_PID"
[ -e "$SOCK" ] && fail "serve --listen $SOCK: the socket file is still there after SIGTERM"

# --- SIGTERM while idle, unix socket ----------------------------------------
start_serve unix2 "$SOCK"
UNIX_PID=$SERVE_PID
http GET /webhook ""
expect_rejected 405 "Method not allowed" method_not_allowed
stop_serve "$UNIX_PID" "unix (idle)"
[ -e "$SOCK" ] && fail "serve --listen $SOCK: the socket file is still there after SIGTERM while idle"

for f in "$T"/unix.stderr "$T"/unix2.stderr "$T"/tcp4.stderr "$T"/tcp6.stderr; do
	[ -f "$f" ] || continue
	grep -q "AddressSanitizer\|runtime error" "$f" && fail "$(basename "$f"): $(head -5 "$f")"
done
expect_no_secret "$SECRET"

kill -TERM "$(cat "$T/logs/nginx.pid" 2>/dev/null || echo "$NGINX_PID")" 2>/dev/null
wait_gone "$NGINX_PID" 50 || fail "nginx did not stop within 5 s"
wait "$NGINX_PID" 2>/dev/null
unregister_pid "$NGINX_PID"
exit 0
