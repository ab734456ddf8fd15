#!/bin/sh
# `check` and the shared-hosting mistakes (cfimages-webhook(8) COMMANDS,
# SHARED HOSTING): the database, the configuration, secret_file or
# hooks_dir inside the directory the web server serves (DOCUMENT_ROOT when
# set; else a public_html-like name or an .htaccess on the way up), unless
# an .htaccess denies the configuration; a configuration holding the
# secret readable by others; the executable or its directory writable by
# group or others (suEXEC refuses it); and the CA bundle (ca_file, or the
# usual system places): a configured one that cannot be read or holds no
# certificate is a problem, a good one is named.
. "$top_srcdir/tests/lib.sh"

SECRET=check-hosting-secret-0123456789
mkdir -p "$HOOKS" && chmod 0755 "$HOOKS"
init_db

# check_with NAME [VAR=VALUE...]: check with a configuration file $CONF;
# output in $T/NAME.out, exit status in RC.
check_with()
{
	cw_name=$1
	shift
	cfw CFIMAGES_WEBHOOK_CONFIG="$CONF" "$@" check >"$T/$cw_name.out" 2>&1
	RC=$?
}
expect_problem()
{
	expect_eq "$RC" 1 "$1: check exits 1 ($(cat "$T/$1.out"))"
	grep -q "^problem: .*$2" "$T/$1.out" || fail "$1: no problem matching [$2]: $(cat "$T/$1.out")"
}
expect_clean()
{
	expect_eq "$RC" 0 "$1: check exits 0 ($(cat "$T/$1.out"))"
	grep -q "^problem: " "$T/$1.out" && fail "$1: a problem reported: $(cat "$T/$1.out")"
}

# A good layout: config 0600 outside any served directory.
CONF=$T/private/cfimages-webhook.conf
mkdir -p "$T/private"
printf 'secret = %s\n' "$SECRET" >"$CONF"
chmod 0600 "$CONF"
check_with good
expect_clean good
grep -q "^ok: CA bundle " "$T/good.out" || fail "good: the CA bundle is not named: $(cat "$T/good.out")"

# Readable by others while holding the secret.
chmod 0644 "$CONF"
check_with readable
expect_problem readable "configuration $CONF holds the secret and every account on this host can read it"
# Without a secret in it, nothing is lost by reading it.
printf 'log_level = info\n' >"$T/private/nosecret.conf"
chmod 0644 "$T/private/nosecret.conf"
CONF=$T/private/nosecret.conf check_with nosecret CFIMAGES_WEBHOOK_SECRET="$SECRET"
expect_clean nosecret
CONF=$T/private/cfimages-webhook.conf
chmod 0640 "$CONF"

# The database in public_html: found by name, and by DOCUMENT_ROOT.
mkdir -p "$T/public_html/webhook" "$T/site/data"
check_with db-public CFIMAGES_WEBHOOK_DB="$T/public_html/webhook/webhook.db"
expect_problem db-public "database $T/public_html/webhook/webhook.db is inside $T/public_html"
check_with db-docroot CFIMAGES_WEBHOOK_DB="$T/site/data/webhook.db" DOCUMENT_ROOT="$T/site"
expect_problem db-docroot "database $T/site/data/webhook.db is inside $T/site, which the web server serves (DOCUMENT_ROOT)"
check_with db-other-docroot CFIMAGES_WEBHOOK_DB="$T/site/data/webhook.db" DOCUMENT_ROOT="$T/public_html"
expect_eq "$(grep -c '^problem: database .* is inside' "$T/db-other-docroot.out")" 0 \
	"a database outside DOCUMENT_ROOT (a sibling) is not reported"
# A directory with an .htaccess is served.
: >"$T/site/.htaccess"
check_with db-htaccess CFIMAGES_WEBHOOK_DB="$T/site/data/webhook.db"
expect_problem db-htaccess "database $T/site/data/webhook.db is inside $T/site, which the web server serves (it has an .htaccess)"
rm "$T/site/.htaccess"

