# nspawn-cage: Nix helpers shared by flake.nix (lib.mkCage) and the NixOS
# module (nix/module.nix).  Only builtins, like nix/render.nix: no nixpkgs
# `lib` needed, so tests/nix/run.sh evaluates this file too.
#
#   mkCage { pkgs; packages ? [ ]; name ? "cage"; }
#     The cage's top-level store path, built by nix/cage.nix from `pkgs`.
#     `packages` mixes
#       * strings: attribute paths in `pkgs` ("git", "python3Packages.black"),
#         looked up by cage.nix exactly as for Packages= at run time;
#       * derivations (pkgs.git, an overridden or local package): put into
#         the toplevel as they are.
#     cage.nix only takes attribute paths, so derivations are handed to it as
#     the attribute set `nspawnCageExtra` added to `pkgs` (its metadata,
#     nspawn-cage.json, lists them as "nspawnCageExtra.NAME-N").  Order is
#     kept: on a clash of program names the earlier package wins.
#
#   presetPackages NAME      Packages= of the shipped preset NAME, or null.
#   presets                  names of the shipped presets.
#   cagePackages { preset; settings; packages; }
#     What a declared cage's closure must hold: the preset's packages, the
#     administrator's Packages= (settings.Cage.Packages) and the cage's own,
#     in that order without repeats, as nspawn-cage itself adds them up.
let
  inherit (builtins) attrNames concatStringsSep filter genList head isAttrs isString length
    listToAttrs match pathExists readDir readFile split elemAt;

  render = import ./render.nix;

  presetsDir = ../templates/presets;

  presets = map (f: head (match "(.*)\\.conf" f))
    (filter (f: match ".*\\.conf" f != null) (attrNames (readDir presetsDir)));

  presetPackages = name:
    let f = presetsDir + "/${name}.conf"; in
    if isString name && render.isPackageName name && pathExists f
    then render.presetPackages (readFile f) else null;

  # "hello-2.12" -> "hello", safe as one attribute-path segment
  baseName = d:
    let
      n = d.pname or (builtins.parseDrvName d.name).name;
      parts = filter (s: isString s && s != "") (split "[^A-Za-z0-9_-]+" n);
    in
    if parts == [ ] then "pkg" else concatStringsSep "_" parts;

  mkCage = { pkgs, packages ? [ ], name ? "cage" }:
    let
      indexed = genList (i: { inherit i; p = elemAt packages i; }) (length packages);
      bad = filter (x: !(isString x.p || render.isDerivation x.p)) indexed;
      attrFor = x: "${baseName x.p}-${toString x.i}";
      drvs = filter (x: render.isDerivation x.p) indexed;
      extra = listToAttrs (map (x: { name = attrFor x; value = x.p; }) drvs);
      names = map (x: if isString x.p then x.p else "nspawnCageExtra.${attrFor x}") indexed;
    in
    if bad != [ ] then
      throw "nspawn-cage: mkCage: package ${toString (head bad).i} of cage '${name}' is neither an attribute path (string) nor a derivation"
    else if !isAttrs pkgs then
      throw "nspawn-cage: mkCage: pkgs must be a package set (nixpkgs)"
    else
      import ./cage.nix {
        pkgs = if drvs == [ ] then pkgs else pkgs // { nspawnCageExtra = extra; };
        inherit name;
        packages = names;
      };

  cagePackages = { preset ? null, settings ? { }, packages ? [ ] }:
    let
      p = if preset != null then preset
          else if ((settings.Cage or { }).Preset or null) != null then settings.Cage.Preset
          else "shell";
      fromPreset = presetPackages p;
      admin = (settings.Cage or { }).Packages or [ ];
    in
    render.unique ((if fromPreset == null then [ ] else fromPreset) ++ admin ++ packages);
in
{
  inherit mkCage presets presetPackages cagePackages render;
}
