# nspawn-cage: NixOS module.
#
#   services.nspawn-cage = {
#     enable = true;
#     settings.Limits.Memory = "4G";               # /etc/nspawn-cage/nspawn-cage.conf
#     settings.Policy.MaxMemory = "16G";
#     cages.demo = {                               # /etc/nspawn-cage/cages/demo.conf
#       user = "alice";
#       project = "/home/alice/proj";
#       packages = [ "git" pkgs.ripgrep ];
#       limits.Memory = "1G";
#       autoStart = true;                          # nspawn-cage@demo.service at boot
#     };
#   };
#
# `settings` is the administrator layer of nspawn-cage.conf(5), RFC 42 style:
# settings.<Section>.<Key> as in the file, typed where nspawn-cage.conf(5)
# documents the key, freeform otherwise (every key is then checked against
# the C parser's table, render.keys).  null and [ ] leave a key out, so
# nspawn-cage's built-in default applies.  Each `cages.<name>` is a
# *declared cage*: its file is the administrator layer for that one cage
# (read after nspawn-cage.conf, no user layer) with Project=, User= and
# Toplevel=, the cage's closure built with the system, so that starting it
# at boot evaluates no Nix.  `cages.<name>.settings` holds any key of that
# file; the typed options (preset, limits, network, display, binds,
# environment) are written into it.  The texts come from the pure renderers
# in ./render.nix; impossible combinations are assertions, with the same
# rules the C parser applies at run time.
{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption mkEnableOption mkIf mkMerge types literalExpression;

  cfg = config.services.nspawn-cage;
  nclib = import ./lib.nix;
  render = nclib.render;

  # ---- types (the C parser checks the same at run time) ----
  sizeType = types.strMatching "[0-9]+[KMGT]?|infinity";
  cpusType = types.oneOf [
    types.ints.positive
    types.float
    (types.strMatching "[0-9]+(\\.[0-9]{1,2})?|infinity")
  ];
  tasksType = types.either (types.ints.between 1 4194304) (types.enum [ "infinity" ]);
  modeType = types.enum [ "off" "private" "host" ];

  nullOpt = type: description: mkOption { type = types.nullOr type; default = null; inherit description; };
  listOpt = type: description: mkOption { type = types.listOf type; default = [ ]; inherit description; };
  setOpt = description: mkOption { type = types.attrsOf types.str; default = { }; inherit description; };

  # A value of nspawn-cage.conf(5), as pkgs.formats.ini { listsAsDuplicateKeys
  # = true; } takes them (a list is one Key= line per element), plus the
  # NAME = "VALUE" sets of Set=.  pkgs.formats is not used so that the
  # module evaluates with lib alone (tests/nix/run.sh).
  iniAtom = types.nullOr (types.oneOf [ types.bool types.int types.float types.str ]) // {
    description = "nspawn-cage.conf value (null, bool, int, float or string)";
  };
  iniValue = types.oneOf [ iniAtom (types.listOf iniAtom) (types.attrsOf (types.nullOr types.str)) ];

  # A section: its typed keys, freeform around them.
  sectionType = options: types.submodule { freeformType = types.attrsOf iniValue; inherit options; };
  settingsType = types.submodule {
    freeformType = types.attrsOf (types.attrsOf iniValue);
    options = lib.mapAttrs (section: options: mkOption {
      type = sectionType options;
      default = { };
      description = "[${section}] of nspawn-cage.conf(5).";
    }) settingsOptions;
  };

  limitOptions = {
    CPUs = nullOpt cpusType ''
      CPUs= : CPUs the cage may use, at most two decimals (0.5), or "infinity";
      becomes CPUQuota=.  null: nspawn-cage's default (2).'' // { example = 2; };
    Memory = nullOpt sizeType ''
      Memory= : a size ("512M", "4G"; K, M, G, T are powers of 1024; at least 16M)
      or "infinity"; becomes MemoryMax=.  null: the default (4G).'' // { example = "4G"; };
    Swap = nullOpt sizeType ''
      Swap= : a size or "infinity"; becomes MemorySwapMax=.  null: the default (0).'';
    Tasks = nullOpt tasksType ''
      Tasks= : processes and threads, 1-4194304, or "infinity"; becomes TasksMax=.
      null: the default (4096).'';
  };

  displayOptions = {
    X11 = nullOpt types.bool "X11= : forward the user's X11 display.  null: the default (no).";
    Wayland = nullOpt types.bool "Wayland= : forward the user's Wayland compositor.  null: the default (no).";
    GPU = nullOpt types.bool "GPU= : give the cage the GPU device nodes.  null: the default (no).";
    X11Trusted = nullOpt types.bool ''
      X11Trusted= : with X11, forward the user's own (trusted) cookie instead of an
      untrusted one: full access to the X session.  null: the default (no).'';
  };

  environmentOptions = {
    Pass = listOpt types.str ''
      Pass= : names of variables of the caller's environment passed to the agent
      (one Pass= line each).  [ ]: the default (TERM COLORTERM LANG).'';
    Set = setOpt ''
      Set= : variables for the agent, NAME = "VALUE" (one Set=NAME=VALUE line
      each).  Variables nspawn-cage manages (HOME, PATH, TERM, SYSTEMD_*, ...)
      cannot be set.  The values end up in the Nix store: no secrets here.'';
  };

  # The keys nspawn-cage.conf(5) documents, typed; `settings` is freeform
  # (RFC 42) around them, so a key without an option here can be declared
  # too, and is checked against render.keys (the C parser's table).
  settingsOptions = {
    Cage = {
      Preset = nullOpt types.str ''
        Preset= : the default preset (shell, claude-code, codex, gemini-cli,
        opencode, or a user's own).  null: "shell".'';
      Command = nullOpt types.str "Command= : the default command run in a cage.  null: the preset's.";
      Packages = listOpt types.str ''
        Packages= : attribute paths in the package set added to every cage
        (one Packages= line each).'';
      Nixpkgs = nullOpt types.str ''
        Nixpkgs= : the package set ad hoc cages are built from: an absolute path,
        `<channel>` or a flake reference.  null: the one nspawn-cage was built with.
        Declared cages (`cages.<name>`) are built from the system's `pkgs` instead.'';
      Name = nullOpt types.str ''
        Name= : a fixed machine name for every ad hoc cage (only one can run at a
        time then).  Rarely useful; declared cages are named by their attribute.'';
      NixDaemon = nullOpt types.bool ''
        NixDaemon= : the host's nix-daemon socket and the whole /nix/store
        (read-only) in the cage, so nix-build works inside; needs
        Policy.AllowNixDaemon.  null: the default (no).'';
      Containers = nullOpt (types.enum [ "no" "podman" ]) ''
        Containers= : podman: nested namespaces, /dev/fuse and /etc/containers
        for rootless podman in the cage.  Needs Policy.AllowContainers.  null: no.'';
    };
    Limits = limitOptions;
    Network = {
      Mode = nullOpt modeType ''
        Mode= : off (loopback only), private (own network namespace with a
        virtual Ethernet link) or host.  null: the default (off).'' // { example = "private"; };
      Allow = listOpt types.str ''
        Allow= : an egress allowlist for Mode=private, HOST[:PORT] entries (one
        Allow= line each; port 443 if none; HOST a name, *.NAME for every name
        below it, or an IPv4 address); names are checked per connection by the
        cage's egress proxy.'' // { example = [ "api.anthropic.com" "*.github.com:443" ]; };
      Publish = listOpt types.str ''
        Publish= : PORT[:CAGEPORT], a port of the cage on the host's 127.0.0.1
        (for the cage's user and root); needs Policy.AllowPublish.'';
      HostService = listOpt types.str ''
        HostService= : ADDR:PORT, one host service the cage reaches as
        nspawn-cage-host:PORT; needs Policy.AllowHostServices.'';
    };
    Display = displayOptions;
    Files = {
      Bind = listOpt types.str ''
        Bind= : SOURCE[:DESTINATION] bound read-write into every cage (absolute,
        normalised paths without `:`, `\`, quotes).'';
      BindReadOnly = listOpt types.str "BindReadOnly= : like Bind=, read-only.";
      ProtectGit = nullOpt types.bool ''
        ProtectGit= : quarantine .git directories, hooks and configs the agent
        made or changed in the project.  null: the default (yes).'';
    };
    State = {
      Directory = listOpt types.str "Directory= : paths relative to the home kept across cages (per user and preset).";
      File = listOpt types.str "File= : files relative to the home copied in and back out.";
      Persist = nullOpt types.bool "Persist= : keep the agent's state at all.  null: the default (yes).";
    };
    Environment = environmentOptions // {
      File = nullOpt types.str ''
        File= : a file of NAME=VALUE lines (a secret, outside the Nix store),
        read as root when the cage starts; only in a declared cage's settings
        (cages.<name>.settings.Environment.File).'';
    };
    Policy = {
      AllowUsers = listOpt types.str ''
        AllowUsers= : user names allowed to use nspawn-cage, or "*".  [ ]: everyone
        who may run it through sudo.  Written as one line (at most 190 characters).'' // { example = [ "alice" "bob" ]; };
      MaxCPUs = nullOpt cpusType "MaxCPUs= : upper bound of CPUs= in every layer.  null: none.";
      MaxMemory = nullOpt sizeType "MaxMemory= : upper bound of Memory= in every layer.  null: none." // { example = "16G"; };
      MaxSwap = nullOpt sizeType "MaxSwap= : upper bound of Swap= in every layer.  null: none.";
      MaxTasks = nullOpt tasksType "MaxTasks= : upper bound of Tasks= in every layer.  null: none.";
      AllowNetwork = nullOpt (types.listOf modeType) ''
        AllowNetwork= : the network modes that may be chosen.  null: the default
        (off private).'' // { example = [ "off" "private" "host" ]; };
      AllowDisplay = nullOpt types.bool "AllowDisplay= : whether X11/Wayland forwarding may be configured.  null: yes.";
      AllowGPU = nullOpt types.bool "AllowGPU= : whether GPU access may be configured.  null: yes.";
      AllowX11Trusted = nullOpt types.bool "AllowX11Trusted= : whether X11Trusted=yes may be configured.  null: yes.";
      AllowBinds = nullOpt types.bool "AllowBinds= : whether extra binds may be configured.  null: yes.";
      AllowNixDaemon = nullOpt types.bool "AllowNixDaemon= : whether NixDaemon=yes may be configured.  null: no.";
      AllowContainers = nullOpt types.bool "AllowContainers= : whether Containers=podman may be configured.  null: no.";
      AllowEgress = listOpt types.str ''
        AllowEgress= : HOST[:PORT] entries (patterns *.NAME included) every
        Mode=private cage is limited to; Allow= may only name entries they
        cover.  [ ]: no bound.'';
      AllowPublish = nullOpt types.bool "AllowPublish= : whether Publish= may be configured.  null: yes.";
      AllowHostServices = nullOpt types.bool "AllowHostServices= : whether HostService= may be configured.  null: yes.";
    };
  };

  # A bind of a declared cage, as containers.<name>.bindMounts.
  bindModule = { name, ... }: {
    options = {
      mountPoint = mkOption {
        type = types.str;
        default = name;
        example = "/mnt/data";
        description = "Where the directory appears in the cage (absolute, normalised).";
      };
      hostPath = mkOption {
        type = types.nullOr types.str;
        default = null;
        example = "/srv/data";
        description = "The host's directory; null: the same path as mountPoint.";
      };
      isReadOnly = mkOption {
        type = types.bool;
        default = true;
        description = "Bind read-only (BindReadOnly=); false: read-write (Bind=).";
      };
    };
  };
  bindLine = b:
    let host = if b.hostPath == null then b.mountPoint else b.hostPath; in
    if host == b.mountPoint then host else "${host}:${b.mountPoint}";

  cageModule = { name, config, ... }: {
    options = {
      project = mkOption {
        type = types.str;
        example = "/home/alice/src/app";
        description = ''
          Project= : the project directory, bound read-write at its own path.
          An absolute, normalised path of a directory owned by `user`.'';
      };
      user = mkOption {
        type = types.str;
        example = "alice";
        description = "User= : the user the cage is for (not root); must exist when the cage starts.";
      };
      preset = nullOpt types.str ''
        Preset= : the cage's preset (one shipped with nspawn-cage: its packages
        are built into the closure; an unfree agent such as claude-code needs
        `nixpkgs.config.allowUnfree` or an `allowUnfreePredicate` admitting it).
        null: settings.Cage.Preset, else "shell".'' // { example = "claude-code"; };
      packages = mkOption {
        type = types.listOf (types.either types.str types.package);
        default = [ ];
        example = literalExpression ''[ "git" "python3Packages.black" pkgs.ripgrep ]'';
        description = ''
          Packages of the cage, added to the preset's and settings.Cage.Packages.
          Strings are attribute paths in the system's `pkgs` (written to the file
          as Packages=); derivations are built into the closure as they are
          (listed in the file as comments).  The closure is built with the
          system and written to the file as Toplevel=: nothing is evaluated
          when the cage starts.'';
      };
      limits = mkOption {
        type = types.submodule { options = limitOptions; };
        default = { };
        example = { Memory = "1G"; CPUs = 0.5; Tasks = 1024; };
        description = "[Limits] of this cage (settings.Limits); null keys inherit services.nspawn-cage.settings.Limits.";
      };
      network = nullOpt modeType ''
        [Network] Mode= of this cage (settings.Network.Mode).  null:
        services.nspawn-cage.settings.Network.Mode.  "private" needs nftables and
        iproute2 (the flake's package has them by store path); "host" needs
        services.nspawn-cage.settings.Policy.AllowNetwork to list it.'' // { example = "private"; };
      display = mkOption {
        type = types.submodule { options = displayOptions; };
        default = { };
        description = "[Display] of this cage (settings.Display); null keys inherit settings.Display.";
      };
      binds = mkOption {
        type = types.attrsOf (types.submodule bindModule);
        default = { };
        example = literalExpression ''
          {
            "/srv/datasets" = { };                                  # read-only, same path
            "/mnt/out" = { hostPath = "/srv/out"; isReadOnly = false; };
          }'';
        description = ''
          Extra directories of the host in the cage, as containers.<name>.bindMounts
          (settings.Files.Bind / BindReadOnly).  Subject to settings.Policy.AllowBinds.'';
      };
      environment = mkOption {
        type = types.submodule { options = environmentOptions; };
        default = { };
        example = { Pass = [ "ANTHROPIC_API_KEY" ]; Set.EDITOR = "vi"; };
        description = "[Environment] of this cage (Pass=, Set=; settings.Environment).";
      };
      environmentFile = nullOpt types.str ''
        A file of NAME=VALUE lines (outside the Nix store, e.g. a secret) loaded
        as EnvironmentFile= of nspawn-cage@${name}.service, so that
        `nspawn-cage start` sees those variables; those named in
        environment.Pass reach the agent of `nspawn-cage shell NAME` (kept in
        /run/nspawn-cage/env/NAME, root's, 0600; see units/README.md).
        settings.Environment.File is the other way: nspawn-cage reads that file
        itself.'' // { example = "/run/secrets/demo.env"; };
      settings = mkOption {
        type = settingsType;
        default = { };
        example = literalExpression ''
          {
            Network = { Mode = "private"; Allow = [ "api.anthropic.com:443" ]; };
            State.Persist = false;
            Environment.File = "/run/secrets/demo.env";
          }'';
        description = ''
          Any key of the cage's file (nspawn-cage.conf(5)), as services.nspawn-cage.settings,
          but no [Policy] (that bounds every cage) and not Project=, User=,
          Toplevel= (from project, user, packages).  The typed options of the
          cage are written here.'';
      };
      autoStart = mkOption {
        type = types.bool;
        default = false;
        description = "Start the cage at boot: nspawn-cage@${name}.service is wanted by machines.target.";
      };
      restartIfChanged = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Restart the cage (nspawn-cage@${name}.service) on `nixos-rebuild switch`
          when its own file changes.  A change of services.nspawn-cage.settings
          alone restarts no cage: each picks it up at its next start.  false:
          never restarted by a switch (the agent's session is kept).'';
      };
    };
    config.settings = {
      Cage.Preset = mkIf (config.preset != null) config.preset;
      Cage.Packages = builtins.filter builtins.isString config.packages;
      Limits = lib.mapAttrs (_: v: mkIf (v != null) v) config.limits;
      Network.Mode = mkIf (config.network != null) config.network;
      Display = lib.mapAttrs (_: v: mkIf (v != null) v) config.display;
      Files.Bind = map bindLine (builtins.filter (b: !b.isReadOnly) (lib.attrValues config.binds));
      Files.BindReadOnly = map bindLine (builtins.filter (b: b.isReadOnly) (lib.attrValues config.binds));
      Environment.Pass = config.environment.Pass;
      Environment.Set = config.environment.Set;
    };
  };

  # ---- what the files hold ----
  effectivePreset = c:
    if c.settings.Cage.Preset != null then c.settings.Cage.Preset
    else if cfg.settings.Cage.Preset != null then cfg.settings.Cage.Preset
    else "shell";

  toplevelOf = name: c: nclib.mkCage {
    inherit pkgs name;
    packages = nclib.cagePackages {
      preset = c.settings.Cage.Preset;
      settings = cfg.settings;
      packages = c.settings.Cage.Packages ++ builtins.filter (p: !builtins.isString p) c.packages;
    };
  };

  adminText = render.admin cfg.settings;
  cageText = name: c: render.cage {
    inherit name;
    inherit (c) project user settings;
    toplevel = toplevelOf name c;
    derivations = builtins.filter (p: !builtins.isString p) c.packages;
  };

  checkMessages =
    render.checkSettings cfg.settings
    ++ lib.concatLists (lib.mapAttrsToList (name: c:
      render.checkCage { inherit name; inherit (c) project user settings; admin = cfg.settings; }
      ++ lib.optional (nclib.presetPackages (effectivePreset c) == null)
        "services.nspawn-cage.cages.${name}: preset \"${effectivePreset c}\" is not one shipped with nspawn-cage (${toString nclib.presets}); a declared cage's closure is built with the system from a shipped preset's packages"
      ++ lib.optional (c.environmentFile != null && (builtins.substring 0 1 c.environmentFile != "/" || lib.hasPrefix "/nix/store/" c.environmentFile))
        "services.nspawn-cage.cages.${name}.environmentFile = \"${c.environmentFile}\": expected an absolute path outside the Nix store (it is read when the cage starts; the store is world-readable)")
      cfg.cages);

  # What the cages need of the host beyond the package.
  modeOf = c: if c.settings.Network.Mode != null then c.settings.Network.Mode
    else if cfg.settings.Network.Mode != null then cfg.settings.Network.Mode else "off";
  anyCage = p: lib.any p (lib.attrValues cfg.cages);
  needsNft = cfg.settings.Network.Mode == "private" || anyCage (c: modeOf c == "private");
  x11Of = c: key: if c.settings.Display.${key} != null then c.settings.Display.${key}
    else cfg.settings.Display.${key} == true;
  needsXauth = (cfg.settings.Display.X11 == true && cfg.settings.Display.X11Trusted != true)
    || anyCage (c: x11Of c "X11" && !(x11Of c "X11Trusted"));
in
{
  options.services.nspawn-cage = {
    enable = mkEnableOption "nspawn-cage, coding agents in systemd-nspawn containers built from Nix closures";

    package = mkOption {
      type = types.package;
      default = pkgs.nspawn-cage or (throw "services.nspawn-cage.package: pkgs has no nspawn-cage; use the flake's nixosModules.default or overlays.default, or set this option");
      defaultText = literalExpression "pkgs.nspawn-cage";
      description = "The nspawn-cage package (its units, presets and program).";
    };

    settings = mkOption {
      type = settingsType;
      default = { };
      example = literalExpression ''
        {
          Limits = { Memory = "4G"; CPUs = 2; };
          Network.Mode = "off";
          Policy = { MaxMemory = "16G"; AllowNetwork = [ "off" "private" ]; AllowUsers = [ "alice" ]; };
        }'';
      description = ''
        The administrator layer, written to /etc/nspawn-cage/nspawn-cage.conf:
        defaults for every cage and, in Policy, the maxima and what is allowed
        at all.  Named after the sections and keys of nspawn-cage.conf(5)
        (settings.<Section>.<Key>); keys without an option of their own may be
        set too and are checked against nspawn-cage's table.'';
    };

    cages = mkOption {
      type = types.attrsOf (types.submodule cageModule);
      default = { };
      example = literalExpression ''
        {
          demo = {
            user = "alice";
            project = "/home/alice/proj";
            preset = "claude-code";
            packages = [ "git" pkgs.ripgrep ];
            limits.Memory = "4G";
            network = "private";
            binds."/srv/datasets" = { };
            environment.Pass = [ "ANTHROPIC_API_KEY" ];
            environmentFile = "/run/secrets/demo.env";
            autoStart = true;
          };
        }'';
      description = ''
        Declared cages, written to `/etc/nspawn-cage/cages/NAME.conf` and run by
        `nspawn-cage@NAME.service` (`systemctl start nspawn-cage@NAME`;
        `machinectl shell USER@NAME` enters it).  The file format is described
        in nix/module.md.'';
    };
  };

  config = mkIf cfg.enable {
    assertions = map (m: { assertion = false; message = "nspawn-cage: ${m}"; }) checkMessages;

    warnings = lib.concatLists (lib.mapAttrsToList (name: c:
      lib.optional (!(config.users.users ? ${c.user}))
        "nspawn-cage: services.nspawn-cage.cages.${name}.user = \"${c.user}\" is not declared in users.users; the cage starts only if that user exists at boot")
      cfg.cages);

    # nft and xauth for the administrator too (the package runs its own,
    # fixed by configure); only when a cage uses them.
    environment.systemPackages = [ cfg.package ]
      ++ lib.optional needsNft pkgs.nftables
      ++ lib.optional needsXauth (pkgs.xauth or pkgs.xorg.xauth);

    environment.etc = {
      "nspawn-cage/nspawn-cage.conf".text = adminText;
    } // lib.mapAttrs' (name: c:
      lib.nameValuePair "nspawn-cage/cages/${name}.conf" { text = cageText name c; }) cfg.cages;

    # nspawn-cage@.service, nspawn-cage-gc.{service,timer} (units/).
    systemd.packages = [ cfg.package ];

    systemd.tmpfiles.rules = [
      "d /var/lib/nspawn-cage 0700 root root -"
      "d /var/lib/nspawn-cage/cages 0700 root root -"
      "d /var/lib/nspawn-cage/gcroots 0700 root root -"
    ];

    # One instance of the template per declared cage: a drop-in (the unit
    # itself comes from the package), restarted when its own file changes
    # (a change of nspawn-cage.conf alone restarts no cage), wanted by
    # machines.target as NixOS containers are.
    systemd.services = lib.mapAttrs' (name: c:
      lib.nameValuePair "nspawn-cage@${name}" ({
        overrideStrategy = "asDropin";
        wantedBy = lib.optional c.autoStart "machines.target";
        restartIfChanged = c.restartIfChanged;
        restartTriggers = [ config.environment.etc."nspawn-cage/cages/${name}.conf".source ];
        unitConfig.RequiresMountsFor = [ c.project ];
      } // lib.optionalAttrs (c.environmentFile != null) {
        serviceConfig.EnvironmentFile = c.environmentFile;
      })) cfg.cages;

    systemd.targets.machines.wantedBy = mkIf (anyCage (c: c.autoStart)) [ "multi-user.target" ];

    systemd.timers.nspawn-cage-gc = {
      overrideStrategy = "asDropin";
      wantedBy = [ "timers.target" ];
    };
  };
}
