#!/bin/sh
# Runs a test program (or the binary, as CFW_WRAPPER) under valgrind: any
# memory error or definite leak makes it fail with 99 (a hard error).
# Shell scripts are run by the shell, not valgrind.
case "$1" in
*.sh) exec "${SHELL:-/bin/sh}" "$@" ;;
esac
# No gdbserver and no inlined frames in stack traces: about a tenth of
# each run's time (most of a run is valgrind starting up).
exec valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	--show-leak-kinds=definite --trace-children=no --child-silent-after-fork=yes \
	--vgdb=no --read-inline-info=no "$@"
