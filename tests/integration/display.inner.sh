#!/bin/sh
# Runs inside the test host (see display.sh). alice runs an Xvfb on :5 and a
# headless weston on wayland-5; her user configuration forwards both, and
# her project's file narrows that per case.
set -u
. "$top_srcdir/tests/integration/lib.sh"
inner_setup

uconf=/home/alice/.config/nspawn-cage/config
install -d -o alice -g alice /home/alice/.config /home/alice/.config/nspawn-cage
proj=/home/alice/dproj
install -d -o alice -g alice "$proj"
# The project layer of these cases (written by "the agent"): the display's tools, then EXTRA.
display_project_config() { write_project_config "$proj" "[Cage]\nPackages=xdpyinfo wayland-utils coreutils gnugrep\n$1"; }
display_cleanup() {
        systemctl stop display-xvfb5 display-xvfb7 display-weston 2>/dev/null
        systemctl reset-failed display-xvfb5 display-xvfb7 display-weston 2>/dev/null
        rm -f "$uconf" /etc/nspawn-cage/nspawn-cage.conf.d/50-hostnet.conf /etc/nspawn-cage/nspawn-cage.conf.d/50-nodisplay.conf
}
display_cleanup
trap display_cleanup EXIT
name=$(su alice -c "nspawn-cage config --json $proj" 2>/dev/null | sed -n 's/.*"name":"\([^"]*\)".*/\1/p')

# Warm the closure so the first case measures the display, not Nix.
t0=$(date +%s)
nix-build "$DATADIR/nix/cage.nix" --argstr nixpkgs "$top_srcdir/tests/pkgs" --argstr packages "xdpyinfo wayland-utils coreutils gnugrep" \
        --argstr name warmup --no-out-link --option substituters '' > /tmp/warm.log 2>&1
tap_ok_or_diag $? "the closure with xdpyinfo and wayland-info builds offline ($(( $(date +%s) - t0 )) s)" "$(tail -n 20 /tmp/warm.log)"

# ---- alice's session: Xvfb :5 with a cookie, weston on wayland-5 ----
rm -f /home/alice/.Xauthority
su alice -c "xauth -q -f /home/alice/.Xauthority add :5 . $(mcookie)" 2>/dev/null
systemd-run -q --unit=display-xvfb5 --uid=alice --gid=alice -p Environment=HOME=/home/alice \
        /usr/bin/Xvfb :5 -auth /home/alice/.Xauthority -nolisten tcp -noreset -screen 0 1024x768x24
install -d -o alice -g alice -m 0700 /run/user/1000
systemd-run -q --unit=display-weston --uid=alice --gid=alice -p Environment=XDG_RUNTIME_DIR=/run/user/1000 \
        /usr/bin/weston --backend=headless-backend.so --socket=wayland-5 --idle-time=0
# Things of alice's session that must not reach a cage.
su alice -c "echo session-bus > /run/user/1000/bus; echo secret > /run/user/1000/other-secret"
for i in $(seq 1 50); do
        [ -S /tmp/.X11-unix/X5 ] && [ -S /run/user/1000/wayland-5 ] && break
        sleep 0.2
done
host_x=$(su alice -c "DISPLAY=:5 xdpyinfo" 2>&1 | grep dimensions)
tap_ok $? "alice's Xvfb :5 answers on the host ($host_x)" || tap_bail "no X server: $(journalctl -u display-xvfb5 | tail -n 5)"
host_ext=$(su alice -c "DISPLAY=:5 xdpyinfo" 2>&1 | sed -n 's/^number of extensions: *//p')
su alice -c "XDG_RUNTIME_DIR=/run/user/1000 WAYLAND_DISPLAY=wayland-5 wayland-info" 2>&1 | grep -q "interface: 'wl_compositor'"
tap_ok $? "alice's weston answers on the host" || tap_bail "no compositor: $(journalctl -u display-weston | tail -n 5)"
# The X server listens on the abstract socket too: with the path hidden,
# alice's client still connects (the control for the cage case below).
unshare -m sh -c "mount -t tmpfs tmpfs /tmp/.X11-unix && su alice -c 'DISPLAY=:5 xdpyinfo'" 2>&1 | grep -q dimensions
tap_ok $? "on the host, :5 is reachable through the abstract socket alone"

