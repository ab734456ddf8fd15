# Helpers of the outbound action tests (cfimages-webhook(8) HOOKS, the
# .webhook actions), sourced after tests/lib.sh and tests/hooklib.sh.
#
# An action calls a real HTTP(S) endpoint: tests/servers/http_receiver.py,
# started by the test on 127.0.0.1 (port chosen by the kernel), which
# records every request as one JSON line and answers as the test tells it
# (500 the first N times, hang, 410, 302, TLS).  The npm standardwebhooks
# package, which verifies our signatures as an application would, is
# installed on first use into $top_builddir/node-cache.

RECEIVER_PY=$top_srcdir/tests/servers/http_receiver.py
SWVERIFY_JS=$top_srcdir/tests/servers/swverify.js
PYTHON3=${PYTHON3:-python3}
command -v "$PYTHON3" >/dev/null 2>&1 || skip "no python3 for the HTTP receiver"
# binary_has_curl: the binary was built with libcurl: its --version does
# not say "libcurl: not built in" (asked that way round, a --version that
# changes its words makes the action tests fail, not skip).  Every action
# test but test-action-without-curl.sh (which sets ACTION_WITHOUT_CURL
# before sourcing this) needs it.
binary_has_curl()
{
	! run_binary 0 --version 2>&1 | grep -q 'libcurl: not built in'
}
[ -n "${ACTION_WITHOUT_CURL:-}" ] || binary_has_curl ||
	skip "built without libcurl (--without-curl): test-action-without-curl.sh is the test"
# The npm package's version, pinned so that a new release cannot change
# what the test proves.
STANDARDWEBHOOKS_VERSION=1.1.1

# start_receiver NAME [OPTION...]: starts a receiver recording into
# $T/NAME.log (options: see http_receiver.py); waits for its port (at most
# 20 s) and sets RPORT and RPID (registered: stopped at exit).
start_receiver()
{
	sr_name=$1
	shift
	rm -f "$T/$sr_name.port"
	"$PYTHON3" "$RECEIVER_PY" serve --port-file "$T/$sr_name.port" --log "$T/$sr_name.log" "$@" \
		</dev/null >"$T/$sr_name.receiver-out" 2>"$T/$sr_name.receiver-err" &
	RPID=$!
	register_pid "$RPID"
	sr_i=0
	while [ ! -s "$T/$sr_name.port" ]; do
		alive "$RPID" || hard_error "the receiver $sr_name did not start: $(cat "$T/$sr_name.receiver-err")"
		[ "$sr_i" -lt 200 ] || hard_error "the receiver $sr_name wrote no port in 20 s"
		sleep 0.1
		sr_i=$((sr_i + 1))
	done
	RPORT=$(cat "$T/$sr_name.port")
}

# recv NAME INDEX FIELD [ARG]: FIELD of request INDEX (1-based, -1 the
# last) the receiver NAME recorded (http_receiver.py query).
recv()
{
	"$PYTHON3" "$RECEIVER_PY" query "$T/$1.log" "$2" "$3" ${4+"$4"}
}

# recv_count NAME: the number of requests NAME recorded.
recv_count()
{
	"$PYTHON3" "$RECEIVER_PY" count "$T/$1.log"
}

# recv_count_is NAME N: a condition for wait_until.
recv_count_is()
{
	[ "$(recv_count "$1")" = "$2" ]
}

# action_file PATH LINE...: a .webhook file with these lines, mode 0644
# (an action need not be executable).
action_file()
{
	af_path=$1
	shift
	printf '%s\n' "$@" >"$af_path"
	chmod 644 "$af_path"
}

# deliver ID [VAR=VALUE...]: a delivery moving ID to uploaded, as CGI,
# answered 200 OK.
deliver()
{
	dl_id=$1
	shift
	write_file "$T/deliver.$dl_id.json" \
		"{\"id\":\"$dl_id\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}"
	cgi POST "$T/deliver.$dl_id.json" "$@"
	expect_answer 200 OK
}

# run_id ID HOOK: the id of the hook run of image ID for HOOK.
run_id()
{
	sql "SELECT id FROM hook_runs WHERE image_id = '$1' AND hook = '$2'"
}

# run_row RUN: state|attempts|exit_code of hook run RUN.
run_row()
{
	sql "SELECT state, attempts, exit_code FROM hook_runs WHERE id = $1"
}

# run_is RUN STATE|ATTEMPTS: a condition for wait_until.
run_is()
{
	sql_is "SELECT state || '|' || attempts FROM hook_runs WHERE id = $1" "$2"
}

