#!/bin/sh
# test-group-commit.sh with durability = normal: img-first is answered by
# the main thread, which waits for the lock the driver holds; img-a,
# img-poison and img-b wait to be accepted meanwhile and are then
# answered together by the main thread, in one transaction, img-poison
# failing alone.
DURABILITY=normal
. "$top_srcdir/tests/servers/test-group-commit.sh"
