#!/bin/sh
# make check: builds the libFuzzer targets and runs each briefly on its seed
# corpus (a smoke run; longer runs: tests/fuzz/run.sh DIR SECONDS).  Skips
# without clang.
exec "${top_srcdir:-.}/tests/fuzz/run.sh" "${top_builddir:-.}/fuzz" "${FUZZ_SECONDS:-3}"