XENV="DISPLAY=:5 XDG_RUNTIME_DIR=/run/user/1000 WAYLAND_DISPLAY=wayland-5 sudo --preserve-env=XDG_RUNTIME_DIR,WAYLAND_DISPLAY"
write_user_config '[Display]
X11=yes
Wayland=yes
'

# ---- 1. X11=yes: xdpyinfo from the cage's closure ----
display_project_config '[Display]
Wayland=no
'
t0=$(date +%s%N)
as_alice_pty "$XENV nspawn-cage $proj -- sh -c 'xdpyinfo | grep -e dimensions -e \"number of extensions\"; echo ENV \$DISPLAY \$XAUTHORITY \$XDG_RUNTIME_DIR; stat -c \"COOKIE %u %a\" \$XAUTHORITY; echo RUN \$(ls -A /run/user/1000); echo X11 \$(ls -A /tmp/.X11-unix); test -e /home/alice/.Xauthority && echo HOME-XAUTHORITY; od -An -tx1 -v \$XAUTHORITY | tr -d \" \\n\" > cookie.hex'"
st=$?
t1=$(date +%s%N)
printf '%s\n' "$out" | grep -q 'dimensions: *1024x768 pixels'
tap_ok_or_diag $? "X11=yes: xdpyinfo in the cage prints the screen size 1024x768 (start to exit $(( (t1 - t0) / 1000000 )) ms)" "exit $st: $out"
printf '%s\n' "$out" | grep -qx 'ENV :5 /run/user/1000/Xauthority /run/user/1000'
tap_ok $? "the agent has DISPLAY=:5, XAUTHORITY and XDG_RUNTIME_DIR of the cage"
printf '%s\n' "$out" | grep -qx 'COOKIE 1000 600'
tap_ok $? "the cage's cookie is 0600 and owned by the agent (uid 1000)"
printf '%s\n' "$out" | grep -qx 'RUN Xauthority'
tap_ok $? "the cage's /run/user/1000 holds only its cookie (no session bus, no other file of alice's)"
printf '%s\n' "$out" | grep -qx 'X11 X5'
tap_ok $? "the cage's /tmp/.X11-unix holds only X5"
printf '%s\n' "$out" | grep -q HOME-XAUTHORITY
tap_ok $((! $?)) "alice's ~/.Xauthority is not in the cage"
cage_ext=$(printf '%s\n' "$out" | sed -n 's/^number of extensions: *//p')
[ -n "$cage_ext" ] && [ -n "$host_ext" ] && [ "$cage_ext" -lt "$host_ext" ]
tap_ok $? "the cage's cookie is untrusted: its client sees $cage_ext X extensions, alice's own $host_ext"
hex=$(cat "$proj/cookie.hex" 2>/dev/null)
cookie=$(printf %s "$hex" | cut -c59-)  # after family, address, number, name and length: 29 bytes
[ ${#cookie} -eq 32 ]
tap_ok $? "the cage's cookie file is one entry with a 16-byte cookie"
case $hex in ffff*) tap_ok 0 "the cookie's family is FamilyWild, so the cage's host name does not matter";; *) tap_ok 1 "the cookie's family is FamilyWild ($hex)";; esac
tap_nothing_left "after the cage, nothing of it is left" "$name"
found=""
[ -n "$cookie" ] && for f in $(find /var/lib/nspawn-cage /tmp /run/user /home/alice /root -xdev -type f -size -2M 2>/dev/null); do
        [ "$f" = "$proj/cookie.hex" ] && continue
        od -An -tx1 -v "$f" | tr -d ' \n' | grep -q "$cookie" && found="$found $f"
