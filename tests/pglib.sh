# A private PostgreSQL cluster for the tests, sourced after tests/lib.sh.
#
# pg_start starts one in $T/pg: its own data directory, listening on a
# unix socket in that directory only (no TCP), trust authentication for a
# superuser named cfw, a database named cfw.  When we are root the server
# runs as the postgres user (initdb refuses root), in a directory that user
# owns.  It sets PG_URI (a libpq URI for the binary's `db` setting),
# PG_SOCKDIR, PG_PORT and PG_PID, and registers the postmaster's PID so
# lib.sh's cleanup stops it.  Without PostgreSQL's server binaries the test
# is skipped (exit 77) with a message saying so: never a silent pass.
#
#   PG_BINDIR   where initdb, pg_ctl and postgres are (default: the newest
#               /usr/lib/postgresql/*/bin)

pg_find_bindir()
{
	if [ -n "${PG_BINDIR:-}" ]; then
		return 0
	fi
	for pfb_d in /usr/lib/postgresql/*/bin; do
		[ -x "$pfb_d/initdb" ] && [ -x "$pfb_d/postgres" ] && PG_BINDIR=$pfb_d
	done
	[ -n "${PG_BINDIR:-}" ]
}

# pg_as_owner CMD...: runs CMD as the cluster's owner.
pg_as_owner()
{
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# pg_start [NAME]: starts the cluster (NAME: a subdirectory, default pg).
pg_start()
{
	pg_find_bindir || skip "PostgreSQL server binaries not found (install the Debian package postgresql; contrib/deps.sh does)"
	case $("$CFW_BIN" --version 2>/dev/null) in
	*"libpq: not built in"*) skip "this build has no PostgreSQL backend (./configure --without-postgresql)" ;;
	esac
	if [ "$(id -u)" -eq 0 ]; then
		id postgres >/dev/null 2>&1 || skip "no postgres user to run the PostgreSQL server as"
		command -v runuser >/dev/null 2>&1 || skip "no runuser (util-linux)"
		chmod 0755 "$T"
	fi
	PG_DIR=$T/${1:-pg}
	PG_SOCKDIR=$PG_DIR
	mkdir -p "$PG_DIR" || hard_error "mkdir $PG_DIR"
	[ "$(id -u)" -eq 0 ] && chown postgres "$PG_DIR"
	pg_as_owner "$PG_BINDIR/initdb" -D "$PG_DIR/data" -A trust -U cfw -E UTF8 \
		--no-locale >"$PG_DIR/initdb.log" 2>&1 ||
		hard_error "initdb failed: $(tail -5 "$PG_DIR/initdb.log")"
	ps_try=0
	while :; do
		PG_PORT=$((40000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 20000))
		if pg_as_owner "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
			-o "-k $PG_SOCKDIR -p $PG_PORT -c listen_addresses= -c fsync=on" \
			start >"$PG_DIR/pg_ctl.log" 2>&1; then
			break
		fi
		ps_try=$((ps_try + 1))
		[ "$ps_try" -lt 5 ] || hard_error "PostgreSQL did not start: $(tail -5 "$PG_DIR/server.log")"
	done
	PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
	register_pid "$PG_PID"
	pg_as_owner "$PG_BINDIR/createdb" -h "$PG_SOCKDIR" -p "$PG_PORT" -U cfw cfw ||
		hard_error "createdb failed"
	PG_URI="postgresql:///cfw?host=$PG_SOCKDIR&port=$PG_PORT&user=cfw"
}

# pg_stop: stops the cluster by its PID (fast shutdown) and waits.
pg_stop()
{
	[ -n "${PG_PID:-}" ] || return 0
	kill -INT "$PG_PID" 2>/dev/null
	pst_i=0
	while kill -0 "$PG_PID" 2>/dev/null; do
		[ "$pst_i" -lt 300 ] || { kill -KILL "$PG_PID" 2>/dev/null; break; }
		sleep 0.1
		pst_i=$((pst_i + 1))
	done
	unregister_pid "$PG_PID"
	PG_PID=
}

# pg_restart: starts the stopped cluster again, same port and socket.
pg_restart()
{
	pg_as_owner "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
		-o "-k $PG_SOCKDIR -p $PG_PORT -c listen_addresses=" start >"$PG_DIR/pg_ctl.log" 2>&1 ||
		hard_error "PostgreSQL did not restart: $(tail -5 "$PG_DIR/server.log")"
	PG_PID=$(head -1 "$PG_DIR/data/postmaster.pid")
	register_pid "$PG_PID"
}

# psql_q SQL: runs SQL on the test database, unaligned, no headers.
psql_q()
{
	"$PG_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$PG_SOCKDIR" -p "$PG_PORT" -U cfw \
		-d cfw -c "$1"
}
