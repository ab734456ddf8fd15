#!/bin/sh
# cfimages-webhook(8) HOOKS, the hook's side of the contract, through CGI: after the answer a
# hook is executed directly with argv [path, image_id, S]; its environment
# is exactly PATH and the seven CFIMAGES_* variables (nothing of the
# request or of the web server's environment); stdin is the delivery's
# body byte for byte (here more than 64 KiB, which no pipe could hold
# without a reader); signal dispositions reset (the CGI is started with
# signals ignored, which execve would otherwise pass on) and no signal
# blocked; its own process group (neither the CGI's nor the runner's),
# in the CGI's session (a session of its own would be a scheduling group
# of its own, as heavy as the whole web server), at a nice value 10 above
# the CGI's (answers go first when the CPU is busy); working
# directory the hooks directory; no descriptor beyond 0-2.  CFIMAGES_DB is
# absolute even when the database was named relative to the CGI's
# working directory.  (In the PostgreSQL pass CFIMAGES_DB is the db
# setting, a URI, and there is no relative form.)
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

ID=img-contract
ID2=img-relative
init_db "$ID" "$ID2"
mkdir -p "$HOOKS" "$T/out"
chmod 755 "$HOOKS"
# Everything the hook sees, into $T/out/RUN_ID/.  ls runs as a child of
# the shell and inherits its descriptors; it opens one of its own (3) for
# the directory it lists.
# The signals first: dash clears its signal mask once it has started a
# command (mkdir here), which would hide a mask the hook was given.
hook_script "$HOOKS/uploaded" \
	"out=$T/out/\$CFIMAGES_HOOK_RUN_ID" \
	'while read -r k v; do case $k in SigIgn: | SigBlk:) echo "$k $v" ;; esac; done </proc/self/status >"$out.signals"' \
	'mkdir "$out" || exit 1' \
	'mv "$out.signals" "$out/signals"' \
	'ls /proc/self/fd >"$out/fds"' \
	'cat >"$out/stdin"' \
	'printf "%s\n" "$0" "$#" "$1" "$2" >"$out/argv"' \
	'tr "\0" "\n" </proc/$$/environ >"$out/env"' \
	'pwd -P >"$out/cwd"' \
	'echo $$ >"$out/pid"' \
	'sed "s/.*) //" /proc/$$/stat | cut -d" " -f3,4,17 >"$out/pgrp-sid"' \
	'sed "s/.*) //" /proc/$PPID/stat | cut -d" " -f3,4 >"$out/runner-pgrp-sid"' \
	'echo contract-hook-output' \
	'exit 0'

# A body of more than 64 KiB: pretty-printed, with multi-byte UTF-8 and a
# long metadata string.
{
	printf '{\n  "id": "%s",\n  "uploaded": "2024-01-01T12:00:00.000Z",\n' "$ID"
	printf '  "metadata": {\n    "name": "caf\303\251 \342\202\254",\n    "blob": "'
	awk 'BEGIN { for (i = 0; i < 100000; i++) printf "%c", 97 + i % 26 }'
	printf '"\n  }\n}\n'
} >"$T/big.json"
size=$(wc -c <"$T/big.json" | tr -d ' ')
[ "$size" -gt 65536 ] || hard_error "the big body has only $size bytes"

# The CGI process records its own process group and session, then becomes
# the binary (the recorder goes before the wrapper, so valgrind runs still
# work).  `timeout` in run_binary gives the CGI a group of its own: the
# test shell's group is not the CGI's.
{
	echo '#!/bin/sh'
	echo "sed 's/.*) //' /proc/\$\$/stat | cut -d' ' -f3,4,17 >'$T/cgi-pgrp-sid'"
	echo 'exec "$@"'
} >"$T/record-group"
chmod 755 "$T/record-group"
SAVED_WRAPPER=$CFW_WRAPPER
CFW_WRAPPER="$T/record-group $CFW_WRAPPER"
# Signals ignored by whoever starts the CGI stay ignored across execve:
# the hook must get them back to their defaults.
trap '' USR1 USR2 PIPE
cgi POST "$T/big.json" HTTP_X_LEAK=request-header-must-not-leak LEAKY_SERVER_VAR=leak
trap - USR1 USR2 PIPE
CFW_WRAPPER=$SAVED_WRAPPER
expect_answer 200 OK
expect_one_delivery applied 200
RUN=$(sql "SELECT id FROM hook_runs WHERE image_id = '$ID'")
expect_eq "$(sql "SELECT count(*) FROM hook_runs")" 1 "one hook run queued"
wait_until 20 sql_is "SELECT state FROM hook_runs WHERE id = '$RUN'" "done" ||
	fail "run $RUN not done 20 s after the answer: $(sql "SELECT state, exit_code, output FROM hook_runs")"
OUT=$T/out/$RUN
HOOKS_REAL=$(cd "$HOOKS" && pwd -P)
DB_REAL=$(hook_db)
if [ -d "$OUT" ]; then
	expect_eq "$(cat "$OUT/argv")" "$HOOKS/uploaded
2
$ID
uploaded" "argv: the path, then image_id and status"
	cmp -s "$OUT/stdin" "$T/big.json" ||
		fail "stdin is not the body ($(wc -c <"$OUT/stdin") of $size bytes)"
	expect_eq "$(sed -n 's/=.*//p' "$OUT/env" | sort | tr '\n' ' ')" \
		"CFIMAGES_DB CFIMAGES_EVENT CFIMAGES_HOOK_ATTEMPT CFIMAGES_HOOK_RUN_ID CFIMAGES_IMAGE_ID CFIMAGES_PREVIOUS_STATUS CFIMAGES_STATUS PATH " \
		"the hook's environment variables (exactly these)"
	expect_eq "$(grep -c '' "$OUT/env")" 8 "lines of the hook's environment"
	expect_eq "$(grep -v '^PATH=' "$OUT/env" | sort)" "CFIMAGES_DB=$DB_REAL
