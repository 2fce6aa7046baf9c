#!/bin/sh
# Agents in the test host: a user preset's command, Pass= values from the
# environment and from [Environment] File= reaching only the agent, the
# ssh-agent and git configuration forwarded with [Forward].
. "$(dirname "$0")/lib.sh"
outer_run "$top_srcdir/tests/integration/agents.inner.sh"
