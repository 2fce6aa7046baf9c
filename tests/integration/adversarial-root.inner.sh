#!/bin/sh
# Runs inside the test host (see adversarial-root.sh). alice's sudoers entry
# is cut down to nspawn-cage alone (actor (d) of audit issue 14), then she
# tries to turn it into root: (i) a package set of her own, by path and as
# a flake; (ii) --closure with a crafted top-level whose root/ links to
# /etc; (iii) a hostile value for every key the user layer accepts (read
# from config.c's table, so a new key cannot go untested) and for every
# option (read from main.c's table); (iv) SYSTEMD_*, DBUS_*, NIX_* kept by
# `sudo --preserve-env`. Judged from the host: root-only canaries never
# appear, no sudoers file is made, /etc keeps every owner, mode and byte.
set -u
. "$top_srcdir/tests/integration/lib.sh"
inner_setup

P=/home/alice/advroot
UCONF=/home/alice/.config/nspawn-cage/config
STATE=/home/alice/.local/state/nspawn-cage
CANARY=Canary$(head -c 4096 /dev/urandom | tr -dc 'a-zA-Z' | head -c 20)
SUDOERS=/etc/sudoers.d/alice

# ---- Setup: canaries only root can read, alice's sudo cut down ----
for n in advroot advk; do nspawn-cage stop "$n" > /dev/null 2>&1; done
rm -rf "$P" /home/alice/evilpkgs /home/alice/evilflake /home/alice/nixconf /home/alice/crafted* "$UCONF" \
        /home/alice/.gitconfig /home/alice/fakebus /home/alice/bus-hits /tmp/advroot-*
install -d -o alice -g alice "$P" /home/alice/.config /home/alice/.config/nspawn-cage
# The canary is a section header with a key: a configuration error quoting it would show it.
for f in canary canary.conf nspawn-cage.conf; do printf '[%s]\nLeak=1\n' "$CANARY" > "/root/$f"; chmod 0600 "/root/$f"; done
id cagecanary > /dev/null 2>&1 || useradd -M -s /usr/sbin/nologin cagecanary
usermod -p "$CANARY" cagecanary # /etc/shadow holds the canary now
cp "$SUDOERS" /tmp/advroot-sudoers.saved
only_nspawn_cage() { # [SETENV:]
        printf 'alice ALL=(root) NOPASSWD:%s /usr/local/bin/nspawn-cage\n' "${1:-}" > "$SUDOERS"
        chmod 0440 "$SUDOERS"
}
# What the hostile cases below replace of alice's (her presets, state,
# .gitconfig, configuration) is put back as it was, owners included.
tar -C /home/alice -cpf /tmp/advroot-alice.tar --ignore-failed-read \
        .config/nspawn-cage .local/state/nspawn-cage .gitconfig 2> /dev/null
restore() {
        cp /tmp/advroot-sudoers.saved "$SUDOERS"
        chmod 0440 "$SUDOERS"
        umount /srv 2> /dev/null
        rm -rf /home/alice/.config/nspawn-cage /home/alice/.local/state/nspawn-cage /home/alice/.gitconfig
        tar -C /home/alice -xpf /tmp/advroot-alice.tar 2> /dev/null
}
trap restore EXIT
only_nspawn_cage
# /srv is where a site might keep projects; on ext4 so that a cage can idmap it.
mkdir -p /var/tmp/advroot-srv
mountpoint -q /srv || mount --bind /var/tmp/advroot-srv /srv
install -d -o alice -g alice /srv/passwd /srv/shadow /srv/shadow/x
etc_state() { find /etc -xdev -printf '%p %U:%G %m %y\n' | sort; find /etc -xdev -type f -exec sha256sum {} + | sort -k2; }
canary_meta() { stat -c '%n %U:%G %a' /root/canary /root /etc/passwd /etc/shadow; }
etc_state > /tmp/advroot-etc.before
canary_meta > /tmp/advroot-meta.before

as_alice_pty "sudo -n id -u"
tap_ok $([ $? != 0 ] && ! printf '%s\n' "$out" | grep -qx 0; echo $?) "control: alice's sudo runs nspawn-cage only ($(printf '%s' "$out" | tail -n 1))"

