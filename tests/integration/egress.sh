#!/bin/sh
# [Network] Allow= by name through the per-cage egress proxy (issue 19):
# wildcards, the proxy-aware and the transparent path, a refused name on an
# allowed name's address, DNS answers for allowed names only, an address
# change followed without restart, the record of refusals (denials, run's
# summary, status), the proxy attacked from the cage, no IPv6, nothing left.
. "$(dirname "$0")/lib.sh"
outer_run "$top_srcdir/tests/integration/egress.inner.sh"
