#!/bin/sh
# The terminal path in the test host: the attach contract (output complete
# and in order, stdin, raw mode restored, Ctrl-C, window size, exit status,
# binary output) and the stress tier that counts lost output (must be 0).
. "$(dirname "$0")/lib.sh"
outer_run "$top_srcdir/tests/integration/terminal.inner.sh"
