#!/bin/sh
# Runs inside the test host (see network.sh). The test host has no network
# but lo; this script makes one: a network namespace "outside" (198.51.100.2,
# reached over a veth from 198.51.100.1, the test host's default route)
# stands for the internet, with a TCP server and a DNS server (dnsmasq)
# there; listeners on the test host's 127.0.0.1, on all its addresses and on
# 169.254.169.254 (an address of the test host) stand for the host's services and a
# cloud's metadata server.
set -u
. "$top_srcdir/tests/integration/lib.sh"
inner_setup
for t in nft socat dnsmasq ip; do
        command -v $t > /dev/null || tap_skip_all "$t is not installed in the test host (tests/testhost/packages)"
done

LEASES=/run/nspawn-cage/network
pids=""
cleanup() {
        for p in $pids; do kill "$p" 2> /dev/null; done
        ip netns del outside 2> /dev/null
        ip link del out-host 2> /dev/null

        [ -f /tmp/resolv.conf.saved ] && cat /tmp/resolv.conf.saved > /etc/resolv.conf
        rm -f /etc/nspawn-cage/nspawn-cage.conf.d/60-net.conf
        # alice's user layer as it was, for the scripts run after this one
        if [ -f /tmp/alice-config.saved ]; then cp /tmp/alice-config.saved /home/alice/.config/nspawn-cage/config
        else rm -f /home/alice/.config/nspawn-cage/config; fi
}
trap cleanup EXIT
[ -f /tmp/resolv.conf.saved ] || cat /etc/resolv.conf > /tmp/resolv.conf.saved 2> /dev/null || : > /tmp/resolv.conf.saved

ip netns del outside 2> /dev/null
ip netns add outside
ip link add out-host type veth peer name out-ns netns outside
ip addr add 198.51.100.1/24 dev out-host
ip link set out-host up
ip -n outside addr add 198.51.100.2/24 dev out-ns
ip -n outside link set out-ns up
ip -n outside link set lo up
ip route replace default via 198.51.100.2
ip netns exec outside socat TCP-LISTEN:8080,reuseaddr,fork SYSTEM:'echo hello-from-outside' 2> /dev/null &
pids="$pids $!"
ip netns exec outside dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces --listen-address=198.51.100.2 \
        --address=/outside.test/198.51.100.2 --pid-file= --user=root 2> /tmp/dnsmasq.log &
pids="$pids $!"
socat TCP-LISTEN:9090,bind=127.0.0.1,reuseaddr,fork SYSTEM:'echo host-loopback' 2> /dev/null &
pids="$pids $!"
socat TCP-LISTEN:9091,reuseaddr,fork SYSTEM:'echo host-any-address' 2> /dev/null &
pids="$pids $!"

ip addr add 169.254.169.254/32 dev out-host

socat TCP-LISTEN:80,bind=169.254.169.254,reuseaddr,fork SYSTEM:'echo metadata' 2> /dev/null &
pids="$pids $!"
# The host names a loopback resolver first (as with systemd-resolved's stub
# or a local cache): the cage must get only the one it can reach.
printf 'nameserver 127.0.0.53\nnameserver 198.51.100.2\n' > /etc/resolv.conf
sleep 0.5

probe() { # HOST PORT: the first line a TCP server there sends, or "unreachable"
        timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2 && head -n 1 <&3" 2> /dev/null || echo unreachable
}
# Controls: every listener answers the test host itself, so an
# "unreachable" from the cage below is the cage's doing.
ctl="$(probe 198.51.100.2 8080) $(probe 127.0.0.1 9090) $(probe 198.51.100.1 9091) $(probe 169.254.169.254 80)"
tap_is "$ctl" "hello-from-outside host-loopback host-any-address metadata" "controls: the test host reaches every listener"
ctl_dns=$(ip netns exec outside getent ahostsv4 outside.test 2> /dev/null | head -n 1 | cut -d' ' -f1)

