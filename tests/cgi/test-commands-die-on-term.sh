#!/bin/sh
# An operator command (and so the detached hook runner, which is the
# command `hooks run --detached`) dies of SIGTERM like any program: libfcgi,
# asked whether this is FastCGI, installs handlers that would only set a
# flag; they are undone.  Here `sign -` waits on a stdin that never ends.
# The signal is sent only once the process is provably blocked reading its
# stdin (past every handler libfcgi installs at start-up), seen in
# /proc/PID/syscall; a test that signalled earlier would prove nothing.
. "$top_srcdir/tests/lib.sh"

# The read system call's number on this machine's architecture.
case $(uname -m) in
x86_64) READ_NR=0 ;;
aarch64 | riscv64 | loongarch64) READ_NR=63 ;;
i?86 | arm*) READ_NR=3 ;;
*) skip "the read system call's number on $(uname -m) is not known here" ;;
esac

mkfifo "$T/fifo" || hard_error "mkfifo"
sleep 60 >"$T/fifo" &
HOLDER=$!
register_pid "$HOLDER"
CFW_STDIN=$T/fifo cfw sign --secret s - >/dev/null 2>"$T/sign.err" &
SIGNER=$!
register_pid "$SIGNER"

# The binary (or valgrind running it): the process whose own environment
# names this test's database; `timeout` and the shells around it carry it
# only in their arguments.
find_binary()
{
	for fb_env in /proc/[0-9]*/environ; do
		fb_pid=${fb_env#/proc/}
		fb_pid=${fb_pid%/environ}
		if { tr '\0' '\n' <"$fb_env"; } 2>/dev/null | grep -qxF "CFIMAGES_WEBHOOK_DB=$DB"; then
			echo "$fb_pid"
			return 0
		fi
	done
	return 1
}
# reading_stdin PID: PID is blocked in read(0, ...), or readv(0, ...) (musl's
# stdio reads so: the portable build, make check-portable).
READV_NR=19
reading_stdin()
{
	# shellcheck disable=SC2046 # the fields of one line
	set -- $(cat "/proc/$1/syscall" 2>/dev/null)
	{ [ "${1:-}" = "$READ_NR" ] || [ "${1:-}" = "$READV_NR" ]; } && [ "${2:-}" = 0x0 ]
}

PID=
i=0
while [ -z "$PID" ] && [ "$i" -lt 300 ]; do
	PID=$(find_binary)
	[ -n "$PID" ] || sleep 0.1
	i=$((i + 1))
done
[ -n "$PID" ] || hard_error "the sign process was not found"
i=0
while ! reading_stdin "$PID" && [ "$i" -lt 300 ]; do
	sleep 0.1
	i=$((i + 1))
done
if ! reading_stdin "$PID"; then
	fail "sign ($PID) never blocked reading its stdin within 30 s ($(cat "/proc/$PID/syscall" 2>&1))"
	exit 1
fi
kill -TERM "$PID"
i=0
while kill -0 "$PID" 2>/dev/null && [ "$i" -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
kill -0 "$PID" 2>/dev/null && fail "sign still runs 5 s after SIGTERM"
wait "$SIGNER"
rc=$?
unregister_pid "$SIGNER"
[ "$rc" -eq 0 ] && fail "sign exited 0 after SIGTERM: $(cat "$T/sign.err")"
grep -q "Interrupted system call" "$T/sign.err" && fail "sign caught SIGTERM: $(cat "$T/sign.err")"
exit 0