# hooks_dir and secret_file in the document root.
mkdir -p "$T/public_html/hooks" && chmod 0755 "$T/public_html/hooks"
check_with hooks-public CFIMAGES_WEBHOOK_HOOKS_DIR="$T/public_html/hooks"
expect_problem hooks-public "hooks_dir $T/public_html/hooks is inside $T/public_html"
printf '%s\n' "$SECRET" >"$T/public_html/secrets" && chmod 0600 "$T/public_html/secrets"
check_with secret-public CFIMAGES_WEBHOOK_SECRET_FILE="$T/public_html/secrets"
expect_problem secret-public "secret_file $T/public_html/secrets is inside $T/public_html"
chmod 0644 "$T/public_html/secrets"
mv "$T/public_html/secrets" "$T/private/secrets"
check_with secret-readable CFIMAGES_WEBHOOK_SECRET_FILE="$T/private/secrets"
grep -q "^warning: secret_file $T/private/secrets is readable by every account" "$T/secret-readable.out" ||
	fail "secret-readable: $(cat "$T/secret-readable.out")"

# The config beside the binary in public_html: a problem, until the
# .htaccess beside it denies it (as contrib/htaccess-cgi does).
CONF=$T/public_html/webhook/cfimages-webhook.conf
printf 'secret = %s\n' "$SECRET" >"$CONF" && chmod 0600 "$CONF"
check_with conf-public
expect_problem conf-public "configuration $CONF is inside $T/public_html, which the web server serves (a document root's usual name), and no .htaccess denies it"
printf '<Files "other.conf">\n\tRequire all denied\n</Files>\n' >"$T/public_html/webhook/.htaccess"
check_with conf-other-denied
expect_problem conf-other-denied "configuration $CONF is inside"
cp "$top_srcdir/contrib/htaccess-cgi" "$T/public_html/webhook/.htaccess"
check_with conf-denied
expect_clean conf-denied
grep -q "^ok: configuration $CONF is inside the served directory $T/public_html.*, and an .htaccess denies it" \
	"$T/conf-denied.out" || fail "conf-denied: $(cat "$T/conf-denied.out")"
# A FilesMatch (a regular expression) and the old Deny syntax count too.
printf '<FilesMatch "\\.conf$">\n  Order allow,deny\n  Deny from all\n</FilesMatch>\n' >"$T/public_html/webhook/.htaccess"
check_with conf-filesmatch
expect_clean conf-filesmatch
CONF=$T/private/cfimages-webhook.conf

# suEXEC: the executable or its directory writable by the group.
mkdir -p "$T/bin"
chmod 0755 "$T/bin"
cp "$CFW_BIN" "$T/bin/webhook.fcgi"
BIN_SAVED=$CFW_BIN
CFW_BIN=$T/bin/webhook.fcgi
chmod 0775 "$T/bin/webhook.fcgi"
check_with suexec-bin
expect_problem suexec-bin "executable $T/bin/webhook.fcgi is writable by its group: suEXEC refuses to run it"
chmod 0755 "$T/bin/webhook.fcgi"
chmod 0777 "$T/bin"
check_with suexec-dir
expect_problem suexec-dir "directory $T/bin of the executable is writable by others"
chmod 0755 "$T/bin"
check_with suexec-ok
expect_clean suexec-ok
CFW_BIN=$BIN_SAVED

# ca_file: a configured bundle must be readable and hold a certificate.
check_with ca-missing CFIMAGES_WEBHOOK_CA_FILE="$T/no-such.pem"
expect_problem ca-missing "ca_file $T/no-such.pem: No such file or directory"
printf 'not a certificate\n' >"$T/empty.pem"
check_with ca-empty CFIMAGES_WEBHOOK_CA_FILE="$T/empty.pem"
expect_problem ca-empty "ca_file $T/empty.pem: holds no PEM certificate"
# A certificate after more than one read's worth of comments still counts.
{
	i=0
	while [ "$i" -lt 200 ]; do
		echo "# a comment line of the bundle, long enough to fill the reads: $i"
		i=$((i + 1))
	done
	printf -- '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
} >"$T/bundle.pem"
check_with ca-good CFIMAGES_WEBHOOK_CA_FILE="$T/bundle.pem"
expect_clean ca-good
grep -q "^ok: CA bundle $T/bundle.pem (ca_file)" "$T/ca-good.out" || fail "ca-good: $(cat "$T/ca-good.out")"
grep -q -F "$SECRET" "$T"/*.out && fail "check printed the secret"
exit 0
