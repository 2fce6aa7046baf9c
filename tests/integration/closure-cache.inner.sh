#!/bin/sh
# Runs inside the test host (see closure-cache.sh). The administrator's
# package set is a copy of tests/pkgs whose evaluation prints a trace line
# (nix-build's messages reach the user's terminal): a start that evaluates
# shows it, one served by the cache does not. The set's default.nix also
# imports extra.nix, a link to a file in alice's project, so that what the
# agent writes is read by the evaluation; rewriting it with its size and
# mtime put back must still cause an evaluation. Judged from the host:
# traces, what the cage sees (/bin's top-level, which programs it has),
# the cache's files.
set -u
. "$top_srcdir/tests/integration/lib.sh"
inner_setup

PK=/var/lib/cc-pkgs
PK2=/var/lib/cc-pkgs2
P=/home/alice/ccproj
Q=/home/alice/ccother
CACHE=/var/lib/nspawn-cage/closures
CONF=/etc/nspawn-cage/nspawn-cage.conf
TRACE=cc-evaluated-package-set
for n in cc1 cc2; do nspawn-cage stop "$n" > /dev/null 2>&1; done
cp "$CONF" /tmp/cc-conf.saved
cp "$DATADIR/nix/cage.nix" /tmp/cc-cage.nix.saved
restore() {
        cp /tmp/cc-conf.saved "$CONF"
        cp /tmp/cc-cage.nix.saved "$DATADIR/nix/cage.nix"
        rm -rf "$PK" "$PK2" "$P" "$Q"
}
trap restore EXIT
rm -rf "$PK" "$PK2" "$P" "$Q" "$CACHE"
install -d -o alice -g alice "$P" "$Q"
printf '{ }\n' > "$P/extra.nix"
chown alice:alice "$P/extra.nix"
cp -a "$top_srcdir/tests/pkgs" "$PK"
mv "$PK/default.nix" "$PK/real.nix"
cat > "$PK/default.nix" << NIX
args: builtins.trace "$TRACE" (builtins.seq (import ./extra.nix) (import ./real.nix args))
NIX
ln -s "$P/extra.nix" "$PK/extra.nix"
chown -R root:root "$PK"
printf '[Cage]\nNixpkgs=%s\n' "$PK" > "$CONF"

# cage NAME PROJECT [OPTIONS]: alice starts a cage that prints its
# top-level (/bin -> TOP/sw/bin) and whether it has git. Sets $out, $top,
# $evaluated (1 if Nix evaluated the package set), $st.
cage() {
        _n=$1 _p=$2
        shift 2
        as_alice_pty "sudo nspawn-cage --preset shell --name $_n $* $_p -- sh -c 'echo TOP=\$(readlink /bin); command -v git > /dev/null && echo HAS-GIT; true'"
        st=$?
        top=$(printf '%s\n' "$out" | sed -n 's|^TOP=\(.*\)/sw/bin$|\1|p' | tail -n 1)
        evaluated=0
        printf '%s\n' "$out" | grep -q "$TRACE" && evaluated=1
        [ $st = 0 ] && [ -n "$top" ] || printf '%s\n' "$out" | tail -n 5 | sed 's/^/# /'
}
entries() { ls -A "$CACHE" 2> /dev/null | wc -l; }

cage cc1 "$P"
first=$top
tap_ok $([ $st = 0 ] && [ $evaluated = 1 ] && [ -n "$first" ]; echo $?) "control: the first start evaluates the package set ($first)"
tap_is "$(stat -c '%a %U' "$CACHE" "$CACHE"/* 2>&1 | tr '\n' ' ')" "700 root 700 root " "the cache and its entry are root's, 0700"
tap_ok $([ -n "$first" ] && [ "$(readlink "$CACHE"/*/root)" = "$first" ]; echo $?) "the entry's GC root holds the top-level"
as_alice_pty "ls $CACHE; cat $CACHE/*/key"
tap_ok $([ $? != 0 ]; echo $?) "alice can neither list nor read the cache"

cage cc1 "$P"
tap_ok $([ $st = 0 ] && [ $evaluated = 0 ] && [ "$top" = "$first" ]; echo $?) "a warm start: no evaluation, the same top-level"
cage cc2 "$Q"
tap_ok $([ $st = 0 ] && [ $evaluated = 0 ] && [ "$top" = "$first" ]; echo $?) "another project and name: no evaluation, the same top-level (it does not carry the name)"

