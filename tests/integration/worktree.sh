#!/bin/sh
# Issue 20: agents in parallel on linked git worktrees of one repository:
# each cage gets what git needs of the main repository and no more, its
# config and hooks read-only; a .git file naming anything else is refused.
. "$(dirname "$0")/lib.sh"
outer_run "$top_srcdir/tests/integration/worktree.inner.sh"
