#!/usr/bin/perl
# storeview ROOTFS CLOSURE-FILE COMMAND...
#
# The "pre-built store view" alternative measured by bench/run (not used by
# nspawn-cage): in the current mount namespace (the unit runs with
# PrivateMounts=yes, so the host never sees these mounts) mount a tmpfs on
# ROOTFS/nix/store, bind every path of CLOSURE-FILE read-only into it with two
# mount(2) calls each (bind, then remount read-only: no /proc/self/mountinfo
# is read), make the tmpfs read-only, then exec COMMAND (systemd-nspawn),
# whose container inherits the view. This is what C code would do.
use strict;
use warnings;

my ($root, $list, @cmd) = @ARGV;
die "usage: storeview ROOTFS CLOSURE-FILE COMMAND...\n" unless defined $list && @cmd;

my $SYS_mount = 165; # x86_64
my ($RDONLY, $NOSUID, $NODEV, $REMOUNT, $BIND) = (1, 2, 4, 32, 4096);

sub mnt {
	my ($src, $dst, $type, $flags, $data) = @_;
	syscall($SYS_mount, $src, $dst, $type, $flags, $data) == 0
		or die "storeview: mount $dst: $!\n";
}

my $store = "$root/nix/store";
mnt("tmpfs", $store, "tmpfs", $NOSUID | $NODEV, "mode=0755,size=4m");
open(my $fh, '<', $list) or die "storeview: $list: $!\n";
my $n = 0;
while (my $p = <$fh>) {
	chomp $p;
	next unless $p =~ m{^/nix/store/[^/]+$};
	my $dst = "$root$p";
	if (-d $p) {
		mkdir $dst or die "storeview: mkdir $dst: $!\n";
	} else {
		open(my $f, '>', $dst) or die "storeview: $dst: $!\n";
		close $f;
	}
	mnt($p, $dst, 0, $BIND, 0);
	mnt(0, $dst, 0, $BIND | $REMOUNT | $RDONLY | $NOSUID | $NODEV, 0);
	$n++;
}
close $fh;
mnt(0, $store, 0, $REMOUNT | $RDONLY | $NOSUID | $NODEV, "mode=0755");
exec { $cmd[0] } @cmd or die "storeview: exec $cmd[0]: $!\n";