done
[ -n "$cookie" ] && [ -z "$found" ]
tap_ok $? "the cage's cookie exists nowhere on the host any more${found:+:$found}"
[ -S /tmp/.X11-unix/X5 ] && su alice -c "DISPLAY=:5 xdpyinfo" 2>&1 | grep -q dimensions
tap_ok $? "after the cage, the host's /tmp/.X11-unix/X5 is there and works"

# ---- 2. X11=no: no socket, and not through the abstract one either ----
display_project_config '[Display]
X11=no
Wayland=no
'
as_alice_pty "$XENV nspawn-cage $proj -- sh -c 'xdpyinfo -display :5; echo STATUS \$?; ls -A /tmp/.X11-unix 2>&1'"
printf '%s\n' "$out" | grep -q 'unable to open display' && ! printf '%s\n' "$out" | grep -q dimensions &&
        printf '%s\n' "$out" | grep -qx 'STATUS 1'
tap_ok_or_diag $? "X11=no: xdpyinfo -display :5 fails in the cage, the abstract socket is out of reach (private network namespace)" "$out"

# ---- 3. Wayland ----
display_project_config '[Display]
X11=no
'
as_alice_pty "$XENV nspawn-cage $proj -- sh -c 'wayland-info; echo ENV \$WAYLAND_DISPLAY \$XDG_RUNTIME_DIR; echo RUN \$(ls -A /run/user/1000); stat -c \"DIR %u %a\" /run/user/1000'"
printf '%s\n' "$out" | grep -q "interface: 'wl_compositor'"
tap_ok_or_diag $? "Wayland=yes: wayland-info in the cage lists the compositor's globals ($(printf '%s\n' "$out" | grep -c "interface:") interfaces)" "$out"
printf '%s\n' "$out" | grep -qx 'ENV wayland-5 /run/user/1000' && printf '%s\n' "$out" | grep -qx 'RUN wayland-5' &&
        printf '%s\n' "$out" | grep -qx 'DIR 1000 700'
tap_ok $? "the agent's XDG_RUNTIME_DIR is its own (uid 1000, 0700) and holds only wayland-5"
display_project_config '[Display]
X11=no
Wayland=no
'
as_alice_pty "$XENV nspawn-cage $proj -- sh -c 'WAYLAND_DISPLAY=wayland-5 XDG_RUNTIME_DIR=/run/user/1000 wayland-info; echo STATUS \$?'"
printf '%s\n' "$out" | grep -q "interface: 'wl_compositor'"
tap_ok_or_diag $((! $?)) "Wayland=no: wayland-info fails in the cage" "$out"
[ -S /run/user/1000/wayland-5 ] && su alice -c "XDG_RUNTIME_DIR=/run/user/1000 WAYLAND_DISPLAY=wayland-5 wayland-info" 2>&1 | grep -q wl_compositor
tap_ok $? "after the cages, alice's Wayland socket is there and works"

# ---- 4. a kept cage: nspawn-cage shell gets the display too ----
display_project_config ''
as_alice_pty "$XENV nspawn-cage --keep --name dkeep $proj -- true"
as_alice_pty "sudo nspawn-cage shell dkeep -- sh -c 'xdpyinfo | grep dimensions; wayland-info | grep -c interface:'"
printf '%s\n' "$out" | grep -q 'dimensions: *1024x768' && printf '%s\n' "$out" | grep -qx '[1-9][0-9]*'
tap_ok_or_diag $? "nspawn-cage shell into a kept cage reaches both displays" "$out"
grep -q "/nspawn-cage/cages/" /proc/self/mountinfo
tap_ok $((! $?)) "while the cage runs, no staging mount is left on the host"
as_alice_pty "sudo nspawn-cage stop dkeep"
tap_nothing_left "stop removes everything" dkeep

