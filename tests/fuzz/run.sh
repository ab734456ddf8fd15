#!/bin/sh
# Builds the libFuzzer targets with clang (ASan + UBSan) into BUILDDIR and
# runs each for SECONDS on its seed corpus (copied, so the tree is not
# touched).  Skips (exit 77) without clang.
#   tests/fuzz/run.sh [BUILDDIR] [SECONDS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../../src
out=${1:-build/fuzz}
secs=${2:-10}
command -v clang >/dev/null 2>&1 || { echo "clang not found: fuzzing skipped"; exit 77; }
mkdir -p "$out"
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -D_GNU_SOURCE -I$src $(pkg-config --cflags libcjson)"
libs="$(pkg-config --libs libcjson libcrypto)"
build() { # name sources...
	name=$1; shift
	clang $flags -o "$out/$name" "$@" $libs
}
build fuzz_auth "$here/fuzz_auth.c" "$src/auth.c" "$src/util.c"
build fuzz_event "$here/fuzz_event.c" "$src/event.c" "$src/json.c" "$src/util.c"
build fuzz_config "$here/fuzz_config.c" "$src/config.c" "$src/util.c"
build fuzz_action "$here/fuzz_action.c" "$src/action.c" "$src/json.c" "$src/util.c"
for t in auth event config action; do
	corpus=$out/corpus-$t
	mkdir -p "$corpus"
	[ -d "$here/corpus/$t" ] && cp -n "$here/corpus/$t"/* "$corpus"/ 2>/dev/null || true
	# A private TMPDIR: a target must leave nothing behind in it.
	tmp=$out/tmp-$t
	rm -rf "$tmp"
	mkdir -p "$tmp"
	echo "fuzz_$t: ${secs}s"
	TMPDIR=$tmp "$out/fuzz_$t" -max_total_time="$secs" -max_len=65536 -print_final_stats=0 \
		"$corpus" 2>"$out/fuzz_$t.log" || { tail -40 "$out/fuzz_$t.log"; exit 1; }
	left=$(ls -A "$tmp")
	[ -z "$left" ] || { echo "fuzz_$t left files in TMPDIR: $left"; exit 1; }
	rmdir "$tmp"
done
