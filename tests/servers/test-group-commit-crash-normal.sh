#!/bin/sh
# test-group-commit-crash.sh with durability = normal, where no
# transaction is flushed: after SIGKILL every delivery answered 200 is
# still there all the same (a killed process loses nothing committed; only
# the system crashing may, at normal).
DURABILITY=normal
. "$top_srcdir/tests/servers/test-group-commit-crash.sh"
