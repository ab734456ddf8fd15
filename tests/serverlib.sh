# Helpers of the real-server tests (tests/servers), sourced after
# tests/lib.sh: a free port, process checks, an HTTP request through curl
# and a FastCGI request through cgi-fcgi, both leaving $STATUS, $HEADERS and
# $BODY as lib.sh's cgi does, so expect_answer and expect_rejected work.

# free_port: prints a TCP port on 127.0.0.1 nobody listens on now (a
# random one in 20000-59999 that refuses a connection).  The caller still
# retries when its server then fails to bind it.
free_port()
{
	fp_i=0
	while [ "$fp_i" -lt 50 ]; do
		fp_r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
		fp_port=$((20000 + fp_r % 40000))
		"$CURL" -s -o /dev/null --connect-timeout 1 "http://127.0.0.1:$fp_port/"
		if [ $? -eq 7 ]; then
			echo "$fp_port"
			return 0
		fi
		fp_i=$((fp_i + 1))
	done
	hard_error "no free TCP port found"
}

# wait_gone PID TENTHS: waits until PID has exited, at most TENTHS tenths
# of a second.  Returns 1 when it is still there.
wait_gone()
{
	wg_i=0
	while alive "$1"; do
		[ "$wg_i" -lt "$2" ] || return 1
		sleep 0.1
		wg_i=$((wg_i + 1))
	done
	return 0
}

# http METHOD PATH BODYFILE [CURL-ARGS...]: one request to the server on
# 127.0.0.1:$PORT.
# BODYFILE may be empty (no body).  Sets STATUS, HEADERS, BODY as lib.sh's
# cgi does (so expect_answer, expect_rejected and header work), after the
# same database snapshot.
http()
{
	h_method=$1
	h_path=$2
	h_body=$3
	shift 3
	CGI_N=$((CGI_N + 1))
	CGI_OUT=$T/http.$CGI_N
	snapshot >"$T/before.snap"
	DELIVERIES_BEFORE=$(delivery_count)
	if [ -n "$h_body" ]; then
		set -- --data-binary "@$h_body" -H "Content-Type: application/json" "$@"
	fi
	STATUS=$("$CURL" -sS -m 10 -X "$h_method" -o "$CGI_OUT.body" -D "$CGI_OUT.head" \
		-w '%{http_code}' "$@" "http://127.0.0.1:$PORT$h_path" 2>"$CGI_OUT.err")
	h_rc=$?
	if [ "$h_rc" -ne 0 ]; then
		fail "request $CGI_N ($h_method $h_path): curl failed ($h_rc): $(cat "$CGI_OUT.err")"
		# The server is broken, not one answer: the rest would only time out.
		say "error.log: $(tail -5 "$T/logs/error.log" 2>/dev/null)"
		exit 1
	fi
	HEADERS=$(tr -d '\r' <"$CGI_OUT.head" | sed 1d)
	BODY=$(cat "$CGI_OUT.body")
}

# signed_post PATH BODYFILE [CURL-ARGS...]: a POST with a valid X-Signature.
signed_post()
{
	sp_path=$1
	sp_body=$2
	shift 2
	sp_sig=$(sign_hex "$SECRET" "$sp_body")
	[ -n "$sp_sig" ] || hard_error "sign printed no X-Signature"
	http POST "$sp_path" "$sp_body" -H "X-Signature: $sp_sig" "$@"
}

# fcgi METHOD BODYFILE [VAR=VALUE...]: one FastCGI request to $SOCK through
# cgi-fcgi (libfcgi-bin), answered and checked as lib.sh's cgi does;
# ELAPSED_MS is how long the answer took.
fcgi()
{
	f_bin=$CFW_BIN
	f_wrapper=$CFW_WRAPPER
	CFW_WRAPPER="$CGI_FCGI -bind -connect"
	CFW_BIN=$SOCK
	f_start=$(date +%s%N)
	cgi "$@"
	ELAPSED_MS=$((($(date +%s%N) - f_start) / 1000000))
	CFW_BIN=$f_bin
	CFW_WRAPPER=$f_wrapper
}

signed_fcgi()
{
	sf_body=$1
	shift
	fcgi POST "$sf_body" HTTP_X_SIGNATURE="$(sign_hex "$SECRET" "$sf_body")" "$@"
}

# start_spawn_fcgi [VAR=VALUE...]: the binary in FastCGI mode as mod_fcgid
# and lighttpd start it (the listening socket $SOCK on fd 0), through
# spawn-fcgi -n, in a clean environment: PATH, the empty config, $DB and
# $HOOKS, plus the given variables.  spawn-fcgi execs without a PATH
# search, so the wrapper's command (CFW_WRAPPER, e.g. valgrind) is given by
# its full path.  Waits up to START_SECONDS for the socket; sets APP_PID
# (registered), stdout and stderr in $T/app.stdout and $T/app.stderr.
start_spawn_fcgi()
{
	ssf_wrapper=
	if [ -n "$CFW_WRAPPER" ]; then
		# shellcheck disable=SC2086 # the wrapper is a list of words
		ssf_first=$(set -- $CFW_WRAPPER && echo "$1")
		ssf_rest=${CFW_WRAPPER#"$ssf_first"}
		ssf_wrapper="$(command -v "$ssf_first")$ssf_rest" || hard_error "CFW_WRAPPER: no $ssf_first"
	fi
	# shellcheck disable=SC2086 # the wrapper is a list of words
	env -i PATH="$CGI_PATH" CFIMAGES_WEBHOOK_CONFIG="$EMPTY_CONF" \
		CFIMAGES_WEBHOOK_DB="$DB" CFIMAGES_WEBHOOK_HOOKS_DIR="$HOOKS" "$@" \
		"$SPAWN_FCGI" -n -s "$SOCK" -M 0600 -- $ssf_wrapper "$CFW_BIN" \
		>"$T/app.stdout" 2>"$T/app.stderr" &
	APP_PID=$!
	register_pid "$APP_PID"
	ssf_i=0
	while [ ! -S "$SOCK" ]; do
		alive "$APP_PID" || hard_error "spawn-fcgi failed: $(cat "$T/app.stderr")"
		[ "$ssf_i" -lt $((START_SECONDS * 10)) ] || hard_error "no socket after $START_SECONDS s"
		sleep 0.1
		ssf_i=$((ssf_i + 1))
	done
}
