#!/bin/sh
# Network modes in real cages: Mode=off (loopback only), Mode=private (a
# veth, NAT to an "outside" network namespace, DNS, the host's services and
# link-local metadata closed), the veth's life, kill -9 + gc.
. "$(dirname "$0")/lib.sh"
outer_run "$top_srcdir/tests/integration/network.inner.sh"
