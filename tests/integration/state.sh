#!/bin/sh
# Agent state ([State] Directory=, File=, Persist=) in real cages in the
# test host: kept per user and preset across cages, owned by the user, never
# another user's, nothing new with Persist=no, no link followed on copy-out.
. "$(dirname "$0")/lib.sh"
outer_run "$top_srcdir/tests/integration/state.inner.sh"
