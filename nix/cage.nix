# nspawn-cage: the cage closure.
#
# Builds ONE store path (the "toplevel") from which the nspawn-cage renderer
# assembles a container root filesystem.  The layout of that store path is a
# contract with the C renderer: see nix/README.md before changing anything.
#
#   nix-build nix/cage.nix --argstr nixpkgs NIXPKGS --argstr packages "git ripgrep" \
#             --argstr name NAME --out-link GCROOT
#
# (NIXPKGS: an absolute path, <channel> or flake reference; `--arg pkgs EXPR`
# and `--arg packages '[ "git" ]'` work too.)
#
# Works with real nixpkgs and with the local test set tests/pkgs (which
# mimics nixpkgs' layout).  Uses from the package set only `runCommand` and
# the packages bashInteractive (or bash), coreutils, util-linux, systemd,
# dbus, pam and the requested ones; the build script needs only sh,
# coreutils and sed.
{ pkgs ? null           # an already evaluated package set (takes precedence)
, nixpkgs ? null        # the package set as the C tool passes it (--argstr):
                        #   "/abs/path"   a nixpkgs tree, or tests/pkgs
                        #   "<channel>"   looked up in NIX_PATH
                        #   anything else a flake reference (needs flakes enabled)
                        # null and no pkgs: <nixpkgs>
, packages ? [ ]        # list of attribute paths ("git", "python3Packages.black"),
                        # or one string of them separated by blanks/commas
, name ? "cage"         # cage (machine) name: store path name and metadata
, system ? builtins.currentSystem
, allowUnfree ? true    # naming a package in Packages= is taken as consent
}:
let
  inherit (builtins) isString isAttrs isList filter split head tail hasAttr
    getAttr concatStringsSep toJSON match substring;

  fail = msg: throw "nspawn-cage: ${msg}";

  importSet = src: import src { inherit system; config = { inherit allowUnfree; }; };

  p =
    if pkgs != null then pkgs
    else if nixpkgs == null then importSet <nixpkgs>
    else if builtins.isPath nixpkgs then importSet nixpkgs
    else if isAttrs nixpkgs then
      (if nixpkgs ? outPath then importSet nixpkgs.outPath else nixpkgs)
    else if !isString nixpkgs || nixpkgs == "" then fail "'nixpkgs' must be a path, <channel> or flake reference"
    else if substring 0 1 nixpkgs == "/" then
      (if builtins.pathExists nixpkgs then importSet nixpkgs
       else fail "package set ${nixpkgs} does not exist")
    else if match "<(.+)>" nixpkgs != null then
      importSet (builtins.findFile builtins.nixPath (head (match "<(.+)>" nixpkgs)))
    else if builtins ? getFlake then
      # the flake's source tree, imported with our config (legacyPackages
      # would refuse unfree packages)
      importSet (builtins.getFlake nixpkgs).outPath
    else fail "Nixpkgs=${nixpkgs} is a flake reference, but this Nix has flakes disabled (enable the 'flakes' experimental feature, or use a path or <channel>)";

  _checkName =
    if isString name && match "[A-Za-z0-9_][A-Za-z0-9_.+=-]{0,63}" name != null then true
    else fail "invalid cage name '${toString name}' (1-64 of [A-Za-z0-9_.+=-], not starting with '.', '+', '=' or '-')";

  pkgNames =
    if isString packages then filter (s: isString s && s != "") (split "[ \t\n,]+" packages)
    else if isList packages then packages
    else fail "'packages' must be a list of strings or a string";

  # attribute path lookup: "foo" or "foo.bar.baz"
  lookup = attrPath:
    let
      parts = if isString attrPath then filter isString (split "\\." attrPath) else [ ];
      missing = fail "package '${toString attrPath}' does not exist in the package set";
      walk = set: ps:
        if ps == [ ] then set
        else if isAttrs set && hasAttr (head ps) set then walk (getAttr (head ps) set) (tail ps)
        else missing;
      v = if !isString attrPath || attrPath == "" || filter (s: s == "") parts != [ ] then missing
          else walk p parts;
    in
    if isAttrs v && (v.type or null) == "derivation" then v
    else fail "'${attrPath}' in the package set is not a package (derivation)";

  # The output holding a package's programs, chosen as nixpkgs chooses the
  # first of meta.outputsToInstall: "bin", else "out", else the first output.
  # (Man pages and other outputs are not installed into the cage.)
  binOutput = d:
    let outs = filter (o: hasAttr o d) ([ "bin" "out" ] ++ (d.outputs or [ ]));
    in if d ? outputs && outs != [ ] then getAttr (head outs) d else d;

  systemd = p.systemd;
  dbus = p.dbus;
  pam = p.pam;
  # util-linux: systemd runs umount for mount units at shutdown (nixpkgs' systemd
  # has it in its closure anyway); also gives setpriv, nsenter, mount, ...
  # procps: ps, which agents use to find and end their children.
  base = [ (p.bashInteractive or p.bash) p.coreutils p.util-linux systemd dbus ]
    ++ (if p ? procps then [ p.procps ] else [ ]);

  # What real programs expect of a system: a CA bundle (nixpkgs' cacert) at
  # the usual paths, terminfo (ncurses), the C.UTF-8 locale of the set's glibc.
  # Only what the package set has.
  cacert = if p ? cacert then "${p.cacert}/etc/ssl/certs/ca-bundle.crt" else "";
  terminfo = if p ? ncurses then "${p.ncurses}/share/terminfo" else "";
  locales = if p ? glibc then "${p.glibc}/lib/locale" else "";
  requested = map lookup pkgNames;

  # Units from ${systemd}/example/systemd/system (nixpkgs layout) copied into
  # etc/systemd/system.  Names that do not exist in a systemd version are
  # skipped.  Everything else needed (dbus) is written below.
  systemdUnits = [
    "basic.target" "sysinit.target" "sockets.target" "timers.target" "paths.target"
    "slices.target" "local-fs.target" "local-fs-pre.target" "remote-fs.target"
    "remote-fs-pre.target" "swap.target" "network.target" "network-pre.target"
    "network-online.target" "nss-lookup.target" "nss-user-lookup.target"
    "time-set.target" "time-sync.target" "multi-user.target"
    "shutdown.target" "umount.target" "final.target"
    "halt.target" "poweroff.target" "reboot.target" "exit.target"
    "systemd-halt.service" "systemd-poweroff.service" "systemd-reboot.service" "systemd-exit.service"
    "systemd-journald.service" "systemd-journald.socket" "systemd-journald-dev-log.socket"
    "systemd-journald-audit.socket"
    "system.slice" "user.slice"
  ];

  wants = {
    "sockets.target" = [ "systemd-journald.socket" "systemd-journald-dev-log.socket" "dbus.socket" ];
    # No systemd-tmpfiles-setup.service: its fork and exec were on the
    # boot's critical path (6 ms of 40 to multi-user.target) for a few
    # directories; the C renderer makes them in the rootfs (/var/log,
    # /var/cache, /var/run and /var/lock links) and nspawn mounts /run/lock.
    "sysinit.target" = [ "systemd-journald.service" ];
    "multi-user.target" = [ "dbus.service" ];
  };

  dbusSocket = ''
    [Unit]
    Description=D-Bus System Message Bus Socket

    [Socket]
    ListenStream=/run/dbus/system_bus_socket
  '';

  # runs as root: the cage has no 'messagebus' user
  dbusService = ''
    [Unit]
    Description=D-Bus System Message Bus
    Documentation=man:dbus-daemon(1)
    Requires=dbus.socket
    After=dbus.socket

    [Service]
    ExecStart=${dbus}/bin/dbus-daemon --config-file=@out@/etc/dbus-1/system.conf --address=systemd: --nofork --nopidfile --systemd-activation --syslog-only
    ExecReload=${dbus}/bin/dbus-send --print-reply --system --type=method_call --dest=org.freedesktop.DBus / org.freedesktop.DBus.ReloadConfig
    OOMScoreAdjust=-900
  '';

  # Self-contained system bus config (the package's own system.conf asks for
  # a 'messagebus' user).  Policies of systemd (org.freedesktop.systemd1 for
  # root; what unprivileged callers may ask) come from systemd's system.d.
  dbusConf = ''
    <!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
     "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
    <busconfig>
      <type>system</type>
      <keep_umask/>
      <listen>unix:path=/run/dbus/system_bus_socket</listen>
      <auth>EXTERNAL</auth>
      <policy context="default">
        <deny own="*"/>
        <deny send_type="method_call"/>
        <allow send_type="signal"/>
        <allow send_requested_reply="true" send_type="method_return"/>
        <allow send_requested_reply="true" send_type="error"/>
        <allow receive_type="method_call"/>
        <allow receive_type="method_return"/>
        <allow receive_type="error"/>
        <allow receive_type="signal"/>
        <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
        <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
        <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
        <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Peer"/>
        <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus" send_member="UpdateActivationEnvironment"/>
        <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Debug.Stats"/>
        <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.systemd1.Activator"/>
      </policy>
      <policy user="root">
        <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.systemd1.Activator"/>
        <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
        <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Debug.Stats"/>
      </policy>
      <includedir>${systemd}/share/dbus-1/system.d</includedir>
      <includedir>/etc/dbus-1/system.d</includedir>
    </busconfig>
  '';

  # PAM: systemd opens a PAM session for units with PAMName= (machined's
  # OpenMachineShell uses PAMName=login).  No passwords, no logind in a cage,
  # and the store has no setuid binaries, so everything is permitted.
  pamService = ''
    # nspawn-cage: PAM only so that systemd's PAMName= works
    auth     required ${pam}/lib/security/pam_permit.so
    account  required ${pam}/lib/security/pam_permit.so
    password required ${pam}/lib/security/pam_deny.so
    session  required ${pam}/lib/security/pam_permit.so
  '';

  # The closure is bind-mounted path by path; systemd sees one mount unit per
  # store path.  Their default dependencies would make systemd unmount them
  # at shutdown while it still needs them (with umount in the cage the
  # toplevel itself went away before systemd-halt.service ran, and the cage
  # hung).  A prefix drop-in (nix-store-.mount.d/) covers all of them.
  storeMountDropin = ''
    [Unit]
    DefaultDependencies=no
  '';

  systemConf = ''
    [Manager]
    DefaultEnvironment=PATH=@out@/sw/bin@env@
    DefaultTimeoutStartSec=30s
    DefaultTimeoutStopSec=10s
  '';

  profile = ''
    # nspawn-cage
    export PATH="@out@/sw/bin"
  '';

  metadata = toJSON {
    contract = 1;
    inherit name;
    packages = pkgNames;
    systemd = "${systemd}";
  };

  wantsScript = concatStringsSep "\n" (map (t:
    concatStringsSep "\n" (map (u:
      "mkdir -p \"$d/${t}.wants\" && ln -s \"../${u}\" \"$d/${t}.wants/${u}\"") (getAttr t wants)))
    (builtins.attrNames wants));

