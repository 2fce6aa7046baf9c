{
  description = "nspawn-cage: run a coding agent in a systemd-nspawn container built from a Nix closure";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      systemOf = pkgs: pkgs.stdenv.hostPlatform.system;

      # The package, for any package set (the flake's own, or the one the
      # overlay is applied to).  Cages build from the flake's pinned nixpkgs
      # unless a configuration sets Nixpkgs=.
      mkPackage = pkgs: pkgs.stdenv.mkDerivation {
        pname = "nspawn-cage";
        version = "0.1.0";
        src = self;
        nativeBuildInputs = with pkgs; [ autoreconfHook pkg-config ];
        buildInputs = with pkgs; [ systemd util-linux inih libcap ];
        # Every program nspawn-cage runs is a store path fixed here (Debian
        # builds get /usr/bin/xauth, /usr/sbin/nft, ... from configure).
        configureFlags = [
          "--sysconfdir=/etc"
          "--localstatedir=/var"
          "--with-systemdsystemunitdir=${placeholder "out"}/lib/systemd/system"
          "--with-tmpfilesdir=${placeholder "out"}/lib/tmpfiles.d"
          "--with-default-nixpkgs=${nixpkgs}"
          "--with-nspawn=${pkgs.systemd}/bin/systemd-nspawn"
          "--with-xauth=${pkgs.xauth or pkgs.xorg.xauth}/bin/xauth"
          "--with-nft=${pkgs.nftables}/bin/nft"
          "--with-ip=${pkgs.iproute2}/bin/ip"
          "--with-nix-build=${pkgs.nix}/bin/nix-build"
          "--with-nix-store=${pkgs.nix}/bin/nix-store"
        ];
        # The program reads /etc/nspawn-cage; whatever `make install` puts
        # under sysconfdir lands in $out/etc instead.
        installFlags = [ "sysconfdir=${placeholder "out"}/etc" ];
        # OFFLINE_TESTS (Makefile.am): the unit, golden and hostile tiers,
        # which need no root, test host, Nix or network. The probe of the
        # integration tier links -static; configure leaves it out here
        # (stdenv's glibc has no static archive).
        doCheck = true;
        checkFlags = [ "TESTS=$(OFFLINE_TESTS)" ];
        meta = {
          description = "Run a coding agent in a systemd-nspawn container built from a Nix closure";
          license = pkgs.lib.licenses.lgpl21Plus;
          platforms = pkgs.lib.platforms.linux;
          mainProgram = "nspawn-cage";
        };
      };

      nclib = import ./nix/lib.nix;
    in
    {
      packages = forAll (pkgs: {
        default = mkPackage pkgs;
      });

      apps = forAll (pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${systemOf pkgs}.default}/bin/nspawn-cage";
        };
      });

      overlays.default = final: prev: {
        nspawn-cage = mkPackage final;
      };

      # The module, with this flake's package as the default package.  The
      # key makes importing it twice (a test node and a shared profile) one.
      nixosModules.default = {
        key = "nspawn-cage#nixosModules.default";
        imports = [
          ./nix/module.nix
          ({ pkgs, lib, ... }: {
            services.nspawn-cage.package = lib.mkDefault self.packages.${systemOf pkgs}.default;
          })
        ];
      };

      lib = {
        # The top-level store path of a cage (nix/cage.nix), for use outside
        # the module:  nspawn-cage.lib.mkCage { inherit pkgs; name = "demo"; packages = [ "git" pkgs.ripgrep ]; }
        # `packages`: attribute paths in `pkgs` (strings) and/or derivations.
        mkCage = nclib.mkCage;
        # Pure renderers of nspawn-cage.conf(5) files (nix/render.nix).
        render = nclib.render;
      };

      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${systemOf pkgs}.default ];
          packages = with pkgs; [ valgrind gdb clang-tools nix ];
        };
      });

      checks = forAll (pkgs:
        let
          system = systemOf pkgs;
          package = self.packages.${system}.default;
          # A prebuilt closure for the ad hoc machine, which has no network to
          # build one: `render --closure FILE` takes its store paths.
          adhocCage = nclib.mkCage { inherit pkgs; name = "adhoc"; packages = [ "hello" ]; };
          adhocClosure = pkgs.closureInfo { rootPaths = [ adhocCage ]; };
        in
        {
          package = package;

          vm = pkgs.testers.nixosTest {
            name = "nspawn-cage";

            nodes.host = { ... }: {
              imports = [ self.nixosModules.default ];
              virtualisation.memorySize = 3072;
              virtualisation.diskSize = 4096;
              users.users.alice = { isNormalUser = true; uid = 1000; };
              systemd.tmpfiles.rules = [ "d /home/alice/proj 0755 alice users -" ];
              services.nspawn-cage = {
                enable = true;
                settings = {
                  Limits.Memory = "2G";
                  Policy = { MaxMemory = "4G"; AllowUsers = [ "alice" ]; };
                };
                cages.demo = {
                  user = "alice";
                  project = "/home/alice/proj";
                  packages = [ "git" ];
                  limits.Memory = "1G";
                  autoStart = true;
                };
              };
            };

            # Only the package: ad hoc use, no module, no declared cage.
            nodes.adhoc = { ... }: {
              environment.systemPackages = [ package ];
              users.users.bob = { isNormalUser = true; uid = 1000; };
              virtualisation.additionalPaths = [ adhocCage ];
            };

            testScript = ''
              start_all()

              with subtest("declared cage starts at boot"):
                  host.wait_for_unit("nspawn-cage@demo.service")
                  host.succeed("systemctl is-active nspawn-cage-demo.service")
                  host.succeed("machinectl list --no-legend | grep -w demo")
                  host.succeed("nspawn-cage list | grep -w demo")

              with subtest("machinectl shell enters it as alice"):
                  out = host.succeed("machinectl shell alice@demo /bin/sh -c id")
                  assert "uid=1000(alice)" in out, out
                  host.succeed("machinectl shell alice@demo /bin/sh -c 'git --version'")
                  host.succeed("machinectl shell alice@demo /bin/sh -c 'test -d /home/alice/proj'")

              with subtest("limits are real cgroup limits"):
                  host.succeed("systemctl show nspawn-cage-demo.service -p MemoryMax | grep -x MemoryMax=1073741824")

              with subtest("the declared file is the one nspawn-cage read"):
                  host.succeed("grep -x 'Toplevel=/nix/store/.*-nspawn-cage-demo' /etc/nspawn-cage/cages/demo.conf")
                  host.succeed("grep -x 'Memory=2G' /etc/nspawn-cage/nspawn-cage.conf")

              with subtest("stop and start again"):
                  host.succeed("systemctl stop nspawn-cage@demo.service")
                  host.fail("machinectl status demo")
                  host.succeed("systemctl start nspawn-cage@demo.service")
                  host.succeed("machinectl status demo")

              with subtest("gc keeps a running declared cage"):
                  host.succeed("systemctl start nspawn-cage-gc.service")
                  host.succeed("machinectl status demo")

              with subtest("ad hoc: config and render with the package alone"):
                  adhoc.wait_for_unit("multi-user.target")
                  adhoc.succeed("install -d -o bob -g users /home/bob/app")
                  out = adhoc.succeed("su - bob -c 'nspawn-cage config /home/bob/app'")
                  assert "builtin\tLimits.Memory=4G" in out, out
                  adhoc.succeed(
                      "{ echo ${adhocCage}; grep -vx ${adhocCage} ${adhocClosure}/store-paths; } > /tmp/closure"
                  )
                  adhoc.succeed("chmod 0644 /tmp/closure")
                  adhoc.succeed("su - bob -c 'mkdir -p out && nspawn-cage render --closure /tmp/closure --output out /home/bob/app'")
                  adhoc.succeed("ls /home/bob/out/*.nspawn /home/bob/out/*.rootfs")
                  adhoc.succeed("grep -q '${adhocCage}' /home/bob/out/*.nspawn")
            '';
          };
        });
    };
}
