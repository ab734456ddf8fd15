#!/bin/sh
# cfimages-webhook(8) HOOKS, The runner: Apache (mod_cgi, mod_cgid) and
# lighttpd signal a CGI process that is still there once its answer is
# complete.  A stand-in web server reads the answer to EOF and sends TERM
# at once, five times: every delivery is answered 200 and every hook
# still runs, started by the request that queued it (no later request
# comes to pick it up).
# Wrong change caught: starting the runner with TERM not held off after
# the answer's EOF (the process dies before it forks the runner, and the
# run stays queued until some later request).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

command -v python3 >/dev/null 2>&1 || skip "no python3 (the stand-in web server)"
ROUNDS=5
init_db
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
printf '#!/bin/sh\necho "$1" >>"%s"\n' "$T/hook.log" >"$HOOKS/uploaded"
chmod 755 "$HOOKS/uploaded"

# The stand-in server: runs argv[2:] with stdin from argv[1], reads stdout
# to EOF, sends TERM immediately, and prints the answer's status line.
cat >"$T/server.py" <<'PY'
import signal, subprocess, sys
with open(sys.argv[1], "rb") as body:
    p = subprocess.Popen(sys.argv[2:], stdin=body, stdout=subprocess.PIPE)
    answer = p.stdout.read()
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
print(answer.split(b"\r\n", 1)[0].split(b"\n", 1)[0].decode())
PY

i=1
while [ "$i" -le "$ROUNDS" ]; do
	write_file "$T/$i.json" "{\"id\":\"img-$i\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}"
	# shellcheck disable=SC2086 # the wrapper is a list of words
	answer=$(env -i PATH="$CGI_PATH" GATEWAY_INTERFACE=CGI/1.1 REQUEST_METHOD=POST \
		CONTENT_LENGTH="$(wc -c <"$T/$i.json" | tr -d ' ')" CONTENT_TYPE=application/json \
		REMOTE_ADDR=127.0.0.1 CFIMAGES_WEBHOOK_CONFIG="$EMPTY_CONF" \
		CFIMAGES_WEBHOOK_DB="$DB" CFIMAGES_WEBHOOK_HOOKS_DIR="$HOOKS" \
		CFIMAGES_WEBHOOK_AUTO_REGISTER=yes \
		timeout -k 5 120 python3 "$T/server.py" "$T/$i.json" $CFW_WRAPPER "$CFW_BIN" 2>"$T/$i.err")
	expect_eq "$answer" "Status: 200 OK" "delivery $i answered ($(head -c 500 "$T/$i.err"))"
	i=$((i + 1))
done

# Every hook runs, within a bound generous for valgrind on a busy machine.
w=0
while [ "$(sort -u "$T/hook.log" 2>/dev/null | wc -l)" -lt "$ROUNDS" ] && [ "$w" -lt 600 ]; do
	sleep 0.1
	w=$((w + 1))
done
expect_eq "$(sort -u "$T/hook.log" 2>/dev/null | wc -l | tr -d ' ')" "$ROUNDS" \
	"hooks run by the requests that queued them ($(sql "SELECT image_id, state FROM hook_runs" | tr '\n' ' '))"
kill_leftovers
exit 0
