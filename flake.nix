{
  description = "nspawn-cage: run a coding agent in a systemd-nspawn container built from a Nix closure";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAll (pkgs: {
        default = pkgs.stdenv.mkDerivation {
          pname = "nspawn-cage";
          version = "0.1.0";
          src = self;
          nativeBuildInputs = with pkgs; [ autoreconfHook pkg-config ];
          buildInputs = with pkgs; [ systemd util-linux inih libcap ];
          configureFlags = [
            "--sysconfdir=/etc"
            "--localstatedir=/var"
            "--with-systemdsystemunitdir=${placeholder "out"}/lib/systemd/system"
            # The closure of a cage builds from the flake's own pinned nixpkgs.
            "--with-default-nixpkgs=${nixpkgs}"
          ];
          installFlags = [ "sysconfdir=${placeholder "out"}/etc" ];
          doCheck = true;
          meta = {
            description = "Run a coding agent in a systemd-nspawn container built from a Nix closure";
            license = pkgs.lib.licenses.lgpl21Plus;
            platforms = pkgs.lib.platforms.linux;
            mainProgram = "nspawn-cage";
          };
        };
      });

      apps = forAll (pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${pkgs.system}.default}/bin/nspawn-cage";
        };
      });

      devShells = forAll (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.system}.default ];
          packages = with pkgs; [ valgrind gdb clang-tools ];
        };
      });
    };
}
