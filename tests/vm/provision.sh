#!/bin/sh
# Configures a freshly debootstrapped VM guest tree. Runs ONCE per cache key,
# chrooted into the tree (by `run`), before the tree becomes the image.
# The cache key hashes this file and ../testhost/provision-common.sh together
# with the package lists and `run`'s image format number: keep everything that
# shapes the guest in these files.
set -eu

export DEBIAN_FRONTEND=noninteractive LC_ALL=C

guest_hostname=testvm
. /provision-common.sh

# Marks the inside of the VM, for `run` called from within.
echo nspawn-cage-vm >/etc/nspawn-cage-vm

# The kernel command line has systemd.firstboot=off; masking as well keeps
# the interactive first-boot prompts off the serial console for sure.
systemctl mask systemd-firstboot.service

# The root file system is the whole virtio disk, no partition table.
cat >/etc/fstab <<'EOF'
/dev/vda	/	ext4	rw,relatime,errors=remount-ro	0	0
EOF

# Network: only qemu's user-mode network, restricted (restrict=on: no route
# to the host or beyond), used for one thing: the host's ssh to 127.0.0.1
# is forwarded to port 22 here. Static address, no DHCP wait.
mkdir -p /etc/systemd/network
cat >/etc/systemd/network/10-qemu-user.network <<'EOF'
[Match]
Name=eth0

[Network]
Address=10.0.2.15/24
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
systemctl enable systemd-networkd.service

# sshd: key login for root only (the key is made per image by `run`).
cat >/etc/ssh/sshd_config.d/nspawn-cage-vm.conf <<'EOF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxSessions 100
MaxStartups 100:30:200
EOF
test -s /etc/ssh/ssh_host_ed25519_key

# The repository: a virtio-9p share (tag "repo"), mounted at the host's
# path, which `run` passes on the kernel command line.
cat >/usr/local/sbin/nspawn-cage-vm-mount-repo <<'EOF'
#!/bin/sh
set -eu
repo=
for w in $(cat /proc/cmdline); do
	case $w in
	nspawn_cage_vm.repo=*) repo=${w#*=} ;;
	esac
done
[ -n "$repo" ] || exit 0
mkdir -p "$repo"
mountpoint -q "$repo" ||
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 repo "$repo"
EOF
chmod 755 /usr/local/sbin/nspawn-cage-vm-mount-repo
cat >/etc/systemd/system/nspawn-cage-vm-repo.service <<'EOF'
[Unit]
Description=Mount the host's repository (virtio-9p)
After=local-fs.target
Before=ssh.service multi-user.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/nspawn-cage-vm-mount-repo

[Install]
WantedBy=multi-user.target
EOF
systemctl enable nspawn-cage-vm-repo.service

# 256M of swap, so that Swap=0 of a cage can be shown to hold. Made at
# boot: mkfs.ext4 -d would store a file of zeros with holes, which swapon
# refuses; fallocate gives a hole-free file instantly.
cat >/etc/systemd/system/nspawn-cage-vm-swap.service <<'EOF'
[Unit]
Description=256M swap file

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -ec 'rm -f /swapfile; fallocate -l 256M /swapfile; chmod 600 /swapfile; mkswap -q /swapfile; swapon /swapfile'

[Install]
WantedBy=multi-user.target
EOF
systemctl enable nspawn-cage-vm-swap.service

# Units that only make noise, cost time under emulation, or wait for a
# network that is not there.
systemctl mask \
	systemd-networkd-wait-online.service \
	apt-daily.timer apt-daily-upgrade.timer \
	e2scrub_all.timer e2scrub_reap.service \
	fstrim.timer dpkg-db-backup.timer man-db.timer \
	getty@tty1.service \
	2>/dev/null || true

# The kernel and initrd are read by qemu from outside (-kernel, -initrd).
ls /boot/vmlinuz-* /boot/initrd.img-* >/dev/null

apt-get clean
rm -rf /var/lib/apt/lists/* /var/log/*.log /var/log/apt/* /var/cache/debconf/*-old
