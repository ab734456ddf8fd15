# Helpers of the multi-node PostgreSQL tests (tests/servers/test-postgresql-*.sh),
# sourced after tests/lib.sh, tests/serverlib.sh, tests/hooklib.sh and
# tests/pglib.sh.
#
# A "node" is one private lighttpd on 127.0.0.1 whose mod_fastcgi starts
# the binary through bin-path (max-procs 2), every node on the same
# PostgreSQL database.  When we may (root, util-linux unshare), each node
# runs in its own UTS namespace with its own host name, so that
# hook_runs.host tells the nodes apart; otherwise every node has this
# machine's name and NODE_HOSTS is empty.
#
#   node_start NAME [VAR=VALUE...]   starts node NAME: its hooks directory
#       $T/hooks-NAME (created empty, mode 0755), its host name cfw-NAME,
#       the settings CFIMAGES_WEBHOOK_DB=$PG_URI, _SECRET=$SECRET,
#       _HOOKS_DIR, _CONFIG (empty), _HOOK_TIMEOUT=${NODE_HOOK_TIMEOUT:-30}
#       and the extra VAR=VALUE settings (NODE_DB, when set, is the
#       database instead of $PG_URI).  Sets NODE_PORT_<NAME>,
#       NODE_PID_<NAME>, NODE_URL_<NAME>.
#   node_apps NAME   the PIDs of the FastCGI processes of node NAME.
#   node_hook NAME STATUS LINES...   a hook script of node NAME.
#   load ARGS...     tests/servers/pgload.py (see there).

CURL=${CURL:-curl}
[ -n "${LIGHTTPD:-}" ] && [ -x "$LIGHTTPD" ] || skip "no lighttpd (LIGHTTPD=${LIGHTTPD:-})"
command -v "$CURL" >/dev/null 2>&1 || skip "no curl"
command -v python3 >/dev/null 2>&1 || skip "no python3 (the load client)"

# Separate host names need a UTS namespace of our own.
NODE_HOSTS=
if [ "$(id -u)" -eq 0 ] && unshare --uts sh -c 'hostname cfw-probe' 2>/dev/null; then
	NODE_HOSTS=yes
fi

