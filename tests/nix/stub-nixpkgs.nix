# A stand-in for the flake input `nixpkgs`, to evaluate flake.nix and the
# NixOS module without nixpkgs (no network here): `lib` is the real nixpkgs
# lib (given by tests/nix/run.sh, see ../shared/nixpkgs-lib/ORIGIN.md); the
# packages cage.nix builds come from the local package set tests/pkgs (real
# derivations, built from Debian's binaries); everything else is an inert
# derivation-shaped stub, never built, whose store path names it.
{ lib, testPkgs ? import ../pkgs { } }:
let
  system = "x86_64-linux";

  stub = name: {
    type = "derivation";
    inherit name;
    pname = name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
    drvPath = "/nix/store/00000000000000000000000000000000-${name}.drv";
    outputs = [ "out" ];
  };
  # what tests/pkgs lacks that presets, the README and flake.nix name
  stubs = lib.genAttrs [
    "claude-code" "codex" "gemini-cli" "opencode" "ripgrep" "nodejs" "hello"
    "nftables" "xauth" "nix" "autoreconfHook" "pkg-config" "inih" "libcap" "valgrind" "gdb" "clang-tools"
  ] (n: testPkgs.${n} or (stub n));

  pkgs = stubs // testPkgs // {
    inherit lib system;
    stdenv = {
      hostPlatform.system = system;
      mkDerivation = attrs: stub "${attrs.pname}-${attrs.version}" // { drvAttrs = attrs; inherit (attrs) meta; };
    };
    mkShell = attrs: stub "shell" // { drvAttrs = attrs; };
    closureInfo = { rootPaths }: stub "closure-info" // { inherit rootPaths; };
    testers.nixosTest = test: test; # the test's attributes, for inspection
  };
in
{
  inherit lib;
  legacyPackages.${system} = pkgs;
  legacyPackages.aarch64-linux = pkgs;
  outPath = "/nix/store/11111111111111111111111111111111-nixpkgs-source";
}
