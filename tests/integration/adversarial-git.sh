#!/bin/sh
# Issue 14, findings 3 and 7: what an agent leaves in the project must not
# make the user's git on the host run code, nor be a set-uid/set-gid file;
# judged from the host by running git as alice after the cage.
. "$(dirname "$0")/lib.sh"
outer_run "$top_srcdir/tests/integration/adversarial-git.inner.sh"
