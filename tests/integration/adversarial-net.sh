#!/bin/sh
# The adversarial suite, network and host-process side (issue 14, findings 6
# and 8): the agent floods its ssh-agent relay; another local user tries
# the ports a Mode=private cage listens on. Judged from the test host.
. "$(dirname "$0")/lib.sh"
outer_run "$top_srcdir/tests/integration/adversarial-net.inner.sh"
