#!/bin/sh
# Runs inside the test host (see adversarial-net.sh). One kept cage of
# alice's with SSHAgent=yes, Tasks=40 and Mode=private.
#  6. The agent opens 300 connections to its ssh-agent relay at once (one
#     process in the cage: Tasks= does not stop it). Judged from the host:
#     how many relay processes of alice's exist, which unit holds them,
#     whether they end with the cage, and that the agent still works.
#  8. The agent listens on a port; root, alice and bob (another local user)
#     try it from the host: only the invoking user and root get through.
set -u
. "$top_srcdir/tests/integration/lib.sh"
inner_setup
command -v nft > /dev/null || tap_skip_all "nft is not installed in the test host (tests/testhost/packages)"

N=advnet
P=/home/alice/advnet
PROBE="$top_builddir/tests/integration/adv-probe"
UCONF=/home/alice/.config/nspawn-cage/config
SCOPE=nspawn-cage-$N-ssh-agent.scope
nspawn-cage stop $N > /dev/null 2>&1
id bob > /dev/null 2>&1 || useradd -m -s /bin/sh bob
rm -rf "$P" /home/alice/.sshnet
install -d -o alice -g alice "$P" /home/alice/.config /home/alice/.config/nspawn-cage
[ -f "$UCONF" ] && [ ! -f /tmp/advnet-config.saved ] && cp -a "$UCONF" /tmp/advnet-config.saved
pids=""
advnet_cleanup() {
        for p in $pids; do kill "$p" 2> /dev/null; done
        nspawn-cage stop $N > /dev/null 2>&1
        nspawn-cage stop ${N}9 > /dev/null 2>&1
        su alice -c '. ~/.sshnet/agent.env > /dev/null 2>&1 && ssh-agent -k' > /dev/null 2>&1
        if [ -f /tmp/advnet-config.saved ]; then mv /tmp/advnet-config.saved "$UCONF"; else rm -f "$UCONF"; fi
}
trap advnet_cleanup EXIT

printf '[Cage]\nPackages=bash coreutils openssh\n[Limits]\nTasks=40\n' > "$P/.nspawn-cage.conf"
printf '[Network]\nMode=private\n[Forward]\nSSHAgent=yes\n' > "$UCONF"
install -m 0755 -o alice -g alice "$PROBE" "$P/adv-probe"
chown alice:alice "$P/.nspawn-cage.conf" "$UCONF"

su alice -c 'mkdir -m 700 ~/.sshnet && ssh-keygen -q -t ed25519 -N "" -C alice-advnet -f ~/.sshnet/id &&
        ssh-agent -a ~/.sshnet/agent.sock > ~/.sshnet/agent.env && SSH_AUTH_SOCK=~/.sshnet/agent.sock ssh-add -q ~/.sshnet/id' > /tmp/advnet-ssh.log 2>&1
tap_ok $? "control: alice's ssh-agent holds a key" || sed 's/^/# /' /tmp/advnet-ssh.log
fp=$(su alice -c 'SSH_AUTH_SOCK=~/.sshnet/agent.sock ssh-add -l' | awk '{print $2}')

t0=$(date +%s)
as_alice_pty "SSH_AUTH_SOCK=~/.sshnet/agent.sock sudo --preserve-env=SSH_AUTH_SOCK nspawn-cage --keep --name $N $P -- true"
tap_is "$?" 0 "cage $N (SSHAgent=yes, Tasks=40, Mode=private) starts, kept ($(( $(date +%s) - t0 )) s)" || tap_diag "$out"
leader=$(machinectl show $N -p Leader --value 2> /dev/null)
agent_list() { # what ssh-add -l shows inside, as the agent
        as_alice_pty "sudo nspawn-cage shell $N -- sh -c 'SSH_AUTH_SOCK=/run/nspawn-cage/ssh-agent ssh-add -l'"
        printf '%s\n' "$out" | grep -c "$fp alice-advnet"
}
tap_is "$(agent_list)" 1 "control: ssh-add -l inside lists alice's key before the flood"
relays() { pgrep -u alice -x nspawn-cage-ssh | wc -l; }

# ---- 6. 300 connections to the relay, held by one process in the cage ----
since=$(date '+%Y-%m-%d %H:%M:%S')
rm -f "$P/hold.out"
su alice -c "sudo nspawn-cage shell $N -- sh -c '$P/adv-probe hold /run/nspawn-cage/ssh-agent 300 60 > $P/hold.out 2>&1'" < /dev/null > /dev/null 2>&1 &
hold_sh=$!
pids="$pids $hold_sh"
for _ in $(seq 150); do grep -q '^held' "$P/hold.out" 2> /dev/null && break; sleep 0.2; done
sleep 2 # let a relay that forks per connection finish forking
held=$(sed -n 's/^held //p' "$P/hold.out" 2> /dev/null)
n=$(relays)
tap_ok $([ -n "$held" ] && [ "$held" -ge 100 ]; echo $?) "control: the agent holds ${held:-no} connections to /run/nspawn-cage/ssh-agent, from one process"
tap_ok $([ "$n" -ge 1 ] && [ "$n" -le 4 ]; echo $?) "the host runs $n relay process(es) of alice's for them (at most 4: the relay's TasksMax=)"
relay=$(pgrep -u alice -x nspawn-cage-ssh | head -n 1)
grep -q "/machine.slice/$SCOPE\$" "/proc/${relay:-0}/cgroup" 2> /dev/null
tap_ok $? "the relay (pid ${relay:-none}) is in the cgroup of $SCOPE in machine.slice ($(grep -m1 'name=systemd\|^0::' "/proc/${relay:-0}/cgroup" 2> /dev/null))"
systemctl status "$SCOPE" --no-pager > /tmp/advnet-scope 2>&1
grep -qE "(─|-)${relay:-none} " /tmp/advnet-scope
tap_ok $? "systemctl status $SCOPE shows the relay" || sed 's/^/# /' /tmp/advnet-scope | head -n 12
tap_is "$(systemctl show -p BindsTo --value "$SCOPE" 2> /dev/null) $(systemctl show -p TasksMax --value "$SCOPE" 2> /dev/null)" \
        "nspawn-cage-$N.service 4" "the scope is bound to the cage's unit (BindsTo=) and limited (TasksMax=4)"