# ---- 4b. X11Trusted=yes: alice's own cookie, all extensions ----
write_user_config '[Display]
X11=yes
X11Trusted=yes
'
display_project_config '[Display]
Wayland=no
'
as_alice_pty "$XENV nspawn-cage $proj -- sh -c 'xdpyinfo | grep \"number of extensions\"'"
ext=$(printf '%s\n' "$out" | sed -n 's/^number of extensions: *//p')
[ -n "$ext" ] && [ "$ext" = "$host_ext" ]
tap_ok_or_diag $? "X11Trusted=yes: the cage's client is trusted and sees all $host_ext extensions (got ${ext:-none})" "$out"

# ---- 4c. Mode=host shares the host's network namespace, and with it the
# abstract X socket: the server is reached, its cookie check still refuses.
mkdir -p /etc/nspawn-cage/nspawn-cage.conf.d
printf '[Policy]\nAllowNetwork=off private host\n' > /etc/nspawn-cage/nspawn-cage.conf.d/50-hostnet.conf
write_user_config '[Network]
Mode=host
'
display_project_config ''
as_alice_pty "sudo nspawn-cage $proj -- sh -c 'ls -A /tmp/.X11-unix 2>&1; xdpyinfo -display :5 2>&1; echo STATUS \$?'"
rm -f /etc/nspawn-cage/nspawn-cage.conf.d/50-hostnet.conf
printf '%s\n' "$out" | grep -q -i -e 'authorization' -e 'MIT-MAGIC-COOKIE' && printf '%s\n' "$out" | grep -qx 'STATUS 1'
tap_ok_or_diag $? "X11=no with Mode=host: the abstract socket is reachable (documented), but without a cookie the server refuses" "$out"
write_user_config '[Display]
X11=yes
Wayland=yes
'

# ---- 5. hostile session variables: refused, nothing made ----
sha_before=$(sha256sum /etc/shadow)
mkdir -p /root/.ssh && echo "PRIVATE KEY" > /root/.ssh/id_ed25519 && chmod 0600 /root/.ssh/id_ed25519
su alice -c "ln -sf /root/.ssh/id_ed25519 /home/alice/evil-xauth"
systemd-run -q --unit=display-xvfb7 --uid=nobody --gid=nogroup /usr/bin/Xvfb :7 -nolisten tcp
for i in $(seq 1 50); do [ -S /tmp/.X11-unix/X7 ] && break; sleep 0.2; done
hostile_session() { # DESCRIPTION ENV-ASSIGNMENTS EXPECTED-MESSAGE
        as_alice_pty "$2 sudo --preserve-env=XDG_RUNTIME_DIR,WAYLAND_DISPLAY,XAUTHORITY,DISPLAY nspawn-cage $proj -- echo STARTED"
        st=$?
        printf '%s\n' "$out" | grep -qF "$3" && [ "$st" -ne 0 ] && ! printf '%s\n' "$out" | grep -q -e STARTED -e 'PRIVATE KEY' &&
                audit "$name" > /tmp/audit 2>&1
        tap_ok_or_diag $? "$1: refused (\"$3\"), nothing made" "exit $st: $out $(cat /tmp/audit)"
}
display_project_config '[Display]
Wayland=no
'
hostile_session "XAUTHORITY=/etc/shadow" "DISPLAY=:5 XAUTHORITY=/etc/shadow" "XAUTHORITY=/etc/shadow cannot be read with your rights"
hostile_session "XAUTHORITY a symlink to /root/.ssh/id_ed25519" "DISPLAY=:5 XAUTHORITY=/home/alice/evil-xauth" "XAUTHORITY=/home/alice/evil-xauth is or passes through a symbolic link"
hostile_session "DISPLAY=:7, a socket another user made" "DISPLAY=:7" "/tmp/.X11-unix/X7 belongs to uid 65534, not to you (alice)"
hostile_session "DISPLAY=otherhost:0" "DISPLAY=otherhost:0" "DISPLAY=otherhost:0: only a local display (:N) can be forwarded"
display_project_config '[Display]
X11=no
'
hostile_session "WAYLAND_DISPLAY=/run/dbus/system_bus_socket" "WAYLAND_DISPLAY=/run/dbus/system_bus_socket" "WAYLAND_DISPLAY=/run/dbus/system_bus_socket: expected the name of a socket"
hostile_session "XDG_RUNTIME_DIR=/run/user/0" "XDG_RUNTIME_DIR=/run/user/0 WAYLAND_DISPLAY=wayland-5" "XDG_RUNTIME_DIR=/run/user/0 is not your runtime directory /run/user/1000"
[ "$(sha256sum /etc/shadow)" = "$sha_before" ] && [ -S /tmp/.X11-unix/X7 ] && [ -S /tmp/.X11-unix/X5 ]
tap_ok $? "the host is unchanged: /etc/shadow, X5, X7"

