#!/bin/sh
# Declared cages (what the NixOS module sets up), in the test host: the
# cage's file rendered by nix/render.nix, the unit from units/ installed,
# systemctl start/stop, machinectl, gc after a kill -9 of nspawn, and a
# declared cage in each network mode (off, private, host).
. "$(dirname "$0")/lib.sh"
outer_run "$top_srcdir/tests/integration/declared.inner.sh"
