#!/bin/sh
# The adversarial suite for names and trust contexts (issue 14, findings 4,
# 5 and 9): a project picking another preset's state, another local user
# reading and running what a cage leaves on the host, a user squatting a
# declared cage's name; each judged from the test host.
. "$(dirname "$0")/lib.sh"
outer_run "$top_srcdir/tests/integration/adversarial-names.inner.sh"
