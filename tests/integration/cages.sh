#!/bin/sh
# Real cages in the test host: start, attach, exit status, ownership,
# machinectl, list/status, what is visible inside, stop and audit.
. "$(dirname "$0")/lib.sh"
outer_run "$top_srcdir/tests/integration/cages.inner.sh"
