#!/bin/sh
# cfimages-webhook(8) AUTHENTICATION through the real binary: every vector of tests/vectors/signatures.json
# (hex, cf-webhook-auth, Stream style, Standard Webhooks) sent as a CGI
# request with the vector's secret.  A valid vector passes authentication
# (the answer is whatever the body deserves next: 404 for an unregistered
# id, 400 Invalid payload for a body that is no payload, never 401); an
# invalid one is answered 401 `Invalid signature`.  Timestamped vectors are
# sent with the clock frozen at the vector's "now" by faketime (Debian
# package faketime), with the vector's tolerance.
. "$top_srcdir/tests/lib.sh"

LIBFAKETIME=$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1)
[ -n "$LIBFAKETIME" ] || skip "libfaketime is not installed (Debian package faketime)"
# libfaketime is preloaded: a static binary (the portable build) loads nothing.
file "$CFW_BIN" 2>/dev/null | grep -qE 'static(ally|-pie) linked' &&
	skip "$CFW_BIN is static: LD_PRELOAD (libfaketime) cannot freeze its clock"
V=$VECTORS/signatures.json
init_db

# field GROUP INDEX KEY: one field of one vector, as text ("" when absent).
field()
{
	"$SQLITE3" -batch -noheader :memory: \
		"SELECT coalesce(json_extract(readfile('$V'), '\$.$1[$2].$3'), '')"
}

# count GROUP: how many vectors the group has.
count()
{
	"$SQLITE3" -batch -noheader :memory: "SELECT json_array_length(readfile('$V'), '\$.$1')"
}

# body_file GROUP INDEX: the vector's body, byte for byte, in $T/body.
body_file()
{
	rm -f "$T/body"
	"$SQLITE3" -batch -noheader :memory: \
		"SELECT writefile('$T/body', coalesce(json_extract(readfile('$V'), '\$.$1[$2].body'), ''))" \
		>/dev/null
}

# check GROUP INDEX NOW VAR=VALUE...: sends the vector's body signed as given.
check()
{
	ck_group=$1 ck_i=$2 ck_now=$3
	shift 3
	ck_valid=$(field "$ck_group" "$ck_i" valid)
	ck_tol=$(field "$ck_group" "$ck_i" tolerance)
	ck_secret=$(field "$ck_group" "$ck_i" secret)
	body_file "$ck_group" "$ck_i"
	# The clock frozen at the vector's "now" (FAKETIME without "@": a
	# running clock would make the boundary vectors depend on how slowly
	# the binary starts, e.g. under valgrind).  No TZ in the environment:
	# the time is UTC.  libfaketime comes before an ASan build's runtime.
	set -- ASAN_OPTIONS=verify_asan_link_order=0 "$@"
	if [ -n "$ck_now" ]; then
		set -- LD_PRELOAD="$LIBFAKETIME" \
			FAKETIME="$(date -u -d "@$ck_now" '+%Y-%m-%d %H:%M:%S')" "$@"
	fi
	cgi POST "$T/body" CFIMAGES_WEBHOOK_SECRET="$ck_secret" \
		CFIMAGES_WEBHOOK_TOLERANCE="${ck_tol:-300}" "$@"
	ck_what="$ck_group vector $ck_i ($(field "$ck_group" "$ck_i" why))"
	if [ "$ck_valid" = 1 ]; then
		[ "$STATUS" = 401 ] && fail "$ck_what: valid but refused: $BODY"
		case $STATUS in 400 | 404) ;; *) fail "$ck_what: unexpected $STATUS $BODY" ;; esac
	else
		expect_rejected 401 "Invalid signature" invalid_signature
	fi
	expect_no_secret "$ck_secret"
}

n=$(count hex)
expect_eq "$n" 5 "hex vectors"
i=0
while [ "$i" -lt "$n" ]; do
	header=$(field hex $i header | tr 'a-z-' 'A-Z_')
	check hex $i "" "HTTP_$header=$(field hex $i value)"
	i=$((i + 1))
done

n=$(count cf_webhook_auth)
i=0
while [ "$i" -lt "$n" ]; do
	write_file "$T/body" '{"id":"not-registered","uploaded":"2024-01-01T12:00:00.000Z"}'
	ck_valid=$(field cf_webhook_auth $i valid)
	cgi POST "$T/body" CFIMAGES_WEBHOOK_SECRET="$(field cf_webhook_auth $i secret)" \
		HTTP_CF_WEBHOOK_AUTH="$(field cf_webhook_auth $i value)"
	if [ "$ck_valid" = 1 ]; then
		expect_answer 404 "Image not found"
		expect_eq "$(last_delivery scheme)" "'cf-webhook-auth'" "cf vector $i: scheme"
	else
		expect_rejected 401 "Invalid signature" invalid_signature
	fi
	i=$((i + 1))
done

n=$(count stream)
expect_eq "$n" 6 "stream vectors"
i=0
while [ "$i" -lt "$n" ]; do
	check stream $i "$(field stream $i now)" "HTTP_WEBHOOK_SIGNATURE=$(field stream $i value)"
	[ "$(field stream $i valid)" = 1 ] &&
		expect_eq "$(last_delivery scheme)" "'stream'" "stream vector $i: scheme"
	i=$((i + 1))
done

n=$(count standard)
expect_eq "$n" 7 "standard vectors"
i=0
while [ "$i" -lt "$n" ]; do
	check standard $i "$(field standard $i now)" \
		"HTTP_WEBHOOK_ID=$(field standard $i id)" \
		"HTTP_WEBHOOK_TIMESTAMP=$(field standard $i timestamp)" \
		"HTTP_WEBHOOK_SIGNATURE=$(field standard $i signature)"
	if [ "$(field standard $i valid)" = 1 ]; then
		expect_eq "$(last_delivery scheme)" "'standard'" "standard vector $i: scheme"
		expect_eq "$(last_delivery message_id)" "'$(field standard $i id)'" \
			"standard vector $i: webhook-id stored"
	fi
	i=$((i + 1))
done
