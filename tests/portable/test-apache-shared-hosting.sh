#!/bin/sh
# The portable tarball installed on "shared hosting" exactly as its INSTALL
# says (cfimages-webhook(8) PORTABLE BUILD): a private Apache 2.4 on
# 127.0.0.1 with mod_fcgid and mod_cgid, the user's public_html as its
# document root with AllowOverride, ~/public_html/webhook/ holding
# webhook.fcgi, cfimages-webhook.conf (0640, the web server's group: Apache
# runs the program as its own user here, not through suEXEC) and
# htaccess-fcgid as .htaccess, ~/public_html/cgi-webhook/ the same with
# htaccess-cgi, and the database and the sample hooks in
# ~/cfimages-webhook, outside the document root.  Checked: `check` finds
# nothing wrong with that layout; signed deliveries are applied through
# mod_fcgid (one process for several requests) and through mod_cgid; the
# sample hook runs for each; the FastCGI process maps no shared library at
# all; the config, INSTALL and the rest are not served; `show` from the
# command line sees the result.
#
# Run by `make check-portable` (CFW_PORTABLE_TARBALL names the tarball).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/serverlib.sh"

TARBALL=${CFW_PORTABLE_TARBALL:-}
[ -n "$TARBALL" ] || skip "CFW_PORTABLE_TARBALL is not set (make check-portable runs this)"
[ -f "$TARBALL" ] || hard_error "no $TARBALL"
APACHE2=${APACHE2:-}
CURL=${CURL:-}
[ -n "$APACHE2" ] && [ -x "$APACHE2" ] || skip "no apache2 (APACHE2 is empty)"
[ -n "$CURL" ] && [ -x "$CURL" ] || skip "no curl (CURL is empty)"
MODULES=${APACHE_MODULES:-/usr/lib/apache2/modules}
command -v setsid >/dev/null 2>&1 || skip "no setsid (util-linux)"
for m in mpm_prefork authz_core mime rewrite fcgid cgid; do
	[ -f "$MODULES/mod_$m.so" ] || skip "no mod_$m in $MODULES"
done
[ "$(id -u)" -eq 0 ] || skip "needs root (Apache's children run as nobody)"
APACHE_USER=nobody
APACHE_GROUP=$(id -gn nobody 2>/dev/null) || skip "no user nobody to run Apache as"
chmod 0755 "$T"

SECRET=shared-hosting-secret-0123456789abcdef
START_SECONDS=10
STOP_SECONDS=10

# --- install, as INSTALL says ------------------------------------------------
HOME_DIR=$T/home/user
NAME=$(basename "$TARBALL" .tar.gz)
mkdir -p "$HOME_DIR" "$T/logs" "$T/run" && chown "$APACHE_USER" "$T/run" || hard_error "mkdir failed"
chmod 0755 "$T/home" "$HOME_DIR"
(cd "$(dirname "$TARBALL")" && sha256sum -c --quiet "$NAME.tar.gz.sha256") ||
	fail "the tarball's .sha256 does not match"
tar -xzf "$TARBALL" -C "$HOME_DIR" || hard_error "cannot unpack $TARBALL"
PKG=$HOME_DIR/$NAME
(cd "$PKG" && sha256sum -c --quiet SHA256SUMS) || fail "SHA256SUMS does not match the files"
for f in webhook.fcgi cfimages-webhook.conf htaccess-fcgid htaccess-cgi INSTALL SOURCES \
	hooks/uploaded man/cfimages-webhook.8.txt man/cfimages-webhook.conf.5.txt; do
	[ -s "$PKG/$f" ] || fail "the tarball has no $f"
done
DOCROOT=$HOME_DIR/public_html
DATA=$HOME_DIR/cfimages-webhook
mkdir -p "$DOCROOT/webhook" "$DOCROOT/cgi-webhook" "$DATA/hooks"
cp "$PKG/webhook.fcgi" "$PKG/cfimages-webhook.conf" "$DOCROOT/webhook/"
cp "$PKG/htaccess-fcgid" "$DOCROOT/webhook/.htaccess"
cp "$PKG/webhook.fcgi" "$PKG/cfimages-webhook.conf" "$DOCROOT/cgi-webhook/"
cp "$PKG/htaccess-cgi" "$DOCROOT/cgi-webhook/.htaccess"
cp -R "$PKG"/hooks/. "$DATA/hooks/"
DB=$DATA/webhook.db
HOOKS=$DATA/hooks
for site in webhook cgi-webhook; do
	conf=$DOCROOT/$site/cfimages-webhook.conf
	sed -e "s|^secret = .*|secret = $SECRET|" -e "s|/home/USER|$HOME_DIR|" "$conf" >"$conf.new" &&
		cat "$conf.new" >"$conf" && rm -f "$conf.new" || hard_error "cannot edit $conf"
	chmod 0755 "$DOCROOT/$site" "$DOCROOT/$site/webhook.fcgi"
	# Apache runs the program as its own user: 0640 and its group.
	chgrp "$APACHE_GROUP" "$conf" && chmod 0640 "$conf"
