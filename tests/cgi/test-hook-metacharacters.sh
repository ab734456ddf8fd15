#!/bin/sh
# cfimages-webhook(8) PAYLOADS and 9: hooks receive the image id and the body only as data
# (argv, environment values, stdin), never inside a shell string.  An id
# and metadata full of shell metacharacters ($(...), backquotes, ;, |, &,
# quotes, globs, backslashes, %n, a leading dash) reach the hook byte for
# byte, and none of the commands in them runs: no file pwned-* appears,
# neither in the test's directory nor where the binary and the hooks run.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

P=pwned-$$
Q="'"
ID="-x\$(touch $P-1)\`touch $P-2\`;touch $P-3;${Q}q$Q\"d\"|&<>*?[a]{b,c}!#~ \\ \\n %s%n \$HOME \$(touch\${IFS}$P-4) é"
# JSON string escaping of the id: backslash and double quote.
ID_JSON=$(printf '%s' "$ID" | sed 's/\\/\\\\/g; s/"/\\"/g')
printf '%s' "$ID" >"$T/expected-id"
{
	printf '{"id":"%s","uploaded":"2024-01-01T12:00:00.000Z",\n' "$ID_JSON"
	printf '"metadata":{"cmd":"$(touch %s-5)","tick":"`touch %s-6`",' "$P" "$P"
	printf '"semi":"; touch %s-7; rm -rf /nonexistent-%s","quotes":"\\"\\u0027%s-8",' "$P" "$P" "$P"
	printf '"lines":"a\\nb\\r\\n$(touch %s-9)\\t|","%s-key":"x"}}' "$P" "$P"
} >"$T/body.json"

# auto_register: `register` would take the leading dash for an option.
init_db
mkdir -p "$HOOKS" "$T/out"
chmod 755 "$HOOKS"
hook_script "$HOOKS/uploaded" \
	"out='$T/out'" \
	'printf "%s" "$1" >"$out/argv1"' \
	'printf "%s" "$2" >"$out/argv2"' \
	'tr "\0" "\n" </proc/$$/environ | sed -n "s/^CFIMAGES_IMAGE_ID=//p" >"$out/env-id"' \
	'cat >"$out/stdin"'

ls -d -- pwned-* "$top_srcdir"/pwned-* 2>/dev/null >"$T/before"
cgi POST "$T/body.json" CFIMAGES_WEBHOOK_AUTO_REGISTER=yes
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status "$ID")" uploaded "the image's status"
wait_until 20 sql_is "SELECT state FROM hook_runs" "done" ||
	fail "the hook run is not done: $(sql "SELECT state, exit_code, output FROM hook_runs")"
wait_until 20 no_runner || fail "a hook runner is still there 20 s later"

cmp -s "$T/out/argv1" "$T/expected-id" || fail "argv[1] is not the id: [$(cat "$T/out/argv1")]"
expect_eq "$(cat "$T/out/argv2" 2>/dev/null)" uploaded "argv[2]"
printf '%s\n' "$ID" >"$T/expected-env-id"
cmp -s "$T/out/env-id" "$T/expected-env-id" ||
	fail "CFIMAGES_IMAGE_ID is not the id: [$(cat "$T/out/env-id")]"
cmp -s "$T/out/stdin" "$T/body.json" || fail "stdin is not the body"
expect_sql "SELECT $(sql_bool "image_id = '$(sql_quote "$ID")'") FROM hook_runs" 1 "hook_runs.image_id"

found=$(find "$T" -name 'pwned-*' 2>/dev/null)
[ -z "$found" ] || fail "a command in the data ran: $found"
ls -d -- pwned-* "$top_srcdir"/pwned-* 2>/dev/null >"$T/after"
cmp -s "$T/before" "$T/after" || fail "a command in the data ran: $(cat "$T/after")"
exit 0
