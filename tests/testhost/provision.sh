#!/bin/sh
# Configures a freshly debootstrapped test host tree.  Runs ONCE per cache key,
# chrooted into the tree (by `run`), before the tree becomes the pristine base.
# The cache key hashes this file together with `packages`, so any edit here
# rebuilds the base: keep everything that shapes the base in this file.
set -eu

export DEBIAN_FRONTEND=noninteractive LC_ALL=C

echo testhost >/etc/hostname
cat >/etc/hosts <<'EOF'
127.0.0.1	localhost
127.0.1.1	testhost
::1		localhost ip6-localhost ip6-loopback
EOF

# nspawn refuses a tree whose os-release is missing or dangling; bookworm ships
# /etc/os-release -> ../usr/lib/os-release, check that it resolves.
test -s /etc/os-release

# Empty machine-id: every boot of a fresh layer gets its own transient id.
: >/etc/machine-id
rm -f /var/lib/dbus/machine-id

# The integration tests run `sudo nspawn-cage ...` as alice.
groupadd --gid 1000 alice
useradd --uid 1000 --gid 1000 --create-home --home-dir /home/alice \
	--shell /bin/bash alice
cat >/etc/sudoers.d/alice <<'EOF'
alice ALL=(ALL:ALL) NOPASSWD: ALL
EOF
chmod 0440 /etc/sudoers.d/alice

# Nix: single-user builds as root, offline, no build users, no sandbox.
mkdir -p /etc/nix /nix/store /nix/var/nix/gcroots /nix/var/nix/profiles
cat >/etc/nix/nix.conf <<'EOF'
# Test host: root builds directly (no daemon, no build users), offline.
sandbox = false
build-users-group =
substituters =
experimental-features = nix-command
EOF
# Root talks to the store directly, never to a daemon.
if [ -e /lib/systemd/system/nix-daemon.socket ]; then
	systemctl mask nix-daemon.socket nix-daemon.service
fi

# machined is bus-activated (static unit): nothing to enable, but make sure
# it is there, since the product registers every cage with it.
test -e /lib/systemd/system/systemd-machined.service

# Units that only make noise or fail in a container without a network.
systemctl mask \
	systemd-networkd-wait-online.service \
	apt-daily.timer apt-daily-upgrade.timer \
	e2scrub_all.timer e2scrub_reap.service \
	2>/dev/null || true

# Root's shell inside the test host.
printf '%s\n' 'export LANG=C.UTF-8' >>/root/.bashrc

apt-get clean
rm -rf /var/lib/apt/lists/* /var/log/*.log /var/log/apt/* /var/cache/debconf/*-old