node_start()
{
	ns_name=$1
	shift
	ns_hooks=$T/hooks-$ns_name
	mkdir -p "$ns_hooks" "$T/www"
	chmod 755 "$ns_hooks"
	# lighttpd splits bin-path on spaces: a wrapper goes in front.
	ns_bin=$CFW_BIN
	[ -n "$CFW_WRAPPER" ] && ns_bin="$CFW_WRAPPER $CFW_BIN"
	ns_extra=
	# Under valgrind, the intermediate child of the runner's double fork
	# exits with the other threads' memory out of its sight: valgrind
	# would call that lost.  Only the processes themselves are checked.
	[ -n "$CFW_WRAPPER" ] && set -- VALGRIND_OPTS=--child-silent-after-fork=yes "$@"
	for ns_a in "$@"; do
		ns_extra="$ns_extra		\"${ns_a%%=*}\" => \"${ns_a#*=}\",
"
	done
	ns_try=0
	while :; do
		ns_port=$(free_port)
		cat >"$T/lighttpd-$ns_name.conf" <<CONF
server.bind = "127.0.0.1"
server.port = $ns_port
server.document-root = "$T/www"
server.pid-file = "$T/lighttpd-$ns_name.pid"
server.errorlog = "$T/lighttpd-$ns_name.error.log"
server.modules = ( "mod_fastcgi" )
server.max-connections = 256
fastcgi.server = ( "/webhook" => ((
	"bin-path" => "$ns_bin",
	"socket" => "$T/fcgi-$ns_name.sock",
	"max-procs" => 2,
	"bin-environment" => (
		"CFIMAGES_WEBHOOK_CONFIG" => "$EMPTY_CONF",
		"CFIMAGES_WEBHOOK_DB" => "${NODE_DB:-$PG_URI}",
		"CFIMAGES_WEBHOOK_SECRET" => "$SECRET",
		"CFIMAGES_WEBHOOK_HOOKS_DIR" => "$ns_hooks",
		"CFIMAGES_WEBHOOK_HOOK_TIMEOUT" => "${NODE_HOOK_TIMEOUT:-30}",
$ns_extra	),
	"check-local" => "disable",
)) )
CONF
		if [ -n "$NODE_HOSTS" ]; then
			# unshare and sh exec: the PID is lighttpd's.
			env -i PATH="$CGI_PATH" unshare --uts sh -c 'hostname "$0" && exec "$@"' \
				"cfw-$ns_name" "$LIGHTTPD" -D -f "$T/lighttpd-$ns_name.conf" \
				>"$T/lighttpd-$ns_name.stdout" 2>"$T/lighttpd-$ns_name.stderr" </dev/null &
		else
			env -i PATH="$CGI_PATH" "$LIGHTTPD" -D -f "$T/lighttpd-$ns_name.conf" \
				>"$T/lighttpd-$ns_name.stdout" 2>"$T/lighttpd-$ns_name.stderr" </dev/null &
		fi
		ns_pid=$!
		register_pid "$ns_pid"
		ns_i=0
		ns_up=
		while [ "$ns_i" -lt 100 ] && kill -0 "$ns_pid" 2>/dev/null; do
			if "$CURL" -s -o /dev/null "http://127.0.0.1:$ns_port/"; then
				ns_up=yes
				break
			fi
			sleep 0.1
			ns_i=$((ns_i + 1))
		done
		[ -n "$ns_up" ] && break
		kill "$ns_pid" 2>/dev/null
		wait "$ns_pid" 2>/dev/null
		unregister_pid "$ns_pid"
		ns_try=$((ns_try + 1))
		[ "$ns_try" -lt 5 ] || hard_error "lighttpd $ns_name did not start: $(tail -5 "$T/lighttpd-$ns_name.error.log" "$T/lighttpd-$ns_name.stderr" 2>/dev/null)"
	done
	eval "NODE_PORT_$ns_name=\$ns_port NODE_PID_$ns_name=\$ns_pid"
	eval "NODE_URL_$ns_name=http://127.0.0.1:\$ns_port/webhook"
}

# node_apps NAME: the FastCGI processes lighttpd started for node NAME
# (its children but those dead and not yet reaped; under valgrind,
# valgrind's process is the binary's).
node_apps()
{
	eval "na_pid=\$NODE_PID_$1"
	ps -o pid=,stat= --ppid "$na_pid" 2>/dev/null | awk '$2 !~ /^Z/ { print $1 }'
}

# node_hook NAME STATUS LINES...: an executable hook script of node NAME.
node_hook()
{
	nh_name=$1
	nh_status=$2
	shift 2
	mkdir -p "$T/hooks-$nh_name"
	chmod 755 "$T/hooks-$nh_name"
	hook_script "$T/hooks-$nh_name/$nh_status" "$@"
}

# node_valgrind_errors: fails when a valgrind report reached a node's logs.
node_valgrind_errors()
{
	for nve_f in "$T"/lighttpd-*.error.log "$T"/lighttpd-*.stderr; do
		[ -f "$nve_f" ] || continue
		if grep -q '^==[0-9]*== ' "$nve_f"; then
			fail "valgrind reported in $(basename "$nve_f"): $(grep '^==[0-9]*== ' "$nve_f" | head -20)"
		fi
	done
}

load()
{
	python3 "$top_srcdir/tests/servers/pgload.py" "$@"
}

# pgq SQL: psql_q, with a failure reported rather than fatal.
pgq()
{
	psql_q "$1" 2>"$T/pgq.err" || fail "psql: $1: $(cat "$T/pgq.err")"
}
