#!/bin/sh
# test-lighttpd-fastcgi.sh with durability = normal (no flush per
# transaction: the main thread's batches commit and answer at once): the
# same answers and rows through lighttpd.
DURABILITY=normal
. "$top_srcdir/tests/servers/test-lighttpd-fastcgi.sh"
