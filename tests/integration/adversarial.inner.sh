#!/bin/sh
# Runs inside the test host (see adversarial.sh). One booted cage, attacked
# from inside as the agent and as cage root (adversarial.cage.sh), judged
# from the host: canaries read before and after, /proc/<pid>/status,
# uid_map, mountinfo, /proc/*/cmdline and environ. Then the ways in
# (machinectl as non-root users), hostile project configurations and
# invocations through the real sudo.
set -u
. "$top_srcdir/tests/integration/lib.sh"
inner_setup

P=/home/alice/adv
E=/home/alice/advenv
PROBE="$top_builddir/tests/integration/adv-probe"
KEY=sk-adv-canary-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
UCONF=/home/alice/.config/nspawn-cage/config
for n in adv advenv advw advc; do nspawn-cage stop "$n" > /dev/null 2>&1; done
rm -rf "$P" "$E" /home/alice/cfg-* /var/tmp/adv-rootdir /tmp/adv-hostshell
install -d -o alice -g alice "$P" "$E"
id bob > /dev/null 2>&1 || useradd -m -s /bin/sh bob
install -d -o bob -g bob -m 0755 /home/bob/proj
install -d -m 0755 /var/tmp/adv-rootdir
printf '[Cage]\nPackages=bash coreutils util-linux gnugrep gnused findutils procps\n' > "$P/.nspawn-cage.conf"
chown alice:alice "$P/.nspawn-cage.conf"
install -m 0755 -o alice -g alice "$PROBE" "$P/adv-probe"
install -m 0644 -o alice -g alice "$top_srcdir/tests/integration/adversarial.cage.sh" "$P/cage.sh"

# covers MAP ID: does a uid_map/gid_map line map host ID?
covers() { awk -v id="$2" '$2 <= id && id < $2 + $3 { f = 1 } END { exit !f }' "$1"; }
status_of() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" | cut -f1; }
host_state() {
        printf 'core_pattern=%s\n' "$(cat /proc/sys/kernel/core_pattern)"
        printf 'uevent_helper=%s\n' "$(cat /sys/kernel/uevent_helper 2> /dev/null)"
        printf 'hostname=%s %s\n' "$(hostname)" "$(cat /proc/sys/kernel/hostname)"
        sha256sum /etc/shadow /etc/passwd /etc/hostname
        ls /nix/store | sha256sum
}
mounts() { awk '{ print $5, $6, $9, $10 }' "/proc/$1/mountinfo" | sort; }

# ---- Host listeners and sentinels the cage must not reach ----
Xvfb :0 -nolisten tcp -nolisten unix -ac > /tmp/adv-xvfb.log 2>&1 &
xvfb=$!
for _ in $(seq 50); do "$PROBE" connect @/tmp/.X11-unix/X0 > /dev/null 2>&1 && break; sleep 0.2; done
tap_is "$("$PROBE" connect @/tmp/.X11-unix/X0) $([ -e /tmp/.X11-unix/X0 ] && echo path || echo no-path)" "ok no-path" \
        "control: an X server listens on the host at the abstract @/tmp/.X11-unix/X0 only"
setsid sleep 3600.1 < /dev/null > /dev/null 2>&1 &
sent_root=$!
setsid su alice -s /bin/sh -c 'exec sleep 3600.2' < /dev/null > /dev/null 2>&1 &
sleep 0.5
sent_alice=$(pgrep -u alice -f '^sleep 3600.2' | head -n 1)

