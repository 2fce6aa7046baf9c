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
network_cleanup() {
        for p in $pids; do kill "$p" 2> /dev/null; done
        ip netns del outside 2> /dev/null
        ip link del out-host 2> /dev/null

        [ -f /tmp/resolv.conf.saved ] && cat /tmp/resolv.conf.saved > /etc/resolv.conf
        [ -f /tmp/hosts.saved ] && cat /tmp/hosts.saved > /etc/hosts
        rm -f /etc/nspawn-cage/nspawn-cage.conf.d/60-net.conf
        # alice's user layer as it was, for the scripts run after this one
        if [ -f /tmp/alice-config.saved ]; then cp /tmp/alice-config.saved /home/alice/.config/nspawn-cage/config
        else rm -f /home/alice/.config/nspawn-cage/config; fi
}
trap network_cleanup EXIT
[ -f /tmp/resolv.conf.saved ] || cat /etc/resolv.conf > /tmp/resolv.conf.saved 2> /dev/null || : > /tmp/resolv.conf.saved
[ -f /tmp/hosts.saved ] || cat /etc/hosts > /tmp/hosts.saved 2> /dev/null || : > /tmp/hosts.saved

ip netns del outside 2> /dev/null
ip netns add outside
ip link add out-host type veth peer name out-ns netns outside
ip addr add 198.51.100.1/24 dev out-host
ip link set out-host up
ip -n outside addr add 198.51.100.2/24 dev out-ns
# allowed.test and denied.test ([Network] Allow=, section 6): two more
# addresses of the outside, where the servers below listen too.
ip -n outside addr add 198.51.100.3/24 dev out-ns
ip -n outside addr add 198.51.100.4/24 dev out-ns
ip -n outside link set out-ns up
ip -n outside link set lo up
ip route replace default via 198.51.100.2
ip netns exec outside socat TCP-LISTEN:8080,reuseaddr,fork SYSTEM:'echo hello-from-outside' 2> /dev/null &
pids="$pids $!"
ip netns exec outside socat TCP-LISTEN:8081,reuseaddr,fork SYSTEM:'echo other-port' 2> /dev/null &
pids="$pids $!"
ip netns exec outside dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces --listen-address=198.51.100.2 \
        --address=/outside.test/198.51.100.2 --address=/allowed.test/198.51.100.3 --address=/denied.test/198.51.100.4 \
        --pid-file= --user=root 2> /tmp/dnsmasq.log &
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

eval "$(tcp_probe_function)" # probe HOST PORT, here and (written into the scripts below) in the cages
# Controls: every listener answers the test host itself, so an
# "unreachable" from the cage below is the cage's doing.
ctl="$(probe 198.51.100.2 8080) $(probe 127.0.0.1 9090) $(probe 198.51.100.1 9091) $(probe 169.254.169.254 80)"
tap_is "$ctl" "hello-from-outside host-loopback host-any-address metadata" "controls: the test host reaches every listener"
ctl_dns=$(ip netns exec outside getent ahostsv4 outside.test 2> /dev/null | head -n 1 | cut -d' ' -f1)

# The probe, as a file in the project, run by the cage's bash.
install -d -o alice -g alice /home/alice/netproj /home/alice/netoff
{ tcp_probe_function; cat <<'PROBE'
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
} > /home/alice/netproj/probe.sh
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

