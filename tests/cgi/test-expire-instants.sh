#!/bin/sh
# `expire` compares instants, not text (cfimages-webhook(8), expire): rows
# an application inserts with expires_at in another RFC 3339 form -- an
# offset such as +05:00, no milliseconds, lower-case t and z -- expire
# when their instant has passed and not before.  The "wrong" rows are
# those that comparing the text with the current time decides the other
# way.  A text that is no RFC 3339 time never expires, with a warning
# (SQLite only: a PostgreSQL timestamptz column holds no such text, and
# parses the other forms when the application inserts them).
. "$top_srcdir/tests/lib.sh"

init_db
NOW=$(date -u +%s)
HOUR=3600

# at SECONDS FORMAT: the UTC clock time SECONDS since the epoch, in FORMAT.
at()
{
	date -u -d "@$1" "+$2"
}

# One hour ago, written at +05:00 (its text is 4 hours ahead of now): wrong as text.
PAST_OFFSET=$(at $((NOW - HOUR + 5 * HOUR)) %Y-%m-%dT%H:%M:%S.000)+05:00
# In one hour, written at -05:00 (its text is 4 hours behind now): wrong as text.
FUTURE_OFFSET=$(at $((NOW + HOUR - 5 * HOUR)) %Y-%m-%dT%H:%M:%S)-05:00
# One hour ago and in one hour, lower case, no milliseconds.
PAST_LOWER=$(at $((NOW - HOUR)) %Y-%m-%dt%H:%M:%Sz)
FUTURE_LOWER=$(at $((NOW + HOUR)) %Y-%m-%dt%H:%M:%Sz)
# In two hours at +01:00, with microseconds.
FUTURE_MICRO=$(at $((NOW + 2 * HOUR + HOUR)) %Y-%m-%dT%H:%M:%S.123456)+01:00

# A day ago in the form of SQLite's datetime(): no RFC 3339 time.
if [ "$BACKEND" = sqlite ]; then
	UNREADABLE=",
	('sqlite-form', 'pending', datetime('now', '-1 day'))"
	UNREADABLE_STATUS="
sqlite-form=pending"
else
	UNREADABLE='' UNREADABLE_STATUS=''
fi
sql "INSERT INTO cloudflare_images (cloudflare_id, status, expires_at) VALUES
	('past-offset', 'pending', '$PAST_OFFSET'),
	('future-offset', 'pending', '$FUTURE_OFFSET'),
	('past-lower', 'draft', '$PAST_LOWER'),
	('future-lower', 'pending', '$FUTURE_LOWER'),
	('future-micro', 'draft', '$FUTURE_MICRO')$UNREADABLE"

cfw expire >"$T/expire.out" 2>"$T/expire.err"
expect_eq $? 0 "expire exits 0 ($(cat "$T/expire.err"))"
expect_eq "$(cat "$T/expire.out")" "expired 2 images" "expire's count"
expect_sql "SELECT cloudflare_id || '=' || status FROM cloudflare_images ORDER BY cloudflare_id" \
	"future-lower=pending
future-micro=draft
future-offset=pending
past-lower=expired
past-offset=expired$UNREADABLE_STATUS" "statuses after expire (expires_at $PAST_OFFSET, $FUTURE_OFFSET, $PAST_LOWER, $FUTURE_LOWER, $FUTURE_MICRO)"
if [ "$BACKEND" = sqlite ]; then
	grep -q "warning: expire: 1 pending or draft image has an expires_at that is not an RFC 3339 time" \
		"$T/expire.err" || fail "no warning about the unreadable expires_at: $(cat "$T/expire.err")"
else
	expect_eq "$(cat "$T/expire.err")" "" "expire warns about nothing"
fi

# Nothing more is due: a second run expires nothing.
cfw expire >"$T/expire2.out" 2>/dev/null
expect_eq "$(cat "$T/expire2.out")" "expired 0 images" "a second expire"
