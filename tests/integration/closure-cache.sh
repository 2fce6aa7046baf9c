#!/bin/sh
# Issue 21: the closure cache. A warm start reuses the top-level without
# evaluating Nix; a changed package list, nix/cage.nix or Nixpkgs= each
# lead to an evaluation; nothing written in the project makes a stale entry
# look fresh; gc drops stale entries with their GC roots.
. "$(dirname "$0")/lib.sh"
outer_run "$top_srcdir/tests/integration/closure-cache.inner.sh"
