#!/bin/sh
# Issue 20: two cages of one preset at once, each changing its [State]
# File=; whichever ends second must not wipe out the first one's change.
. "$(dirname "$0")/lib.sh"
outer_run "$top_srcdir/tests/integration/state-race.inner.sh"