# The probe, as a file in the project, run by the cage's bash.
install -d -o alice -g alice /home/alice/netproj /home/alice/netoff
cat > /home/alice/netproj/probe.sh <<'PROBE'
probe() { timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2 && head -n 1 <&3" 2> /dev/null || echo unreachable; }
gw=$(ip route show default | sed -n 's/^default via \([0-9.]*\).*/\1/p')
echo "links: $(ip -o link | cut -d: -f2 | cut -d@ -f1 | tr -d ' ' | sort | tr '\n' ' ')"
echo "default: ${gw:-none}"
echo "outside: $(probe 198.51.100.2 8080)"
echo "dns: $(getent hosts outside.test | cut -d' ' -f1)"
echo "by-name: $(probe outside.test 8080)"
echo "metadata: $(probe 169.254.169.254 80)"
echo "host-gateway: $(probe "${gw:-10.231.0.1}" 9091)"
echo "host-address: $(probe 198.51.100.1 9091)"
echo "host-loopback: $(probe 127.0.0.1 9090)"
echo "resolv: $(grep '^nameserver' /etc/resolv.conf | tr '\n' ' ')"
PROBE
cp /home/alice/netproj/probe.sh /home/alice/netoff/probe.sh
printf '[Cage]\nPackages=bash coreutils iproute2 getent gnused gnugrep\n[Network]\nMode=private\n' > /home/alice/netproj/.nspawn-cage.conf
printf '[Cage]\nPackages=bash coreutils iproute2 getent gnused gnugrep\n[Network]\nMode=off\n' > /home/alice/netoff/.nspawn-cage.conf
chown alice:alice /home/alice/netproj/* /home/alice/netoff/* /home/alice/netproj/.nspawn-cage.conf /home/alice/netoff/.nspawn-cage.conf
install -d -o alice -g alice /home/alice/.config /home/alice/.config/nspawn-cage
[ -f /home/alice/.config/nspawn-cage/config ] && cp /home/alice/.config/nspawn-cage/config /tmp/alice-config.saved
printf '[Network]\nMode=private\n' > /home/alice/.config/nspawn-cage/config
chown alice:alice /home/alice/.config/nspawn-cage/config
field() { printf '%s\n' "$out" | sed -n "s/^$1: //p" | sed 's/ *$//'; }

# 1. Mode=off: loopback only.
as_alice_pty "sudo nspawn-cage --name netoff ~/netoff -- bash probe.sh"
st=$?
tap_is "$st $(field links)" "0 lo" "Mode=off: 'ip -o link' in the cage shows only lo" || tap_diag "$out"
tap_is "$(field default)" none "Mode=off: no default route"
tap_is "$(field outside)" unreachable "Mode=off: the outside is unreachable"

# 2. Mode=private, kept running so the host side can be looked at.
t0=$(date +%s%N)
as_alice_pty "sudo nspawn-cage --keep --name netp ~/netproj -- true"
st=$?
t1=$(date +%s%N)
tap_is "$st" 0 "Mode=private: a kept cage starts ($(( (t1 - t0) / 1000000 )) ms with its network)" || tap_diag "$out"
lease=$(grep -lsx netp $LEASES/* | head -n 1)
slot=${lease##*/}
host_links=$(ip -o link | grep -c " ncage-$slot@")
tap_ok $([ -n "$slot" ] && [ "$host_links" = 1 ]; echo $?) "the host shows the cage's veth ncage-${slot:-?} while it runs"
nft list table inet nspawn-cage-netp > /dev/null 2>&1
tap_ok $? "and its nftables table inet nspawn-cage-netp"
tap_is "$(cat /proc/sys/net/ipv4/conf/ncage-$slot/route_localnet 2> /dev/null)" 0 "route_localnet stays off on the host side"
# The probe writes into the project: machinectl's pty is no reliable pipe.
machinectl shell alice@netp /bin/bash -c 'cd ~/netproj && bash probe.sh > probe.out 2>&1' > /dev/null 2>&1
out=$(cat /home/alice/netproj/probe.out)
tap_is "$(field links)" "host0 lo" "Mode=private: the cage has lo and host0" || tap_diag "$out"
gw=$(field default)
case "$gw" in 10.231.*) r=0 ;; *) r=1 ;; esac
tap_ok $r "a default route via the host side ($gw)"
tap_is "$(field outside)" hello-from-outside "the cage reaches a server in another network namespace (NAT)"
if [ "$ctl_dns" = 198.51.100.2 ] || grep -q started /tmp/dnsmasq.log; then
        tap_is "$(field resolv)" "nameserver 198.51.100.2" "the cage's resolv.conf names the host's upstream server, not its loopback one"
        tap_is "$(field dns)" 198.51.100.2 "the cage resolves a name through that server (dnsmasq in the outside namespace)"
        tap_is "$(field by-name)" hello-from-outside "and reaches the server by name"
