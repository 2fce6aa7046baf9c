# The options of NixOS that nix/module.nix sets or reads, declared with the
# types NixOS gives them (nixos/modules/misc/assertions.nix,
# system/etc/etc.nix, system/boot/systemd.nix and lib/systemd-unit-options.nix,
# system/boot/systemd/tmpfiles.nix, config/system-path.nix,
# config/users-groups.nix), so that the real module system checks and merges
# the module's definitions as on a NixOS system.  Only the options the
# module and the tests use; no implementation beyond environment.etc's
# `source` (a store path of the text, as pkgs.writeText gives).
{ lib, pkgs, ... }:
let
  inherit (lib) mkOption types;

  # lib/systemd-lib.nix and lib/systemd-unit-options.nix
  unitNameType = types.strMatching "[a-zA-Z0-9@%:_.\\-]+[.](service|socket|device|mount|automount|swap|target|path|timer|scope|slice)";
  unitOption = lib.mkOptionType {
    name = "systemd option";
    merge = loc: defs:
      let defs' = lib.filterOverrides defs; in
      if lib.any (def: lib.isList def.value) defs'
      then lib.concatMap (def: lib.toList def.value) defs'
      else lib.mergeEqualOption loc defs';
  };
  unitDeps = description: mkOption { type = types.listOf unitNameType; default = [ ]; inherit description; };
  commonUnitOptions = {
    enable = mkOption { type = types.bool; default = true; description = "Whether to enable this unit."; };
    overrideStrategy = mkOption {
      type = types.enum [ "asDropinIfExists" "asDropin" ];
      default = "asDropinIfExists";
      description = "Whether the unit is written as a drop-in of a unit from systemd.packages.";
    };
    description = mkOption { type = types.singleLineStr; default = ""; description = "Description="; };
    requires = unitDeps "Requires=";
    wants = unitDeps "Wants=";
    after = unitDeps "After=";
    before = unitDeps "Before=";
    bindsTo = unitDeps "BindsTo=";
    partOf = unitDeps "PartOf=";
    conflicts = unitDeps "Conflicts=";
    wantedBy = unitDeps "WantedBy= (symlinks)";
    requiredBy = unitDeps "RequiredBy= (symlinks)";
    unitConfig = mkOption { type = types.attrsOf unitOption; default = { }; description = "[Unit] section."; };
    restartTriggers = mkOption { type = types.listOf types.unspecified; default = [ ]; description = "X-Restart-Triggers="; };
    reloadTriggers = mkOption { type = types.listOf unitOption; default = [ ]; description = "X-Reload-Triggers="; };
  };
  serviceOptions = commonUnitOptions // {
    serviceConfig = mkOption { type = types.attrsOf unitOption; default = { }; description = "[Service] section."; };
    environment = mkOption {
      type = with types; attrsOf (nullOr (oneOf [ str path package ]));
      default = { };
      description = "Environment=";
    };
    path = mkOption { type = with types; listOf (oneOf [ package str ]); default = [ ]; description = "PATH"; };
    script = mkOption { type = types.lines; default = ""; description = "ExecStart= script"; };
    restartIfChanged = mkOption { type = types.bool; default = true; description = "Restart on switch when changed."; };
    reloadIfChanged = mkOption { type = types.bool; default = false; description = "Reload on switch when changed."; };
    stopIfChanged = mkOption { type = types.bool; default = true; description = "Stop, then start, on switch."; };
    startAt = mkOption { type = with types; either str (listOf str); default = [ ]; description = "OnCalendar= of a timer"; };
  };
  timerOptions = commonUnitOptions // {
    timerConfig = mkOption { type = types.attrsOf unitOption; default = { }; description = "[Timer] section."; };
  };
  units = options: mkOption { type = types.attrsOf (types.submodule { inherit options; }); default = { }; description = "units"; };

  # system/etc/etc.nix
  etcModule = { name, config, options, ... }: {
    options = {
      enable = mkOption { type = types.bool; default = true; description = "Whether this file is generated."; };
      target = mkOption { type = types.str; default = name; description = "Path relative to /etc."; };
      text = mkOption { type = types.nullOr types.lines; default = null; description = "Text of the file."; };
      source = mkOption { type = types.path; description = "Path of the source file."; };
      mode = mkOption { type = types.str; default = "symlink"; description = "symlink, direct-symlink or an octal mode"; };
      user = mkOption { type = types.str; default = "+0"; description = "owner"; };
      group = mkOption { type = types.str; default = "+0"; description = "group"; };
    };
    config.source = lib.mkIf (config.text != null) (lib.mkDerivedConfig options.text (pkgs.writeText "etc-${baseNameOf name}"));
  };

  # config/users-groups.nix (the options the tests use)
  userModule = { name, ... }: {
    options = {
      name = mkOption { type = types.passwdEntry types.str; default = name; description = "user name"; };
      uid = mkOption { type = types.nullOr types.int; default = null; description = "uid"; };
      isNormalUser = mkOption { type = types.bool; default = false; description = "a normal user"; };
      isSystemUser = mkOption { type = types.bool; default = false; description = "a system user"; };
      group = mkOption { type = types.str; default = ""; description = "primary group"; };
      extraGroups = mkOption { type = types.listOf types.str; default = [ ]; description = "groups"; };
      home = mkOption { type = types.passwdEntry types.path; default = "/var/empty"; description = "home"; };
      createHome = mkOption { type = types.bool; default = false; description = "create the home"; };
    };
  };
in
{
  options = {
    # nixos/modules/misc/assertions.nix
    assertions = mkOption { type = types.listOf types.unspecified; internal = true; default = [ ]; description = "assertions"; };
    warnings = mkOption { type = types.listOf types.str; internal = true; default = [ ]; description = "warnings"; };
    environment.systemPackages = mkOption { type = types.listOf types.package; default = [ ]; description = "packages"; };
    environment.etc = mkOption { type = types.attrsOf (types.submodule etcModule); default = { }; description = "/etc"; };
    systemd.packages = mkOption { type = types.listOf types.package; default = [ ]; description = "packages with units"; };
    systemd.services = units serviceOptions;
    systemd.timers = units timerOptions;
    systemd.targets = units commonUnitOptions;
    systemd.tmpfiles.rules = mkOption { type = types.listOf types.str; default = [ ]; description = "tmpfiles.d lines"; };
    users.users = mkOption { type = types.attrsOf (types.submodule userModule); default = { }; description = "users"; };
    # the test's nodes (flake.nix checks.vm) set these
    virtualisation.memorySize = mkOption { type = types.ints.positive; default = 1024; description = "MiB"; };
    virtualisation.diskSize = mkOption { type = types.nullOr (types.ints.positive); default = 1024; description = "MiB"; };
    virtualisation.additionalPaths = mkOption { type = types.listOf types.path; default = [ ]; description = "store paths"; };
  };
}
