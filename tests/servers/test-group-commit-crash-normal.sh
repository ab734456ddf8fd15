#!/bin/sh
# test-group-commit-crash.sh with durability = normal, where the main
# thread answers batches of requests itself: after SIGKILL every delivery
# answered 200 is still there (a killed process loses nothing committed;
# only the system crashing may, at normal).
DURABILITY=normal
. "$top_srcdir/tests/servers/test-group-commit-crash.sh"