# ---- 6. the administrator forbids it; the project cannot ask for it ----
mkdir -p /etc/nspawn-cage/nspawn-cage.conf.d
printf '[Policy]\nAllowDisplay=no\n' > /etc/nspawn-cage/nspawn-cage.conf.d/50-nodisplay.conf
as_alice_pty "$XENV nspawn-cage $proj -- echo STARTED"
printf '%s\n' "$out" | grep -q "$uconf:2: X11=yes is not allowed: the administrator set AllowDisplay=no"
tap_ok_or_diag $? "AllowDisplay=no refuses alice's X11=yes, naming her file and line" "$out"
rm -f /etc/nspawn-cage/nspawn-cage.conf.d/50-nodisplay.conf
write_user_config ''
display_project_config '[Display]
X11=yes
'
as_alice_pty "$XENV nspawn-cage $proj -- echo STARTED"
printf '%s\n' "$out" | grep -q "$proj/.nspawn-cage.conf:4: X11=yes is not allowed"
tap_ok_or_diag $? "a project asking for X11=yes is refused with its file and line" "$out"

# ---- 7. GPU=yes on a host without /dev/dri ----
write_user_config '[Display]
GPU=yes
'
display_project_config ''
if [ -d /dev/dri ]; then
        tap_skip "this test host has /dev/dri; the refusal without one is not testable here"
else
        as_alice_pty "sudo nspawn-cage $proj -- echo STARTED"
        printf '%s\n' "$out" | grep -q "GPU=yes: /dev/dri does not exist; this host has no GPU device nodes" && audit "$name" > /dev/null
        tap_ok_or_diag $? "GPU=yes without /dev/dri is refused clearly, nothing made" "$out"
fi
# A stand-in render node (no driver behind it): what the cage sees, and
# whether its device policy lets the agent open it (ENXIO: allowed, no
# driver; EPERM: refused by the device policy).
made_dri=no
if [ ! -d /dev/dri ] && mkdir /dev/dri && mknod -m 0666 /dev/dri/renderD128 c 226 128; then
        made_dri=yes
        as_alice_pty "sudo nspawn-cage $proj -- sh -c 'stat -c \"%F %t:%T %a\" /dev/dri/*; cat /dev/dri/renderD128'"
        printf '%s\n' "$out" | grep -qx 'character special file e2:80 666' && printf '%s\n' "$out" | grep -q 'No such device or address'
        tap_ok_or_diag $? "GPU=yes: /dev/dri/renderD128 is in the cage and its device policy allows opening it (ENXIO from the missing driver)" "$out"
        write_user_config ''
        as_alice_pty "sudo nspawn-cage $proj -- sh -c 'ls /dev/dri 2>&1'"
        printf '%s\n' "$out" | grep -q 'No such file or directory'
        tap_ok_or_diag $? "GPU=no: the cage has no /dev/dri" "$out"
        rm -rf /dev/dri
else
        tap_skip "cannot make a stand-in /dev/dri node in this test host"
        tap_skip "cannot make a stand-in /dev/dri node in this test host"
fi
tap_done
