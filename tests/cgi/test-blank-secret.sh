#!/bin/sh
# A secret of blanks is no secret (cfimages-webhook.conf(5), secret and
# secret_file): CFIMAGES_WEBHOOK_SECRET of spaces or tabs is a
# configuration error (500, logged; `check` reports it), and secret_file
# lines are trimmed of spaces, tabs and CR, lines left empty skipped, a file
# of blank lines only refusing every delivery (500, logged; `check` reports
# it).  A delivery signed with the blank key is never accepted.  `check`
# warns about a secret shorter than 16 bytes, naming where it is, never
# printing it.
. "$top_srcdir/tests/lib.sh"

init_db abc
write_file "$T/json" '{"id":"abc","uploaded":"2024-01-01T12:00:00.000Z"}'

# blank_refused WHAT VAR=VALUE: the delivery, signed with the blank key
# " " and with cf-webhook-auth " ", is answered 500 and logged; `check`
# exits 1 with a problem.
blank_refused()
{
	br_what=$1
	shift
	cgi POST "$T/json" "$@" HTTP_X_SIGNATURE="$(sign_hex ' ' "$T/json")" \
		HTTP_CF_WEBHOOK_AUTH=' '
	expect_answer 500 "Internal server error"
	expect_untouched
	[ -s "$CGI_ERR" ] || fail "$br_what: the 500 is not logged"
	expect_eq "$(image_status abc)" pending "$br_what: nothing applied"
	cfw "$@" check >"$T/check.out" 2>&1
	expect_eq $? 1 "$br_what: check exits 1 ($(cat "$T/check.out"))"
	grep -q '^problem: ' "$T/check.out" || fail "$br_what: check reports no problem: $(cat "$T/check.out")"
}

blank_refused "a secret of one space" CFIMAGES_WEBHOOK_SECRET=' '
grep -q CFIMAGES_WEBHOOK_SECRET "$CGI_ERR" || fail "the blank secret's variable is not named: $(cat "$CGI_ERR")"
blank_refused "a secret of tabs and spaces" CFIMAGES_WEBHOOK_SECRET="$(printf ' \t ')"

printf '   \n\t\n \r\n\n' >"$T/blank-secrets"
blank_refused "a secret_file of blank lines" CFIMAGES_WEBHOOK_SECRET_FILE="$T/blank-secrets"
grep -q -F "$T/blank-secrets" "$CGI_ERR" || fail "the blank secret_file is not named: $(cat "$CGI_ERR")"
# Even beside a good `secret`: the operator asked for the file's secrets.
blank_refused "a secret_file of blank lines beside a secret" \
	CFIMAGES_WEBHOOK_SECRET_FILE="$T/blank-secrets" CFIMAGES_WEBHOOK_SECRET=a-good-long-secret-value

# A secret_file line is trimmed: the secret is what is between the blanks,
# for the HMAC schemes and for cf-webhook-auth alike.
SECRET=trimmed-s3cret-value-0123
printf '  %s \t\r\n   \n' "$SECRET" >"$T/secrets"
cgi POST "$T/json" CFIMAGES_WEBHOOK_SECRET_FILE="$T/secrets" \
	HTTP_X_SIGNATURE="$(sign_hex "  $SECRET " "$T/json")"
expect_rejected 401 "Invalid signature" invalid_signature
cgi POST "$T/json" CFIMAGES_WEBHOOK_SECRET_FILE="$T/secrets" HTTP_X_SIGNATURE="$(sign_hex ' ' "$T/json")"
expect_rejected 401 "Invalid signature" invalid_signature
cgi POST "$T/json" CFIMAGES_WEBHOOK_SECRET_FILE="$T/secrets" HTTP_CF_WEBHOOK_AUTH="$SECRET"
expect_answer 200 OK
expect_one_delivery applied 200
cgi POST "$T/json" CFIMAGES_WEBHOOK_SECRET_FILE="$T/secrets" \
	HTTP_X_SIGNATURE="$(sign_hex "$SECRET" "$T/json")"
expect_answer 200 OK
expect_one_delivery duplicate 200
cfw CFIMAGES_WEBHOOK_SECRET_FILE="$T/secrets" check >"$T/check.out" 2>&1
expect_eq $? 0 "check on a trimmed secret_file exits 0 ($(cat "$T/check.out"))"
grep -q 'ok: 1 secret configured' "$T/check.out" || fail "check counts the secrets: $(cat "$T/check.out")"
grep -q '^warning: .*bytes' "$T/check.out" && fail "check warns about a 25-byte secret: $(cat "$T/check.out")"

# Short secrets: a warning each, naming the setting or the file's line,
# and exit 0 (a warning is not a problem).
SHORT1=sh0rt-one
SHORT2=sh0rt-two
printf '%s\n\n%s\n%s\n' "$SHORT1" "$SECRET" "$SHORT2" >"$T/short-secrets"
cfw CFIMAGES_WEBHOOK_SECRET_FILE="$T/short-secrets" CFIMAGES_WEBHOOK_SECRET=tiny check \
	>"$T/check.out" 2>&1
expect_eq $? 0 "check with short secrets exits 0 ($(cat "$T/check.out"))"
grep -q '^warning: secret is 4 bytes' "$T/check.out" ||
	fail "check does not warn about the short secret: $(cat "$T/check.out")"
grep -q "^warning: secret_file $T/short-secrets line 1: .* 9 bytes" "$T/check.out" ||
	fail "check does not name line 1: $(cat "$T/check.out")"
grep -q "^warning: secret_file $T/short-secrets line 4: .* 9 bytes" "$T/check.out" ||
	fail "check does not name line 4: $(cat "$T/check.out")"
expect_eq "$(grep -c '^warning: .*bytes' "$T/check.out")" 3 "one warning per short secret"
for s in "$SHORT1" "$SHORT2" tiny "$SECRET"; do
	grep -q -F -e "$s" "$T/check.out" && fail "check prints the secret $s"
done

expect_no_secret "$SECRET"
expect_no_secret "$SHORT1"
expect_no_secret "$SHORT2"
exit 0
