#!/bin/sh
# Runs INSIDE a cage (see adversarial.inner.sh), as the agent or as cage root:
#   sh adversarial.cage.sh WHO PROBE
# Tries what a hostile agent would, and prints one line per attempt,
# "ID denied|ALLOWED [detail]" (or a measured value); the host side judges.
# Nothing here is trusted for the verdict on the host: the host compares its
# own canaries before and after.
who=$1
probe_bin=$2

# try ID CMD...: denied if CMD fails.
try() {
        id=$1
        shift
        if "$@" > /dev/null 2>&1; then echo "$id ALLOWED"; else echo "$id denied"; fi
}

try core_pattern sh -c 'echo "|/tmp/adv-evil %p" > /proc/sys/kernel/core_pattern'
try sysrq sh -c 'echo h > /proc/sysrq-trigger'
try uevent_helper sh -c 'echo /tmp/adv-evil > /sys/kernel/uevent_helper'
try kcore sh -c 'head -c 4096 /proc/kcore | wc -c | grep -qv "^0$"'
# kallsyms: readable is fine if every address reads as zero.
if head -n 1 /proc/kallsyms > /dev/null 2>&1; then
        echo "kallsyms nonzero=$(grep -cv '^0* ' /proc/kallsyms)"
else
        echo "kallsyms nonzero=0 (unreadable)"
fi

# /proc/*/root and /proc/*/cwd of every process we see: none leads to the
# test host's marker or to alice's secret outside the project.
up=../../../../../../../../../../../../../../../..
esc=""
n=0
for p in /proc/[0-9]*; do
        n=$((n + 1))
        for f in etc/nspawn-cage-testhost home/alice/secret; do
                [ -e "$p/root/$f" ] && esc="$esc ${p#/proc/}/root/$f"
                [ -e "$p/cwd/$up/$f" ] && esc="$esc ${p#/proc/}/cwd/$f"
        done
        r=$(readlink "$p/root" 2> /dev/null)
        [ -z "$r" ] || [ "$r" = / ] || esc="$esc ${p#/proc/}/root->$r"
done
if [ -z "$esc" ]; then echo "proc_root denied ($n processes seen)"; else echo "proc_root ALLOWED$esc"; fi

mkdir -p /tmp/adv-$who
try mknod_block mknod /tmp/adv-$who/sda b 8 0
try mknod_char mknod /tmp/adv-$who/mem c 1 1
# The kernel's devices, if they are there at all (a plain file of that name
# would be the cage's own /dev, not the kernel).
if [ -c /dev/mem ]; then try dev_mem sh -c 'exec 3< /dev/mem'; else echo "dev_mem denied (no such device)"; fi
if [ -c /dev/kmsg ]; then
        try dev_kmsg sh -c "echo adv-kmsg-canary-$who > /dev/kmsg"
else
        echo "dev_kmsg denied (no such device)"
fi

# Mounts: what succeeds stays in the cage; the host compares its mountinfo.
mkdir -p /tmp/adv-$who/mnt
if mount -t tmpfs adv-tmpfs-$who /tmp/adv-$who/mnt > /dev/null 2>&1; then
        echo "mount_tmpfs inside-only"
        umount /tmp/adv-$who/mnt 2> /dev/null
else
        echo "mount_tmpfs denied"
fi
store=$(ls -d /nix/store/*-coreutils* | head -n 1)
try remount_rw mount -o remount,bind,rw "$store"
try remount_rw_store mount -o remount,rw /nix/store
try umount_store umount "$store"
try umount_store_lazy umount -l "$store"

# Writing into the store, after those attempts: every path, and the store itself.
bad=""
for s in /nix/store/*; do
        touch "$s/adv-evil-$who" 2> /dev/null && bad="$bad $s"
done
{ echo "x" >> "$store/bin/true"; } 2> /dev/null && bad="$bad $store/bin/true"
if [ -z "$bad" ]; then echo "store_write denied"; else echo "store_write ALLOWED$bad"; fi
# The store directory itself: the rootfs's own, bound read-only over itself.
try store_dir touch /nix/store/adv-evil-$who

# probe ID ALLOWED-WORD ARGS...: the static probe's verdict.
probe() {
        id=$1
        yes=$2
        shift 2
        o=$("$probe_bin" "$@" 2>&1)
        if [ "$o" = ok ]; then echo "$id $yes"; else echo "$id denied ($o)"; fi
}
probe keyctl ALLOWED keyctl
probe hostname inside-only hostname adv-evil
try unshare_urm unshare -Urm true
try unshare_urn unshare -Urn true

# Sockets: whatever answers at these paths is the cage's own; the host
# compares device:inode with its own sockets.
for s in /run/dbus/system_bus_socket /run/systemd/private /run/user/*/bus; do
        if [ -S "$s" ]; then
                echo "socket $s $(stat -L -c %d:%i "$s") connect=$("$probe_bin" connect "$s")"
        else
                echo "socket $s absent"
        fi
done
probe x11_abstract ALLOWED connect @/tmp/.X11-unix/X0
echo "done $who"
