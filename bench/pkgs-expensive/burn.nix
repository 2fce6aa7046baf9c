# bench/pkgs-expensive/burn.nix: what makes evaluating the bench's package
# set expensive, as real nixpkgs is: `attrs` attributes, each computed on
# import from `work` list elements. Memory stays small (each inner list is
# garbage once folded); time grows with attrs * work.
{ attrs, work ? 2000 }:
let
  one = i: builtins.foldl' (a: j: a + (j * i) / 7) 0 (builtins.genList (j: j) work);
  set = builtins.listToAttrs (builtins.genList (i: { name = "attr${toString i}"; value = one i; }) attrs);
in
builtins.foldl' (a: n: a + set.${n}) 0 (builtins.attrNames set)
