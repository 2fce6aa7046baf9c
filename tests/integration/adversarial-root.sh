#!/bin/sh
# Audit issue 14, from the side of a user whose sudoers entry allows only
# nspawn-cage: a package set of her own (path and flake), a crafted
# top-level through --closure, a hostile value for every key the user
# layer accepts and every option, and the environment sudo lets through.
# Nothing of it may read a root-only file or change one.
. "$(dirname "$0")/lib.sh"
outer_run "$top_srcdir/tests/integration/adversarial-root.inner.sh"
