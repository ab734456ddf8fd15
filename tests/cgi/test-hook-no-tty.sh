#!/bin/sh
# cfimages-webhook(8) HOOKS, "The runner": a receiver started from a terminal (here a
# pseudo-terminal that is the controlling terminal of the CGI's session)
# starts a runner without one, so a hook that opens /dev/tty fails at
# once instead of being stopped for reading from a background process
# group until its timeout.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

command -v python3 >/dev/null 2>&1 || skip "no python3"
ID=img-tty
init_db "$ID"
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
hook_script "$HOOKS/uploaded" \
	"if (exec 3</dev/tty) 2>/dev/null; then r=tty; else r=none; fi" \
	"echo \$r >'$T/tty.tmp' && mv '$T/tty.tmp' '$T/tty.out'" \
	'exit 0'

# The wrapper leads a session whose controlling terminal is a new
# pseudo-terminal, runs the CGI in it, and stays (keeping the terminal)
# until the hook has answered or 20 s have passed.  Standard input and
# output stay the CGI's own.
cat >"$T/with-tty" <<PY
#!/usr/bin/env python3
import os, sys, time
pid = os.fork()
if pid:
    sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) & 255)
os.setsid()
master, slave = os.openpty()
ctty = os.open(os.ttyname(slave), os.O_RDWR)  # no O_NOCTTY: becomes ours
os.close(slave)
kid = os.fork()
if kid == 0:
    os.close(ctty)
    os.execvp(sys.argv[1], sys.argv[1:])
status = os.waitpid(kid, 0)[1]
for _ in range(200):
    if os.path.exists("$T/tty.out"):
        break
    time.sleep(0.1)
sys.exit(os.waitstatus_to_exitcode(status) & 255)
PY
chmod 755 "$T/with-tty"
# The wrapper itself must have a terminal to give: check that python can.
python3 -c 'import os, sys
pid = os.fork()
if pid:
    sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
os.setsid(); m, s = os.openpty(); os.open(os.ttyname(s), os.O_RDWR); os.open("/dev/tty", os.O_RDWR)' ||
	skip "no pseudo-terminal to give the CGI"

write_file "$T/u.json" "{\"id\":\"$ID\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}"
SAVED_WRAPPER=$CFW_WRAPPER
CFW_WRAPPER="$T/with-tty $CFW_WRAPPER"
cgi POST "$T/u.json"
CFW_WRAPPER=$SAVED_WRAPPER
expect_answer 200 OK
wait_until 20 sql_is "SELECT state FROM hook_runs" done ||
	fail "the run is not done 20 s after the answer: $(sql "SELECT state, exit_code, output FROM hook_runs")"
expect_eq "$(cat "$T/tty.out" 2>/dev/null)" none "what the hook found at /dev/tty"
exit 0
