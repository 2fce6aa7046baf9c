# Local package set for nspawn-cage tests.
#
#   import ./tests/pkgs { }   ->   { bash coreutils systemd dbus git ... runCommand writeText ... }
#
# Every package is built OFFLINE from the Debian packages installed on this
# host (dpkg -L), copied into the Nix store and made self-contained:
#   * a `glibc` derivation holds Debian's ld.so and libc;
#   * ELF files get  --set-interpreter <glibc>/lib/ld-linux-x86-64.so.2
#     and --set-rpath <own lib dirs>:<glibc>/lib   (patchelf);
#   * shared libraries a package needs that are not glibc and not its own
#     (resolved with ldd at build time) are copied into its own lib/;
#   * shebangs and absolute /bin, /usr/bin, /lib/systemd ... paths in text
#     files (unit files' ExecStart=, ...) are rewritten to store paths.
# The layout mimics nixpkgs (bin/, lib/, share/, systemd units under
# example/systemd/system, libsystemd-shared in lib/systemd/, pam modules in
# lib/security/, bash provides bin/sh) so that nix/cage.nix works unchanged
# with real nixpkgs and with this set.
#
# Needs: nix-build with --option sandbox false (builders read host /usr),
# patchelf, and the Debian packages listed in README.md.  Only amd64.
{ system ? builtins.currentSystem, ... }:
let
  hostPath = "/usr/bin:/bin:/usr/sbin:/sbin";

  # A version stamp per Debian package, so a package upgrade on the host
  # changes the derivation (and a missing package fails at evaluation time).
  debStamp = deb:
    let
      dir = "/var/lib/dpkg/info/";
      cands = builtins.filter builtins.pathExists
        (map (s: dir + s) [ "${deb}:amd64.md5sums" "${deb}.md5sums" "${deb}:amd64.list" "${deb}.list" ]);
    in
    if cands == [ ] then
      throw "tests/pkgs: Debian package '${deb}' is not installed (apt-get install ${deb}; see tests/pkgs/README.md)"
    else builtins.hashFile "sha256" (builtins.head cands);

  mkDrv = attrs: derivation ({
    inherit system;
    builder = "/bin/sh";
    PATH = hostPath;
  } // attrs);

  mkDeb = { name, debs, useShell ? true, unitDir ? "lib/systemd/system"
          , onlyBins ? "", wrapBins ? "", wrapEnv ? "", postBuild ? "" }:
    mkDrv {
      inherit name debs unitDir onlyBins wrapBins wrapEnv postBuild;
      args = [ "-e" ./build-deb.sh ];
      stamps = map debStamp (debs ++ [ "libc6" ]);
      glibc = glibc;
      shell = if useShell then bash else "";
    };

  glibc = mkDrv {
    name = "glibc-debian";
    debs = [ "libc6" ];
    args = [ "-e" ./build-deb.sh ];
    stamps = [ (debStamp "libc6") ];
    glibc = "";
    shell = "";
  };

  bash = mkDeb {
    name = "bash";
    debs = [ "bash" ];
    useShell = false;
    postBuild = "ln -s bash bin/sh";   # nixpkgs' bash has bin/sh
  };

  coreutils = mkDeb { name = "coreutils"; debs = [ "coreutils" ]; };

  systemd = mkDeb {
    name = "systemd";
    debs = [ "systemd" "libsystemd-shared" ];
    unitDir = "example/systemd/system"; # nixpkgs moves upstream units there
  };

  self = {
    inherit glibc bash coreutils systemd;
    bashInteractive = bash;

    dbus = mkDeb { name = "dbus"; debs = [ "dbus" "dbus-bin" "dbus-daemon" "dbus-system-bus-common" ]; };
    # nixpkgs: pkgs.pam (linux-pam) has the modules in lib/security/
    pam = mkDeb { name = "linux-pam"; debs = [ "libpam-modules" ]; };
    git = mkDeb {
      name = "git";
      debs = [ "git" ];
      # Debian's git has /usr/lib/git-core and /usr/share/git-core compiled in
      wrapBins = "git";
      wrapEnv = ''
        GIT_EXEC_PATH=@out@/lib/git-core
        GIT_TEMPLATE_DIR=@out@/share/git-core/templates
      '';
    };
    util-linux = mkDeb { name = "util-linux"; debs = [ "util-linux" "mount" "bsdutils" ]; };
    gnugrep = mkDeb { name = "gnugrep"; debs = [ "grep" ]; };
    gnused = mkDeb { name = "gnused"; debs = [ "sed" ]; };
    findutils = mkDeb { name = "findutils"; debs = [ "findutils" ]; };
    procps = mkDeb { name = "procps"; debs = [ "procps" ]; };
    iproute2 = mkDeb { name = "iproute2"; debs = [ "iproute2" ]; };
    less = mkDeb { name = "less"; debs = [ "less" ]; };
    getent = mkDeb { name = "getent"; debs = [ "libc-bin" ]; onlyBins = "getent"; };
    xdpyinfo = mkDeb { name = "xdpyinfo"; debs = [ "x11-utils" ]; onlyBins = "xdpyinfo"; };
    wayland-utils = mkDeb { name = "wayland-utils"; debs = [ "wayland-utils" ]; };
    # ssh-add/ssh-agent/ssh-keygen/ssh only (tests of [Forward] SSHAgent=)
    openssh = mkDeb { name = "openssh"; debs = [ "openssh-client" ]; onlyBins = "ssh ssh-add ssh-agent ssh-keygen"; };

    # Stand-in for an AI coding agent: prints what it was started with.
    # Secrets are never printed, only whether they are set.
    fake-agent = mkDrv {
      name = "fake-agent";
      inherit bash;
      src = ./fake-agent.sh;
      args = [ "-c" ''
        mkdir -p $out/bin
        { echo "#!$bash/bin/bash"; cat $src; } > $out/bin/fake-agent
        chmod 0555 $out/bin/fake-agent
      '' ];
    };

    # ---- the (small) subset of nixpkgs' trivial builders nix/cage.nix uses
    # runCommand name env script: script runs in POSIX sh with coreutils on PATH
    runCommand = name: env: script: mkDrv (env // {
      inherit name;
      args = [ "-e" "-c" script ];
    });
    writeText = name: text: mkDrv {
      inherit name text;
      args = [ "-c" "printf '%s' \"$text\" > $out" ];
    };
  };
in
self
