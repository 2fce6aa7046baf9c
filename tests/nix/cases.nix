# What tests/nix/run.sh evaluates (nix-instantiate --eval --strict --json -A NAME):
#   render.*    texts of nix/render.nix for sample option values
#   refuse.*    values the renderer must refuse (the evaluation must fail)
#   checks.*    assertion messages for impossible combinations
#   module.*    nix/module.nix evaluated with the mock module system
#   flake.*     flake.nix's outputs evaluated with a mock nixpkgs
#   lib.*       nix/lib.nix (presets, mkCage wiring)
# `project` is the project directory the C parser will check and `user` the
# user it runs as (run.sh makes the one and passes the other).
{ project ? "/tmp/nspawn-cage-nix-test/project", user ? "nobody" }:
let
  render = import ../../nix/render.nix;
  nclib = import ../../nix/lib.nix;
  mock = import ./mock-nixpkgs.nix { };
  mlib = mock.lib;
  pkgs = mock.legacyPackages.x86_64-linux;

  toplevel = "/nix/store/1c6kzph7l0dcbfmjap64f0czdafn3b7x-nspawn-cage-demo";
  # a derivation-shaped value: the renderer only writes its name as a comment
  fakeDrv = { type = "derivation"; name = "ripgrep-14.1.0"; outPath = "/nix/store/2c6kzph7l0dcbfmjap64f0czdafn3b7x-ripgrep-14.1.0"; };

  # Every key of nspawn-cage.conf(5), in the values' canonical form (as
  # `nspawn-cage config` prints them back).  `user` runs the C parser.
  fullSettings = {
    Cage = {
      Preset = "shell";
      Command = "bash -l";
      Packages = [ "git" "ripgrep" "python3Packages.requests" ];
      Nixpkgs = "<nixpkgs>";
      Name = "fixed-name";
    };
    Limits = { CPUs = 1.5; Memory = "2G"; Swap = "512M"; Tasks = 2048; };
    Network.Mode = "private";
    Display = { X11 = false; Wayland = false; GPU = false; };
    Files = { Bind = [ "/srv/shared" ]; BindReadOnly = [ "/opt/tools:/opt/tools-ro" ]; };
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
      AllowNetwork = [ "off" "private" ];
      AllowDisplay = true;
      AllowGPU = false;
      AllowBinds = true;
    };
  };

  demoCage = {
    inherit project user;
    preset = "shell";
    packages = [ "git" "less" fakeDrv ];
    limits = { CPUs = 0.5; Memory = "1G"; Tasks = 512; };
    network = "private";
    display = { X11 = false; };
    binds = [ "/srv/data:/mnt/data" ];
    bindsReadOnly = [ "/opt/ref" ];
    environment = { Pass = [ "ANTHROPIC_API_KEY" ]; Set = { MODE = "test run"; }; };
  };

  # The module, evaluated with the mock module system and the local package set.
  evalNixos = modules: (mlib.evalModules {
    modules = modules;
    args = { pkgs = pkgs // { nspawn-cage = pkgs.stdenv.mkDerivation { pname = "nspawn-cage"; version = "0.1.0"; }; }; };
  }).config;

  moduleConfig = evalNixos [
    ../../nix/module.nix
    {
      users.users.${user} = { };
      services.nspawn-cage = {
        enable = true;
        # the admin's Packages= go into declared cages' closures: only
        # packages tests/pkgs has
        settings = fullSettings // { Cage = fullSettings.Cage // { Packages = [ "git" "less" ]; }; };
        cages.demo = {
          inherit project user;
          packages = [ "git" pkgs.fake-agent ];
          limits.Memory = "1G";
          network = "private";
          bindsReadOnly = [ "/opt/ref" ];
          environment.Set.MODE = "declared";
          environmentFile = "/run/secrets/demo.env";
          autoStart = true;
        };
        cages.second = {
          inherit project user;
          limits.CPUs = "0.25";
        };
      };
    }
  ];

  summary = cfg: {
    assertions = map (a: a.message) (builtins.filter (a: !a.assertion) cfg.assertions);
    warnings = cfg.warnings;
    etc = builtins.mapAttrs (n: v: v.text) cfg.environment.etc;
    services = builtins.mapAttrs (n: v: {
      overrideStrategy = v.overrideStrategy;
      wantedBy = v.wantedBy;
      environmentFile = (v.serviceConfig or { }).EnvironmentFile or null;
      triggers = builtins.length v.restartTriggers;
    }) cfg.systemd.services;
    timers = cfg.systemd.timers;
    tmpfiles = cfg.systemd.tmpfiles.rules;
    systemPackages = map (p: p.name) cfg.environment.systemPackages;
    systemdPackages = map (p: p.name) cfg.systemd.packages;
  };

  # flake.nix's outputs with the mock nixpkgs (self is their fixed point).
  flake = import ../../flake.nix;
  self = flake.outputs { inherit self; nixpkgs = mock; } // { outPath = toString ../..; };
  vm = self.checks.x86_64-linux.vm;
in
{
  render = {
    minimal = render.admin { };
    full = render.admin fullSettings;
    cage = render.cage { name = "demo"; inherit toplevel; cage = demoCage; };
    # a cage with nothing but what is required
    cageMinimal = render.cage {
      name = "bare";
      inherit toplevel;
      cage = { inherit project user; };
    };
    presetPackages = render.presetPackages "[Cage]\nPackages=a b\nPackages=c\n[Environment]\nPass=X\n";
    presetPackagesReset = render.presetPackages "[Cage]\nPackages=a b\nPackages=\nPackages=c\n";
    floats = map render.cpusText [ 0.5 2.0 1.25 3 "0.75" ];
    # nothing above may trip the checks
    checkFull = render.checkSettings fullSettings;
    checkCage = render.checkCage { name = "demo"; cage = demoCage; settings = fullSettings; };
  };

  refuse = {
    newlineSet = render.admin { Environment.Set.X = "a\nb"; };
    newlineCommand = render.admin { Cage.Command = "make\nrm -rf /"; };
    newlinePackage = render.admin { Cage.Packages = [ "git\n[Policy]" ]; };
    newlineProject = render.cage { name = "x"; inherit toplevel; cage = { project = "/home/a\nb"; user = "nobody"; }; };
    carriageReturn = render.admin { Cage.Command = "make\r"; };
    controlChar = render.admin { Environment.Set.X = builtins.fromJSON "\"a\\u0001b\""; };
    longLine = render.admin { Files.Bind = [ ("/srv/" + builtins.concatStringsSep "/" (builtins.genList (i: "directory${toString i}") 20)) ]; };
    semicolonAfterBlank = render.admin { Cage.Command = "make ;rm"; };
    leadingBlank = render.admin { Cage.Command = " bash"; };
    trailingBlankSet = render.admin { Environment.Set.X = "padded "; };
    trailingBlank = render.cage { name = "x"; inherit toplevel; cage = { inherit project; user = "nobody "; }; };
    twoWords = render.admin { Environment.Pass = [ "A B" ]; };
    emptyWord = render.admin { Cage.Packages = [ "" ]; };
    tooManyUsers = render.admin { Policy.AllowUsers = builtins.genList (i: "user-with-a-long-name-${toString i}") 10; };
    cpusThreeDecimals = render.admin { Limits.CPUs = 0.333; };
    mkCageNotAPackage = nclib.mkCage { inherit pkgs; name = "bad"; packages = [ 42 ]; };
  };

  checks = {
    # impossible combinations, each must be reported
    settings = render.checkSettings {
      Limits = { Memory = "32G"; CPUs = "infinity"; Tasks = 100000; };
      Network.Mode = "host";
      Display.X11 = true;
      Files.Bind = [ "/srv/x" "relative/path" "/a/../b" ];
      Environment = { Pass = [ "1BAD" ]; Set = { PATH = "/x"; SYSTEMD_FOO = "y"; }; };
      Policy = {
        MaxMemory = "16G"; MaxCPUs = 2; MaxTasks = 50000;
        AllowNetwork = [ "private" ]; AllowDisplay = false; AllowBinds = false;
        AllowUsers = [ "Bad User" ];
      };
    };
    noOff = render.checkSettings { Policy.AllowNetwork = [ "private" ]; };
    noNetwork = render.checkSettings { Policy.AllowNetwork = [ ]; };
    tooSmall = render.checkSettings { Limits.Memory = "8M"; };
    cage = render.checkCage {
      name = "-bad";
      cage = {
        project = "home/alice/proj"; user = "root"; preset = "Claude";
        packages = [ "git" "not a package" ];
        limits = { Memory = "20G"; Swap = "2G"; };
        network = "host";
        display = { Wayland = true; GPU = true; };
        binds = [ "/srv/x" ];
        environment.Set.HOME = "/tmp";
      };
      settings = {
        Policy = {
          MaxMemory = "16G"; MaxSwap = "1G"; AllowUsers = [ "alice" ];
          AllowDisplay = false; AllowGPU = false; AllowBinds = false;
        };
      };
    };
    cageFine = render.checkCage {
      name = "ok.cage_1";
      cage = { project = "/home/alice/proj"; user = "alice"; limits.Memory = "infinity"; };
      settings = { Policy.AllowUsers = [ "*" ]; };
    };
  };

  module = {
    good = summary moduleConfig;
    # impossible combinations become assertions
    bad = (summary (evalNixos [
      ../../nix/module.nix
      {
        services.nspawn-cage = {
          enable = true;
          settings.Policy = { MaxMemory = "16G"; AllowDisplay = false; };
          cages.bad = {
            project = "relative"; user = "root"; preset = "no-such-preset";
            limits.Memory = "32G"; network = "host"; display.X11 = true;
            environmentFile = "/nix/store/00000000000000000000000000000000-secret";
          };
        };
      }
    ])).assertions;
    # the option types refuse what the C parser would refuse
    typeError = (evalNixos [
      ../../nix/module.nix
      { services.nspawn-cage = { enable = true; cages.x = { project = "/p"; user = "u"; limits.Memory = "1 G"; }; }; }
    ]).services.nspawn-cage.cages.x.limits.Memory;
    # an option that does not exist is an error (a typo in a configuration)
    unknownOption = (evalNixos [
      ../../nix/module.nix
      { services.nspawn-cage = { enable = true; cages.x = { project = "/p"; user = "u"; limit.Memory = "1G"; }; }; }
    ]).services.nspawn-cage.cages.x;
    disabled = (evalNixos [
      ../../nix/module.nix
      { services.nspawn-cage.settings.Limits.Memory = "1G"; }
    ]).environment.etc or null;
  };

  flake = {
    configureFlags = self.packages.x86_64-linux.default.drvAttrs.configureFlags;
    checkFlags = self.packages.x86_64-linux.default.drvAttrs.checkFlags;
    doCheck = self.packages.x86_64-linux.default.drvAttrs.doCheck;
    app = self.apps.x86_64-linux.default.program;
    overlay = (self.overlays.default pkgs pkgs).nspawn-cage.name;
    mkCage = (self.lib.mkCage { inherit pkgs; name = "flake"; packages = [ "git" ]; }).name;
    devShell = self.devShells.x86_64-linux.default.name;
    vmName = vm.name;
    testScript = vm.testScript;
    host = summary (evalNixos [ vm.nodes.host ]);
    adhocPackages = map (p: p.name) (evalNixos [ vm.nodes.adhoc ]).environment.systemPackages;
  };

  lib = {
    presets = nclib.presets;
    claudeCode = nclib.presetPackages "claude-code";
    missingPreset = nclib.presetPackages "no-such-preset";
    cagePackages = nclib.cagePackages {
      settings = { Cage = { Preset = "codex"; Packages = [ "jq" "git" ]; }; };
      packages = [ "ripgrep" "htop" ];
    };
    # derivations reach cage.nix as attribute paths in an added set
    mkCageMetadata = (nclib.mkCage {
      inherit pkgs;
      name = "mixed";
      packages = [ "git" pkgs.fake-agent "less" ];
    }).metadata;

  };
}
