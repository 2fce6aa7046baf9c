# Builder for tests/pkgs: turns installed Debian packages into a Nix store
# path laid out like the nixpkgs package of the same name.
# Run by nix-build as `/bin/sh -e build-deb.sh` (host shell, sandbox off).
#
# Environment (set by default.nix):
#   out        output path
#   debs       Debian package names whose files (dpkg -L) are copied
#   glibc      store path of the glibc derivation ("" when building glibc)
#   shell      store path of bash ("" => no shebang patching into bash)
#   unitDir    where /lib/systemd/system units go (systemd: example/systemd/system)
#   onlyBins   if non-empty: keep only these bin/ entries (space separated)
#   wrapBins   "name" list: bin/name becomes a bash wrapper that exports wrapEnv
#   wrapEnv    lines "VAR=value" (@out@ is replaced by $out)
#   postBuild  extra shell run at the end, in $out
set -eu
umask 022
LIBDIR=x86_64-linux-gnu
unitDir=${unitDir:-lib/systemd/system}
work=$(mktemp -d)

log() { echo "build-deb: $*" >&2; }

# ---- Debian path -> output-relative path (nixpkgs-like layout); "" = drop
map_path() {
  p=$1
  case "$p" in
    /lib/systemd/system/*)      r=$unitDir/${p#/lib/systemd/system/} ;;
    /usr/lib/systemd/system/*)  r=$unitDir/${p#/usr/lib/systemd/system/} ;;
    /usr/lib/$LIBDIR/*)         r=lib/${p#/usr/lib/$LIBDIR/} ;;
    /lib/$LIBDIR/*)             r=lib/${p#/lib/$LIBDIR/} ;;
    /usr/lib/*)                 r=lib/${p#/usr/lib/} ;;
    /lib/*)                     r=lib/${p#/lib/} ;;
    /usr/libexec/*)             r=libexec/${p#/usr/libexec/} ;;
    /usr/bin/*/*|/usr/sbin/*/*|/bin/*/*|/sbin/*/*) r= ;;
    /usr/bin/*|/usr/sbin/*|/bin/*|/sbin/*) r=bin/${p##*/} ;;
    /usr/share/doc/*|/usr/share/doc-base/*|/usr/share/man/*|/usr/share/info/*) r= ;;
    /usr/share/locale/*|/usr/share/lintian/*|/usr/share/bug/*) r= ;;
    /usr/share/*)               r=share/${p#/usr/share/} ;;
    /etc/*)                     r=etc/${p#/etc/} ;;
    *)                          r= ;;
  esac
  printf '%s' "$r"
}

# ---- 1. file lists
: > "$work/files"
for d in $debs; do
  dpkg-query -L "$d" | grep '^/' >> "$work/files" || { log "dpkg-query -L $d failed (is it installed?)"; exit 1; }
done
sort -u -o "$work/files" "$work/files"
# realpaths of the package's own files and of glibc's files (libc6)
while IFS= read -r f; do realpath -e "$f" 2>/dev/null || true; done < "$work/files" | sort -u > "$work/own.real"
dpkg-query -L libc6 | grep '^/' | while IFS= read -r f; do realpath -e "$f" 2>/dev/null || true; done | sort -u > "$work/glibc.real"

# ---- 2. copy regular files
mkdir -p "$out"
: > "$work/symlinks"
while IFS= read -r f; do
  if [ -L "$f" ]; then printf '%s\n' "$f" >> "$work/symlinks"; continue; fi
  [ -f "$f" ] || continue
  r=$(map_path "$f"); [ -n "$r" ] || continue
  [ -e "$out/$r" ] && continue
  mkdir -p "$(dirname "$out/$r")"
  cp "$f" "$out/$r"
  chmod u+w "$out/$r"
done < "$work/files"

# ---- 3. symlinks: inside the package -> store symlink; else dereferenced copy
while IFS= read -r f; do
  r=$(map_path "$f"); [ -n "$r" ] || continue
  [ -e "$out/$r" ] || [ -L "$out/$r" ] && continue
  t=$(readlink "$f")
  case "$t" in /*) abs=$t ;; *) abs=$(dirname "$f")/$t ;; esac
  abs=$(realpath -m -s "$abs")
  tr_=$(map_path "$abs")
  mkdir -p "$(dirname "$out/$r")"
  if [ "$abs" = /dev/null ]; then
    ln -s /dev/null "$out/$r"            # masked unit
  elif [ -n "$tr_" ] && grep -qxF "$abs" "$work/files"; then
    ln -s "$out/$tr_" "$out/$r"
  elif [ -f "$f" ] || [ -d "$f" ]; then
    cp -rL "$f" "$out/$r"; chmod -R u+w "$out/$r"
  fi
done < "$work/symlinks"

# ---- 4. keep only some binaries (e.g. getent out of libc-bin)
if [ -n "${onlyBins:-}" ] && [ -d "$out/bin" ]; then
  for b in "$out"/bin/*; do
    case " $onlyBins " in *" ${b##*/} "*) ;; *) rm -f "$b" ;; esac
  done
fi

is_elf() { [ -f "$1" ] && [ ! -L "$1" ] && [ "$(od -An -tx1 -N4 "$1" 2>/dev/null | tr -d ' \n')" = "7f454c46" ]; }

find "$out" -type f > "$work/allfiles"
: > "$work/elves"
while IFS= read -r f; do is_elf "$f" && printf '%s\n' "$f" >> "$work/elves"; done < "$work/allfiles"