# leak_check DESCRIPTION: the canary in no output of the last run, in no
# file alice or a cage can reach; /root/canary, /root, /etc/passwd and
# /etc/shadow keep owner and mode; no sudoers file appeared.
leak_check() {
        bad=""
        printf '%s\n' "$out" | grep -qF "$CANARY" && bad="$bad in-output"
        hits=$(grep -rlsF "$CANARY" /home/alice /tmp /var/tmp /srv /run/nspawn-cage /var/lib/nspawn-cage /run/systemd/nspawn 2> /dev/null |
                grep -v '^/tmp/advroot-' | tr '\n' ' ')
        [ -n "$hits" ] && bad="$bad in-files:$hits"
        canary_meta | cmp -s - /tmp/advroot-meta.before || bad="$bad owner-or-mode:$(canary_meta | diff /tmp/advroot-meta.before - | grep '^>' | tr '\n' ' ')"
        evil=$(ls /etc/sudoers.d | grep -v -e '^README$' -e '^alice$' | tr '\n' ' ')
        [ -n "$evil" ] && bad="$bad sudoers:$evil"
        tap_is "$bad" "" "$1"
        [ -z "$bad" ] || printf '%s\n' "$out" | tail -n 4 | sed 's/^/#   /'
        # Undo what an old build did, so the next cases start clean.
        chown root:root /etc/passwd /etc/shadow /root /root/canary 2> /dev/null
        chmod 0644 /etc/passwd; chmod 0640 /etc/shadow; chgrp shadow /etc/shadow; chmod 0700 /root
        rm -f /etc/sudoers.d/evil-*
        rm -rf /root/x /etc/x
}

# ---- (i) A package set of alice's own: root would evaluate and build it ----
install -d -o alice -g alice /home/alice/evilpkgs /home/alice/evilflake
evil_set() { # WHO: a "package set" that reads /etc/shadow and has root write a sudoers file
        cat <<EOF
{ ... }:
let
  shadow = builtins.readFile /etc/shadow;
  evil = derivation {
    name = "evil";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" "echo 'alice ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/evil-$1; echo \$shadow > /tmp/evil-$1-shadow; mkdir \$out" ];
    inherit shadow;
  };
in builtins.trace "SHADOW: \${shadow}" { runCommand = _: _: _: evil; }
EOF
}
evil_set path > /home/alice/evilpkgs/default.nix
evil_set flake > /home/alice/evilflake/default.nix
printf '{ outputs = _: { }; }\n' > /home/alice/evilflake/flake.nix
chown -R alice:alice /home/alice/evilpkgs /home/alice/evilflake
for variant in "/home/alice/evilpkgs" "path:/home/alice/evilflake"; do
        printf '[Cage]\nNixpkgs=%s\n' "$variant" > "$UCONF"
        chown alice:alice "$UCONF"
        as_alice_pty "timeout --foreground -k 10 120 sudo nspawn-cage --name advroot $P -- true"
        st=$?
        tap_ok $([ $st != 0 ] && printf '%s\n' "$out" | grep -qF "$UCONF:2: Nixpkgs= may only be set by the administrator"; echo $?) \
                "(i) user layer Nixpkgs=$variant: refused with file:line (exit $st)" || printf '%s\n' "$out" | tail -n 3 | sed 's/^/#   /'
        [ -e /tmp/evil-path-shadow ] || [ -e /tmp/evil-flake-shadow ] && out="$out $(cat /tmp/evil-*-shadow)"
        rm -f /tmp/evil-*-shadow
        leak_check "(i) Nixpkgs=$variant: /etc/shadow read by nobody, no sudoers file made"
        nspawn-cage stop advroot > /dev/null 2>&1
done
rm -f "$UCONF"

