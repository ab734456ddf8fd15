#!/bin/sh
# The binary behind a real Apache, as shared hosting runs it (cfimages-webhook(8)-4).
#
# A private Apache (its own ServerRoot, PidFile, logs and port on
# 127.0.0.1) with mod_fcgid.  A site directory, /hosting/, holds a copy of
# the binary as webhook.fcgi, its settings in cfimages-webhook.conf NEXT TO
# it (the configuration must be found beside the executable, cfimages-webhook.conf(5)) and
# contrib/htaccess-cgi as its .htaccess.  Checked through curl: a signed
# delivery is applied (200 OK, image status in the database), a duplicate
# is OK, no signature is 401, a wrong one 401, GET is 405 with Allow: POST,
# bad JSON is 400, a body above max_body is 413, an unknown id 404; neither
# a request header nor an .htaccess SetEnv can choose the database in
# FastCGI mode (the request's parameters are never settings); the
# .htaccess keeps the config file (and its secret) from being served and
# maps /hosting/webhook to the binary.  Then the binary under mod_cgi at
# /cgi/webhook.cgi, where an Apache SetEnv IS a setting (CGI: the process
# environment is what the server sets) and beats the config file beside
# the executable.
#
# As root, Apache runs its children as nobody: the temporary directory is
# made traversable and the database directory writable for that user.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/serverlib.sh"

APACHE2=${APACHE2:-}
CURL=${CURL:-}
[ -n "$APACHE2" ] && [ -x "$APACHE2" ] || skip "no apache2 (APACHE2 is empty)"
[ -n "$CURL" ] && [ -x "$CURL" ] || skip "no curl (CURL is empty)"
MODULES=${APACHE_MODULES:-/usr/lib/apache2/modules}
command -v setsid >/dev/null 2>&1 || skip "no setsid (util-linux)"
for m in mpm_prefork authz_core alias env headers mime rewrite fcgid cgi; do
	[ -f "$MODULES/mod_$m.so" ] || skip "no mod_$m in $MODULES"
done

SECRET=apache-test-secret
# Seconds to wait for Apache to answer, and for it to stop.
START_SECONDS=10
STOP_SECONDS=10

# Apache's children (and so the FastCGI application) run as APACHE_USER.
if [ "$(id -u)" -eq 0 ]; then
	APACHE_USER=nobody
	APACHE_GROUP=$(id -gn nobody 2>/dev/null) || skip "no user nobody to run Apache as"
	USER_LINES="User $APACHE_USER
Group $APACHE_GROUP"
	chmod 0755 "$T"
	if command -v setpriv >/dev/null 2>&1 &&
		! setpriv --reuid="$APACHE_USER" --regid="$APACHE_GROUP" --clear-groups \
			test -x "$T" 2>/dev/null; then
		skip "$APACHE_USER cannot reach $T (set TMPDIR to a world-traversable directory)"
	fi
else
	APACHE_USER=$(id -un)
	USER_LINES=
fi

# The shared-hosting layout: a directory of the site holding the binary as
# webhook.fcgi, its cfimages-webhook.conf and contrib/htaccess-cgi as
# .htaccess; the database and hooks outside the document root.
SITE=$T/htdocs/hosting
mkdir -p "$T/logs" "$SITE" "$T/cgi" "$T/data" "$T/fcgid" "$HOOKS" ||
	hard_error "mkdir failed"
# The database lives in a directory of its own, writable by the Apache
# user (SQLite creates -wal and -shm beside it).
DB=$T/data/webhook.db
CGI_DB=$T/data/cgi.db
CONF_DB=$T/data/conf.db
SETENV_DB=$T/data/setenv.db

# No CFIMAGES_WEBHOOK_* variable reaches a mod_fcgid application unless
# FcgidInitialEnv says so: the file beside the executable is its only
# source of settings.
cp "$CFW_BIN" "$SITE/webhook.fcgi" || hard_error "cannot copy the binary"
cat >"$SITE/cfimages-webhook.conf" <<EOF
# found beside webhook.fcgi (cfimages-webhook.conf(5))
secret = $SECRET
db = $DB
hooks_dir = $HOOKS
log_level = debug
EOF
# The .htaccess of contrib/, plus lines trying to move the database: in
# FastCGI mode SetEnv becomes a request parameter, and parameters are
# never settings.  The header proves the file was in force.
HTACCESS=$top_srcdir/contrib/htaccess-cgi
[ -f "$HTACCESS" ] || hard_error "no $HTACCESS"
{
	cat "$HTACCESS"
	cat <<EOF
SetEnv CFIMAGES_WEBHOOK_DB $SETENV_DB
SetEnv CFIMAGES_WEBHOOK_HOOKS_DIR $T
SetEnv CFIMAGES_WEBHOOK_AUTO_REGISTER yes
Header always set X-Htaccess-Read yes
EOF
} >"$SITE/.htaccess"

