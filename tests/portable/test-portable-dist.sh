#!/bin/sh
# cfimages-webhook(8) PORTABLE BUILD: the portable binary is a static PIE
# (`file` says so, no library in its dynamic section, no PT_INTERP), its
# --version line names every embedded library and the build kind (and
# that PostgreSQL is not built in), and `make portable-dist` is
# reproducible: packing the same binary again gives the same bytes.
# Run by `make check-portable` (CFW_BIN is the portable binary,
# CFW_PORTABLE_TARBALL the tarball).
# Wrong changes caught: a dynamically linked "portable" binary, or one
# linked at a fixed address (no ASLR); a
# --version that drops a library or the build kind; a tarball holding
# the packing time or the packer's user (not reproducible).
. "$top_srcdir/tests/lib.sh"

TARBALL=${CFW_PORTABLE_TARBALL:-}
[ -n "$TARBALL" ] || skip "CFW_PORTABLE_TARBALL is not set (make check-portable runs this)"
[ -f "$TARBALL" ] || hard_error "no $TARBALL"
VERSIONS=$(dirname "$CFW_BIN")/portable-versions
[ -f "$VERSIONS" ] || hard_error "no $VERSIONS beside the portable binary"

# A static PIE: no shared library, and loaded at a random address (a
# build linked at a fixed address, as musl-gcc links by default, fails).
case $(file -b "$CFW_BIN" 2>/dev/null) in
*"static-pie linked"*) ;;
*) fail "file does not call $CFW_BIN a static PIE: $(file -b "$CFW_BIN")" ;;
esac
readelf -d "$CFW_BIN" >"$T/dynamic.out" 2>&1 || fail "readelf -d failed: $(cat "$T/dynamic.out")"
if grep -q 'NEEDED' "$T/dynamic.out"; then
	fail "the binary needs shared libraries: $(grep NEEDED "$T/dynamic.out")"
fi
expect_eq "$(readelf -h "$CFW_BIN" 2>/dev/null | awk '$1 == "Type:" { print $2 }')" DYN \
	"the ELF type of a position-independent executable"
if readelf -l "$CFW_BIN" 2>/dev/null | grep -q 'INTERP'; then
	fail "the binary asks for a program interpreter (dynamic loader)"
fi

version=$("$CFW_BIN" --version)
expect_eq "$(printf '%s\n' "$version" | wc -l | tr -d ' ')" 1 "--version is one line"
for part in "SQLite 3." "OpenSSL 3." "cJSON 1." "libfcgi 2." "libcurl 7." \
	"libpq: not built in" "build: portable (static, musl)"; do
	case $version in
	*"$part"*) ;;
	*) fail "--version lacks \"$part\": $version" ;;
	esac
done

# Packed again from the same binary: the same bytes.
SOURCE_DATE_EPOCH=$(git -C "$top_srcdir" log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH
mkdir -p "$T/again"
"$SHELL" "$top_srcdir/contrib/portable/dist.sh" --srcdir "$top_srcdir" --bin "$CFW_BIN" \
	--versions "$VERSIONS" --tarball "$T/again/$(basename "$TARBALL")" \
	--version "$(printf '%s\n' "$version" | awk '{ print $2 }')" >"$T/dist.out" 2>&1 ||
	hard_error "dist.sh failed: $(tail -5 "$T/dist.out")"
if ! cmp -s "$TARBALL" "$T/again/$(basename "$TARBALL")"; then
	fail "the tarball packed again differs: $(cd "$T" && tar -tvzf "$TARBALL" | head -3; tar -tvzf "again/$(basename "$TARBALL")" | head -3)"
fi
exit 0
