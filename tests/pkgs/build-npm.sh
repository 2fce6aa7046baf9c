# Builder for tests/pkgs' agents: unpacks one npm tarball (checked by Nix
# against npm.lock's integrity hash, see default.nix) into a nixpkgs-like
# store path. Run by nix-build as `/bin/sh -e build-npm.sh` (sandbox off).
#
# Environment (set by default.nix):
#   out, src   output path; the tarball
#   kind       bun:  a Bun single-file executable (package/$exe): only its
#                    interpreter is set (a new rpath or a strip breaks the
#                    JavaScript appended to it); bin/$prog is a wrapper that
#                    finds glibc through LD_LIBRARY_PATH
#              static: a static executable (package/$exe), linked as is
#              node: bin/$prog runs package/$exe with $node
#              nodejs: the Node.js binary (package/bin/node), interpreter
#                    and rpath set, libstdc++ and libgcc_s copied from the host
#   prog, exe  the program's name in bin/ and its path in the package
#   glibc, bash, node   store paths
set -eu
umask 022
mkdir -p "$out/bin" "$out/lib"
tar -xzf "$src" -C "$out/lib" --no-same-owner --no-same-permissions
mv "$out/lib/package" "$out/lib/$prog"
pkg=$out/lib/$prog
interp=$glibc/lib/ld-linux-x86-64.so.2
case $kind in
bun)
        chmod 0755 "$pkg/$exe"
        patchelf --set-interpreter "$interp" "$pkg/$exe"
        printf '#!%s/bin/bash\nexport LD_LIBRARY_PATH=%s/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\nexec -a "$0" %s "$@"\n' \
                "$bash" "$glibc" "$pkg/$exe" > "$out/bin/$prog"
        chmod 0555 "$out/bin/$prog"
        ;;
static)
        chmod 0755 "$pkg/$exe"
        ln -s "$pkg/$exe" "$out/bin/$prog"
        ;;
node)
        printf '#!%s/bin/bash\nexec %s/bin/node %s "$@"\n' "$bash" "$node" "$pkg/$exe" > "$out/bin/$prog"
        chmod 0555 "$out/bin/$prog"
        ;;
nodejs)
        rm -rf "$pkg/include" "$pkg/share"
        for l in libstdc++.so.6 libgcc_s.so.1; do
                cp -L "$(ldd "$pkg/bin/node" | sed -n "s|^[[:space:]]*$l => \(/[^ ]*\).*|\1|p")" "$out/lib/$l"
        done
        patchelf --set-interpreter "$interp" --set-rpath "$out/lib:$glibc/lib" "$pkg/bin/node"
        patchelf --set-rpath "$glibc/lib" "$out/lib/libstdc++.so.6" "$out/lib/libgcc_s.so.1"
        ln -s "$pkg/bin/node" "$out/bin/node"
        ;;
*)
        echo "build-npm: unknown kind $kind" >&2
        exit 1
        ;;
esac
# it runs, in an empty environment
case $kind in
bun | static) HOME=$(mktemp -d) "$out/bin/$prog" --version > /dev/null ;;
nodejs) env -i "$out/bin/node" -e 'process.exit(0)' ;;
esac