# ---- (ii) --closure with a crafted top-level: root/srv -> /etc ----
mkdir -p /tmp/advroot-crafted/sw/bin /tmp/advroot-crafted/etc /tmp/advroot-crafted/root
: > /tmp/advroot-crafted/init
ln -s /etc /tmp/advroot-crafted/root/srv
# What any user of a Nix daemon can put into the store (nix-store --add).
crafted=$(nix-store --add /tmp/advroot-crafted)
printf '%s\n' "$crafted" > /home/alice/crafted.closure
chown alice:alice /home/alice/crafted.closure
for proj in /srv/passwd /srv/shadow/x; do
        as_alice_pty "timeout --foreground -k 10 120 sudo nspawn-cage --closure /home/alice/crafted.closure --name advroot $proj -- true"
        st=$?
        tap_ok $([ $st != 0 ] && printf '%s\n' "$out" | grep -qF -- "--closure is for tests and inspection and is refused under sudo"; echo $?) \
                "(ii) --closure with a crafted top-level (project $proj): refused (exit $st)" || printf '%s\n' "$out" | tail -n 3 | sed 's/^/#   /'
        leak_check "(ii) --closure, project $proj: /etc/passwd, /etc/shadow keep owner and mode"
        nspawn-cage stop advroot > /dev/null 2>&1
done
etc_state > /tmp/advroot-etc.mid
diff /tmp/advroot-etc.before /tmp/advroot-etc.mid > /tmp/advroot-etc.diff
tap_ok $? "(i, ii) /etc: every owner, mode and content as before" || head -n 5 /tmp/advroot-etc.diff | sed 's/^/#   /'

# ---- (iii) every key the user layer accepts, every option ----
# From the source that builds the binary: a key added there without a case
# below fails here.
keys=$(sed -n 's/^ *\[SETTING_[A-Z0-9_]*\] = { "\([A-Za-z]*\)", "\([A-Za-z0-9]*\)", V_[A-Z_]*, \([A-Z_| ]*\),.*/\1.\2 \3/p' \
        "$top_srcdir/nspawn-cage/config.c" | grep -E ' .*(L_USER|L_TRUSTED|L_ALL)' | cut -d' ' -f1)
options=$(sed -n 's/^ *{ "\([a-z-]*\)", \(no\|required\)_argument,.*/\1/p' "$top_srcdir/nspawn-cage/main.c")
tap_ok $([ "$(echo $keys | wc -w)" -ge 20 ] && [ "$(echo $options | wc -w)" -ge 10 ]; echo $?) \
        "enumerated $(echo $keys | wc -w) user-layer keys from config.c and $(echo $options | wc -w) options from main.c"
printf 'cat /root/canary /home/alice/.hostile/canary /home/alice/.canary-state /home/alice/.gitconfig 2>&1\nenv\n' > "$P/look.sh"
chown alice:alice "$P/look.sh"
# Control, and the closure built once: the cases below then start in seconds.
as_alice_pty "timeout --foreground -k 10 600 sudo nspawn-cage --name advk $P -- sh $P/look.sh"
st=$?
tap_ok $([ $st = 0 ] && printf '%s\n' "$out" | grep -q '^HOME=/home/alice'; echo $?) "control: with no hostile value alice's cage runs (exit $st)" ||
        printf '%s\n' "$out" | tail -n 3 | sed 's/^/#   /'
