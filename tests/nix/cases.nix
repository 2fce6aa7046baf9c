# What tests/nix/run.sh evaluates (nix-instantiate --eval --strict --json -A NAME),
# with the real nixpkgs lib (`libPath`) and NixOS's option types (nixos.nix):
#   render.*    texts of nix/render.nix for sample option values
#   refuse.*    values the renderer must refuse (the evaluation must fail)
#   checks.*    assertion messages of nix/render.nix
#   module.*    nix/module.nix through the real module system
#   flake.*     flake.nix's outputs with a stub nixpkgs whose lib is the real one
#   lib.*       nix/lib.nix (presets, mkCage wiring)
# `project` is the project directory the C parser will check, `user` the
# user it runs as (run.sh makes the one and passes the other); `readme` the
# NixOS module of README.md's example, cut out verbatim by run.sh.
{ libPath, project ? "/tmp/nspawn-cage-nix-test/project", user ? "nobody", readme ? null }:
let
  lib = import libPath;
  render = import ../../nix/render.nix;
  nclib = import ../../nix/lib.nix;
  nixpkgs = import ./stub-nixpkgs.nix { inherit lib; };
  pkgs = nixpkgs.legacyPackages.x86_64-linux;

  toplevel = "/nix/store/1c6kzph7l0dcbfmjap64f0czdafn3b7x-nspawn-cage-demo";
  fakeDrv = { type = "derivation"; name = "ripgrep-14.1.0"; outPath = "/nix/store/2c6kzph7l0dcbfmjap64f0czdafn3b7x-ripgrep-14.1.0"; };

  # Every key an administrator may set, in the values' canonical form (as
  # `nspawn-cage config` prints them back).
  fullSettings = {
    Cage = {
      Preset = "shell";
      Command = "bash -l";
      Packages = [ "git" "less" ];
      Nixpkgs = "<nixpkgs>";
      Name = "fixed-name";
    };
    Limits = { CPUs = 1.5; Memory = "2G"; Swap = "512M"; Tasks = 2048; };
    Network = { Mode = "private"; Allow = [ "192.0.2.1:443" "192.0.2.2:8080" ]; };
    Display = { X11 = false; Wayland = false; GPU = false; X11Trusted = false; };
    Files = { Bind = [ "/srv/shared" ]; BindReadOnly = [ "/opt/tools:/opt/tools-ro" ]; ProtectGit = true; };
    State = { Directory = [ ".agent" ]; File = [ ".agent.json" ]; Persist = true; };
    Environment = {
      Pass = [ "TERM" "LANG" "ANTHROPIC_API_KEY" ];
      # blanks after NAME= are kept (only the whole value is stripped)
      Set = { EDITOR = "vi"; GREETING = "hello world; bye"; INDENT = "  two blanks first"; };
    };
    Policy = {
      AllowUsers = [ user "alice" ];
      MaxCPUs = 4;
      MaxMemory = "16G";
      MaxSwap = "1G";
      MaxTasks = 16384;
      AllowNetwork = [ "off" "private" "host" ];
      AllowDisplay = true;
      AllowGPU = false;
      AllowX11Trusted = false;
      AllowBinds = true;
      AllowEgress = [ "192.0.2.1:443" "192.0.2.2:8080" "192.0.2.3:22" ];
    };
  };

  # The module through the real module system, NixOS's options declared.
  package = pkgs.stdenv.mkDerivation { pname = "nspawn-cage"; version = "0.1.0"; meta = { }; };
  evalNixos = modules: lib.evalModules {
    modules = [ ./nixos.nix { _module.args.pkgs = pkgs // { nspawn-cage = package; }; } ] ++ modules;
  };
  withModule = modules: (evalNixos ([ ../../nix/module.nix ] ++ modules)).config;

  summary = cfg: {
    assertions = map (a: a.message) (builtins.filter (a: !a.assertion) cfg.assertions);
    warnings = cfg.warnings;
    etc = builtins.mapAttrs (n: v: v.text) cfg.environment.etc;
    sources = builtins.mapAttrs (n: v: "${v.source}") cfg.environment.etc;
    services = builtins.mapAttrs (n: v: {
      inherit (v) overrideStrategy wantedBy restartIfChanged;
      environmentFile = v.serviceConfig.EnvironmentFile or null;
      requiresMountsFor = v.unitConfig.RequiresMountsFor or null;
      triggers = map toString v.restartTriggers;
    }) cfg.systemd.services;
    targets = builtins.mapAttrs (n: v: v.wantedBy) cfg.systemd.targets;
    timers = builtins.mapAttrs (n: v: { inherit (v) overrideStrategy wantedBy; }) cfg.systemd.timers;
    tmpfiles = cfg.systemd.tmpfiles.rules;
    systemPackages = map (p: p.name) cfg.environment.systemPackages;
    systemdPackages = map (p: p.name) cfg.systemd.packages;
  };

  # Several cages, with every option of a cage between them.
  fullCages = {
    demo = {
      inherit project user;
      preset = "shell";
      packages = [ "git" pkgs.fake-agent ];
      limits = { CPUs = 0.5; Memory = "1G"; Swap = "256M"; Tasks = 512; };
      network = "private";
      display = { X11 = false; Wayland = false; GPU = false; X11Trusted = false; };
      binds = {
        "/mnt/data" = { hostPath = "/srv/data"; isReadOnly = false; };
        "/opt/ref" = { };
      };
      environment = { Pass = [ "ANTHROPIC_API_KEY" ]; Set = { MODE = "declared run"; }; };
      environmentFile = "/run/secrets/demo.env";
      settings = {
        Cage.Command = "bash -l";
        Network.Allow = [ "192.0.2.1:443" ];
        Files.ProtectGit = true;
        State = { Persist = false; };
        Environment.File = "/run/secrets/demo-agent.env";
      };
      autoStart = true;
      restartIfChanged = true;
    };
    hostnet = { inherit project user; network = "host"; autoStart = true; };
    offline = { inherit project user; network = "off"; restartIfChanged = false; limits.CPUs = "0.25"; };
  };
  # (an egress allowlist for all would refuse the host and off cages)
  moduleSettings = lib.recursiveUpdate fullSettings { Network.Allow = [ ]; Policy.AllowEgress = [ ]; };
  full = withModule [ { users.users.${user} = { isNormalUser = true; }; services.nspawn-cage = { enable = true; settings = moduleSettings; cages = fullCages; }; } ];

  # restart semantics: the same system with one change
  changed = f: summary (withModule [ { users.users.${user} = { isNormalUser = true; }; services.nspawn-cage = f { enable = true; settings = moduleSettings; cages = fullCages; }; } ]);

  flake = import ../../flake.nix;
  self = flake.outputs { inherit self nixpkgs; } // { outPath = toString ../..; };
  vm = self.checks.x86_64-linux.vm;
  viaFlake = modules: (evalNixos ([ self.nixosModules.default ] ++ modules)).config;

  # nixpkgs.config, as NixOS declares it (nixos/modules/misc/nixpkgs.nix), for the README's module
  nixpkgsConfigOption = {
    options.nixpkgs.config = lib.mkOption {
      type = lib.mkOptionType {
        name = "nixpkgs-config";
        check = x: lib.isAttrs x || lib.isFunction x;
        merge = loc: defs: lib.foldr (d: acc: lib.recursiveUpdate acc d.value) { } defs;
      };
      default = { };
      description = "The configuration of the Nix Packages collection.";
    };
  };
  # A declared cage's own settings (cages.<name>.settings, as the typed options fill them)
  demoSettings = {
    Cage = { Preset = "shell"; Command = "bash -l"; Packages = [ "git" "less" ]; };
    Limits = { CPUs = 0.5; Memory = "1G"; Swap = "256M"; Tasks = 512; };
    Network = { Mode = "private"; Allow = [ "192.0.2.3:22" ]; };
    Display = { X11 = false; Wayland = false; GPU = false; X11Trusted = false; };
    Files = { Bind = [ "/srv/data:/mnt/data" ]; BindReadOnly = [ "/opt/ref" ]; ProtectGit = true; };
    State = { Directory = [ ".demo" ]; File = [ ".demo.json" ]; Persist = false; };
    Environment = { Pass = [ "ANTHROPIC_API_KEY" ]; Set = { MODE = "test run"; }; File = "/run/secrets/demo.env"; };
  };

in
{
  libVersion = lib.version;

  render = {
    minimal = render.admin { };
    full = render.admin fullSettings;
    cage = render.cage { name = "demo"; inherit toplevel project user; settings = demoSettings; derivations = [ fakeDrv ]; };
    cageMinimal = render.cage { name = "bare"; inherit toplevel project user; };
    checkCage = render.checkCage { name = "demo"; inherit project user; settings = demoSettings; admin = fullSettings; };
    keys = map (k: { inherit (k) section key files; }) render.keys;
    presetPackages = render.presetPackages "[Cage]\nPackages=a b\nPackages=c\n[Environment]\nPass=X\n";
    presetPackagesReset = render.presetPackages "[Cage]\nPackages=a b\nPackages=\nPackages=c\n";
    floats = map render.cpusText [ 0.5 2.0 1.25 3 "0.75" ];
    checkFull = render.checkSettings fullSettings;
  };

  refuse = {
    newlineSet = render.admin { Environment.Set.X = "a\nb"; };
    newlineCommand = render.admin { Cage.Command = "make\nrm -rf /"; };
    newlinePackage = render.admin { Cage.Packages = [ "git\n[Policy]" ]; };
    newlineProject = render.cage { name = "x"; inherit toplevel; project = "/home/a\nb"; user = "nobody"; };
    carriageReturn = render.admin { Cage.Command = "make\r"; };
    controlChar = render.admin { Environment.Set.X = builtins.fromJSON "\"a\\u0001b\""; };
    longLine = render.admin { Files.Bind = [ ("/srv/" + builtins.concatStringsSep "/" (builtins.genList (i: "directory${toString i}") 20)) ]; };
    semicolonAfterBlank = render.admin { Cage.Command = "make ;rm"; };
    leadingBlank = render.admin { Cage.Command = " bash"; };
    trailingBlankSet = render.admin { Environment.Set.X = "padded "; };
    trailingBlank = render.cage { name = "x"; inherit toplevel project; user = "nobody "; };
    twoWords = render.admin { Environment.Pass = [ "A B" ]; };
    emptyWord = render.admin { Cage.Packages = [ "" ]; };
    tooManyUsers = render.admin { Policy.AllowUsers = builtins.genList (i: "user-with-a-long-name-${toString i}") 10; };
    cpusThreeDecimals = render.admin { Limits.CPUs = 0.333; };
    listForScalar = render.admin { Limits.Memory = [ "1G" "2G" ]; };
    mkCageNotAPackage = nclib.mkCage { inherit pkgs; name = "bad"; packages = [ 42 ]; };
  };

  checks = {
    settings = render.checkSettings {
      Limits = { Memory = "32G"; CPUs = "infinity"; Tasks = 100000; };
      Network = { Mode = "host"; Allow = [ "no host" "example.com:99999" ]; };
      Display.X11 = true;
      Files.Bind = [ "/srv/x" "relative/path" "/a/../b" ];
      State.Directory = [ "/abs" "../up" ];
      Environment = { Pass = [ "1BAD" ]; Set = { PATH = "/x"; SYSTEMD_FOO = "y"; }; File = "/run/x"; };
      Forward.SSHAgent = true;
      Bogus.Key = "x";
      Cage.Project = "/p";
      Limits.Weight = 5;
      Policy = {
        MaxMemory = "16G"; MaxCPUs = 2; MaxTasks = 50000;
        AllowNetwork = [ "private" ]; AllowDisplay = false; AllowBinds = false;
        AllowUsers = [ "Bad User" ]; AllowEgress = [ "-x" ];
      };
    };
    # patterns narrow as validate.c's allow_entry_covers(): only the
    # bare name and the other port fall outside "*.example.org" (443)
    egress = render.checkSettings {
      Network.Allow = [ "api.example.org" "*.x.example.org:443" "example.org" "api.example.org:80" "10.0.0.1:22" ];
      Policy.AllowEgress = [ "*.example.org" "10.0.0.1:22" ];
    };
    noOff = render.checkSettings { Policy.AllowNetwork = [ "private" ]; };
    noNetwork = render.checkSettings { Policy.AllowNetwork = [ ]; };
    tooSmall = render.checkSettings { Limits.Memory = "8M"; };
    cage = render.checkCage {
      name = "-bad"; project = "home/alice/proj"; user = "root";
      settings = {
        Cage = { Preset = "Claude"; Packages = [ "git" "not a package" ]; Nixpkgs = "/srv/np"; NixDaemon = true; Containers = "podman"; };
        Limits = { Memory = "20G"; Swap = "2G"; };
        Network = { Mode = "host"; Allow = [ "192.0.2.9:443" ]; Publish = [ "3000" ]; HostService = [ "127.0.0.1:5432" ]; };
        Display = { Wayland = true; GPU = true; X11Trusted = true; };
        Files.Bind = [ "/srv/x" ];
        Environment = { Set.HOME = "/tmp"; File = "/nix/store/00000000000000000000000000000000-secret"; };
        Policy.MaxMemory = "64G";
      };
      admin = {
        Policy = {
          MaxMemory = "16G"; MaxSwap = "1G"; AllowUsers = [ "alice" ];
          AllowDisplay = false; AllowGPU = false; AllowX11Trusted = false; AllowBinds = false;
          AllowEgress = [ "192.0.2.1:443" ]; AllowPublish = false; AllowHostServices = false;
        };
      };
    };
    cageFine = render.checkCage {
      name = "ok.cage_1"; project = "/home/alice/proj"; user = "alice";
      settings = { Limits.Memory = "infinity"; Network.Mode = "host"; };
      admin = { Policy = { AllowUsers = [ "*" ]; AllowNetwork = [ "off" "host" ]; }; };
    };
  };

  module = {
    full = summary full;
    # every assertion of the module itself (the renderer's are checks.*)
    bad = (summary (withModule [
      {
        services.nspawn-cage = {
          enable = true;
          settings.Policy = { MaxMemory = "16G"; AllowDisplay = false; };
          cages.bad = {
            project = "relative"; user = "root"; preset = "no-such-preset";
            limits.Memory = "32G"; network = "host"; display.X11 = true;
            binds."/data" = { hostPath = "/srv/../etc"; };
            environmentFile = "/nix/store/00000000000000000000000000000000-secret";
            settings = { Policy.AllowGPU = true; Forward.GitConfig = true; };
          };
        };
      }
    ])).assertions;
    typeError = (withModule [
      { services.nspawn-cage = { enable = true; cages.x = { project = "/p"; user = "u"; limits.Memory = "1 G"; }; }; }
    ]).services.nspawn-cage.cages.x.limits.Memory;
    freeformTypeError = (withModule [
      { services.nspawn-cage = { enable = true; settings.Limits.Weight = { a = 1; }; }; }
    ]).services.nspawn-cage.settings.Limits.Weight;
    unknownOption = (withModule [
      { services.nspawn-cage = { enable = true; cages.x = { project = "/p"; user = "u"; limit.Memory = "1G"; }; }; }
    ]).services.nspawn-cage.cages.x;
    conflict = (withModule [
      { services.nspawn-cage = { enable = true; cages.x = { project = "/p"; user = "u"; network = "off"; settings.Network.Mode = "private"; }; }; }
    ]).services.nspawn-cage.cages.x.settings.Network.Mode;
    disabled = (withModule [ { services.nspawn-cage.settings.Limits.Memory = "1G"; } ]).environment.etc;
    # which cages a change restarts: the triggers before and after
    restart = {
      base = (changed (c: c)).services;
      admin = (changed (c: c // { settings = lib.recursiveUpdate moduleSettings { Limits.Memory = "3G"; }; })).services;
      oneCage = (changed (c: c // { cages = fullCages // { offline = fullCages.offline // { limits.CPUs = "0.5"; }; }; })).services;
    };
    # nftables and xauth only where a cage needs them
    tools = {
      none = (summary (withModule [ { services.nspawn-cage = { enable = true; cages.a = { inherit project user; }; }; } ])).systemPackages;
      private = (summary (withModule [ { services.nspawn-cage = { enable = true; cages.a = { inherit project user; network = "private"; }; }; } ])).systemPackages;
      x11 = (summary (withModule [ { services.nspawn-cage = { enable = true; settings.Display.X11 = true; }; } ])).systemPackages;
      x11Trusted = (summary (withModule [ { services.nspawn-cage = { enable = true; cages.a = { inherit project user; display = { X11 = true; X11Trusted = true; }; }; }; } ])).systemPackages;
    };
    # README.md's example, verbatim, with the flake's nixosModules.default
    readme = if readme == null then null else summary (viaFlake [ nixpkgsConfigOption (import readme) ]);
    # option documentation: every option users touch first has an example
    examples = let o = (evalNixos [ ../../nix/module.nix ]).options.services.nspawn-cage; c = o.cages.type.getSubOptions [ ]; in {
      cages = o.cages ? example;
      settings = o.settings ? example;
      limits = c.limits ? example;
      network = c.network ? example;
      binds = c.binds ? example;
      cageSettings = c.settings ? example;
      environment = c.environment ? example;
    };
  };

  flake = {
    configureFlags = self.packages.x86_64-linux.default.drvAttrs.configureFlags;
    checkFlags = self.packages.x86_64-linux.default.drvAttrs.checkFlags;
    doCheck = self.packages.x86_64-linux.default.drvAttrs.doCheck;
    meta = { inherit (self.packages.x86_64-linux.default.meta) mainProgram; license = self.packages.x86_64-linux.default.meta.license.spdxId; };
    app = self.apps.x86_64-linux.default;
    overlay = (self.overlays.default pkgs pkgs).nspawn-cage.name;
    mkCage = (self.lib.mkCage { inherit pkgs; name = "flake"; packages = [ "git" ]; }).name;
    renderAdmin = self.lib.render.admin { Limits.Memory = "1G"; };
    devShell = self.devShells.x86_64-linux.default.name;
    checkNames = builtins.attrNames self.checks.x86_64-linux;
    systems = builtins.attrNames self.packages;
    vmName = vm.name;
    testScript = vm.testScript;
    host = summary (viaFlake [ vm.nodes.host ]);
    adhocPackages = map (p: p.name) (viaFlake [ vm.nodes.adhoc ]).environment.systemPackages;
  };

  lib = {
    presets = nclib.presets;
    claudeCode = nclib.presetPackages "claude-code";
    missingPreset = nclib.presetPackages "no-such-preset";
    cagePackages = nclib.cagePackages {
      settings = { Cage = { Preset = "codex"; Packages = [ "jq" "git" ]; }; };
      packages = [ "ripgrep" "htop" ];
    };
    mkCageMetadata = (nclib.mkCage {
      inherit pkgs;
      name = "mixed";
      packages = [ "git" pkgs.fake-agent "less" ];
    }).metadata;
  };
}
