#!/bin/sh
# test-group-commit.sh with durability = normal: img-first is answered by
# the main thread, which waits for the lock the driver holds; img-a,
# img-poison and img-b wait to be accepted meanwhile and are then
# answered together, in one transaction that is not flushed, img-poison
# failing alone.
DURABILITY=normal
. "$top_srcdir/tests/servers/test-group-commit.sh"