# ---- The cage ----
t0=$(date +%s)
as_alice_pty "sudo nspawn-cage --keep --name adv $P -- true"
tap_is "$?" 0 "cage adv starts, kept ($(( $(date +%s) - t0 )) s)" || tap_diag "$out"
leader=$(machinectl show adv -p Leader --value 2> /dev/null)
host_state > /tmp/adv-state.before
mounts 1 > /tmp/adv-mounts.before
for s in /run/dbus/system_bus_socket /run/systemd/private /run/user/*/bus; do
        [ -S "$s" ] && echo "$s $(stat -L -c %d:%i "$s")"
done > /tmp/adv-host-sockets

# ---- Posture of the agent, from the host ----
su alice -c "sudo nspawn-cage shell adv -- sleep 41.3" < /dev/null > /dev/null 2>&1 &
sh_pid=$!
agent=$(pgrep_wait '^(/bin/)?sleep 41.3$')
tap_is "$(status_of "$agent" NoNewPrivs) $(status_of "$agent" Seccomp)" "1 2" "the agent (pid ${agent:-none}): NoNewPrivs 1, Seccomp 2"
tap_is "$(status_of "$agent" CapEff) $(status_of "$agent" CapPrm) $(status_of "$agent" CapAmb)" \
        "0000000000000000 0000000000000000 0000000000000000" "the agent: CapEff, CapPrm, CapAmb all 0"
tap_ok $([ -n "$agent" ] && ! covers "/proc/$agent/uid_map" 0 && ! covers "/proc/$agent/uid_map" 1000 &&
        ! covers "/proc/$agent/gid_map" 0 && ! covers "/proc/$agent/gid_map" 1000; echo $?) \
        "the agent's uid_map and gid_map map neither host 0 nor alice's 1000 ($(tr -s ' ' < "/proc/$agent/uid_map" 2> /dev/null))"
tap_is "$(status_of "$agent" Uid | cut -d' ' -f1) $(sed -n 's/^Uid:\t//p' "/proc/$leader/status" | cut -f1)" \
        "$(( $(sed -n 's/^Uid:\t//p' "/proc/$leader/status" | cut -f1) + 1000 )) $(sed -n 's/^Uid:\t//p' "/proc/$leader/status" | cut -f1)" \
        "seen from the host the agent and cage root are uids of the cage's range"
kill "$agent" 2> /dev/null
wait "$sh_pid" 2> /dev/null

# ---- Inside, as the agent and as cage root ----
as_alice_pty "sudo nspawn-cage shell adv -- sh $P/cage.sh agent $P/adv-probe"
printf '%s\n' "$out" > /tmp/adv-agent
timeout 120 systemd-run -M adv --wait --pipe -q /bin/sh "$P/cage.sh" root "$P/adv-probe" > /tmp/adv-root 2>&1 < /dev/null

# verdict WHO ID EXPECT DESCRIPTION: the line "ID ..." of WHO's run starts with EXPECT.
verdict() {
        line=$(grep -m1 "^$2 " "/tmp/adv-$1")
        case "$line" in
        "$2 $3"*) tap_ok 0 "$1: $4 ($line)" ;;
        *) tap_ok 1 "$1: $4 (${line:-no result})" ;;
        esac
}
for who in agent root; do
        grep -q "^done $who" "/tmp/adv-$who"
        tap_ok $? "$who: the in-cage run completed" || sed 's/^/# /' "/tmp/adv-$who" | tail -n 5
        verdict $who core_pattern denied "write /proc/sys/kernel/core_pattern"
        verdict $who sysrq denied "write /proc/sysrq-trigger"
        verdict $who uevent_helper denied "write /sys/kernel/uevent_helper"
        verdict $who kcore denied "read /proc/kcore"
        verdict $who kallsyms nonzero=0 "/proc/kallsyms shows no address"
        verdict $who proc_root denied "no /proc/*/root or /proc/*/cwd leads to the host"
        verdict $who mknod_block denied "mknod of a block device"
        verdict $who mknod_char denied "mknod of /dev/mem's char device"
        verdict $who dev_mem denied "open /dev/mem"
        verdict $who dev_kmsg denied "open /dev/kmsg for writing"
        verdict $who remount_rw denied "remount,rw of a store path"
        verdict $who remount_rw_store denied "remount,rw of /nix/store"
        verdict $who umount_store denied "umount of a store path"
        verdict $who umount_store_lazy denied "umount -l of a store path"
        verdict $who store_write denied "write into any /nix/store path"
        verdict $who keyctl denied "add a key to the session keyring"
        verdict $who x11_abstract denied "connect to the host's abstract @/tmp/.X11-unix/X0"
        sockets_bad=$(grep '^socket ' "/tmp/adv-$who" | while read -r _ path id _; do
                [ "$id" != absent ] && grep -qx "$path $id" /tmp/adv-host-sockets && printf ' %s' "$path"
        done)
        tap_is "$sockets_bad" "" "$who: /run/dbus/system_bus_socket, /run/systemd/private, /run/user/*/bus inside are the cage's own, not the host's sockets"
