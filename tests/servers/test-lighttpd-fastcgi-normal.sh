#!/bin/sh
# test-lighttpd-fastcgi.sh with durability = normal, where each FastCGI
# process's main thread answers the requests that arrived whole itself,
# several in one transaction (cfimages-webhook(8), the FastCGI accept
# loop): the same answers and rows through lighttpd.
DURABILITY=normal
. "$top_srcdir/tests/servers/test-lighttpd-fastcgi.sh"
