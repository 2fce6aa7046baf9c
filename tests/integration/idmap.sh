#!/bin/sh
# The cage's private user namespace (issue 4) with a real cage in the test
# host: PrivateUsers= range, idmapped project mount, who owns what the agent
# and cage root make, the range lock held by the unit, teardown.
. "$(dirname "$0")/lib.sh"
outer_run "$top_srcdir/tests/integration/idmap.inner.sh"
