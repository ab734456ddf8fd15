#!/bin/sh
# cfimages-webhook(8) check, outbound actions: every bad .webhook file is
# reported on a problem line naming the file and the line (FILE:LINE) of
# what is wrong: an unknown key, a URL that is not http(s), a method other
# than POST/PUT/PATCH, a header that is not `Name: value`, a header
# reference that is neither ${file:/absolute} nor ${env:NAME}, a url given
# twice, a timeout that is not seconds, a ca_file that does not exist, a
# template file
# that does not exist, a template that is not JSON, a template with a
# placeholder of an unknown root, a secret_file that cannot be read, a URL
# outside outbound_allow; a file with no url is named too.  A good action
# (template, secret_file, headers, inside the allow-list) is not reported,
# and once the bad files are gone check exits 0.
#
# Mutations this catches: check not reading .webhook files (or only
# S.webhook, not S.d/*.webhook); the template or secret_file only checked
# at run time; problems reported without their line, or with the line of
# another problem; outbound_allow not applied by check.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"
. "$top_srcdir/tests/actionlib.sh"

init_db
D=$HOOKS/uploaded.d
mkdir -p "$D" "$HOOKS/failed.d"
chmod 755 "$HOOKS" "$D" "$HOOKS/failed.d"
printf '{"id": "{{ image.id }}", "who": "{{ delivery.body.metadata.userId }}"}\n' >"$T/good.json"
printf '{"id": "{{ image.id }}",}\n' >"$T/bad.json"
printf '{"k": "{{ secrets.key }}"}\n' >"$T/root.json"
printf 'whsec_%s\n' "$(printf 'check-test-key-0123456789' | base64)" >"$T/good.key"
chmod 600 "$T/good.key"
GOOD=http://127.0.0.1:1/ok
ALLOW=CFIMAGES_WEBHOOK_OUTBOUND_ALLOW=http://127.0.0.1:1/

action_file "$HOOKS/uploaded.webhook" \
	'# a good action' \
	"url = $GOOD" \
	'method = PATCH' \
	'header = X-Token: ${env:APP_TOKEN}' \
	"template = $T/good.json" \
	"secret_file = $T/good.key" \
	'timeout = 5'
# BAD: file line (the expected FILE:LINE of each bad file).
BAD=
bad()
{
	BAD="$BAD $1:$2"
	shift 2
	action_file "$@"
}
bad "$D/10-unknown-key.webhook" 3 "$D/10-unknown-key.webhook" \
	'# a key nobody knows' "url = $GOOD" 'colour = blue'
bad "$D/20-bad-url.webhook" 2 "$D/20-bad-url.webhook" \
	'method = POST' 'url = ftp://127.0.0.1:1/ok'
bad "$D/25-file-url.webhook" 1 "$D/25-file-url.webhook" \
	'url = file:///etc/passwd'
bad "$D/30-missing-template.webhook" 3 "$D/30-missing-template.webhook" \
	"url = $GOOD" '' "template = $T/nowhere.json"
bad "$D/40-bad-json.webhook" 2 "$D/40-bad-json.webhook" \
	"url = $GOOD" "template = $T/bad.json"
bad "$D/50-unknown-root.webhook" 4 "$D/50-unknown-root.webhook" \
	'# the template names a root' '# that does not exist' "url = $GOOD" "template = $T/root.json"
bad "$D/60-unreadable-secret.webhook" 2 "$D/60-unreadable-secret.webhook" \
	"url = $GOOD" "secret_file = $T/no-such.key"
bad "$D/70-outside.webhook" 1 "$D/70-outside.webhook" \
	'url = http://10.0.0.1/images' 'method = PUT'
bad "$HOOKS/failed.d/80-bad-method.webhook" 2 "$HOOKS/failed.d/80-bad-method.webhook" \
	"url = $GOOD" 'method = DELETE'
bad "$HOOKS/failed.d/90-bad-header.webhook" 3 "$HOOKS/failed.d/90-bad-header.webhook" \
	"url = $GOOD" '' 'header = no colon here'
bad "$HOOKS/failed.d/91-duplicate-url.webhook" 3 "$HOOKS/failed.d/91-duplicate-url.webhook" \
	"url = $GOOD" '# again' "url = $GOOD/again"
bad "$HOOKS/failed.d/92-bad-timeout.webhook" 2 "$HOOKS/failed.d/92-bad-timeout.webhook" \
	"url = $GOOD" 'timeout = soon'
bad "$HOOKS/failed.d/93-bad-reference.webhook" 2 "$HOOKS/failed.d/93-bad-reference.webhook" \
	"url = $GOOD" 'header = X-Token: ${vault:app/token}'
bad "$HOOKS/failed.d/94-relative-file-reference.webhook" 2 "$HOOKS/failed.d/94-relative-file-reference.webhook" \
	"url = $GOOD" 'header = X-Token: ${file:relative/token}'
bad "$HOOKS/failed.d/95-missing-ca-file.webhook" 3 "$HOOKS/failed.d/95-missing-ca-file.webhook" \
	"url = $GOOD" 'method = PUT' "ca_file = $T/no-such-ca.pem"
action_file "$HOOKS/failed.webhook" 'method = PUT' '# no url at all'

cfw "$ALLOW" APP_TOKEN=t check >"$T/check.out" 2>&1
expect_eq "$?" 1 "check with bad action files"
grep '^problem' "$T/check.out" >"$T/problems"
for fl in $BAD; do
	grep -F -- "$fl" "$T/problems" | grep -q . ||
		fail "check does not report $fl on a problem line"
done
grep -F -- "$HOOKS/failed.webhook" "$T/problems" | grep -q . ||
	fail "check does not report $HOOKS/failed.webhook (no url)"
grep -F -- "$HOOKS/uploaded.webhook" "$T/problems" | grep -q . &&
	fail "check reports the good action: $(grep -F -- "$HOOKS/uploaded.webhook" "$T/problems")"
# Each problem line points at the right line of its file: no other line
# of a bad file is named.
for fl in $BAD; do
	f=${fl%:*}
	grep -F -- "$f:" "$T/problems" | grep -vF -- "$fl" | grep -q . &&
		fail "check names another line of $f: $(grep -F -- "$f:" "$T/problems")"
done
[ "$FAILURES" -eq 0 ] || say "check said: $(cat "$T/check.out")"

# The bad files gone: all is well.
rm -f "$D"/[1-9]*.webhook "$HOOKS/failed.d"/*.webhook "$HOOKS/failed.webhook"
cfw "$ALLOW" APP_TOKEN=t check >"$T/check-good.out" 2>&1
expect_eq "$?" 0 "check with the good action only ($(cat "$T/check-good.out"))"
exit 0