done
chmod 0755 "$DOCROOT" "$DATA/hooks" "$DATA"/hooks/uploaded "$DATA"/hooks/failed
grep -q "^db = $DB\$" "$DOCROOT/webhook/cfimages-webhook.conf" ||
	fail "the shipped config has no db line to edit: $(cat "$DOCROOT/webhook/cfimages-webhook.conf")"
CFW_BIN=$DOCROOT/webhook/webhook.fcgi
EMPTY_CONF=$DOCROOT/webhook/cfimages-webhook.conf
init_db img-fcgid img-cgi
# The database directory belongs to the user the program runs as.
chown "$APACHE_USER" "$DATA" "$DB" && chmod 0700 "$DATA" && chmod 0711 "$DATA" ||
	hard_error "cannot chown $DATA"

# `check`, as INSTALL says, finds nothing wrong.
(cd "$DOCROOT/webhook" && DOCUMENT_ROOT=$DOCROOT ./webhook.fcgi check) >"$T/check.out" 2>&1
expect_eq $? 0 "check on the installed layout: $(cat "$T/check.out")"
grep -q "^ok: configuration .* an .htaccess denies it" "$T/check.out" ||
	fail "check did not see the .htaccess protecting the config: $(cat "$T/check.out")"

# --- Apache ----------------------------------------------------------------
write_conf()
{
	cat >"$T/httpd.conf" <<CONF
ServerRoot "$T"
ServerName 127.0.0.1
Listen 127.0.0.1:$PORT
PidFile "$T/logs/httpd.pid"
ErrorLog "$T/logs/error.log"
LogLevel warn
User $APACHE_USER
Group $APACHE_GROUP
LoadModule mpm_prefork_module "$MODULES/mod_mpm_prefork.so"
LoadModule authz_core_module "$MODULES/mod_authz_core.so"
LoadModule mime_module "$MODULES/mod_mime.so"
LoadModule rewrite_module "$MODULES/mod_rewrite.so"
LoadModule fcgid_module "$MODULES/mod_fcgid.so"
LoadModule cgid_module "$MODULES/mod_cgid.so"
ScriptSock "$T/run/cgid.sock"
StartServers 2
MinSpareServers 1
MaxSpareServers 4
TypesConfig /dev/null
DocumentRoot "$DOCROOT"
AccessFileName .htaccess
LogLevel warn fcgid:info
FcgidIPCDir "$T/run"
FcgidProcessTableFile "$T/run/fcgid-shm"
FcgidMaxProcesses 4
FcgidIOTimeout 20
<Directory />
	AllowOverride None
	Require all denied
</Directory>
<Directory "$DOCROOT">
	AllowOverride FileInfo AuthConfig Options
	Options -ExecCGI
	Require all granted
</Directory>
CONF
}

APACHE_PID=
start_apache()
{
	sa_try=0
	while [ "$sa_try" -lt 3 ]; do
		PORT=$(free_port)
		write_conf
		setsid "$APACHE2" -f "$T/httpd.conf" -DFOREGROUND >"$T/logs/stdout" 2>&1 &
		APACHE_PID=$!
		register_pid "$APACHE_PID"
		sa_waited=0
		while [ "$sa_waited" -lt $((START_SECONDS * 10)) ] && alive "$APACHE_PID"; do
			sa_code=$("$CURL" -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$PORT/")
			[ "$sa_code" != "000" ] && return 0
			sleep 0.1
			sa_waited=$((sa_waited + 1))
		done
		alive "$APACHE_PID" &&
			hard_error "Apache did not answer within $START_SECONDS s: $(tail -5 "$T/logs/error.log" 2>/dev/null)"
		wait "$APACHE_PID" 2>/dev/null
		unregister_pid "$APACHE_PID"
		grep -q -i "address already in use" "$T/logs/stdout" "$T/logs/error.log" 2>/dev/null ||
			hard_error "Apache did not start: $(cat "$T/logs/stdout"; tail -5 "$T/logs/error.log" 2>/dev/null)"
		sa_try=$((sa_try + 1))
	done
	hard_error "Apache could not bind a port"
}

stop_apache()
{
	st_pid=$(cat "$T/logs/httpd.pid" 2>/dev/null)
	kill -TERM "${st_pid:-$APACHE_PID}" 2>/dev/null
	wait_gone "$APACHE_PID" $((STOP_SECONDS * 10)) || {
		fail "Apache did not stop within $STOP_SECONDS s"
		kill -KILL "$APACHE_PID" 2>/dev/null
	}
	wait "$APACHE_PID" 2>/dev/null
	unregister_pid "$APACHE_PID"
}

# hook_logged ID: waits (at most 20 s) until the sample hook logged ID.
hook_logged()
{
	hl_i=0
	while [ "$hl_i" -lt 200 ]; do
		grep -q -F " $1: " "$DATA/hooks.log" 2>/dev/null && return 0
		sleep 0.1
		hl_i=$((hl_i + 1))
	done
	return 1
}

start_apache
say "Apache $APACHE_PID on 127.0.0.1:$PORT, children as $APACHE_USER"

# --- mod_fcgid -------------------------------------------------------------
write_file "$T/fcgid.json" '{"id":"img-fcgid","uploaded":"2024-01-01T12:00:00.000Z"}'
signed_post /webhook/webhook.fcgi "$T/fcgid.json"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status img-fcgid)" uploaded "mod_fcgid: the image after a signed delivery"
hook_logged img-fcgid || fail "mod_fcgid: the sample hook did not run ($(cat "$DATA/hooks.log" 2>/dev/null))"
signed_post /webhook/webhook "$T/fcgid.json"
expect_answer 200 OK
expect_one_delivery duplicate 200
http POST /webhook/webhook.fcgi "$T/fcgid.json"
expect_rejected 401 "Missing signature" missing_signature
grep -q "mod_fcgid: server .*webhook.fcgi.* started" "$T/logs/error.log" ||
	fail "mod_fcgid did not start the application: $(tail -5 "$T/logs/error.log")"
