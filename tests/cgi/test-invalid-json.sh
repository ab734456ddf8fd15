#!/bin/sh
# cfimages-webhook(8) REQUEST CONTRACT row 6: a body that is not valid RFC 8259 JSON is answered 400
# `Invalid JSON`: empty, fewer bytes than CONTENT_LENGTH, NUL bytes,
# invalid UTF-8, raw control characters in strings, trailing bytes, and
# nesting deep enough to exhaust a recursive parser.  Each refusal is one
# delivery row (reason invalid_json) and changes nothing else.  cJSON
# accepts several of these on its own (DESIGN "Pitfalls"), so every case
# is one that would otherwise have been applied to a registered image.
. "$top_srcdir/tests/lib.sh"

init_db abc
VALID='{"id":"abc","uploaded":"2024-01-01T12:00:00.000Z"}'

# refused BODYFILE [VAR=VALUE...]: 400 Invalid JSON, nothing changed.
refused()
{
	f=$1
	shift
	cgi POST "$f" "$@"
	expect_rejected 400 "Invalid JSON" invalid_json
	expect_eq "$(image_status abc)" pending "request $CGI_N: image untouched"
}
# body NAME FORMAT: writes printf FORMAT (octal escapes make the bytes)
# to the file $T/body.NAME and prints its name.
body()
{
	# shellcheck disable=SC2059 # the format is the point
	printf "$2" >"$T/body.$1"
	echo "$T/body.$1"
}

# Empty, and only whitespace.
refused "$(body empty '')"
refused "$(body blank ' \n\t ')"

# Fewer bytes than CONTENT_LENGTH: a valid document cut short by the
# sender, and a complete one whose CONTENT_LENGTH promised more.
write_file "$T/valid" "$VALID"
len=$(wc -c <"$T/valid" | tr -d ' ')
refused "$T/valid" CONTENT_LENGTH=$((len + 10))
expect_eq "$(last_delivery body_size)" "$len" "body_size counts the bytes received"
# CONTENT_LENGTH shorter than what is sent: only CONTENT_LENGTH bytes are
# the body, here without its closing brace.
refused "$T/valid" CONTENT_LENGTH=$((len - 1))
refused "$T/valid" CONTENT_LENGTH=abc
refused "$T/valid" CONTENT_LENGTH=-5

# NUL bytes: inside a string, between tokens, after the value.
refused "$(body nul-string '{"id":"ab\000c","uploaded":"2024-01-01T12:00:00.000Z"}')"
refused "$(body nul-between '{"id":"abc",\000"uploaded":"2024-01-01T12:00:00.000Z"}')"
refused "$(body nul-after '{"id":"abc","uploaded":"2024-01-01T12:00:00.000Z"}\000')"
refused "$(body nul-before '\000{"id":"abc","uploaded":"2024-01-01T12:00:00.000Z"}')"

# Invalid UTF-8: a lone continuation byte, 0xFF, an overlong '/', a
# UTF-16 surrogate encoded in UTF-8, a truncated sequence, beyond U+10FFFF.
for bytes in '\200' '\377' '\300\257' '\355\240\200' '\303' '\364\220\200\200'; do
	refused "$(body utf8 '{"id":"abc","uploaded":"2024-01-01T12:00:00.000Z","x":"a'"$bytes"'b"}')"
done
refused "$(body utf8-id '{"id":"ab\377c","uploaded":"2024-01-01T12:00:00.000Z"}')"

# Raw control characters inside strings (escaped they are fine).
for c in '\001' '\011' '\012' '\015' '\037'; do
	refused "$(body ctl '{"id":"abc","uploaded":"2024-01-01T12:00:00.000Z","x":"a'"$c"'b"}')"
done

# Trailing bytes after the value.
refused "$(body trailing-x "$VALID"'x')"
refused "$(body trailing-object "$VALID"'{}')"
refused "$(body trailing-number "$VALID"' 1')"
refused "$(body trailing-comma "$VALID"',')"

# Other things RFC 8259 does not allow.
refused "$(body leading-zero '{"id":"abc","uploaded":"2024-01-01T12:00:00.000Z","n":01}')"
refused "$(body trailing-comma-in '{"id":"abc","uploaded":"2024-01-01T12:00:00.000Z",}')"
refused "$(body single-quotes "{'id':'abc','uploaded':'2024-01-01T12:00:00.000Z'}")"
refused "$(body bare-key '{id:"abc","uploaded":"2024-01-01T12:00:00.000Z"}')"
refused "$(body nan '{"id":"abc","uploaded":"2024-01-01T12:00:00.000Z","n":NaN}')"
refused "$(body bad-escape '{"id":"abc","uploaded":"2024-01-01T12:00:00.000Z","s":"\\x41"}')"
refused "$(body unclosed '{"id":"abc","uploaded":"2024-01-01T12:00:00.000Z"')"

# Deep nesting: 100000 '[' (unclosed), then closed.  Must be refused, not
# crash the process on its stack.
head -c 100000 /dev/zero | tr '\0' '[' >"$T/deep"
refused "$T/deep"
{ head -c 100000 /dev/zero | tr '\0' '['; head -c 100000 /dev/zero | tr '\0' ']'; } >"$T/deep-closed"
cgi POST "$T/deep-closed"
expect_eq "$STATUS" 400 "100000 closed '[': status"
case $BODY in
"Invalid JSON" | "Invalid payload") ;;
*) fail "100000 closed '[': body [$BODY]" ;;
esac
expect_untouched

# The same refusals once authenticated: the signature is checked first
# and recorded as the scheme.
SECRET=json-s3cret
write_file "$T/trailing" "$VALID"'x'
cgi POST "$T/trailing" CFIMAGES_WEBHOOK_SECRET="$SECRET" \
	HTTP_X_SIGNATURE="$(sign_hex "$SECRET" "$T/trailing")"
expect_rejected 400 "Invalid JSON" invalid_json
expect_eq "$(last_delivery scheme)" "'hex'" "scheme of an authenticated invalid body"
expect_no_secret "$SECRET"

# Control: the valid document itself, with trailing whitespace (allowed
# by RFC 8259), is applied.
printf '%s \r\n\t\n' "$VALID" >"$T/valid-ws"
cgi POST "$T/valid-ws"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status abc)" uploaded "the valid document is applied"
