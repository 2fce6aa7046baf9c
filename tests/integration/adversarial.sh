#!/bin/sh
# The adversarial suite (issue 4): one booted cage attacked from inside as
# the agent and as cage root, judged from the test host's side; the ways in
# as non-root users; hostile configs and invocations through the real sudo.
. "$(dirname "$0")/lib.sh"
outer_run "$top_srcdir/tests/integration/adversarial.inner.sh"