if [ -n "${glibc:-}" ]; then
  # ---- 5. shared libraries the ELF files need that are neither glibc nor
  #         part of the package itself: copy them into $out/lib (via ldd,
  #         which lists the transitive closure).
  : > "$work/needed"
  while IFS= read -r f; do
    ldd "$f" 2>/dev/null | while IFS= read -r line; do
      case "$line" in
        *"=> not found"*) log "WARNING: $f: $line" ;;
        *"=> /"*) set -- $line; printf '%s %s\n' "$1" "$3" ;;
      esac
    done >> "$work/needed" || true
  done < "$work/elves"
  sort -u "$work/needed" | while read -r soname path; do
    real=$(realpath -e "$path" 2>/dev/null) || continue
    grep -qxF "$real" "$work/glibc.real" && continue
    grep -qxF "$real" "$work/own.real" && continue
    [ -e "$out/lib/$soname" ] && continue
    mkdir -p "$out/lib"
    cp -L "$path" "$out/lib/$soname"; chmod u+w "$out/lib/$soname"
    printf '%s\n' "$out/lib/$soname" >> "$work/elves"
  done

  # ---- 6. rpath = every dir of $out holding shared objects + glibc/lib
  rpath=$(find "$out" \( -type f -o -type l \) -name '*.so*' -exec dirname {} \; | sort -u | tr '\n' ':')
  rpath="${rpath}$glibc/lib"
  interp="$glibc/lib/ld-linux-x86-64.so.2"
  while IFS= read -r f; do
    if patchelf --print-interpreter "$f" >/dev/null 2>&1 && ! case "$f" in *.so|*.so.*) true;; *) false;; esac; then
      patchelf --set-interpreter "$interp" --set-rpath "$rpath" "$f" || log "WARNING: patchelf failed on $f"
    elif patchelf --print-rpath "$f" >/dev/null 2>&1; then
      patchelf --set-rpath "$rpath" "$f" || log "WARNING: patchelf failed on $f"
    fi
  done < "$work/elves"
fi

# ---- 7. text files: absolute host paths that this package provides -> store
#         paths (unit files' ExecStart=, dbus configs, scripts, ...), and
#         shebangs (#!/bin/sh, #!/usr/bin/X) -> store interpreters.
grep -vxF -f "$work/elves" "$work/allfiles" > "$work/texts" || true
while IFS= read -r f; do
  [ -f "$f" ] || continue
  grep -Iq . "$f" 2>/dev/null || continue
  # shebang
  first=$(head -c 200 "$f" | head -n 1)
  case "$first" in
    '#!'*)
      interp=${first#\#!}; interp=${interp# }; set -- $interp; i=${1:-}; shift || true
      new=
      case "$i" in
        /bin/sh|/bin/bash|/usr/bin/sh|/usr/bin/bash)
          if [ -n "${shell:-}" ]; then new=$shell/bin/${i##*/}; elif [ -x "$out/bin/${i##*/}" ]; then new=$out/bin/${i##*/}; fi ;;
        /usr/bin/*|/bin/*|/usr/sbin/*|/sbin/*)
          [ -x "$out/bin/${i##*/}" ] && new=$out/bin/${i##*/} ;;
      esac
      if [ -n "$new" ]; then
        esc=$(printf '%s' "$i" | sed 's/[.]/\\./g')
        sed -i "1s|^#! *$esc|#!$new|" "$f"
      fi ;;
  esac
  # absolute paths provided by this package
  grep -oE '(/usr)?/(s?bin|lib|libexec|share)/[A-Za-z0-9._@+/-]*[A-Za-z0-9_@+-]' "$f" 2>/dev/null | sort -u | while IFS= read -r p; do
    case "$p" in /nix/store/*) continue ;; esac
    r=$(map_path "$p"); [ -n "$r" ] || continue
    [ -e "$out/$r" ] || continue
    esc=$(printf '%s' "$p" | sed 's/[.+]/\\&/g')
    e="s#(^|[^A-Za-z0-9_./])$esc([^A-Za-z0-9_./@+-]|\$)#\\1$out/$r\\2#g"
    sed -E -i -e "$e" -e "$e" "$f"   # twice: a match eats the separator after it
  done
done < "$work/texts"

# ---- 8. wrappers (e.g. git needs GIT_EXEC_PATH: its helper dir is compiled in)
for b in ${wrapBins:-}; do
  [ -e "$out/bin/$b" ] || { log "wrapBins: $b missing"; exit 1; }
  mv "$out/bin/$b" "$out/bin/.$b-wrapped"
  {
    printf '#!%s/bin/bash\n' "$shell"
    printf '%s\n' "${wrapEnv:-}" | sed "s|@out@|$out|g" | while IFS= read -r kv; do
      if [ -n "$kv" ]; then printf 'export %s\n' "$kv"; fi
    done
    printf 'exec -a "$0" "%s/bin/.%s-wrapped" "$@"\n' "$out" "$b"
  } > "$out/bin/$b"
  chmod 0555 "$out/bin/$b"
done

cd "$out"
if [ -n "${postBuild:-}" ]; then eval "$postBuild"; fi

# ---- 9. self-check: nothing may point at the host's dynamic loader
if [ -n "${glibc:-}" ]; then
  while IFS= read -r f; do
    [ -f "$f" ] || continue
    i=$(patchelf --print-interpreter "$f" 2>/dev/null) || continue
    case "$i" in "$glibc"/*) ;; *) case "$f" in *.so|*.so.*) ;; *) log "ERROR: $f still uses interpreter $i"; exit 1 ;; esac ;; esac
  done < "$work/elves"
fi
rm -rf "$work"