only_nspawn_cage SETENV: # the strongest sudo rule an administrator might give
# What sudo keeps by default (DISPLAY, XAUTHORITY) and what SETENV lets through.
HOSTILE_ENV="DISPLAY=:7 XAUTHORITY=/root/canary SSH_AUTH_SOCK=/root/canary XDG_RUNTIME_DIR=/root WAYLAND_DISPLAY=canary"
hostile() { # SECTION.KEY: prints the user configuration; may plant links
        s=${1%%.*}
        k=${1#*.}
        case $1 in
        Cage.Preset) ln -sfn /root /home/alice/.config/nspawn-cage/presets; v=canary ;;
        Cage.Command) v="cat /root/canary" ;;
        Cage.Packages) v="path lib.importJSON" ;;
        Cage.Name) v="../../root/canary" ;;
        Cage.NixDaemon) v=yes ;;
        Cage.Containers) v=podman ;;
        Limits.*) v="/root/canary" ;;
        Network.Mode) v=host ;;
        Network.Allow) v="/root/canary:443" ;;
        Network.Publish) v="80 22:22" ;;
        Network.HostService) v="127.0.0.1:3128" ;;
        Display.X11 | Display.Wayland | Display.GPU) v=yes ;;
        Display.X11Trusted) printf '[Display]\nX11=yes\n'; v=yes ;;
        Files.Bind) v="/root/canary:/home/alice/canary" ;;
        Files.BindReadOnly) v="/root:/mnt/r" ;;
        Files.ProtectGit) ln -sfn /root "$P/.git"; v=no ;;
        Environment.Pass) v="TERM XAUTHORITY SSH_AUTH_SOCK" ;;
        Environment.Set) v="LD_PRELOAD=/root/canary" ;;
        Environment.File) v=/root/canary ;;
        State.Directory) install -d -o alice -g alice "$STATE/shell"; ln -sfn /root "$STATE/shell/.hostile"; v=.hostile ;;
        State.File) install -d -o alice -g alice "$STATE/shell"; ln -sfn /root/canary "$STATE/shell/.canary-state"; v=.canary-state ;;
        State.Persist) mkdir -p /home/alice/.local/state; rm -rf "$STATE"; ln -sfn /root "$STATE"; v=yes ;;
        Forward.SSHAgent) v=yes ;;
        Forward.GitConfig) ln -sfn /root/canary /home/alice/.gitconfig; v=yes ;;
        *) return 1 ;;
        esac
        printf '[%s]\n%s=%s\n' "$s" "$k" "$v"
}
unplant() {
        rm -rf /home/alice/.config/nspawn-cage/presets "$P/.git" /home/alice/.gitconfig
        rm -rf "$STATE"
        chown -R alice:alice /home/alice/.local 2> /dev/null
}
for key in $keys; do
        unplant
        if ! hostile "$key" > "$UCONF"; then
                tap_ok 1 "(iii) $key: no hostile case in this test; add one to hostile()"
                continue
        fi
        chown alice:alice "$UCONF"
        as_alice_pty "$HOSTILE_ENV timeout --foreground -k 10 120 sudo --preserve-env=DISPLAY,XAUTHORITY,SSH_AUTH_SOCK,XDG_RUNTIME_DIR,WAYLAND_DISPLAY nspawn-cage --name advk $P -- sh $P/look.sh"
        st=$?
        nspawn-cage stop advk > /dev/null 2>&1
        leak_check "(iii) user layer $key=$(sed -n 's/^[A-Za-z0-9]*=//p' "$UCONF" | tail -n 1): no canary, nothing changed (exit $st)"
done
unplant
rm -f "$UCONF"
# A kept cage for the verbs that act on one.
as_alice_pty "timeout --foreground -k 10 120 sudo nspawn-cage --keep --name advk $P -- true"
option_case() { # OPTION: the invocation (one shell string) that abuses it
        case $1 in
        help) echo "sudo nspawn-cage --help /root/canary" ;;
        version) echo "sudo nspawn-cage --version" ;;
        json) echo "sudo nspawn-cage --json config /root" ;;
        output) echo "sudo nspawn-cage render --output /etc/sudoers.d $P; sudo nspawn-cage render --output /root $P" ;;
        closure) echo "sudo nspawn-cage --closure /root/canary --name advk2 $P -- true" ;;
        name) echo "sudo nspawn-cage --name ../../root/canary $P -- true" ;;
        admin-config-dir) echo "sudo nspawn-cage --admin-config-dir /root set advk Memory=1G; sudo nspawn-cage --admin-config-dir /root status advk" ;;
        user-config) echo "sudo nspawn-cage --user-config /root/canary --name advk2 $P -- true" ;;
        data-dir) echo "sudo nspawn-cage --data-dir /root presets; sudo nspawn-cage --data-dir /root --name advk2 $P -- true" ;;
        keep) echo "sudo nspawn-cage --keep --name advk $P -- cat /root/canary" ;;
        shell) echo "sudo nspawn-cage --shell --name advk $P -- cat /root/canary" ;;
        timeout) echo "sudo nspawn-cage --timeout /root/canary --name advk2 $P -- true" ;;
        rebuild) echo "sudo nspawn-cage --rebuild --name advk2 $P -- cat /root/canary" ;;
        preset) echo "sudo nspawn-cage --preset ../../../../root/canary --name advk2 $P -- true; sudo nspawn-cage --preset /root/canary config $P" ;;
        worktree) echo "sudo nspawn-cage run --worktree ../../../../root/canary $P -- true; sudo nspawn-cage run --worktree /root/canary $P -- true" ;;
        follow) echo "timeout --foreground -k 2 5 sudo nspawn-cage denials --follow ../../root/canary; timeout --foreground -k 2 5 sudo nspawn-cage denials --follow --json advk" ;;
        *) return 1 ;;
        esac
}
for o in $options; do
        if ! cmd=$(option_case "$o"); then
                tap_ok 1 "(iii) --$o: no hostile case in this test; add one to option_case()"
                continue
        fi
        as_alice_pty "timeout --foreground -k 10 120 sh -c '$cmd'"
        st=$?
        nspawn-cage stop advk2 > /dev/null 2>&1
        leak_check "(iii) option --$o ($cmd): no canary, nothing changed (exit $st)"
