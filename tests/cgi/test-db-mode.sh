#!/bin/sh
# cfimages-webhook.conf(5) db_mode: the database is created with exactly the configured mode,
# whatever the umask (SQLite alone would give 0644 & ~umask): 0660 under
# umask 077, the default 0600 under umask 000, by the responder (first
# delivery) and by `init`.  The file gets its schema on first use.
# In the PostgreSQL pass, where db_mode means nothing (there is no file of
# ours), only what does not depend on a file: the schema on first use, a
# bad db_mode still a configuration error, and commands other than init
# and register creating nothing.
. "$top_srcdir/tests/lib.sh"

write_file "$T/probe" '{"text":"Hello World! This is a test message."}'
if [ "$BACKEND" = postgresql ]; then
	for bad in 0000 999; do
		cgi POST "$T/probe" CFIMAGES_WEBHOOK_DB_MODE=$bad
		expect_answer 500 "Internal server error"
		grep -q 'configuration: .*db_mode' "$CGI_ERR" ||
			fail "db_mode $bad: no configuration error: $(cat "$CGI_ERR")"
	done
	cfw show x >/dev/null 2>&1
	db_exists && fail "show created the schema"
	cfw list >/dev/null 2>&1
	db_exists && fail "list created the schema"
	cgi POST "$T/probe" CFIMAGES_WEBHOOK_DB_MODE=0660
	expect_answer 200 Ignored
	expect_sql "SELECT reason FROM webhook_deliveries" ignored "the new database has its schema and the row"
	exit 0
fi
mode()
{
	stat -c %a "$1"
}

umask 077
DB=$T/shared.db
cgi POST "$T/probe" CFIMAGES_WEBHOOK_DB_MODE=0660
expect_answer 200 Ignored
expect_eq "$(mode "$DB")" 660 "db_mode 0660 under umask 077 (responder)"
expect_sql "SELECT reason FROM webhook_deliveries" ignored "the new database has its schema and the row"

DB=$T/init.db
cfw CFIMAGES_WEBHOOK_DB_MODE=0660 init >/dev/null
expect_eq "$(mode "$DB")" 660 "db_mode 0660 under umask 077 (init)"

printf 'db_mode = 0640\n' >"$T/mode.conf"
DB=$T/conf.db
cgi POST "$T/probe" CFIMAGES_WEBHOOK_CONFIG="$T/mode.conf"
expect_eq "$(mode "$DB")" 640 "db_mode 0640 from the configuration file"

umask 000
DB=$T/default.db
cgi POST "$T/probe"
expect_answer 200 Ignored
expect_eq "$(mode "$DB")" 600 "default db_mode 0600 under umask 000"
DB=$T/default-init.db
cfw init >/dev/null
expect_eq "$(mode "$DB")" 600 "default db_mode 0600 under umask 000 (init)"
DB=$T/register.db
cfw register first >/dev/null
expect_eq "$(mode "$DB")" 600 "register creates the database 0600"
umask 022

# An existing database keeps its mode; a bad db_mode is a configuration error.
DB=$T/shared.db
chmod 600 "$DB"
cgi POST "$T/probe" CFIMAGES_WEBHOOK_DB_MODE=0660
expect_answer 200 Ignored
cgi POST "$T/probe" CFIMAGES_WEBHOOK_DB_MODE=0000
expect_answer 500 "Internal server error"
cgi POST "$T/probe" CFIMAGES_WEBHOOK_DB_MODE=999
expect_answer 500 "Internal server error"

# Commands other than init and register do not create a database.
DB=$T/none.db
cfw show x >/dev/null 2>&1
[ -e "$DB" ] && fail "show created a database"
cfw list >/dev/null 2>&1
[ -e "$DB" ] && fail "list created a database"