else
        tap_skip "dnsmasq did not start in the outside namespace: $(head -n 3 /tmp/dnsmasq.log)"
        tap_skip "no DNS server"
        tap_skip "no DNS server"
fi
tap_is "$(field metadata)" unreachable "169.254.169.254 (a metadata server on the host) is unreachable"
tap_is "$(field host-gateway)" unreachable "the host's services on the veth's host address ($gw) are unreachable"
tap_is "$(field host-address)" unreachable "the host's services on its other addresses (198.51.100.1) are unreachable"
tap_is "$(field host-loopback)" unreachable "127.0.0.1:9090 in the cage is the cage's own loopback, not the host's"

# As root in the cage (it holds CAP_NET_ADMIN in its own namespace): route
# 127.0.0.0/8 and 169.254.0.0/16 to the host and try again.
machinectl shell root@netp /bin/bash -c "ip route add 127.0.0.0/8 via $gw dev host0; ip route add 169.254.169.254/32 via $gw dev host0" > /dev/null 2>&1
machinectl shell alice@netp /bin/bash -c 'cd ~/netproj && bash probe.sh > probe.out 2>&1' > /dev/null 2>&1
out=$(cat /home/alice/netproj/probe.out)
tap_diag "cage routes: $(machinectl shell alice@netp /bin/bash -c 'ip route | tr "\n" ";"' 2> /dev/null | tr -d '\r' | grep via)"
tap_is "$(field metadata) $(field host-gateway)" "unreachable unreachable" "with routes to them added by cage root, still unreachable"
as_alice_pty "sudo nspawn-cage stop netp"
sleep 0.3
tap_is "$(ip -o link | grep -c ' ncage-')" 0 "after stop, the host has no veth of the cage"
nft list tables 2> /dev/null | grep -q nspawn-cage-netp
tap_ok $(( ! $? )) "nor its nftables table"
audit netp > /tmp/audit 2>&1
tap_ok $([ $? = 0 ] && [ -z "$(grep -lsx netp $LEASES/* )" ]; echo $?) "nor its lease, nor anything else: $(cat /tmp/audit)"

# The helper that ran the agent (capabilities dropped) tears it down too.
as_alice_pty "sudo nspawn-cage --name netr ~/netproj -- bash -c 'ip -o link | grep -c host0'"
st=$?
audit netr > /tmp/audit 2>&1
a=$?
tap_ok $([ $st = 0 ] && [ $a = 0 ] && ! ip -o link | grep -q ' ncage-'; echo $?) "a cage run to its end leaves no veth, nft table or lease: $(cat /tmp/audit)"