CFIMAGES_EVENT=upload.complete
CFIMAGES_HOOK_ATTEMPT=1
CFIMAGES_HOOK_RUN_ID=$RUN
CFIMAGES_IMAGE_ID=$ID
CFIMAGES_PREVIOUS_STATUS=pending
CFIMAGES_STATUS=uploaded" "the hook's CFIMAGES_* values"
	grep -q '^PATH=/' "$OUT/env" || fail "PATH is not an absolute list: $(grep '^PATH' "$OUT/env")"
	grep -q 'leak' "$OUT/env" && fail "the request's environment leaked into the hook"
	expect_eq "$(cat "$OUT/cwd")" "$HOOKS_REAL" "the hook's working directory"
	expect_eq "$(sed -n 's/^SigBlk:[[:space:]]*//p' "$OUT/signals")" 0000000000000000 \
		"signals blocked in the hook"
	# SigIgn is a hexadecimal mask, bit N-1 for signal N.  Signals 32
	# and 33 are the ones glibc's sigaction() refuses (reserved for its
	# threads): resetting them takes the raw system call, but a hook that
	# is not a glibc program still inherits them ignored.
	case $(sed -n 's/^SigIgn:[[:space:]]*//p' "$OUT/signals") in
	0000000000000000) ;;
	0000000180000000 | 0000000100000000 | 0000000080000000)
		fail "signals 32/33 (glibc-reserved) are still ignored in the hook: exec_child resets dispositions with sigaction(), which refuses them" ;;
	*) fail "signals ignored in the hook: SigIgn $(sed -n 's/^SigIgn:[[:space:]]*//p' "$OUT/signals")" ;;
	esac
	expect_eq "$(tr '\n' ' ' <"$OUT/fds")" "0 1 2 3 " \
		"descriptors of a child of the hook (3 is ls's own directory)"
	hook_pid=$(cat "$OUT/pid")
	# shellcheck disable=SC2046 # three numbers
	set -- $(cat "$OUT/pgrp-sid")
	hook_pgrp=$1 hook_sid=$2 hook_nice=$3
	expect_eq "$hook_pgrp" "$hook_pid" "the hook leads its own process group"
	# shellcheck disable=SC2046 # three numbers
	set -- $(cat "$T/cgi-pgrp-sid" 2>/dev/null)
	cgi_pgrp=${1:-} cgi_sid=${2:-}
	if [ $# -eq 3 ]; then
		[ "$hook_pgrp" != "$1" ] || fail "the hook is in the CGI's process group $1"
		expect_eq "$hook_sid" "$2" "the hook's session (the CGI's)"
		want_nice=$(($3 + 10))
		[ "$want_nice" -le 19 ] || want_nice=19
		expect_eq "$hook_nice" "$want_nice" "the hook's nice value (the CGI's $3, plus 10)"
	else
		fail "the CGI did not record its process group and session"
	fi
	# shellcheck disable=SC2046 # three numbers
	set -- $(cat "$OUT/runner-pgrp-sid")
	[ "$hook_pgrp" != "$1" ] || fail "the hook is in its runner's process group $1"
	# The runner: a group of its own (out of reach of signals sent to the
	# server's), in the server's session.
	[ "$1" != "$cgi_pgrp" ] || fail "the runner is in the CGI's process group $1"
	expect_eq "${2:-}" "$cgi_sid" "the runner's session (the CGI's)"
else
	fail "the hook left no record in $OUT (state: $(sql "SELECT state, exit_code, output FROM hook_runs"))"
fi
expect_sql "SELECT attempts, exit_code, output FROM hook_runs WHERE id = '$RUN'" \
	"1|0|contract-hook-output" "the done run: one attempt, exit 0, its output"

# The database named relative to the CGI's working directory: the hook
# still gets an absolute CFIMAGES_DB naming the same file.
[ "$BACKEND" = sqlite ] || exit 0
write_file "$T/rel.json" "{\"id\":\"$ID2\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}"
cd "$T" || hard_error "cd $T"
cgi POST "$T/rel.json" CFIMAGES_WEBHOOK_DB=webhook.db
cd "$OLDPWD" || hard_error "cd back"
expect_answer 200 OK
RUN2=$(sql "SELECT id FROM hook_runs WHERE image_id = '$ID2'")
if [ -z "$RUN2" ]; then
	fail "no hook run for the delivery through a relative database path"
else
	wait_until 20 sql_is "SELECT state FROM hook_runs WHERE id = '$RUN2'" "done" ||
		fail "run $RUN2 not done: $(sql "SELECT state, output FROM hook_runs WHERE id = '$RUN2'")"
	expect_eq "$(sed -n 's/^CFIMAGES_DB=//p' "$T/out/$RUN2/env" 2>/dev/null)" "$DB_REAL" \
		"CFIMAGES_DB with a relative db setting"
	cmp -s "$T/out/$RUN2/stdin" "$T/rel.json" || fail "stdin of the second run is not its body"
	expect_eq "$(sed -n 's/^CFIMAGES_HOOK_RUN_ID=//p' "$T/out/$RUN2/env" 2>/dev/null)" "$RUN2" \
		"CFIMAGES_HOOK_RUN_ID of the second run"
fi
exit 0
