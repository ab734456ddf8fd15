#!/bin/sh
# How `check` and hook discovery treat each kind of hooks layout
# (cfimages-webhook(8), HOOKS and check): a missing hooks_dir is a warning
# for `check` (exit 0) and silence for a delivery; a hooks_dir that is not
# a directory is a problem; a directory named like a hook (uploaded/) and
# a missing S.d are not; an S.d that is a file is a problem for `check`
# but skipped quietly by discovery; an insecure hook is refused by both.
# These decisions rest on the kind of problem, never on the words used to
# describe it.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/hooklib.sh"

init_db img-layout-1 img-layout-2 img-layout-3
S=CFIMAGES_WEBHOOK_SECRET=layout-s3cret

# check_run NAME: `check`, its exit status in RC and output in OUT.
check_run()
{
	cfw "$S" check >"$T/$1.out" 2>"$T/$1.err"
	RC=$?
	OUT=$(cat "$T/$1.out" "$T/$1.err")
}
# deliver ID: a signed delivery for ID (uploaded); stderr in $CGI_ERR.
deliver()
{
	write_file "$T/$1.json" "{\"id\":\"$1\",\"uploaded\":\"2024-01-01T12:00:00.000Z\"}"
	cgi POST "$T/$1.json" "$S" HTTP_X_SIGNATURE="$(sign_hex layout-s3cret "$T/$1.json")"
	expect_answer 200 OK
}

# No hooks_dir at all.
check_run missing
expect_eq "$RC" 0 "check with no hooks_dir exits 0 ($OUT)"
printf '%s\n' "$OUT" | grep -q "^warning: hooks_dir $HOOKS does not exist" ||
	fail "check does not warn about the missing hooks_dir: $OUT"
deliver img-layout-1
grep -q -e warning -e error "$CGI_ERR" && fail "a delivery with no hooks_dir warned: $(cat "$CGI_ERR")"

# hooks_dir is a file.
: >"$HOOKS"
check_run file
expect_eq "$RC" 1 "check with a file as hooks_dir exits 1 ($OUT)"
printf '%s\n' "$OUT" | grep -q "^problem: hooks_dir $HOOKS " ||
	fail "check does not report the file as hooks_dir: $OUT"
rm -f "$HOOKS"

# A directory where a hook would be, no S.d: nothing to report.
mkdir -p "$HOOKS/uploaded"
chmod 755 "$HOOKS" "$HOOKS/uploaded"
check_run dir-as-hook
expect_eq "$RC" 0 "check with a directory named like a hook exits 0 ($OUT)"
printf '%s\n' "$OUT" | grep -q "^ok: hooks_dir $HOOKS (0 runnable hooks)" ||
	fail "check does not count 0 runnable hooks: $OUT"

# S.d is a file: a problem for check, nothing for discovery.
: >"$HOOKS/uploaded.d"
chmod 644 "$HOOKS/uploaded.d"
check_run file-as-dir
expect_eq "$RC" 1 "check with a file as uploaded.d exits 1 ($OUT)"
printf '%s\n' "$OUT" | grep -q "^problem: hook directory $HOOKS/uploaded.d " ||
	fail "check does not report uploaded.d: $OUT"
deliver img-layout-2
grep -q -e warning -e error "$CGI_ERR" && fail "a delivery with a file as uploaded.d warned: $(cat "$CGI_ERR")"
expect_sql "SELECT count(*) FROM hook_runs" 0 "hook runs queued so far"

# An insecure hook: refused by check and by discovery.
rm -rf "$HOOKS/uploaded" "$HOOKS/uploaded.d"
hook_script "$HOOKS/uploaded" 'exit 0'
chmod 777 "$HOOKS/uploaded"
check_run insecure
expect_eq "$RC" 1 "check with a world-writable hook exits 1 ($OUT)"
printf '%s\n' "$OUT" | grep -q "^problem: hook $HOOKS/uploaded " ||
	fail "check does not report the writable hook: $OUT"
deliver img-layout-3
grep -q "hook $HOOKS/uploaded refused" "$CGI_ERR" ||
	fail "discovery did not log the refused hook: $(cat "$CGI_ERR")"
expect_sql "SELECT count(*) FROM hook_runs" 0 "hook runs queued for an insecure hook"
exit 0
