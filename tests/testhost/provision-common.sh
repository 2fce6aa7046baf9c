# provision-common.sh: what the test host and the VM guest share, sourced by
# their provision.sh (chrooted into the fresh tree) with $guest_hostname set.
# Both cache keys hash this file too: an edit here rebuilds both.

echo "$guest_hostname" >/etc/hostname
cat >/etc/hosts <<HOSTS
127.0.0.1	localhost
127.0.1.1	$guest_hostname
::1		localhost ip6-localhost ip6-loopback
HOSTS

# Empty machine-id: each boot of a fresh layer or overlay gets its own.
: >/etc/machine-id
rm -f /var/lib/dbus/machine-id

# The integration tests run `sudo nspawn-cage ...` as alice.
groupadd --gid 1000 alice
useradd --uid 1000 --gid 1000 --create-home --home-dir /home/alice \
	--shell /bin/bash alice
cat >/etc/sudoers.d/alice <<'SUDOERS'
alice ALL=(ALL:ALL) NOPASSWD: ALL
SUDOERS
chmod 0440 /etc/sudoers.d/alice

# Nix: root builds directly (no daemon, no build users, no sandbox), offline.
mkdir -p /etc/nix /nix/store /nix/var/nix/gcroots /nix/var/nix/profiles
cat >/etc/nix/nix.conf <<'NIXCONF'
# Test guest: root builds directly (no daemon, no build users), offline.
sandbox = false
build-users-group =
substituters =
experimental-features = nix-command
NIXCONF
if [ -e /lib/systemd/system/nix-daemon.socket ]; then
	systemctl mask nix-daemon.socket nix-daemon.service
fi

# machined is bus-activated (static unit): nothing to enable, but make sure
# it is there, since the product registers every cage with it.
test -e /lib/systemd/system/systemd-machined.service

printf '%s\n' 'export LANG=C.UTF-8' >>/root/.bashrc