logged=0
for _ in $(seq 20); do
        logged=$(journalctl --since "$since" -o cat 2> /dev/null | grep -c "cage $N holds 16 connections to the ssh-agent relay")
        [ "$logged" -ge 1 ] && break
        sleep 0.5
done
tap_is "$logged" 1 "the refused connections are logged once (journal)"
pkill -f "adv-probe hold /run/nspawn-cage/ssh-agent" 2> /dev/null
wait $hold_sh 2> /dev/null
for _ in $(seq 50); do [ "$(relays)" -le 1 ] && break; sleep 0.2; done
tap_is "$(agent_list)" 1 "after the flood, ssh-add -l inside still lists alice's key"
tap_is "$(relays)" 1 "and one relay process remains"

# ---- 8. A listener in the cage, tried from the host by root, alice, bob ----
lease=$(grep -lsx $N /run/nspawn-cage/network/* | head -n 1)
slot=${lease##*/}
if [ -z "$slot" ]; then
        tap_skip "no network lease of $N: Mode=private did not come up"
        tap_skip "no network lease"
        tap_skip "no network lease"
        tap_skip "no network lease"
else
        o=$((slot * 4 + 2))
        addr=10.231.$((o / 256)).$((o % 256))
        su alice -c "sudo nspawn-cage shell $N -- $P/adv-probe listen 7070 90" < /dev/null > /dev/null 2>&1 &
        pids="$pids $!"
        try() { # USER HOST: the first line the cage's listener sends USER, or "unreachable"
                su "$1" -s /bin/sh -c "timeout 3 bash -c 'exec 3<>/dev/tcp/$2/7070 && head -n 1 <&3' 2> /dev/null || echo unreachable"
        }
        for _ in $(seq 100); do [ "$(try root "$addr")" = hello-from-cage ] && break; sleep 0.2; done
        tap_is "$(try root "$addr")" hello-from-cage "root on the host reaches the agent's listener at $addr:7070"
        tap_is "$(try alice "$addr")" hello-from-cage "alice, who started the cage, reaches it"
        tap_is "$(try bob "$addr")" unreachable "bob, another local user, does not"
        ll=$(nsenter -t "$leader" -n ip -6 -o addr show dev host0 scope link 2> /dev/null | awk '{ print $4 }' | cut -d/ -f1 | head -n 1)
        if [ -n "$ll" ]; then
                if [ "$(try alice "$ll%ncage-$slot")" = hello-from-cage ]; then
                        tap_is "$(try bob "$ll%ncage-$slot")" unreachable "over the cage's IPv6 link-local address $ll (alice reaches it) bob does not"
                else
                        tap_skip "the host reaches nothing over the cage's IPv6 link-local address $ll (alice neither)"
                fi
        else
                tap_skip "the cage's host0 has no IPv6 link-local address"
        fi
fi

# ---- The relay ends with the cage ----
as_alice_pty "sudo nspawn-cage stop $N"
tap_is "$?" 0 "nspawn-cage stop $N" || tap_diag "$out"
for _ in $(seq 50); do [ "$(relays)" = 0 ] && break; sleep 0.2; done
tap_is "$(relays)" 0 "no relay process of alice's is left after the cage stopped"
systemctl list-units --all --no-legend "$SCOPE" 2> /dev/null | grep -q .
tap_ok $((! $?)) "nor its scope"
tap_nothing_left "nothing of $N is left" $N

# ---- kill -9 of nspawn-cage while the agent runs, then gc ----
su alice -c "SSH_AUTH_SOCK=~/.sshnet/agent.sock sudo --preserve-env=SSH_AUTH_SOCK nspawn-cage --name ${N}9 $P -- sleep 300" \
        < /dev/null > /dev/null 2>&1 &
pids="$pids $!"
for _ in $(seq 300); do systemctl is-active -q "nspawn-cage-${N}9-ssh-agent.scope" && break; sleep 0.2; done
systemctl is-active -q "nspawn-cage-${N}9-ssh-agent.scope"
tap_ok $? "cage ${N}9 runs, its relay in nspawn-cage-${N}9-ssh-agent.scope"
kill9_gc ${N}9
for _ in $(seq 50); do [ "$(relays)" = 0 ] && break; sleep 0.2; done
systemctl list-units --all --no-legend "nspawn-cage-${N}9-ssh-agent.scope" 2> /dev/null | grep -q .
tap_ok $([ $? != 0 ] && [ "$(relays)" = 0 ]; echo $?) "after kill -9 of nspawn-cage and gc, neither the relay nor its scope is left"
[ -s /tmp/audit ]
tap_ok $((! $?)) "nothing of ${N}9 is left (gc status $gc_status): $(cat /tmp/audit)"
tap_done
