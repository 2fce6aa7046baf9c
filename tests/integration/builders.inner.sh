#!/bin/sh
# Runs inside the test host (see builders.sh). A nix-daemon is started for
# the test (the test host has none; its nix.conf builds as root, without a
# sandbox: a real host's daemon builds as nixbld users in its sandbox).
# alice's project holds a trivial derivation; nix-build runs in the cage.
set -u
. "$top_srcdir/tests/integration/lib.sh"
inner_setup

tap_plan 7
CASES="nd1 nd2 nd3 nd4 nd5"
for n in $CASES; do nspawn-cage stop "$n" > /dev/null 2>&1; done
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
as_alice_pty "sudo nspawn-cage --name nd2 ~/nixproj -- sh .agent.sh"
st=$?
tap_ok_or_diag $([ $st != 0 ] && printf '%s\n' "$out" | grep -q "NixDaemon=yes is not allowed: the administrator set AllowNixDaemon=no"; echo $?) \
        "NixDaemon=yes without the administrator's AllowNixDaemon=yes: refused, saying so" "$out"
tap_nothing_left "... nothing of cage nd2 is left" nd2

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
as_alice_pty "sudo nspawn-cage --name nd4 ~/nixproj -- sh .agent.sh"
st=$?
tap_ok_or_diag $([ $st != 0 ] && printf '%s\n' "$out" | grep -q "nixproj/.nspawn-cage.conf:3: NixDaemon=yes is not allowed\|nixproj/.nspawn-cage.conf:3: NixDaemon="; echo $?) \
        "NixDaemon=yes from the project's configuration: refused with file and line" "$out"
write_project_config $p '[Cage]\nPackages=nix bash coreutils\n'

# 5. alice is a trusted Nix user: refused.
write_user_config '[Cage]\nNixDaemon=yes\n'
printf 'trusted-users = root alice\n' >> /etc/nix/nix.conf
as_alice_pty "sudo nspawn-cage --name nd5 ~/nixproj -- sh .agent.sh"
st=$?
tap_ok_or_diag $([ $st != 0 ] && printf '%s\n' "$out" | grep -q "NixDaemon=yes is refused: alice is a trusted Nix user"; echo $?) \
        "NixDaemon=yes for a trusted Nix user (trusted-users = root alice): refused" "$out"

cp -a /tmp/builders-nix.conf /etc/nix/nix.conf
cp -a /tmp/builders-admin.conf $ADMIN
systemctl stop nspawn-cage-test-nix-daemon > /dev/null 2>&1
rm -f /nix/var/nix/daemon-socket/socket
for n in $CASES; do nspawn-cage stop "$n" > /dev/null 2>&1; done
if [ -f /tmp/builders-alice-config ]; then cp -a /tmp/builders-alice-config /home/alice/.config/nspawn-cage/config; else rm -f /home/alice/.config/nspawn-cage/config; fi
tap_done
