# A stand-in for the flake input `nixpkgs`, to evaluate flake.nix and the
# NixOS module here without nixpkgs (see mock-lib.nix for what it is not).
# Packages cage.nix needs come from the local package set tests/pkgs (real
# derivations, built from Debian's binaries); the rest are inert stubs.
{ testPkgs ? import ../pkgs { } }:
let
  lib = import ./mock-lib.nix;
  system = "x86_64-linux";

  # An inert derivation-shaped value: never built, only referred to.
  stub = name: {
    type = "derivation";
    inherit name;
    pname = name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
    drvPath = "/nix/store/00000000000000000000000000000000-${name}.drv";
    outputs = [ "out" ];
  };

  pkgs = testPkgs // {
    inherit lib system;
    stdenv = {
      hostPlatform.system = system;
      mkDerivation = attrs: stub "${attrs.pname}-${attrs.version}" // { drvAttrs = attrs; };
    };
    mkShell = attrs: stub "shell" // { drvAttrs = attrs; };
    closureInfo = { rootPaths }: stub "closure-info" // { inherit rootPaths; };
    testers.nixosTest = test: test; # the test's attributes, for inspection
    # tests/pkgs has no `hello`: any small real package does for mkCage
    hello = testPkgs.less;
    autoreconfHook = stub "autoreconf-hook";
    pkg-config = stub "pkg-config";
    inih = stub "inih";
    libcap = stub "libcap";
    valgrind = stub "valgrind";
    gdb = stub "gdb";
    clang-tools = stub "clang-tools";
    nix = stub "nix";
  };
in
{
  inherit lib;
  legacyPackages.${system} = pkgs;
  legacyPackages.aarch64-linux = pkgs;
  outPath = "/nix/store/11111111111111111111111111111111-nixpkgs-source";
}
