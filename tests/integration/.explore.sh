H=/work/main/tests/unit/test-idmap
rm -rf /var/lib/machines/pick; cp -a /var/lib/machines/idm-src/rootfs /var/lib/machines/pick
systemd-run -q --unit pick-probe /usr/bin/systemd-nspawn -q --register=no --keep-unit -U --private-users-ownership=chown --bind-ro=/nix/store -D /var/lib/machines/pick /bin/sleep 30
sleep 2
ls -li /run/systemd/nspawn-uid/
cat /proc/locks
stat -c %u /var/lib/machines/pick
b=$(stat -c %u /var/lib/machines/pick); $H used $b
systemctl stop pick-probe; rm -rf /var/lib/machines/pick
ls -li /run/systemd/nspawn-uid/
