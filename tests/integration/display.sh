#!/bin/sh
# Display forwarding in the test host: an Xvfb and a headless weston run by
# alice, X clients and wayland-info in cages, hostile session variables.
. "$(dirname "$0")/lib.sh"
outer_run "$top_srcdir/tests/integration/display.inner.sh"