# The CGI copy: its config file names one database, Apache's SetEnv
# another, and the environment wins.
cp "$CFW_BIN" "$T/cgi/webhook.cgi" || hard_error "cannot copy the binary"
cat >"$T/cgi/cfimages-webhook.conf" <<EOF
secret = $SECRET
db = $CONF_DB
hooks_dir = $HOOKS
EOF

# The databases, created and registered beforehand, owned by the Apache user.
init_db img-fcgid img-evil img-rewrite
DB=$CGI_DB
init_db img-cgi
DB=$T/data/webhook.db
chown -R "$APACHE_USER" "$T/data" "$T/fcgid" || hard_error "cannot chown to $APACHE_USER"

# write_conf: httpd.conf for PORT; with mod_fcgid unless NO_FCGID is set.
write_conf()
{
	if [ -n "${NO_FCGID:-}" ]; then
		FCGID_LOAD="# (no mod_fcgid)"
	else
		FCGID_LOAD="LoadModule fcgid_module \"$MODULES/mod_fcgid.so\""
	fi
	cat >"$T/httpd.conf" <<EOF
ServerRoot "$T"
ServerName 127.0.0.1
Listen 127.0.0.1:$PORT
PidFile "$T/logs/httpd.pid"
ErrorLog "$T/logs/error.log"
LogLevel warn
LogFormat "%h \"%r\" %>s %b" short
CustomLog "$T/logs/access.log" short
$USER_LINES
LoadModule mpm_prefork_module "$MODULES/mod_mpm_prefork.so"
LoadModule authz_core_module "$MODULES/mod_authz_core.so"
LoadModule alias_module "$MODULES/mod_alias.so"
LoadModule env_module "$MODULES/mod_env.so"
LoadModule headers_module "$MODULES/mod_headers.so"
LoadModule mime_module "$MODULES/mod_mime.so"
LoadModule rewrite_module "$MODULES/mod_rewrite.so"
$FCGID_LOAD
LoadModule cgi_module "$MODULES/mod_cgi.so"
StartServers 2
MinSpareServers 1
MaxSpareServers 4
TypesConfig /dev/null
DocumentRoot "$T/htdocs"
AccessFileName .htaccess

<IfModule mod_fcgid.c>
LogLevel warn fcgid:info
FcgidIPCDir "$T/fcgid"
FcgidProcessTableFile "$T/fcgid/shm"
FcgidMaxProcesses 4
FcgidIOTimeout 20
# above max_body, so that the binary's own 413 is what a sender sees
FcgidMaxRequestLen 4194304
</IfModule>

<Directory />
	AllowOverride None
	Require all denied
</Directory>
<Directory "$T/htdocs">
	AllowOverride FileInfo AuthConfig Options=ExecCGI,Indexes
	Options -ExecCGI
	Require all granted
</Directory>

ScriptAlias /cgi/ "$T/cgi/"
<Directory "$T/cgi">
	SetEnv CFIMAGES_WEBHOOK_DB $CGI_DB
	Require all granted
</Directory>
EOF
}

# Starts Apache on a free port (another try with another port when the
# bind fails), waits until it answers.
APACHE_PID=
start_apache()
{
	sa_try=0
	while [ "$sa_try" -lt 3 ]; do
		PORT=$(free_port)
		write_conf
		# A session of its own: on shutdown Apache signals its whole
		# process group, which would otherwise be this test and make.
		setsid "$APACHE2" -f "$T/httpd.conf" -DFOREGROUND >"$T/logs/stdout" 2>&1 &
		APACHE_PID=$!
		register_pid "$APACHE_PID"
		sa_waited=0
		while [ "$sa_waited" -lt $((START_SECONDS * 10)) ]; do
			if ! alive "$APACHE_PID"; then
				break
			fi
			sa_code=$("$CURL" -s -o /dev/null -m 2 -w '%{http_code}' \
				"http://127.0.0.1:$PORT/")
			if [ "$sa_code" != "000" ]; then
				return 0
			fi
			sleep 0.1
			sa_waited=$((sa_waited + 1))
		done
		if alive "$APACHE_PID"; then
			hard_error "Apache did not answer within $START_SECONDS s: $(tail -5 "$T/logs/error.log" 2>/dev/null)"
		fi
		wait "$APACHE_PID" 2>/dev/null
		unregister_pid "$APACHE_PID"
		if ! grep -q -i "address already in use" "$T/logs/stdout" "$T/logs/error.log" 2>/dev/null; then
			hard_error "Apache did not start: $(cat "$T/logs/stdout"; tail -5 "$T/logs/error.log" 2>/dev/null)"
		fi
		sa_try=$((sa_try + 1))
	done
	hard_error "Apache could not bind a port"
}

