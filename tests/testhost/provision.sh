#!/bin/sh
# Configures a freshly debootstrapped test host tree.  Runs ONCE per cache key,
# chrooted into the tree (by `run`), before the tree becomes the pristine base.
# The cache key hashes this file and provision-common.sh together with
# `packages`, so any edit rebuilds the base: keep everything that shapes the
# base in these files.
set -eu

export DEBIAN_FRONTEND=noninteractive LC_ALL=C

guest_hostname=testhost
. /provision-common.sh

# nspawn refuses a tree whose os-release is missing or dangling; bookworm ships
# /etc/os-release -> ../usr/lib/os-release, check that it resolves.
test -s /etc/os-release

# Units that only make noise or fail in a container without a network.
systemctl mask \
	systemd-networkd-wait-online.service \
	apt-daily.timer apt-daily-upgrade.timer \
	e2scrub_all.timer e2scrub_reap.service \
	2>/dev/null || true

apt-get clean
rm -rf /var/lib/apt/lists/* /var/log/*.log /var/log/apt/* /var/cache/debconf/*-old