# 1. The package list.
write_project_config "$P" '[Cage]\nPackages=bash coreutils git\n'
cage cc1 "$P"
tap_ok $([ $st = 0 ] && [ $evaluated = 1 ] && printf '%s\n' "$out" | grep -q HAS-GIT; echo $?) "a changed package list (the project's Packages=) evaluates, and the cage has git"
rm -f "$P/.nspawn-cage.conf"
cage cc1 "$P"
tap_ok $([ $st = 0 ] && [ "$top" = "$first" ] && ! printf '%s\n' "$out" | grep -q HAS-GIT; echo $?) \
        "back to the preset's list: its own entry, and no git (a package no longer listed is not in the cage)"

# 2. nix/cage.nix.
printf '# changed by closure-cache.inner.sh\n' >> "$DATADIR/nix/cage.nix"
cage cc1 "$P"
tap_ok $([ $st = 0 ] && [ $evaluated = 1 ]; echo $?) "a changed nix/cage.nix evaluates"
cp /tmp/cc-cage.nix.saved "$DATADIR/nix/cage.nix"
cage cc1 "$P"
tap_ok $([ $st = 0 ] && [ $evaluated = 0 ] && [ "$top" = "$first" ]; echo $?) "cage.nix as it was: the first entry again, no evaluation"

# 3. Nixpkgs=: its content (mtime put back), another path.
old=$(stat -c %Y "$PK/real.nix")
printf '\n' >> "$PK/real.nix"
touch -d "@$old" "$PK/real.nix"
cage cc1 "$P"
tap_ok $([ $st = 0 ] && [ $evaluated = 1 ]; echo $?) "the package set rewritten, its mtime put back: evaluates"
cage cc1 "$P"
tap_ok $([ $st = 0 ] && [ $evaluated = 0 ]; echo $?) "then warm again"
cp -a "$PK" "$PK2"
printf '[Cage]\nNixpkgs=%s\n' "$PK2" > "$CONF"
cage cc1 "$P"
tap_ok $([ $st = 0 ] && [ $evaluated = 1 ]; echo $?) "another Nixpkgs= (a copy of the same set) evaluates"
printf '[Cage]\nNixpkgs=%s\n' "$PK" > "$CONF"

# 4. The project's agent: what it writes is read by the evaluation
# (extra.nix); the same size, its mtime put back, must not pass for the old.
cage cc1 "$P"
tap_ok $([ $st = 0 ] && [ $evaluated = 0 ]; echo $?) "control: warm before the agent's write"
old=$(stat -c %Y "$P/extra.nix")
as_alice_pty "printf '[ ]\n' > $P/extra.nix; touch -d @$old $P/extra.nix; touch -h -d @$old $P; stat -c '%s %Y' $P/extra.nix"
tap_is "$(stat -c '%s %Y' "$P/extra.nix")" "4 $old" "the agent rewrote extra.nix with its size and mtime"
cage cc1 "$P"
tap_ok $([ $st = 0 ] && [ $evaluated = 1 ]; echo $?) "a file the set reads, rewritten in the project with size and mtime put back: evaluates"
# The project's own configuration cannot choose the package set.
write_project_config "$P" "[Cage]\nNixpkgs=$PK2\n"
cage cc1 "$P"
tap_ok $([ $st != 0 ] && printf '%s\n' "$out" | grep -q Nixpkgs; echo $?) "Nixpkgs= from the project is refused"
rm -f "$P/.nspawn-cage.conf"

# 5. --rebuild evaluates even on a hit.
cage cc1 "$P" --rebuild
tap_ok $([ $st = 0 ] && [ $evaluated = 1 ]; echo $?) "--rebuild evaluates on a hit"

# 6. gc: stale entries (their inputs changed) go with their GC roots; the
# current ones stay and stay warm.
before=$(entries)
rm -rf "$PK2"
nspawn-cage gc > /tmp/cc-gc.log 2>&1
after=$(entries)
stale_left=0
for e in "$CACHE"/*; do
        [ -L "$e/root" ] || stale_left=1
done
tap_ok $([ "$after" -lt "$before" ] && [ "$after" -ge 1 ] && [ $stale_left = 0 ]; echo $?) \
        "gc drops stale entries with their GC roots ($before -> $after): $(grep closure /tmp/cc-gc.log)"
cage cc1 "$P"
tap_ok $([ $st = 0 ] && [ $evaluated = 0 ]; echo $?) "after gc, the current entry is still warm"
tap_nothing_left "cc1 and cc2 stopped" cc1 cc2
tap_done
