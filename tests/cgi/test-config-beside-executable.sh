#!/bin/sh
# cfimages-webhook.conf(5): with no --config and no CFIMAGES_WEBHOOK_CONFIG, the
# configuration is cfimages-webhook.conf in the directory of the executable
# itself (the shared-hosting place, next to the .fcgi); the process
# environment still wins over it.  (The other databases named to show
# which setting won are SQLite files in both passes.)
. "$top_srcdir/tests/lib.sh"

SECRET=beside-s3cret
mkdir -p "$T/site"
cp "$CFW_BIN" "$T/site/cfimages-webhook" || hard_error "cannot copy the binary"
[ "$BACKEND" = sqlite ] && DB=$T/site-data.db
cat >"$T/site/cfimages-webhook.conf" <<CONF
# next to the executable
secret = $SECRET
db = $DB
hooks_dir = $HOOKS
auto_register = yes
CONF
CFW_BIN=$T/site/cfimages-webhook
CGI_BARE=1

write_file "$T/json" '{"id":"from-beside","uploaded":"2024-01-01T12:00:00Z"}'
# The secret of the file beside the executable is required...
cgi POST "$T/json"
expect_answer 401 "Missing signature"
# ... and verifies; db and auto_register come from it too.
cgi POST "$T/json" HTTP_X_SIGNATURE="$(sign_hex "$SECRET" "$T/json")"
expect_answer 200 OK
expect_eq "$(image_status from-beside)" uploaded "applied to the db named beside the executable"
expect_eq "$(last_delivery scheme)" "'hex'" "authenticated with the file's secret"

# The environment wins over the file.
write_file "$T/json2" '{"id":"second","uploaded":"2024-01-01T12:00:00Z"}'
cgi POST "$T/json2" CFIMAGES_WEBHOOK_SECRET=env-secret HTTP_X_SIGNATURE="$(sign_hex "$SECRET" "$T/json2")"
expect_answer 401 "Invalid signature"
cgi POST "$T/json2" CFIMAGES_WEBHOOK_SECRET=env-secret HTTP_X_SIGNATURE="$(sign_hex env-secret "$T/json2")"
expect_answer 200 OK
cgi POST "$T/json2" CFIMAGES_WEBHOOK_AUTO_REGISTER=no CFIMAGES_WEBHOOK_DB="$T/other.db" \
	HTTP_X_SIGNATURE="$(sign_hex "$SECRET" "$T/json2")"
expect_answer 404 "Image not found"
[ -f "$T/other.db" ] || fail "CFIMAGES_WEBHOOK_DB did not win over the file's db"

# CFIMAGES_WEBHOOK_CONFIG wins over the file beside the executable.
printf 'db = %s\n' "$T/named.db" >"$T/named.conf"
cgi POST "$T/json" CFIMAGES_WEBHOOK_CONFIG="$T/named.conf"
expect_answer 404 "Image not found"
[ -f "$T/named.db" ] || fail "CFIMAGES_WEBHOOK_CONFIG did not win over the file beside the executable"

# The operator commands find the same file.
expect_eq "$(env -i PATH="$CGI_PATH" "$CFW_BIN" show from-beside | sed -n 's/.*"status":"\([a-z]*\)".*/\1/p')" \
	uploaded "show reads the configuration beside the executable"

# A broken file beside the executable: 500.
printf 'db = %s\nbogus = 1\n' "$DB" >"$T/site/cfimages-webhook.conf"
cgi POST "$T/json"
expect_answer 500 "Internal server error"
grep -q "cfimages-webhook.conf" "$CGI_ERR" || fail "the broken file is not named"
expect_no_secret "$SECRET"
