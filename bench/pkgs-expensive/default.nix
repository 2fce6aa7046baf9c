# bench/pkgs-expensive: the default.nix of the bench's expensive package set
# (bench/inner.sh, part 1b). It sits in a copy of tests/pkgs (whose own
# default.nix becomes real.nix) with cost.nix (a number, written by the
# bench) and burn.nix: importing the set first computes that many
# attributes, as importing real nixpkgs computes its tens of thousands, so
# an evaluation costs seconds while the packages stay those of tests/pkgs.
args: builtins.seq (import ./burn.nix { attrs = import ./cost.nix; }) (import ./real.nix args)