# 6. [Network] Allow= of an IPv4 address: the test host names allowed.test
# and denied.test in its /etc/hosts (the outside's DNS server knows them
# too, for the cage without Allow=); with Allow=198.51.100.3:8080 only that
# address and port are forwarded from the cage, and it has no DNS. (Names
# go through the egress proxy: tests/integration/egress.sh.)
printf '198.51.100.3 allowed.test\n198.51.100.4 denied.test\n' >> /etc/hosts
install -d -o alice -g alice /home/alice/allowproj /home/alice/allowopen
{ tcp_probe_function; cat <<'PROBE'
# connect only (a DNS server sends nothing first)
connects() { timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2" 2> /dev/null && echo connected || echo unreachable; }
echo "allowed-name: $(probe allowed.test 8080)"
echo "allowed-address: $(probe 198.51.100.3 8080)"
echo "allowed-other-port: $(probe 198.51.100.3 8081)"
echo "denied-address: $(probe 198.51.100.4 8080)"
echo "denied-name: $(getent hosts denied.test | cut -d' ' -f1)"
echo "dns-name: $(getent hosts outside.test | cut -d' ' -f1)"
echo "dns-server: $(connects 198.51.100.2 53)"
echo "outside: $(probe 198.51.100.2 8080)"
echo "pinned: $(grep allowed.test /etc/hosts | cut -d' ' -f1)"
echo "resolv: $(grep -c '^nameserver' /etc/resolv.conf) $(grep -c 'No name server' /etc/resolv.conf)"
PROBE
} > /home/alice/allowproj/aprobe.sh
cp /home/alice/allowproj/aprobe.sh /home/alice/allowopen/aprobe.sh
pkgs='Packages=bash coreutils iproute2 getent gnused gnugrep'
printf '[Cage]\n%s\n' "$pkgs" > /home/alice/allowproj/.nspawn-cage.conf
printf '[Cage]\n%s\n' "$pkgs" > /home/alice/allowopen/.nspawn-cage.conf
chown -R alice:alice /home/alice/allowproj /home/alice/allowopen
ctl="$(probe allowed.test 8080) $(probe 198.51.100.4 8080) $(probe 198.51.100.3 8081) $(timeout 3 bash -c 'exec 3<>/dev/tcp/198.51.100.2/53' 2> /dev/null && echo connected)"
tap_is "$ctl" "hello-from-outside hello-from-outside other-port connected" "controls: the test host reaches allowed.test:8080, denied.test:8080, allowed.test:8081 and the DNS server"

# Without Allow=, everything is reachable as before.
printf '[Network]\nMode=private\n' > /home/alice/.config/nspawn-cage/config
as_alice_pty "sudo nspawn-cage --name allowopen ~/allowopen -- bash aprobe.sh"
st=$?
tap_is "$st $(field allowed-name) $(field allowed-other-port) $(field denied-address) $(field outside)" \
        "0 hello-from-outside other-port hello-from-outside hello-from-outside" "without Allow= the cage reaches every server of the outside" || tap_diag "$out"
if [ "$ctl_dns" = 198.51.100.2 ] || grep -q started /tmp/dnsmasq.log; then
        tap_is "$(field denied-name) $(field dns-server)" "198.51.100.4 connected" "and resolves names by DNS, reaching the DNS server"
else
        tap_skip "dnsmasq did not start in the outside namespace"
fi

# With Allow= in the user layer.
printf '[Network]\nMode=private\nAllow=198.51.100.3:8080\n' > /home/alice/.config/nspawn-cage/config
t0=$(date +%s%N)
as_alice_pty "sudo nspawn-cage --keep --name allowk ~/allowproj -- true"
st=$?
t1=$(date +%s%N)
tap_is "$st" 0 "Allow=198.51.100.3:8080: a kept cage starts ($(( (t1 - t0) / 1000000 )) ms)" || tap_diag "$out"
set_line=$(nft list set inet nspawn-cage-allowk allow 2> /dev/null | grep -o 'elements = {[^}]*}')
tap_is "$set_line" "elements = { 198.51.100.3 . 8080 }" "its nftables set holds the address and port"
machinectl shell alice@allowk /bin/bash -c 'cd ~/allowproj && bash aprobe.sh > aprobe.out 2>&1' > /dev/null 2>&1
out=$(cat /home/alice/allowproj/aprobe.out 2> /dev/null)
tap_is "$(field allowed-address)" hello-from-outside "the cage reaches 198.51.100.3:8080" || tap_diag "$out"
tap_is "$(field allowed-name)/$(field pinned)" "unreachable/" "the name allowed.test is neither resolved nor pinned (only the address is allowed)"
tap_is "$(field allowed-other-port)" unreachable "198.51.100.3 on another port (8081) is unreachable"
tap_is "$(field denied-address)" unreachable "denied.test's server (198.51.100.4:8080, by address) is unreachable"
tap_is "$(field outside)" unreachable "so is the rest of the outside (198.51.100.2:8080)"
tap_is "$(field dns-server)" unreachable "the DNS server the cage had before (198.51.100.2:53) is unreachable"
tap_is "$(field denied-name) / $(field dns-name) / $(field resolv)" " /  / 0 1" "names outside the list do not resolve: no name server, and resolv.conf says why"
# cage root cannot undo it: it holds no power over the host's nftables.
machinectl shell root@allowk /bin/bash -c 'printf "nameserver 198.51.100.2\noptions timeout:1 attempts:1\n" > /etc/resolv.conf; echo "198.51.100.4 allowed.test" > /etc/hosts' > /dev/null 2>&1
machinectl shell alice@allowk /bin/bash -c 'cd ~/allowproj && bash aprobe.sh > aprobe.out 2>&1' > /dev/null 2>&1
out=$(cat /home/alice/allowproj/aprobe.out 2> /dev/null)
tap_is "$(field pinned)/$(field allowed-name)/$(field dns-name)" "198.51.100.4/unreachable/" \
        "cage root naming allowed.test as denied.test's address in /etc/hosts, and resolv.conf to the DNS server, reaches neither" || tap_diag "$out"
as_alice_pty "sudo nspawn-cage stop allowk"
audit allowk > /tmp/audit 2>&1
tap_ok $? "after stop nothing of it is left $(cat /tmp/audit)"

# The project may narrow, never widen, the user's Allow=.
printf '[Cage]\n%s\n[Network]\nAllow=denied.test:8080\n' "$pkgs" > /home/alice/allowproj/.nspawn-cage.conf
as_alice_pty "sudo nspawn-cage --name allowwide ~/allowproj -- bash aprobe.sh"
st=$?
printf '%s\n' "$out" | grep -q "allowproj/.nspawn-cage.conf:4: Allow=denied.test:8080 is not allowed: your configuration allows only Allow=198.51.100.3:8080 (from /home/alice/.config/nspawn-cage/config:3)"
found=$?
audit allowwide > /tmp/audit 2>&1
a=$?
tap_ok $([ $st != 0 ] && [ $found = 0 ] && [ $a = 0 ]; echo $?) "a project widening the user's Allow= is refused with the reason" || tap_diag "$out"
printf '[Cage]\n%s\n' "$pkgs" > /home/alice/allowproj/.nspawn-cage.conf
chown alice:alice /home/alice/allowproj/.nspawn-cage.conf

# A name the host cannot resolve now: names are resolved by the egress
# proxy at each connection, so the cage starts and the name may resolve later.
printf '[Network]\nMode=private\nAllow=198.51.100.3:8080\nAllow=nowhere.invalid:443\n' > /home/alice/.config/nspawn-cage/config
as_alice_pty "sudo nspawn-cage --name allowbad ~/allowproj -- true"
st=$?
audit allowbad > /tmp/audit 2>&1
a=$?
tap_ok $([ $st = 0 ] && [ $a = 0 ]; echo $?) "a name that does not resolve yet does not stop the start; nothing left $(cat /tmp/audit)" || tap_diag "$out"

tap_done