done
verdict agent mount_tmpfs denied "mount a tmpfs"
verdict agent hostname denied "sethostname"
verdict agent unshare_urm denied "unshare -Urm"
verdict agent unshare_urn denied "unshare -Urn"
verdict agent store_dir denied "add an entry to /nix/store"
verdict root store_dir denied "add an entry to /nix/store (bound read-only over itself)"
tap_diag "cage root, inside its own namespaces only: $(grep -E '^(mount_tmpfs|hostname|unshare_urm|unshare_urn) ' /tmp/adv-root | tr '\n' ';')"

# From the host, after both runs.
host_state > /tmp/adv-state.after
diff /tmp/adv-state.before /tmp/adv-state.after > /tmp/adv-state.diff
tap_ok $? "host core_pattern, uevent_helper, hostname, /etc/shadow, /etc/passwd and the store's entries unchanged" || sed 's/^/# /' /tmp/adv-state.diff
mounts 1 > /tmp/adv-mounts.after
diff /tmp/adv-mounts.before /tmp/adv-mounts.after > /tmp/adv-mounts.diff && ! grep -q adv-tmpfs /proc/1/mountinfo /proc/self/mountinfo
tap_ok $? "host mountinfo unchanged after the mount, remount, umount and unshare attempts" || sed 's/^/# /' /tmp/adv-mounts.diff | head
top=$(sed -n 's/^toplevel=//p' /var/lib/nspawn-cage/cages/adv/cage.record)
# shellcheck disable=SC2046
nix-store --verify-path $(nix-store -qR "$top") > /tmp/adv-verify 2>&1 && ! ls /nix/store | grep -q adv-evil
tap_ok $? "every store path of the closure still matches its hash in the Nix database; nothing was added to the host's store" || sed 's/^/# /' /tmp/adv-verify | head
dmesg 2> /dev/null | grep -q adv-kmsg-canary
tap_ok $((! $?)) "the kernel log holds nothing written from the cage"

# ---- The agent widens its own configuration; alice starts again ----
as_alice_pty "sudo nspawn-cage shell adv -- sh -c 'for d in net bind x11 mem; do mkdir -p w-\$d; done
printf \"[Network]\\nMode=host\\n\" > w-net/.nspawn-cage.conf
printf \"[Files]\\nBind=/:/host\\n\" > w-bind/.nspawn-cage.conf
printf \"[Display]\\nX11=yes\\n\" > w-x11/.nspawn-cage.conf
printf \"[Limits]\\nMemory=64G\\n\" > w-mem/.nspawn-cage.conf
printf \"[Network]\\nMode=host\\n\" >> .nspawn-cage.conf'"
mkdir -p /etc/nspawn-cage/nspawn-cage.conf.d
printf '[Policy]\nMaxMemory=8G\n' > /etc/nspawn-cage/nspawn-cage.conf.d/50-adv.conf
expect_refused advw "$P/w-net" "the agent wrote Mode=host" "$P/w-net/.nspawn-cage.conf:2:" "Mode=host asks for more network than allowed"
expect_refused advw "$P/w-bind" "the agent wrote Bind=/:/host" "$P/w-bind/.nspawn-cage.conf:2:" "Bind= may only be set"
expect_refused advw "$P/w-x11" "the agent wrote X11=yes" "$P/w-x11/.nspawn-cage.conf:2:" "X11=yes is not allowed"
expect_refused advw "$P/w-mem" "the agent wrote Memory=64G" "$P/w-mem/.nspawn-cage.conf:2:" "Memory=64G asks for more than allowed"
expect_refused advw "$P" "the agent appended Mode=host to the project's own config" "$P/.nspawn-cage.conf:" "Mode=host asks for more network than allowed"

