#!/bin/sh
# Runs inside the test host (see builders.sh). A nix-daemon is started for
# the test (the test host has none; its nix.conf builds as root, without a
# sandbox: a real host's daemon builds as nixbld users in its sandbox).
# alice's project holds a trivial derivation; nix-build runs in the cage.
# Containers=podman: alice's second project holds an image (a docker-archive
# of busybox-static, made here); podman loads and runs it in the cage.
set -u
. "$top_srcdir/tests/integration/lib.sh"
inner_setup

tap_plan 14
CASES="nd1 nd2 nd3 nd4 nd5 pm1 pm2 pm3 pm4"
for n in $CASES; do nspawn-cage stop "$n" > /dev/null 2>&1; done
rm -f /tmp/builders-alice-config # a copy left by an earlier run is not this run's
[ -f /home/alice/.config/nspawn-cage/config ] && cp -a /home/alice/.config/nspawn-cage/config /tmp/builders-alice-config
cp -a /etc/nix/nix.conf /tmp/builders-nix.conf
ADMIN=/etc/nspawn-cage/nspawn-cage.conf
cp -a $ADMIN /tmp/builders-admin.conf
p=/home/alice/nixproj
rm -rf $p
install -d -o alice -g alice $p
write_project_config $p '[Cage]\nPackages=nix bash coreutils\n'
cat > $p/t.nix <<'NIX'
derivation { name = "cage-built"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo built-in-the-cage-$RANDOM > $out" ]; }
NIX
printf 'nix-build --no-out-link t.nix > out 2>&1; st=$?; cat out; [ $st = 0 ] && cat "$(tail -n 1 out)"; exit $st\n' > $p/.agent.sh
chown alice:alice $p/t.nix $p/.agent.sh

systemctl stop nspawn-cage-test-nix-daemon > /dev/null 2>&1
rm -f /nix/var/nix/daemon-socket/socket
systemd-run -q --unit nspawn-cage-test-nix-daemon /usr/bin/nix-daemon
for _ in $(seq 100); do [ -S /nix/var/nix/daemon-socket/socket ] && break; sleep 0.1; done

# 1. A default cage: no daemon, and nix-build says why.
as_alice_pty "sudo nspawn-cage --name nd1 ~/nixproj -- sh .agent.sh"
st=$?
tap_ok_or_diag $([ $st != 0 ] && printf '%s\n' "$out" | grep -qi "^error: .*daemon-socket/socket\|^error: .*read-only file system"; echo $?) \
        "a default cage: nix-build fails (exit $st), saying what is missing" "$out"

# 2. The user asks for it; the administrator has not allowed it.
write_user_config '[Cage]\nNixDaemon=yes\n'
expect_refused nd2 "$p" "NixDaemon=yes without the administrator's AllowNixDaemon=yes" \
        "NixDaemon=yes is not allowed: the administrator set AllowNixDaemon=no"

# 3. Allowed: nix-build of a trivial derivation works from inside.
printf '\n[Policy]\nAllowNixDaemon=yes\n' >> $ADMIN
as_alice_pty "sudo nspawn-cage --name nd3 ~/nixproj -- sh .agent.sh"
st=$?
out_path=$(printf '%s\n' "$out" | grep '^/nix/store/.*-cage-built$' | tail -n 1)
tap_ok_or_diag $([ $st = 0 ] && printf '%s\n' "$out" | grep -q '^built-in-the-cage-' && [ -n "$out_path" ] && grep -q built-in-the-cage "$out_path"; echo $?) \
        "NixDaemon=yes, allowed: nix-build in the cage builds through the host's daemon; the output is in the host's store" "$out"
tap_nothing_left "... nothing of cage nd3 is left" nd3

# 4. The project may not ask for it.
write_user_config ''
write_project_config $p '[Cage]\nPackages=nix bash coreutils\nNixDaemon=yes\n'
expect_refused nd4 "$p" "NixDaemon=yes from the project's configuration (file and line)" "nixproj/.nspawn-cage.conf:3: NixDaemon="
write_project_config $p '[Cage]\nPackages=nix bash coreutils\n'

# 5. alice is a trusted Nix user: refused.
write_user_config '[Cage]\nNixDaemon=yes\n'
printf 'trusted-users = root alice\n' >> /etc/nix/nix.conf
expect_refused nd5 "$p" "NixDaemon=yes for a trusted Nix user (trusted-users = root alice)" "NixDaemon=yes is refused: alice is a trusted Nix user"

cp -a /tmp/builders-nix.conf /etc/nix/nix.conf
cp -a /tmp/builders-admin.conf $ADMIN

# Containers=podman. The image: busybox-static as a docker-archive (a layer,
# its config, a manifest), as `podman save` would write it.
q=/home/alice/podproj
rm -rf $q
install -d -o alice -g alice $q
img=$(mktemp -d)
mkdir -p $img/root/bin
cp /bin/busybox $img/root/bin/busybox
tar -C $img/root -cf $img/layer.tar bin
diff_id=$(sha256sum $img/layer.tar | cut -d' ' -f1)
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$diff_id" > $img/config.json
cfg=$(sha256sum $img/config.json | cut -d' ' -f1)
mv $img/config.json $img/$cfg.json
printf '[{"Config":"%s.json","RepoTags":["localhost/cagebox:latest"],"Layers":["layer.tar"]}]' "$cfg" > $img/manifest.json
tar -C $img -cf $q/cagebox.tar manifest.json $cfg.json layer.tar
rm -rf $img
write_project_config $q '[Cage]\nPackages=podman bash coreutils util-linux\n'
# What the container prints is computed in it ($((6*7))): it appears only
# if the container ran. The second store is overlay by fuse-overlayfs
# (/dev/fuse); --network host is the cage's own network.
cat > $q/.agent.sh <<'AGENT'
unshare -Ur true 2>&1; echo "unshare-Ur-exit=$?"
podman load -i cagebox.tar > load.log 2>&1 || cat load.log
podman run --rm localhost/cagebox busybox sh -c 'echo podman-container-says-$((6*7))'
F="--root $HOME/fuse-store --storage-opt overlay.mount_program=$(command -v fuse-overlayfs)"
podman $F load -i cagebox.tar > load.log 2>&1 || cat load.log
podman $F run --rm localhost/cagebox busybox sh -c 'echo fuse-container-says-$((6*7)); busybox grep " / " /proc/mounts'
podman run --rm --network host localhost/cagebox busybox sh -c 'echo net-links: $(busybox ip -o link | busybox cut -d: -f2)'
unshare -Ur sh -c 'touch suid-try && chmod 4755 suid-try' 2>&1
AGENT
chown alice:alice $q/.agent.sh $q/cagebox.tar

# 6. A default cage: no nested user namespace, so no podman.
write_user_config ''
as_alice_pty "sudo nspawn-cage --name pm1 ~/podproj -- sh .agent.sh"
tap_ok_or_diag $(printf '%s\n' "$out" | grep -q '^unshare-Ur-exit=[1-9]' && ! printf '%s\n' "$out" | grep -q 'container-says-42'; echo $?) \
        "a default cage: unshare -Ur fails, podman runs nothing" "$out"

# 7. The user asks for it; the administrator has not allowed it.
write_user_config '[Cage]\nContainers=podman\n'
expect_refused pm2 "$q" "Containers=podman without the administrator's AllowContainers=yes" \
        "Containers=podman is not allowed: the administrator set AllowContainers=no"

# 8. The project may not ask for it, even where the administrator allows it.
printf '\n[Policy]\nAllowContainers=yes\n' >> $ADMIN
write_user_config ''
write_project_config $q '[Cage]\nPackages=podman bash coreutils util-linux\nContainers=podman\n'
expect_refused pm3 "$q" "Containers=podman from the project's configuration (file and line)" "podproj/.nspawn-cage.conf:3: Containers= may only be set by"
write_project_config $q '[Cage]\nPackages=podman bash coreutils util-linux\n'

# 9. Allowed, from the user's configuration: podman load and run (where
# the machine has a FUSE device for the test host to pass on).
if [ ! -c /dev/fuse ]; then
        tap_skip "Containers=podman needs /dev/fuse, which this machine does not have (modprobe fuse)" 5
else
write_user_config '[Cage]\nContainers=podman\n'
as_alice_pty "sudo nspawn-cage --name pm4 ~/podproj -- sh .agent.sh"
tap_ok_or_diag $(printf '%s\n' "$out" | grep -q '^podman-container-says-42$'; echo $?) \
        "Containers=podman, allowed: podman run of an image loaded from a tarball prints its output" "$out"
tap_ok_or_diag $(printf '%s\n' "$out" | grep -q '^fuse-container-says-42$' && printf '%s\n' "$out" | grep -q '^fuse-overlayfs / fuse.fuse-overlayfs '; echo $?) \
        "... and with fuse-overlayfs over the cage's /dev/fuse" "$out"
tap_ok_or_diag $(printf '%s\n' "$out" | grep -q '^net-links: lo$'; echo $?) \
        "... the container's network is the cage's (Mode=off: only lo)" "$out"
# RestrictSUIDSGID= stays: root of a nested user namespace is the user
# on the host, and a set-uid file in the project would be the user's.
tap_ok_or_diag $([ -f $q/suid-try ] && [ ! -u $q/suid-try ]; echo $?) \
        "... no set-uid file from the agent's own user namespace: $(stat -c '%A %U' $q/suid-try 2>&1)" "$out"
tap_nothing_left "... nothing of cage pm4 is left" pm4
fi
cp -a /tmp/builders-admin.conf $ADMIN

systemctl stop nspawn-cage-test-nix-daemon > /dev/null 2>&1
rm -f /nix/var/nix/daemon-socket/socket
for n in $CASES; do nspawn-cage stop "$n" > /dev/null 2>&1; done
rm -rf $q
if [ -f /tmp/builders-alice-config ]; then cp -a /tmp/builders-alice-config /home/alice/.config/nspawn-cage/config; else rm -f /home/alice/.config/nspawn-cage/config; fi
tap_done