# run_output RUN: the output of hook run RUN, byte for byte.
run_output()
{
	sql_text output "FROM hook_runs WHERE id = $1"
}

# make_due RUN: the run's next attempt is due now.
make_due()
{
	sql "UPDATE hook_runs SET next_attempt_at = $(sql_now_plus -1) WHERE id = $1"
}

# hooks_run [VAR=VALUE...]: `hooks run` (the cron path), its output in
# $T/hooks-run.N.out and stderr in $T/hooks-run.N.stderr.
HR_N=0
hooks_run()
{
	HR_N=$((HR_N + 1))
	cfw "$@" hooks run >"$T/hooks-run.$HR_N.out" 2>"$T/hooks-run.$HR_N.stderr"
	expect_eq "$?" 0 "hooks run exit status ($(cat "$T/hooks-run.$HR_N.stderr"))"
}

# make_ca DIR: a certificate authority (DIR/ca.pem) made for this test,
# a server certificate it signed for the address 127.0.0.1 only, no name
# (DIR/server.pem, DIR/server.key), and a second, unrelated authority
# (DIR/other-ca.pem).
make_ca()
{
	command -v openssl >/dev/null 2>&1 || skip "no openssl to make a test CA"
	mkdir -p "$1"
	for mc_ca in ca other-ca; do
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$1/$mc_ca.key" -out "$1/$mc_ca.pem" -days 2 \
			-subj "/CN=cfimages-webhook test $mc_ca" \
			-addext basicConstraints=critical,CA:TRUE \
			-addext keyUsage=critical,keyCertSign,cRLSign >"$1/openssl.log" 2>&1 ||
			hard_error "openssl req (CA) failed: $(cat "$1/openssl.log")"
	done
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$1/server.key" -out "$1/server.csr" -subj "/CN=127.0.0.1" \
		>"$1/openssl.log" 2>&1 || hard_error "openssl req (server) failed: $(cat "$1/openssl.log")"
	printf '%s\n' 'subjectAltName=IP:127.0.0.1' 'basicConstraints=CA:FALSE' \
		'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth' >"$1/server.ext"
	openssl x509 -req -in "$1/server.csr" -CA "$1/ca.pem" -CAkey "$1/ca.key" \
		-CAcreateserial -out "$1/server.pem" -days 2 -extfile "$1/server.ext" \
		>"$1/openssl.log" 2>&1 || hard_error "openssl x509 (server) failed: $(cat "$1/openssl.log")"
}

# need_standardwebhooks: the npm standardwebhooks package in
# $NODE_CACHE/node_modules, installed there on first use (one install per
# build tree, under a lock, since tests run in parallel).  Skips the test
# only when node or npm is not there or the install fails (no registry).
need_standardwebhooks()
{
	command -v node >/dev/null 2>&1 || skip "no node to run the standardwebhooks verifier"
	NODE_CACHE=${top_builddir:-$top_srcdir}/node-cache
	if [ ! -f "$NODE_CACHE/node_modules/standardwebhooks/package.json" ]; then
		command -v npm >/dev/null 2>&1 || skip "no npm to install standardwebhooks"
		mkdir -p "$NODE_CACHE" || hard_error "cannot create $NODE_CACHE"
		# shellcheck disable=SC2016 # expanded by the inner shell
		flock -w 600 "$NODE_CACHE/.lock" sh -c '
			[ -f "$1/node_modules/standardwebhooks/package.json" ] && exit 0
			npm install --prefix "$1" --no-audit --no-fund --no-save --loglevel=error \
				"standardwebhooks@$2"' sh "$NODE_CACHE" "$STANDARDWEBHOOKS_VERSION" \
			>"$T/npm.log" 2>&1 ||
			skip "npm install standardwebhooks@$STANDARDWEBHOOKS_VERSION failed: $(tail -5 "$T/npm.log")"
	fi
}

# sw_verify NAME INDEX SECRET_FILE [raw]: verifies request INDEX of the
# receiver NAME with standardwebhooks' Webhook.verify() (secret as in
# SECRET_FILE: a whsec_ key, or with raw its bytes); prints "verified" or
# "refused: WHY"; true when verified.  SW_BODY, when set, names a file that
# replaces the recorded body (a tampered copy).
sw_verify()
{
	recv "$1" "$2" body >"$T/sw.body" || return 1
	recv "$1" "$2" headers-json >"$T/sw.headers" || return 1
	NODE_PATH=$NODE_CACHE/node_modules node "$SWVERIFY_JS" "${SW_BODY:-$T/sw.body}" \
		"$T/sw.headers" "$3" ${4+"$4"}
}
