#!/bin/sh
# cfimages-webhook.conf(5): an unknown key, an empty value or a bad value in the
# configuration file is an error naming the file, the line and the key:
# the responder answers 500 `Internal server error` (and logs it, never a
# secret), and `check` exits 1 reporting it.  A bad CFIMAGES_WEBHOOK_<KEY>
# is an error too; an unknown CFIMAGES_WEBHOOK_* variable only a warning.
# A CGI request logs the error once (not once when the configuration is
# read and again when the request is answered).
. "$top_srcdir/tests/lib.sh"

SECRET=c0nfig-s3cret-value
init_db abc
write_file "$T/json" '{"id":"abc","uploaded":"2024-01-01T12:00:00.000Z"}'

# broken NAME LINE KEY CONTENT: CONTENT (printf format) as a configuration
# file whose line LINE holds the bad KEY; checks the responder and `check`.
broken()
{
	conf=$T/$1.conf
	# shellcheck disable=SC2059
	printf "$4" >"$conf"
	cgi POST "$T/json" CFIMAGES_WEBHOOK_CONFIG="$conf"
	expect_answer 500 "Internal server error"
	expect_untouched
	expect_eq "$(image_status abc)" pending "$1: nothing applied"
	names "$1 (responder)" "$CGI_ERR" "$conf" "$2" "$3"
	expect_eq "$(grep -c "configuration: " "$CGI_ERR")" 1 "$1: the CGI request logs the error once"
	cfw --config "$conf" check >"$T/$1.check.stdout" 2>"$T/$1.check.stderr"
	expect_eq $? 1 "$1: check exits 1"
	cat "$T/$1.check.stdout" "$T/$1.check.stderr" >"$T/$1.check.all"
	names "$1 (check)" "$T/$1.check.all" "$conf" "$2" "$3"
	cfw --config "$conf" show abc >/dev/null 2>"$T/$1.show.stderr"
	expect_eq $? 1 "$1: a command refuses a bad configuration"
}

# names WHAT FILE CONF LINE KEY: FILE mentions CONF, its line LINE, KEY.
names()
{
	grep -q -F -e "$3" "$2" || fail "$1: the message does not name the file $3: $(cat "$2")"
	grep -q -E -e "(:$4([^0-9]|\$)|line $4([^0-9]|\$))" "$2" ||
		fail "$1: the message does not name line $4: $(cat "$2")"
	grep -q -F -e "$5" "$2" || fail "$1: the message does not name the key $5: $(cat "$2")"
}

broken bad-number 3 max_body '# sizes\n\nmax_body = lots\n'
broken bad-bool 2 auto_register 'db_mode = 0600\nauto_register = maybe\n'
broken bad-mode 1 db_mode 'db_mode = rw-rw----\n'
broken bad-cidr 4 allow_from '\n\n\nallow_from = 10.0.0.0/33\n'
broken bad-durability 1 durability 'durability = sometimes\n'
broken bad-level 1 log_level 'log_level = loud\n'
broken negative-timeout 2 hook_timeout '# x\nhook_timeout = -1\n'
broken zero-attempts 1 hook_attempts 'hook_attempts = 0\n'
broken bad-tolerance 1 tolerance 'tolerance = 5m\n'
broken unknown-key 2 colour "secret = $SECRET\ncolour = blue\n"
broken empty-value 3 hooks_dir 'secret = x\n\nhooks_dir =\n'
# A misspelt secret key: named, its value (a secret) not printed.
broken misspelt-secret 1 secrte "secrte = $SECRET\n"
expect_no_secret "$SECRET"
for f in "$T"/*.check.all "$T"/*.show.stderr; do
	grep -q -F -e "$SECRET" "$f" && fail "the secret is printed in $(basename "$f")"
done

# A named configuration file that does not exist is an error too.
cgi POST "$T/json" CFIMAGES_WEBHOOK_CONFIG="$T/no-such.conf"
expect_answer 500 "Internal server error"
grep -q -F "$T/no-such.conf" "$CGI_ERR" || fail "a missing config file is not named"

# A bad value in the environment: 500, the variable named.
cgi POST "$T/json" CFIMAGES_WEBHOOK_MAX_BODY=huge
expect_answer 500 "Internal server error"
expect_untouched
grep -q CFIMAGES_WEBHOOK_MAX_BODY "$CGI_ERR" || fail "the bad variable is not named: $(cat "$CGI_ERR")"
cgi POST "$T/json" CFIMAGES_WEBHOOK_AUTO_REGISTER=
expect_answer 500 "Internal server error"

# An unknown CFIMAGES_WEBHOOK_* variable: a warning naming it, and the
# delivery goes on.
cgi POST "$T/json" CFIMAGES_WEBHOOK_COLOUR=blue
expect_answer 200 OK
expect_one_delivery applied 200
grep -q CFIMAGES_WEBHOOK_COLOUR "$CGI_ERR" || fail "the unknown variable is not named: $(cat "$CGI_ERR")"

# A good file with comments and blank lines, and check on it: exit 0.
mkdir -p "$HOOKS"
chmod 755 "$HOOKS"
printf '# cfimages-webhook\n\n   # indented comment\nsecret = %s\nmax_body = 2048\n\tauto_register = no\n' \
	"$SECRET" >"$T/good.conf"
chmod 600 "$T/good.conf"
cfw --config "$T/good.conf" check >"$T/good.check.stdout" 2>"$T/good.check.stderr"
expect_eq $? 0 "check on a good configuration: $(cat "$T/good.check.stdout" "$T/good.check.stderr")"
grep -q -F -e "$SECRET" "$T/good.check.stdout" && fail "check prints the secret"
write_file "$T/json2" '{"id":"abc","uploaded":"2024-01-01T12:00:00.001Z"}'
cgi POST "$T/json2" CFIMAGES_WEBHOOK_CONFIG="$T/good.conf" HTTP_X_SIGNATURE="$(sign_hex "$SECRET" "$T/json2")"
expect_answer 200 OK
expect_no_secret "$SECRET"

# log_level: at `error` a good delivery without a secret logs nothing (not
# even the no-secret warning); at `info` it does.
write_file "$T/json3" '{"id":"abc","uploaded":"2024-01-01T12:00:00.002Z"}'
cgi POST "$T/json3" CFIMAGES_WEBHOOK_LOG_LEVEL=error
expect_answer 200 OK
expect_eq "$(cat "$CGI_ERR")" "" "log_level = error: stderr"
cgi POST "$T/json3" CFIMAGES_WEBHOOK_LOG_LEVEL=info
expect_answer 200 OK
[ -s "$CGI_ERR" ] || fail "log_level = info: nothing logged"