# ---- Hostile config files, for real ----
cfg() { install -d -o alice -g alice "/home/alice/cfg-$1"; echo "/home/alice/cfg-$1/.nspawn-cage.conf"; }
mkfifo "$(cfg fifo)"
ln -s /dev/zero "$(cfg zero)"
truncate -s 2G "$(cfg big)"
ln -s /etc/shadow "$(cfg shadow)"
printf '[Limits]\nMemory=1G\n' > "$(cfg owner)"
chown bob:bob /home/alice/cfg-owner/.nspawn-cage.conf
for f in fifo zero big shadow; do chown -h alice:alice "/home/alice/cfg-$f/.nspawn-cage.conf"; done
expect_refused advw /home/alice/cfg-fifo "config that is a FIFO" "cfg-fifo/.nspawn-cage.conf" "not a regular file"
expect_refused advw /home/alice/cfg-zero "config that is a symlink to /dev/zero" "cfg-zero/.nspawn-cage.conf" "symbolic link"
expect_refused advw /home/alice/cfg-big "config that is a 2 GB sparse file" "cfg-big/.nspawn-cage.conf" "larger than 64 KiB"
expect_refused advw /home/alice/cfg-shadow "config that is a symlink to /etc/shadow" "cfg-shadow/.nspawn-cage.conf" "symbolic link"
expect_refused advw /home/alice/cfg-owner "config owned by another user (bob)" "cfg-owner/.nspawn-cage.conf" "owned by another user"

# ---- Invocations that are no project ----
store_path=$(nix-store -qR "$top" | head -n 1)
expect_refused advw /etc "the project /etc" "is a system directory"
expect_refused advw "$store_path" "the project $store_path" "is a system directory"
expect_refused advw /home/alice "the project is alice's home itself" "is your home directory itself"
expect_refused advw /var/tmp/adv-rootdir "the project is a directory owned by root" "not by you"
expect_refused advw /home/bob/proj "the project is bob's directory" "not by you"
rm -f /etc/nspawn-cage/nspawn-cage.conf.d/50-adv.conf

# ---- The ways in, as non-root users ----
timeout 30 su alice -c "machinectl shell root@.host /bin/sh -c 'touch /tmp/adv-hostshell'" < /dev/null > /tmp/adv-m1 2>&1
st=$?
tap_ok $([ $st != 0 ] && [ ! -e /tmp/adv-hostshell ]; echo $?) "alice: machinectl shell root@.host is denied (exit $st: $(tail -n 1 /tmp/adv-m1))"
for target in alice@adv root@adv; do
        timeout 30 su bob -c "machinectl shell $target /bin/sh -c 'touch $P/bob-was-here'" < /dev/null > /tmp/adv-m2 2>&1
        st=$?
        tap_ok $([ $st != 0 ] && [ ! -e "$P/bob-was-here" ]; echo $?) "bob: machinectl shell $target (alice's cage) is denied (exit $st: $(tail -n 1 /tmp/adv-m2))"
done
polkit=$(find /etc/polkit-1 /usr/share/polkit-1 /usr/local/share/polkit-1 "$top_srcdir" -path "$top_srcdir/.git" -prune -o \
        \( -name '*.rules' -o -name '*.pkla' -o -name '*.policy' \) -print 2> /dev/null | grep -i 'nspawn\|cage\|machine1' | grep -v '/usr/share/polkit-1/actions/org.freedesktop.machine1.policy')
tap_is "$polkit" "" "no polkit rule or policy granting more is shipped or installed"

# ---- kill -9 -1 from inside, last: the host's sentinels survive ----
as_alice_pty "sudo nspawn-cage shell adv -- sh -c 'kill -9 -1; echo still-here'"
timeout 60 systemd-run -M adv --wait -q /bin/sh -c 'kill -9 -1' < /dev/null > /dev/null 2>&1
sleep 1
tap_ok $(kill -0 "$sent_root" 2> /dev/null && kill -0 "${sent_alice:-0}" 2> /dev/null && kill -0 "$xvfb" 2> /dev/null; echo $?) \
        "kill -9 -1 as the agent and as cage root: the host's root and alice sentinels and the X server survive"
systemctl is-active systemd-journald.service dbus.service > /dev/null
tap_ok $? "the host's journald and D-Bus survive"