# 3. Two cages at once get different /30s.
install -d -o alice -g alice /home/alice/netproj2
cp /home/alice/netproj/.nspawn-cage.conf /home/alice/netproj2/
chown alice:alice /home/alice/netproj2/.nspawn-cage.conf
as_alice_pty "sudo nspawn-cage --keep --name neta ~/netproj -- true; sudo nspawn-cage --keep --name netb ~/netproj2 -- true"
a=$(machinectl shell alice@neta /bin/bash -c 'ip -4 -o addr show host0' 2> /dev/null | tr -d '\r' | sed -n 's/.* inet \([0-9.]*\).*/\1/p')
b=$(machinectl shell alice@netb /bin/bash -c 'ip -4 -o addr show host0' 2> /dev/null | tr -d '\r' | sed -n 's/.* inet \([0-9.]*\).*/\1/p')
tap_ok $([ -n "$a" ] && [ -n "$b" ] && [ "$a" != "$b" ]; echo $?) "two running cages have their own addresses ($a, $b)"
machinectl shell alice@neta /bin/bash -c "timeout 3 bash -c 'exec 3<>/dev/tcp/$b/22' && echo reached || echo unreachable" > /tmp/x2 2>&1
tap_ok $(grep -q unreachable /tmp/x2; echo $?) "one cage cannot connect to another"
as_alice_pty "sudo nspawn-cage stop neta; sudo nspawn-cage stop netb"

# 4. kill -9 of the helper while the cage runs, then gc.
su alice -c "sudo nspawn-cage --name netk /home/alice/netproj -- sleep 60" < /dev/null > /tmp/k9.log 2>&1 &
kpid=$!
for _ in $(seq 600); do grep -qsx netk $LEASES/* && ip -o link | grep -q ' ncage-' && break; sleep 0.05; done
sleep 0.3
pid=$(pgrep -f 'nspawn-cage --name netk' | while read -r p; do [ "$(cat /proc/$p/comm)" = nspawn-cage ] && echo "$p"; done | head -n 1)
tap_ok $([ -n "$pid" ] && ip -o link | grep -q ' ncage-'; echo $?) "a cage netk runs with its veth (helper pid ${pid:-none})"
[ -n "$pid" ] && kill -KILL "$pid"
wait "$kpid" 2> /dev/null
nspawn-cage gc > /tmp/gc.log 2>&1
st=$?
audit netk > /tmp/audit 2>&1
a=$?
left="$(ip -o link | grep -o ' ncage-[0-9]*')$(nft list tables 2> /dev/null | grep nspawn-cage)$(ls $LEASES 2> /dev/null)"
tap_ok $([ $st = 0 ] && [ $a = 0 ] && [ -z "$left" ]; echo $?) "kill -9 + gc: no veth, no nft table, no lease left $(cat /tmp/audit) $left" || sed 's/^/# /' /tmp/gc.log

# 5. Mode=host: refused unless the administrator allows it, then a warning.
install -d -o alice -g alice /home/alice/nethost
printf '[Cage]\nPackages=bash coreutils iproute2\n[Network]\nMode=host\n' > /home/alice/nethost/.nspawn-cage.conf
chown alice:alice /home/alice/nethost/.nspawn-cage.conf
printf '[Network]\nMode=host\n' > /home/alice/.config/nspawn-cage/config
as_alice_pty "sudo nspawn-cage --name neth ~/nethost -- true"
st=$?
printf '%s\n' "$out" | grep -q "Mode=host is not allowed: the administrator allows only AllowNetwork=off private"
tap_ok $([ $st != 0 ] && [ $? = 0 ]; echo $?) "Mode=host is refused while the administrator does not allow it" || tap_diag "$out"
mkdir -p /etc/nspawn-cage/nspawn-cage.conf.d
printf '[Policy]\nAllowNetwork=off private host\n' > /etc/nspawn-cage/nspawn-cage.conf.d/60-net.conf
as_alice_pty "sudo nspawn-cage --name neth ~/nethost -- ip -o link"
st=$?
printf '%s\n' "$out" | grep -q "warning: Mode=host: cage neth shares the host's network namespace.*abstract UNIX sockets (X11"
found=$?
tap_ok $([ $st = 0 ] && [ $found = 0 ]; echo $?) "allowed, Mode=host starts with a warning about the host's abstract sockets"
[ $st = 0 ] && [ $found = 0 ] || tap_diag "$out"
printf '%s\n' "$out" | grep -q 'out-host'
tap_ok $? "and the cage sees the host's interfaces (out-host)"

tap_done