# Stops Apache by the PID in its PidFile (the one we started), and waits
# until it and its children are gone.
stop_apache()
{
	st_pid=$(cat "$T/logs/httpd.pid" 2>/dev/null)
	[ -n "$st_pid" ] || st_pid=$APACHE_PID
	kill -TERM "$st_pid" 2>/dev/null
	st_waited=0
	while alive "$APACHE_PID" && [ "$st_waited" -lt $((STOP_SECONDS * 10)) ]; do
		sleep 0.1
		st_waited=$((st_waited + 1))
	done
	if alive "$APACHE_PID"; then
		fail "Apache did not stop within $STOP_SECONDS s"
		kill -KILL "$APACHE_PID" 2>/dev/null
	fi
	wait "$APACHE_PID" 2>/dev/null
	unregister_pid "$APACHE_PID"
}

# The binary's stderr is in Apache's error log: no crash, no sanitizer report.
check_error_log()
{
	if grep -q "AH00052\|segfault\|exit signal\|AddressSanitizer\|runtime error" "$T/logs/error.log"; then
		fail "error.log: $(grep "AH00052\|segfault\|exit signal\|AddressSanitizer\|runtime error" "$T/logs/error.log" | head -3)"
	fi
	grep -q -F -e "$SECRET" "$T/logs/error.log" && fail "the secret appears in Apache's error log"
	expect_no_secret "$SECRET"
}

start_apache
say "Apache $APACHE_PID on 127.0.0.1:$PORT, children as $APACHE_USER"

# --- FastCGI (mod_fcgid) ---------------------------------------------------
write_file "$T/ok.json" '{"id":"img-fcgid","uploaded":"2024-01-01T12:00:00.000Z"}'
signed_post /hosting/webhook.fcgi "$T/ok.json"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status img-fcgid)" uploaded "mod_fcgid: the image status after a signed delivery"
expect_eq "$(last_delivery scheme)" "'hex'" "mod_fcgid: the scheme of the delivery"

# The same delivery again: a duplicate, answered OK, image untouched.
signed_post /hosting/webhook.fcgi "$T/ok.json"
expect_answer 200 OK
expect_one_delivery duplicate 200
expect_sql "SELECT group_concat(event_type, ' ') FROM (SELECT event_type FROM cloudflare_image_logs WHERE image_id = 'img-fcgid' ORDER BY id)" \
	"registered status_changed duplicate" "mod_fcgid: the log rows of img-fcgid"

http POST /hosting/webhook.fcgi "$T/ok.json"
expect_rejected 401 "Missing signature" missing_signature

http GET /hosting/webhook.fcgi ""
expect_rejected 405 "Method not allowed" method_not_allowed
expect_eq "$(header Allow)" POST "mod_fcgid: the Allow header of a 405"

write_file "$T/bad.json" '{"id":"img-fcgid",'
signed_post /hosting/webhook.fcgi "$T/bad.json"
expect_rejected 400 "Invalid JSON" invalid_json

# Wrong secret: 401 Invalid signature.
http POST /hosting/webhook.fcgi "$T/ok.json" -H "X-Signature: $(sign_hex wrong "$T/ok.json")"
expect_rejected 401 "Invalid signature" invalid_signature

# A header named like a setting arrives as HTTP_CFIMAGES_WEBHOOK_DB, and
# the .htaccess SetEnv as CFIMAGES_WEBHOOK_DB: neither is a setting.
write_file "$T/evil.json" '{"id":"img-evil","uploaded":"2024-01-01T12:00:00.000Z"}'
signed_post /hosting/webhook.fcgi "$T/evil.json" -H "Cfimages-Webhook-Db: $SETENV_DB" \
	-H "Cfimages-Webhook-Secret: x" -H "Cfimages-Webhook-Auto-Register: yes"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status img-evil)" uploaded "mod_fcgid: the delivery with a Cfimages-Webhook-Db header went to the configured database"