in
assert _checkName;
p.runCommand "nspawn-cage-${name}" {
  cageSwPaths = map (d: toString (binOutput d)) (requested ++ base);
  cageUnits = systemdUnits;
  cageSystemd = "${systemd}";
  inherit dbusSocket dbusService dbusConf pamService systemConf profile metadata
    storeMountDropin cacert terminfo locales;
} ''
  # ---- sw/: profile.  bin/ merges bin/ and sbin/ of every package;
  #      on a name collision the first package wins (requested before base).
  mkdir -p $out/sw/bin
  for pkg in $cageSwPaths; do
    for dir in "$pkg/bin" "$pkg/sbin"; do
      [ -d "$dir" ] || continue
      for f in "$dir"/*; do
        [ -e "$f" ] || [ -L "$f" ] || continue
        b=''${f##*/}
        if [ ! -e "$out/sw/bin/$b" ] && [ ! -L "$out/sw/bin/$b" ]; then
          ln -s "$f" "$out/sw/bin/$b"
        fi
      done
    done
  done
  [ -e $out/sw/bin/sh ] || ln -s bash $out/sw/bin/sh

  # ---- init: PID 1
  ln -s $cageSystemd/lib/systemd/systemd $out/init

  # ---- etc/
  d=$out/etc/systemd/system
  mkdir -p $d $out/etc/dbus-1/system.d $out/etc/pam.d
  for u in $cageUnits; do
    if [ -e "$cageSystemd/example/systemd/system/$u" ]; then
      cp "$cageSystemd/example/systemd/system/$u" "$d/$u"
    fi
  done
  subst() { sed "s|@out@|$out|g"; }
  printf '%s' "$dbusSocket" > $d/dbus.socket
  printf '%s' "$dbusService" | subst > $d/dbus.service
  ln -s multi-user.target $d/default.target
  mkdir -p $d/nix-store-.mount.d
  printf '%s' "$storeMountDropin" > $d/nix-store-.mount.d/nspawn-cage.conf
  ${wantsScript}
  # ---- what real programs expect (see cacert, terminfo, locales above)
  env=""
  if [ -n "$cacert" ]; then
    mkdir -p $out/etc/ssl/certs
    ln -s "$cacert" $out/etc/ssl/certs/ca-bundle.crt
    ln -s ca-bundle.crt $out/etc/ssl/certs/ca-certificates.crt
    # Node.js and Bun use their own roots and add these (an administrator's CA)
    env="$env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt NIX_SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
    env="$env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt"
  fi
  if [ -n "$terminfo" ] && [ -d "$terminfo" ]; then
    ln -s "$terminfo" $out/etc/terminfo
    env="$env TERMINFO_DIRS=/etc/terminfo"
  fi
  if [ -n "$locales" ] && [ -d "$locales/C.utf8" ]; then
    env="$env LOCPATH=$locales"
  fi
  env="$env LANG=C.UTF-8"
  printf '%s' "$systemConf" | subst | sed "s|@env@|$env|" > $out/etc/systemd/system.conf
  printf '%s' "$dbusConf" > $out/etc/dbus-1/system.conf
  printf '%s' "$pamService" > $out/etc/pam.d/login
  printf '%s' "$pamService" > $out/etc/pam.d/other
  printf '%s' "$profile" | subst > $out/etc/profile
  printf '/bin/sh\n/bin/bash\n%s/sw/bin/sh\n%s/sw/bin/bash\n' $out $out > $out/etc/shells

  # ---- root/: FHS compatibility entries, become /lib etc. in the cage.
  #      /lib/systemd/<binaries>: paths compiled into distro-built systemd
  #      (systemd-shutdown, systemd-cgroups-agent, ...) and what
  #      systemd-nspawn looks at to detect the container's systemd version.
  mkdir -p $out/root/lib/systemd
  for f in $cageSystemd/lib/systemd/*; do
    [ -d "$f" ] && continue
    ln -s "$f" "$out/root/lib/systemd/''${f##*/}"
  done

  printf '%s\n' "$metadata" > $out/nspawn-cage.json
''