done
nspawn-cage stop advk > /dev/null 2>&1

# ---- (iv) the environment sudo lets through (SETENV) ----
install -d -o alice -g alice /home/alice/nixconf
printf 'pre-build-hook = /home/alice/nixconf/hook\nextra-sandbox-paths = /root\n' > /home/alice/nixconf/nix.conf
printf '#!/bin/sh\nid -u > /tmp/advroot-hook-ran\n' > /home/alice/nixconf/hook
chmod 0755 /home/alice/nixconf/hook
chown -R alice:alice /home/alice/nixconf
su alice -s /bin/sh -c "exec socat UNIX-LISTEN:/home/alice/fakebus,fork,mode=0777 SYSTEM:'echo hit >> /home/alice/bus-hits'" < /dev/null > /dev/null 2>&1 &
socat=$!
for _ in $(seq 50); do [ -S /home/alice/fakebus ] && break; sleep 0.1; done
as_alice_pty "SYSTEMD_LOG_LEVEL=debug SYSTEMD_BUS_TIMEOUT=1 DBUS_SYSTEM_BUS_ADDRESS=unix:path=/home/alice/fakebus \
NIX_CONF_DIR=/home/alice/nixconf NIX_PATH=nixpkgs=/home/alice/evilpkgs NIX_REMOTE=local?root=/home/alice/store \
LD_LIBRARY_PATH=/home/alice/lib timeout --foreground -k 10 120 sudo --preserve-env=SYSTEMD_LOG_LEVEL,SYSTEMD_BUS_TIMEOUT,DBUS_SYSTEM_BUS_ADDRESS,NIX_CONF_DIR,NIX_PATH,NIX_REMOTE,LD_LIBRARY_PATH \
nspawn-cage --name advk $P -- sh -c 'echo cage-ran'"
st=$?
kill "$socat" 2> /dev/null
wait "$socat" 2> /dev/null
tap_ok $([ ! -e /home/alice/bus-hits ]; echo $?) "(iv) DBUS_SYSTEM_BUS_ADDRESS kept by sudo: root never connected to alice's socket ($(cat /home/alice/bus-hits 2> /dev/null | wc -l) connections)"
tap_ok $([ ! -e /tmp/advroot-hook-ran ] && [ ! -e /home/alice/store ]; echo $?) "(iv) NIX_CONF_DIR, NIX_REMOTE kept by sudo: alice's nix.conf hook never ran, no store of hers was used"
tap_ok $([ $st = 0 ] && printf '%s\n' "$out" | grep -q cage-ran; echo $?) "(iv) with all of it kept, the cage is the administrator's as ever (exit $st)" ||
        printf '%s\n' "$out" | tail -n 3 | sed 's/^/#   /'
nspawn-cage stop advk > /dev/null 2>&1
leak_check "(iv) no canary, nothing changed"

# ---- Clean up; /etc as it was ----
only_nspawn_cage
etc_state > /tmp/advroot-etc.after
diff /tmp/advroot-etc.before /tmp/advroot-etc.after > /tmp/advroot-etc.diff
tap_ok $? "/etc at the end: every owner, mode and content as before" || head -n 5 /tmp/advroot-etc.diff | sed 's/^/#   /'
tap_nothing_left "nothing of advroot, advk, advk2 is left" advroot advk advk2
rm -rf "$P" /home/alice/evilpkgs /home/alice/evilflake /home/alice/nixconf /home/alice/crafted* /home/alice/bus-hits \
        /home/alice/fakebus /tmp/advroot-crafted /tmp/advroot-hook-ran /root/canary /root/canary.conf /root/nspawn-cage.conf
userdel cagecanary 2> /dev/null
restore
trap - EXIT
tap_done