# (the .htaccess with its SetEnv lines was in force for that request)
expect_eq "$(header X-Htaccess-Read)" yes "mod_fcgid: the .htaccess was read"
[ -e "$SETENV_DB" ] && fail "mod_fcgid: a request parameter created $SETENV_DB"
# Not auto-registered either: an unknown id is still 404.
write_file "$T/unknown.json" '{"id":"img-unknown","uploaded":"2024-01-01T12:00:00.000Z"}'
signed_post /hosting/webhook.fcgi "$T/unknown.json" -H "Cfimages-Webhook-Auto-Register: yes"
expect_rejected 404 "Image not found" not_found

# Larger than max_body (1 MiB): the binary's own 413, from CONTENT_LENGTH.
head -c 1200000 /dev/zero | tr '\0' ' ' >"$T/big.json"
signed_post /hosting/webhook.fcgi "$T/big.json"
expect_rejected 413 "Payload too large" payload_too_large

# The .htaccess: the configuration is not served, the short URL works.
http GET /hosting/cfimages-webhook.conf ""
expect_eq "$STATUS" 403 "GET of the config file beside the binary"
grep -q -F "$SECRET" "$CGI_OUT.body" && fail "the config file (with the secret) was served"
write_file "$T/rewrite.json" '{"id":"img-rewrite","uploaded":"2024-01-01T12:00:00.000Z"}'
signed_post /hosting/webhook "$T/rewrite.json"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status img-rewrite)" uploaded "mod_rewrite: /hosting/webhook reached the binary"

# mod_fcgid really ran it as FastCGI: one process answered several requests.
n_fcgid=$(grep -c "/hosting/webhook" "$T/logs/access.log" 2>/dev/null)
grep -q "mod_fcgid: server .*webhook.fcgi.* started" "$T/logs/error.log" ||
	fail "mod_fcgid did not start the application (error.log: $(tail -5 "$T/logs/error.log"))"
n_started=$(grep -c "mod_fcgid: server .*webhook.fcgi.* started" "$T/logs/error.log")
[ "$n_started" -lt "$n_fcgid" ] ||
	fail "mod_fcgid started $n_started processes for $n_fcgid requests: no accept loop?"

# --- CGI (mod_cgi) ---------------------------------------------------------
DB=$CGI_DB
write_file "$T/cgi.json" '{"id":"img-cgi","uploaded":"2024-01-01T12:00:00.000Z"}'
signed_post /cgi/webhook.cgi "$T/cgi.json"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status img-cgi)" uploaded "mod_cgi: SetEnv CFIMAGES_WEBHOOK_DB chose the database"
[ -e "$CONF_DB" ] && fail "mod_cgi: the config file's db was used although SetEnv overrides it"

http GET /cgi/webhook.cgi ""
expect_rejected 405 "Method not allowed" method_not_allowed
expect_eq "$(header Allow)" POST "mod_cgi: the Allow header of a 405"

http POST /cgi/webhook.cgi "$T/cgi.json"
expect_rejected 401 "Missing signature" missing_signature

# An ISINDEX-style query string becomes argv under mod_cgi: still CGI.
signed_post "/cgi/webhook.cgi?init" "$T/bad.json"
expect_rejected 400 "Invalid JSON" invalid_json

[ -e "$SETENV_DB" ] && fail "$SETENV_DB exists"
stop_apache
check_error_log

# --- the same site without mod_fcgid: CGI ---------------------------------
# The .htaccess falls back to cgi-script for .fcgi, and the very SetEnv
# lines FastCGI ignored are now the process environment: settings that
# beat the file beside the binary (cfimages-webhook.conf(5)).  The delivery lands in
# SETENV_DB, its unknown id auto-registered.
NO_FCGID=yes
: >"$T/logs/error.log"
start_apache
say "Apache $APACHE_PID on 127.0.0.1:$PORT without mod_fcgid"
DB=$SETENV_DB
write_file "$T/setenv.json" '{"id":"img-setenv","uploaded":"2024-01-01T12:00:00.000Z"}'
signed_post /hosting/webhook.fcgi "$T/setenv.json"
expect_answer 200 OK
expect_eq "$(image_status img-setenv)" uploaded "CGI: the .htaccess SetEnv chose the database and auto_register"
expect_eq "$(last_delivery reason)" "'applied'" "CGI: the delivery row in the SetEnv database"
http GET /hosting/webhook ""
expect_rejected 405 "Method not allowed" method_not_allowed
grep -q "mod_fcgid" "$T/logs/error.log" && fail "mod_fcgid ran although it was not loaded"
stop_apache
check_error_log
exit 0
