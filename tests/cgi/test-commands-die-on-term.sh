#!/bin/sh
# An operator command (and so the detached hook runner, which is the
# command `hooks run --detached`) dies of SIGTERM like any program: libfcgi,
# asked whether this is FastCGI, installs handlers that would only set a
# flag; they are undone.  Here `sign -` waits on a stdin that never ends.
. "$top_srcdir/tests/lib.sh"

mkfifo "$T/fifo" || hard_error "mkfifo"
sleep 30 >"$T/fifo" &
HOLDER=$!
register_pid "$HOLDER"
CFW_STDIN=$T/fifo cfw sign --secret s - >/dev/null 2>"$T/sign.err" &
SIGNER=$!
sleep 1
# The binary is the child of timeout (see run_binary): signal it directly.
PID=$(pgrep -P "$(pgrep -P "$SIGNER" | head -1)" 2>/dev/null | head -1)
[ -n "$PID" ] || PID=$(pgrep -f -- "sign --secret s -" | head -1)
[ -n "$PID" ] || hard_error "the sign process was not found"
kill -TERM "$PID"
i=0
while kill -0 "$PID" 2>/dev/null && [ "$i" -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
kill -0 "$PID" 2>/dev/null && fail "sign still runs 5 s after SIGTERM"
wait "$SIGNER"
rc=$?
[ "$rc" -eq 0 ] && fail "sign exited 0 after SIGTERM: $(cat "$T/sign.err")"
grep -q "Interrupted system call" "$T/sign.err" && fail "sign caught SIGTERM: $(cat "$T/sign.err")"
exit 0
