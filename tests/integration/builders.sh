#!/bin/sh
# Issue 20: builders inside the cage on request. NixDaemon=yes gives the
# cage the host's nix-daemon; without it, or where the administrator does
# not allow it, or for a trusted Nix user, there is none. Containers=podman
# lets the cage's agent run rootless podman (nested namespaces, /dev/fuse);
# a default cage still refuses `unshare -Ur`.
. "$(dirname "$0")/lib.sh"
outer_run "$top_srcdir/tests/integration/builders.inner.sh"