# ---- A clean environment for nspawn; the API key nowhere but the agent ----
mkdir -p "$(dirname "$UCONF")"
[ -e "$UCONF" ] && cp "$UCONF" /tmp/adv-uconf.saved
printf '[Environment]\nPass=TERM ANTHROPIC_API_KEY\n' > "$UCONF"
chown -R alice:alice /home/alice/.config
printf '[ -n "$ANTHROPIC_API_KEY" ] && echo KEY-SET\nwhile [ ! -e go ]; do sleep 0.2; done\n' > "$E/wait.sh"
chown alice:alice "$E/wait.sh"
# The key reaches the caller's environment from a file: on no command line of ours either.
printf '%s' "$KEY" > /home/alice/.adv-key
chown alice:alice /home/alice/.adv-key
chmod 0600 /home/alice/.adv-key
su alice -c "cd $E && ANTHROPIC_API_KEY=\$(cat ~/.adv-key) LD_PRELOAD=/nonexistent SYSTEMD_LOG_LEVEL=debug FOO_CANARY=adv-foo \
        sudo --preserve-env=ANTHROPIC_API_KEY,LD_PRELOAD,SYSTEMD_LOG_LEVEL,FOO_CANARY nspawn-cage --name advenv $E -- sh $E/wait.sh" \
        < /dev/null > /tmp/adv-env.log 2>&1 &
envp=$!
for _ in $(seq 600); do
        [ -n "$(pgrep -f 'sh /home/alice/advenv/wait.sh' | while read -r p; do [ "$(status_of "$p" NoNewPrivs)" = 1 ] && echo "$p"; done)" ] && break
        sleep 0.2
done
eleader=$(machinectl show advenv -p Leader --value 2> /dev/null)
nspawn=$(ps -o ppid= -p "${eleader:-1}" | tr -d ' ')
helper=$(pgrep -f 'nspawn-cage --name advenv' | while read -r p; do [ "$(cat "/proc/$p/comm")" = nspawn-cage ] && echo "$p"; done | head -n 1)
tr '\0' '\n' < "/proc/${helper:-0}/environ" 2> /dev/null | grep -c '^FOO_CANARY=adv-foo$' > /tmp/adv-ctl
tap_is "$(cat /tmp/adv-ctl) $(cat "/proc/$nspawn/comm" 2> /dev/null)" "1 systemd-nspawn" \
        "control: the caller's variables reached nspawn-cage through sudo --preserve-env; nspawn (pid $nspawn) found"
leak=$(tr '\0' '\n' < "/proc/$nspawn/environ" 2> /dev/null | grep -E '^(LD_PRELOAD|SYSTEMD_LOG_LEVEL|FOO_CANARY|ANTHROPIC_API_KEY)=')
tap_ok $([ -r "/proc/$nspawn/environ" ] && [ -z "$leak" ]; echo $?) "/proc/<nspawn>/environ holds none of LD_PRELOAD, SYSTEMD_LOG_LEVEL, FOO_CANARY, ANTHROPIC_API_KEY $leak"
# The pattern from the file: on grep's own command line it would find itself.
hits=$(grep -lsF -f /home/alice/.adv-key /proc/[0-9]*/cmdline | tr '\n' ' ')
tap_is "$hits" "" "the API key is in no /proc/*/cmdline of the host ($(ls -d /proc/[0-9]* 2> /dev/null | wc -l) processes, the cage's included)"
grep -qsF "$KEY" "/proc/$eleader/environ"
tap_ok $([ -r "/proc/$eleader/environ" ] && ! grep -qsF "$KEY" "/proc/$eleader/environ"; echo $?) "the API key is not in /proc/1/environ of the cage"
touch "$E/go"
wait $envp
st=$?
tap_ok $([ $st = 0 ] && grep -q KEY-SET /tmp/adv-env.log; echo $?) "control: the agent got the key it was given (exit $st)"
rm -f "$UCONF"
[ -e /tmp/adv-uconf.saved ] && mv /tmp/adv-uconf.saved "$UCONF"

# ---- Clean up ----
as_alice_pty "sudo nspawn-cage stop adv"
tap_nothing_left "after stop nothing of adv or advenv is left" adv advenv
kill "$xvfb" "$sent_root" "${sent_alice:-}" 2> /dev/null
rm -rf "$P" "$E" /home/alice/cfg-* /var/tmp/adv-rootdir /home/bob/proj /home/alice/.adv-key
tap_done