expect_eq "$(grep -c "mod_fcgid: server .*webhook.fcgi.* started" "$T/logs/error.log")" 1 \
	"mod_fcgid processes started for three requests"

# The FastCGI process maps no shared library: only the binary itself.
FCGI_PIDS=
for p in /proc/[0-9]*; do
	[ "$(readlink "$p/exe" 2>/dev/null)" = "$DOCROOT/webhook/webhook.fcgi" ] &&
		FCGI_PIDS="$FCGI_PIDS ${p#/proc/}"
done
[ -n "$FCGI_PIDS" ] || fail "no running webhook.fcgi process found"
for pid in $FCGI_PIDS; do
	libs=$(awk '$6 ~ /\.so/ { print $6 }' "/proc/$pid/maps" | sort -u)
	expect_eq "$libs" "" "shared libraries mapped by the FastCGI process $pid"
done

# Nothing but the program is served from the site directory.
for f in cfimages-webhook.conf .htaccess; do
	http GET "/webhook/$f" ""
	expect_eq "$STATUS" 403 "GET /webhook/$f"
done
grep -q -F "$SECRET" "$T"/http.*.body && fail "the secret was served"

# --- mod_cgid ----------------------------------------------------------------
write_file "$T/cgi.json" '{"id":"img-cgi","uploaded":"2024-01-01T12:00:00.000Z"}'
signed_post /cgi-webhook/webhook.fcgi "$T/cgi.json"
expect_answer 200 OK
expect_one_delivery applied 200
expect_eq "$(image_status img-cgi)" uploaded "mod_cgid: the image after a signed delivery"
hook_logged img-cgi || fail "mod_cgid: the sample hook did not run ($(cat "$DATA/hooks.log" 2>/dev/null))"
http GET /cgi-webhook/webhook.fcgi ""
expect_rejected 405 "Method not allowed" method_not_allowed
http GET /cgi-webhook/cfimages-webhook.conf ""
expect_eq "$STATUS" 403 "GET /cgi-webhook/cfimages-webhook.conf"
grep -q "mod_fcgid: server .*cgi-webhook.* started" "$T/logs/error.log" &&
	fail "htaccess-cgi ran the program through mod_fcgid"

wait_hook_runners || fail "the hook runs did not finish within 10 s"
expect_sql "SELECT image_id, state FROM hook_runs ORDER BY id" "img-fcgid|done
img-cgi|done" "the hook runs"

# --- show, from the command line ---------------------------------------------
(cd "$DOCROOT/webhook" && ./webhook.fcgi show img-cgi) >"$T/show.out" 2>"$T/show.err"
expect_eq $? 0 "show img-cgi ($(cat "$T/show.err"))"
grep -q '^{"id":"img-cgi","status":"uploaded"' "$T/show.out" || fail "show: $(cat "$T/show.out")"

stop_apache
if grep -q "AH00052\|segfault\|exit signal" "$T/logs/error.log"; then
	fail "error.log: $(grep "AH00052\|segfault\|exit signal" "$T/logs/error.log" | head -3)"
fi
grep -q -F -e "$SECRET" "$T/logs/error.log" && fail "the secret appears in Apache's error log"
expect_no_secret "$SECRET"
exit 0
