#!/bin/sh
# Runs inside the test host (see egress.sh). A network namespace "egout"
# (203.0.113.2, the test host's default route) stands for the internet: a
# DNS server (dnsmasq) naming *.allowed.test and refused.test on ONE address
# (203.0.113.3), TLS servers (socat) on 203.0.113.3 and .4 that say which
# one they are, and an HTTP server on .3. The test host's resolver is that
# DNS server: the proxy resolves there, at each connection.
set -u
. "$top_srcdir/tests/integration/lib.sh"
inner_setup
for t in nft socat dnsmasq ip openssl jq; do
        command -v $t > /dev/null || tap_skip_all "$t is not installed in the test host (tests/testhost/packages)"
done

N=egk
P=/home/alice/egproj
UCONF=/home/alice/.config/nspawn-cage/config
pids=""
dns_pid=""
egress_cleanup() {
        for p in $pids $dns_pid; do kill "$p" 2> /dev/null; done
        nspawn-cage stop $N > /dev/null 2>&1
        nspawn-cage stop ${N}r > /dev/null 2>&1
        nspawn-cage stop ${N}p > /dev/null 2>&1
        nspawn-cage stop ${N}l > /dev/null 2>&1
        ip netns del egout 2> /dev/null
        ip link del eg-host 2> /dev/null
        [ -f /tmp/eg-resolv.saved ] && cat /tmp/eg-resolv.saved > /etc/resolv.conf && rm -f /tmp/eg-resolv.saved
        if [ -f /tmp/eg-config.saved ]; then mv /tmp/eg-config.saved "$UCONF"; else rm -f "$UCONF"; fi
}
trap egress_cleanup EXIT
[ -f /tmp/eg-resolv.saved ] || cat /etc/resolv.conf > /tmp/eg-resolv.saved 2> /dev/null || : > /tmp/eg-resolv.saved
install -d -o alice -g alice /home/alice/.config /home/alice/.config/nspawn-cage
[ -f "$UCONF" ] && [ ! -f /tmp/eg-config.saved ] && cp -a "$UCONF" /tmp/eg-config.saved
nspawn-cage stop $N > /dev/null 2>&1
id bob > /dev/null 2>&1 || useradd -m -s /bin/sh bob

ip netns del egout 2> /dev/null
ip link del eg-host 2> /dev/null
ip netns add egout
ip link add eg-host type veth peer name eg-ns netns egout
ip addr add 203.0.113.1/24 dev eg-host
ip link set eg-host up
for a in 2 3 4; do ip -n egout addr add 203.0.113.$a/24 dev eg-ns; done
ip -n egout link set eg-ns up
ip -n egout link set lo up
ip route replace default via 203.0.113.2

# dnsmasq: A.allowed.test's address is the one thing changed during the test.
start_dns() { # ADDRESS-OF-a.allowed.test
        [ -n "$dns_pid" ] && kill "$dns_pid" 2> /dev/null && sleep 0.3
        ip netns exec egout dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces --listen-address=203.0.113.2 \
                --no-negcache --cache-size=0 --address=/allowed.test/203.0.113.3 --address=/a.allowed.test/"$1" \
                --address=/refused.test/203.0.113.3 --address=/loop.allowed.test/127.0.0.1 --address=/self.allowed.test/203.0.113.1 \
                --pid-file= --user=root 2> /tmp/eg-dnsmasq.log &
        dns_pid=$!
        sleep 0.3
}
start_dns 203.0.113.3
printf 'nameserver 203.0.113.2\noptions timeout:1 attempts:1\n' > /etc/resolv.conf

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=allowed.test -keyout /tmp/eg.key -out /tmp/eg.crt > /dev/null 2>&1
cat /tmp/eg.key /tmp/eg.crt > /tmp/eg.pem
for a in 3 4; do
        ip netns exec egout socat OPENSSL-LISTEN:443,bind=203.0.113.$a,cert=/tmp/eg.pem,verify=0,reuseaddr,fork SYSTEM:"echo tls-$a" 2> /dev/null &
        pids="$pids $!"
done
ip netns exec egout socat TCP-LISTEN:80,bind=203.0.113.3,reuseaddr,fork SYSTEM:'read l; echo "HTTP/1.0 200 OK"; echo; echo "http-3 $l"' 2> /dev/null &
pids="$pids $!"
# The host's own services: on its loopback and on its address toward the outside.
socat TCP-LISTEN:9099,bind=127.0.0.1,reuseaddr,fork SYSTEM:'echo host-only' 2> /dev/null &
pids="$pids $!"
socat OPENSSL-LISTEN:443,bind=203.0.113.1,cert=/tmp/eg.pem,verify=0,reuseaddr,fork SYSTEM:'echo host-self' 2> /dev/null &
pids="$pids $!"
sleep 0.5

tls() { # HOST SNI [PROXY]: what the TLS server says, or "refused"
        timeout 10 openssl s_client -quiet -ign_eof -connect "$1:443" -servername "$2" ${3:+-proxy "$3"} < /dev/null 2> /dev/null | head -n 1 | grep . || echo refused
}
ctl="$(tls a.allowed.test a.allowed.test) $(tls 203.0.113.4 x) $(getent hosts refused.test | cut -d' ' -f1)"
tap_is "$ctl" "tls-3 tls-4 203.0.113.3" "controls: the test host resolves the names and reaches both TLS servers"

# The probe, run in the cage by the agent's environment (HTTPS_PROXY).
install -d -o alice -g alice "$P"
cat > "$P/probe.sh" <<'PROBE'
tls() { timeout 10 openssl s_client -quiet -ign_eof -connect "$1:443" -servername "$2" ${3:+-proxy "$3"} < /dev/null 2> /dev/null | head -n 1 | grep . || echo refused; }
http() { # HOST PORT REQUEST-LINE HOST-HEADER
        timeout 10 bash -c "exec 3<>/dev/tcp/$1/$2 && printf '%s\r\nHost: %s\r\n\r\n' '$3' '$4' >&3 && cat <&3" 2> /dev/null | tail -n 1 | grep . || echo refused
}
px=${HTTPS_PROXY#http://}
px=${px%/}
echo "env: ${HTTPS_PROXY:-unset} ${HTTP_PROXY:-unset}"
echo "proxy-allowed: $(tls a.allowed.test a.allowed.test "$px")"
echo "proxy-deep: $(tls x.y.allowed.test x.y.allowed.test "$px")"
echo "proxy-refused: $(tls refused.test refused.test "$px")"
echo "proxy-apex: $(tls allowed.test allowed.test "$px")"
echo "transparent-allowed: $(tls a.allowed.test a.allowed.test)"
echo "transparent-sni-spoof: $(tls a.allowed.test refused.test)"
echo "transparent-by-address: $(tls 203.0.113.3 refused.test)"
echo "http-proxy: $(http "${px%:*}" "${px#*:}" 'GET http://a.allowed.test/p HTTP/1.0' a.allowed.test)"
echo "http-transparent: $(http b.allowed.test 80 'GET /q HTTP/1.0' b.allowed.test)"
echo "http-transparent-refused: $(http b.allowed.test 80 'GET /q HTTP/1.0' refused.test)"
echo "dns-allowed: $(getent hosts b.allowed.test | cut -d' ' -f1)"
echo "dns-refused: $(getent hosts refused.test | cut -d' ' -f1)"
echo "dns-v6: $(getent ahostsv6 b.allowed.test | head -n 1 | cut -d' ' -f1)"
echo "ipv6: $(ip -6 -o addr show 2> /dev/null | grep -v ' lo ' | wc -l)"
PROBE
cat > "$P/attack.sh" <<'PROBE'
px=${HTTPS_PROXY#http://}
ph=${px%:*}
pp=${px#*:}
raw() { timeout 10 bash -c "exec 3<>/dev/tcp/$ph/$pp && printf '$1' >&3 && head -c 200 <&3" 2> /dev/null | head -n 1 | tr -d '\r' | grep . || echo closed; }
echo "loopback-name: $(raw 'CONNECT loop.allowed.test:443 HTTP/1.1\r\n\r\n')"
echo "host-address-name: $(raw 'CONNECT self.allowed.test:443 HTTP/1.1\r\n\r\n')"
echo "host-loopback: $(raw 'CONNECT 127.0.0.1:9099 HTTP/1.1\r\n\r\n')"
echo "open-relay: $(raw 'CONNECT 203.0.113.4:443 HTTP/1.1\r\n\r\n')"
echo "userinfo: $(raw 'GET http://refused.test@a.allowed.test/ HTTP/1.1\r\n\r\n')"
echo "no-end: $(timeout 30 bash -c "exec 3<>/dev/tcp/$ph/$pp && head -c 20000 /dev/zero | tr '\\\\0' A >&3; head -c 100 <&3" 2> /dev/null | head -n 1 | tr -d '\r' | grep . || echo closed)"
echo "after: $(timeout 10 openssl s_client -quiet -ign_eof -connect a.allowed.test:443 -servername a.allowed.test -proxy "$px" < /dev/null 2> /dev/null | head -n 1)"
PROBE
chown alice:alice "$P"/*.sh
write_project_config "$P" '[Cage]\nPackages=bash coreutils openssl getent gnugrep gnused iproute2\n'
write_user_config '[Network]\nMode=private\nAllow=*.allowed.test *.allowed.test:80\n'
field() { printf '%s\n' "$out" | sed -n "s/^$1: //p" | sed 's/ *$//' | head -n 1; }

as_alice_pty "sudo nspawn-cage --keep --name $N $P -- true"
tap_is "$?" 0 "a kept cage with Allow=*.allowed.test (port 443) and *.allowed.test:80 starts" || tap_diag "$out"
systemctl is-active -q "nspawn-cage-$N-egress.scope"
tap_ok $? "its egress proxy runs in nspawn-cage-$N-egress.scope"
tap_is "$(systemctl show -p BindsTo --value "nspawn-cage-$N-egress.scope" 2> /dev/null)" "nspawn-cage-$N.service" "bound to the cage's unit"
puser=$(ps -o user= -p "$(systemctl show -p MainPID --value "nspawn-cage-$N-egress.scope" 2> /dev/null || echo 0)" 2> /dev/null | tr -d ' ')
[ -n "$puser" ] || puser=$(pgrep -x nspawn-cage-egr | head -n 1 | xargs -r ps -o user= -p | tr -d ' ')
tap_is "$puser" alice "the proxy runs as alice, not root"

since=$(date '+%Y-%m-%d %H:%M:%S')
as_alice_pty "sudo nspawn-cage shell $N -- bash $P/probe.sh"
tap_diag "$(printf '%s\n' "$out" | grep -E '^[a-z-]+:' | tr '\n' ';')"
case "$(field env)" in "http://10.231."*":3128 http://10.231."*":3128") r=0 ;; *) r=1 ;; esac
tap_ok $r "the agent gets HTTPS_PROXY and HTTP_PROXY ($(field env))"
hostside=$(field env | cut -d' ' -f1 | sed 's|^http://||; s|:3128$||') # the host side of the link
tap_is "$(field proxy-allowed)" tls-3 "proxy-aware path: a.allowed.test:443 through CONNECT"
tap_is "$(field proxy-deep)" tls-3 "x.y.allowed.test matches *.allowed.test too"
tap_is "$(field proxy-refused)" refused "refused.test (same address as a.allowed.test) is refused through CONNECT"
tap_is "$(field proxy-apex)" refused "allowed.test itself is not matched by *.allowed.test"
tap_is "$(field transparent-allowed)" tls-3 "transparent path: a.allowed.test:443 by name, no proxy configured (SNI)"
tap_is "$(field transparent-sni-spoof)" refused "transparent: a.allowed.test's address with SNI refused.test is refused"
tap_is "$(field transparent-by-address)" refused "transparent: 203.0.113.3 by address with SNI refused.test is refused"
case "$(field http-proxy)" in "http-3 GET /p HTTP/1.0") r=0 ;; *) r=1 ;; esac
tap_ok $r "plain HTTP through the proxy, rewritten to origin form ($(field http-proxy))"
case "$(field http-transparent)" in "http-3 GET /q HTTP/1.0") r=0 ;; *) r=1 ;; esac
tap_ok $r "plain HTTP on port 80 without a proxy (Host:) ($(field http-transparent))"
tap_is "$(field http-transparent-refused)" refused "plain HTTP with Host: refused.test is refused"
case "$(field dns-allowed)" in 10.231.*) r=0 ;; *) r=1 ;; esac
tap_ok $r "the cage's DNS answers an allowed name (with the proxy's address: $(field dns-allowed))"
tap_is "$(field dns-refused)" "" "and no address for refused.test"
tap_is "$(field dns-v6)/$(field ipv6)" "/0" "no IPv6: no AAAA answer, no IPv6 address but loopback's in the cage"
slot=$(grep -lsx $N /run/nspawn-cage/network/* | head -n 1)
slot=${slot##*/}
tap_is "$(ip -6 -o addr show dev "ncage-$slot" 2> /dev/null | wc -l)" 0 "the host's end of the veth has no IPv6 address (not even link-local)"

# The address of a.allowed.test changes: the next connection follows.
start_dns 203.0.113.4
as_alice_pty "sudo nspawn-cage shell $N -- bash $P/probe.sh"
tap_is "$(field proxy-allowed) $(field transparent-allowed)" "tls-4 tls-4" "a.allowed.test moved to 203.0.113.4: both paths follow it, no restart"
start_dns 203.0.113.3

# The refusals, as the user sees them.
as_alice_pty "sudo nspawn-cage denials $N"
st=$?
printf '%s\n' "$out" | grep -q ' refused.test:443 proxy no Allow= entry matches'
r1=$?
printf '%s\n' "$out" | grep -q ' refused.test:443 transparent '
r2=$?
tap_ok $([ $st = 0 ] && [ $r1 = 0 ] && [ $r2 = 0 ]; echo $?) "denials $N lists refused.test:443 on both paths, with the rule" || tap_diag "$out"
as_alice_pty "sudo nspawn-cage denials --json $N"
j=$(printf '%s\n' "$out" | sed -n '/^\[/,/^\]/p')
tap_is "$(printf '%s' "$j" | jq -r '[.[] | select(.host == "refused.test" and .port == 443)] | length > 1')" true \
        "denials --json: objects with host, port, path, rule, time" || tap_diag "$out"
tap_is "$(printf '%s' "$j" | jq -r '[.[] | select(.path == "dns" and .host == "refused.test")] | length > 0')" true "the refused DNS lookup is recorded too"
n=$(journalctl -o json --since "$since" NSPAWN_CAGE_MACHINE=$N DENIED_HOST=refused.test 2> /dev/null | jq -r .RULE | head -n 1)
tap_is "$n" "no Allow= entry matches" "the journal holds NSPAWN_CAGE_MACHINE=, DENIED_HOST=, DENIED_PORT=, RULE="
as_alice_pty "sudo nspawn-cage status $N"
c=$(printf '%s\n' "$out" | sed -n 's/^ *refused: \([0-9]*\).*/\1/p')
tap_ok $([ "${c:-0}" -ge 3 ]; echo $?) "status shows the count of refusals (${c:-none})" || tap_diag "$out"
su bob -c "sudo -n nspawn-cage denials $N" > /tmp/eg-bob 2>&1
grep -q refused.test /tmp/eg-bob
tap_ok $((! $?)) "bob does not see alice's cage's refusals"

# ---- The proxy attacked from the cage ----
as_alice_pty "sudo nspawn-cage shell $N -- bash $P/attack.sh"
tap_diag "$(printf '%s\n' "$out" | grep -E '^[a-z-]+:' | tr '\n' ';')"
tap_is "$(field loopback-name)" "HTTP/1.1 403 Forbidden" "an allowed name resolving to 127.0.0.1 is refused (DNS rebinding to the host)"
tap_is "$(field host-address-name)" "HTTP/1.1 403 Forbidden" "an allowed name resolving to the host's own address is refused"
tap_is "$(field host-loopback)" "HTTP/1.1 403 Forbidden" "CONNECT 127.0.0.1:9099 (a host-only service) is refused"
tap_is "$(field open-relay)" "HTTP/1.1 403 Forbidden" "CONNECT to an address no rule names is refused (no open relay)"
tap_is "$(field userinfo)" "HTTP/1.1 400 Bad Request" "an URL with user info (refused.test@a.allowed.test) is refused"
tap_is "$(field no-end)" "HTTP/1.1 400 Bad Request" "a 20000-byte head without an end is cut at the limit"
tap_is "$(field after)" tls-3 "the proxy still serves afterwards"
journalctl -o json --since "$since" NSPAWN_CAGE_MACHINE=$N DENIED_HOST=loop.allowed.test 2> /dev/null | jq -r .RULE | grep -q "resolves to 127.0.0.1"
tap_ok $? "the rebinding refusal is recorded with its reason"

# ---- nft drops, named (NFLOG): what does not go through the proxy ----
# Ports of this run only: the test host's journal keeps earlier runs' entries.
B=$((20000 + $(date +%s) % 20000))
cat > "$P/nft.sh" <<PROBE
echo x > /dev/udp/203.0.113.4/$B
timeout 3 bash -c 'exec 3<>/dev/tcp/203.0.113.4/$((B + 1))' 2> /dev/null
echo "tcp: \$?"
PROBE
cat > "$P/flood.sh" <<PROBE
t0=\$(date +%s%N)
for i in \$(seq 10000); do echo x > /dev/udp/203.0.113.4/$((B + 2)); done
echo "flood-ms: \$(((\$(date +%s%N) - t0) / 1000000))"
PROBE
chown alice:alice "$P/nft.sh" "$P/flood.sh"
count_refused() { as_alice_pty "sudo nspawn-cage status $N"; printf '%s\n' "$out" | sed -n 's/^ *refused: \([0-9]*\).*/\1/p' | head -n 1; }
before=$(count_refused)
as_alice_pty "sudo nspawn-cage shell $N -- bash $P/nft.sh"
tap_is "$(field tcp)" 124 "control: TCP to 203.0.113.4:$((B + 1)) (no Allow= entry) gets no answer from the cage"
sleep 1
as_alice_pty "sudo nspawn-cage denials $N"
printf '%s\n' "$out" | grep -q " 203.0.113.4:$B nft nft-drop"
r1=$?
printf '%s\n' "$out" | grep -q " 203.0.113.4:$((B + 1)) nft nft-drop"
r2=$?
tap_ok $([ $r1 = 0 ] && [ $r2 = 0 ]; echo $?) "denials lists the nft drops by address and port: UDP 203.0.113.4:$B, TCP 203.0.113.4:$((B + 1))" || tap_diag "$out"
as_alice_pty "sudo nspawn-cage denials --json $N"
j=$(printf '%s\n' "$out" | sed -n '/^\[/,/^\]/p')
tap_is "$(printf '%s' "$j" | jq -r --argjson b $B '[.[] | select(.host == "203.0.113.4" and ((.port == $b and .proto == "udp") or (.port == $b + 1 and .proto == "tcp")) and .path == "nft")] | map(.port) | unique | join(",")')" \
        "$B,$((B + 1))" "denials --json: both, with proto udp / tcp and path nft" || tap_diag "$out"
after=$(count_refused)
tap_ok $([ "${after:-0}" -ge $((${before:-0} + 2)) ]; echo $?) "status counts them (${before:-none} before, ${after:-none} after)"
jr=$(journalctl -o json --since "$since" NSPAWN_CAGE_MACHINE=$N DENIED_PORT=$B 2> /dev/null | jq -r '"\(.DENIED_HOST) \(.PROTO) \(.NSPAWN_CAGE_UID) \(._UID)"' | head -n 1)
tap_is "$jr" "203.0.113.4 udp $(id -u alice) $(id -u alice)" "the journal entry: DENIED_HOST=, PROTO=, NSPAWN_CAGE_UID=, written as alice (the reader dropped root)"

# A flood is named at the rate limit's worth (10/s, burst 20), not 10000 times.
nft reset counter inet "nspawn-cage-$N" refused > /dev/null 2>&1
fsince=$(date '+%Y-%m-%d %H:%M:%S')
as_alice_pty "sudo nspawn-cage shell $N -- bash $P/flood.sh"
ms=$(field flood-ms)
sleep 1.5
dropped=$(nft list counter inet "nspawn-cage-$N" refused 2> /dev/null | sed -n 's/.*packets \([0-9]*\).*/\1/p')
tap_ok $([ "${dropped:-0}" -ge 10000 ]; echo $?) "control: the flood of 10000 UDP packets was sent and dropped (counter ${dropped:-none}, ${ms:-?} ms)"
named=$(journalctl -o json --since "$fsince" NSPAWN_CAGE_MACHINE=$N DENIED_PORT=$((B + 2)) 2> /dev/null | grep -c .)
limit=$((20 + 10 * (${ms:-0} / 1000 + 2)))
tap_ok $([ "$named" -ge 1 ] && [ "$named" -le "$limit" ]; echo $?) "the flood is named $named times, at most the rate limit's $limit"

# denials --follow: a refusal appears while it runs.
timeout 60 nspawn-cage denials --follow $N > /tmp/eg-follow 2>&1 &
fpid=$!
sleep 1
printf 'echo x > /dev/udp/203.0.113.4/%s\n' $((B + 3)) > "$P/follow.sh"
chown alice:alice "$P/follow.sh"
as_alice_pty "sudo nspawn-cage shell $N -- bash $P/follow.sh"
for _ in $(seq 50); do grep -q " 203.0.113.4:$((B + 3)) " /tmp/eg-follow && break; sleep 0.2; done
grep -q " 203.0.113.4:$((B + 3)) nft nft-drop" /tmp/eg-follow
tap_ok $? "denials --follow prints a new refusal as it happens" || tap_diag "$(tail -n 3 /tmp/eg-follow)"
kill "$fpid" 2> /dev/null
wait "$fpid" 2> /dev/null

# The group is the cage's alone: a local user cannot bind any NFLOG group
# (one a cage is about to take, say), and a second socket, even root's,
# cannot take over a group the egress process holds.
slot=$(grep -lsx $N /run/nspawn-cage/network/* | head -n 1)
grp=$((32768 + ${slot##*/}))
free_grp=$((grp == 49151 ? 49150 : 49151))
tap_is "$(su alice -c "$top_builddir/tests/integration/adv-probe nflog $free_grp 1" 2>&1 | head -n 1)" "Operation not permitted" \
        "a local user (even a cage's owner) cannot bind an NFLOG group ($free_grp)"
tap_is "$("$top_builddir/tests/integration/adv-probe" nflog $grp 1 2>&1 | head -n 1)" "Operation not permitted" \
        "a second socket, root's, cannot take over the cage's group $grp from its egress process"

# ---- Publish= and HostService= ----
Q=/home/alice/egpub
install -d -o alice -g alice "$Q"
install -m 0755 -o alice -g alice "$top_builddir/tests/integration/adv-probe" "$Q/adv-probe"
{ tcp_probe_function; echo 'echo "host-service: $(probe nspawn-cage-host 9099)"'; echo 'echo "host-other: $(probe nspawn-cage-host 9091)"'; } > "$Q/hs.sh"
chown alice:alice "$Q/hs.sh"
write_project_config "$Q" '[Cage]\nPackages=bash coreutils\n'
socat TCP-LISTEN:9091,reuseaddr,fork SYSTEM:'echo host-other' 2> /dev/null &
pids="$pids $!"
write_user_config '[Network]\nMode=private\nPublish=3000\nHostService=127.0.0.1:9099\n'
as_alice_pty "sudo nspawn-cage --keep --name ${N}p $Q -- true"
tap_is "$?" 0 "a kept cage with Publish=3000 and HostService=127.0.0.1:9099 starts" || tap_diag "$out"
su alice -c "sudo nspawn-cage shell ${N}p -- $Q/adv-probe listen 3000 60" < /dev/null > /dev/null 2>&1 &
pids="$pids $!"
try3000() { su "$1" -s /bin/sh -c "timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/3000 && head -n 1 <&3' 2> /dev/null || echo unreachable"; }
for _ in $(seq 100); do [ "$(try3000 alice)" = hello-from-cage ] && break; sleep 0.2; done
tap_is "$(try3000 alice)" hello-from-cage "alice's browser reaches the cage's server on the host's 127.0.0.1:3000 (Publish=3000)"
tap_is "$(try3000 bob)" unreachable "bob, another local user, does not"
# The host side of cage $N's link: its egress proxy (and DNS, HostService=
# relays) act as alice; another local user may not use them.
try_proxy() { su "$1" -s /bin/sh -c "timeout 3 bash -c 'exec 3<>/dev/tcp/$hostside/3128 && echo connected' 2> /dev/null || echo unreachable"; }
tap_is "$(try_proxy bob)" unreachable "bob cannot use cage $N's egress proxy ($hostside:3128), which connects as alice"
tap_is "$(try_proxy alice)" connected "alice can (the control)"
as_alice_pty "sudo nspawn-cage shell ${N}p -- bash $Q/hs.sh"
tap_is "$(field host-service)" host-only "the cage reaches the host-only 127.0.0.1:9099 as nspawn-cage-host:9099 (HostService=)" || tap_diag "$out"
tap_is "$(field host-other)" unreachable "and no other host service (nspawn-cage-host:9091)"
printf '%s\n' 'h=${HTTPS_PROXY#http://}' 'timeout 3 bash -c "exec 3<>/dev/tcp/${h%:*}/9099 && head -n 1 <&3" 2> /dev/null || echo unreachable' > "$P/nohs.sh"
chown alice:alice "$P/nohs.sh"
as_alice_pty "sudo nspawn-cage shell $N -- bash $P/nohs.sh"
printf '%s\n' "$out" | grep -q '^host-only'
tap_ok $((! $?)) "cage $N, without HostService=, does not reach it"
write_project_config "$Q" '[Cage]\nPackages=bash coreutils\n[Network]\nPublish=4000\n'
as_alice_pty "sudo nspawn-cage --name ${N}q $Q -- true"
printf '%s\n' "$out" | grep -q "egpub/.nspawn-cage.conf:4: Publish= may only be set"
tap_ok $? "a project's Publish= is refused with file and line" || tap_diag "$out"
write_project_config "$Q" '[Cage]\nPackages=bash coreutils\n'
as_alice_pty "sudo nspawn-cage stop ${N}p"
sleep 0.5
left="$(ss -Hltn 2> /dev/null | grep -E '127.0.0.1:3000 ')$(systemctl list-units --all --no-legend "nspawn-cage-${N}p-egress.scope" 2> /dev/null)"
tap_is "$left" "" "after stop nothing listens on 127.0.0.1:3000, no proxy scope"
tap_nothing_left "nor anything else of ${N}p" ${N}p
write_user_config '[Network]\nMode=private\nAllow=*.allowed.test *.allowed.test:80\n'

# ---- run: the exit summary; the cage's end ends the proxy ----
as_alice_pty "sudo nspawn-cage --name ${N}r $P -- bash -c 'openssl s_client -quiet -connect refused.test:443 -servername refused.test -proxy \${HTTPS_PROXY#http://} < /dev/null > /dev/null 2>&1; true'"
printf '%s\n' "$out" | grep -qE '^nspawn-cage: [0-9]+ refused: .*refused\.test:443'
tap_ok $? "run prints a one-line summary of what was refused at exit ($(printf '%s\n' "$out" | grep refused: | head -n 1))"
tap_nothing_left "a run to its end leaves nothing" ${N}r
# Without names (literals only) no proxy runs, but the drops are named all the same.
write_user_config '[Network]\nMode=private\nAllow=203.0.113.4:443\n'
as_alice_pty "sudo nspawn-cage --name ${N}l $P -- bash -c 'echo x > /dev/udp/203.0.113.3/$((B + 4))'"
printf '%s\n' "$out" | grep -qE "^nspawn-cage: [0-9]+ refused: .*203\.0\.113\.3:$((B + 4))"
tap_ok $? "Allow= of a literal only: run's summary names the nft drop ($(printf '%s\n' "$out" | grep refused: | head -n 1))" || tap_diag "$out"
tap_nothing_left "and leaves nothing" ${N}l
write_user_config '[Network]\nMode=private\nAllow=*.allowed.test *.allowed.test:80\n'
as_alice_pty "sudo nspawn-cage stop $N"
sleep 0.5
left="$(systemctl list-units --all --no-legend "nspawn-cage-$N-egress.scope" 2> /dev/null)$(pgrep -x nspawn-cage-egr)"
tap_is "$left" "" "after stop: no proxy scope, no proxy process"
tap_nothing_left "nor anything else of $N (nft table, lease, ...)" $N

# ---- kill -9 of nspawn-cage, then gc ----
# kill9_gc waits for this shell's children: the servers end here.
for p in $pids $dns_pid; do kill "$p" 2> /dev/null; done
wait 2> /dev/null
pids=""
dns_pid=""
su alice -c "sudo nspawn-cage --name ${N}9 $P -- sleep 300" < /dev/null > /dev/null 2>&1 &
for _ in $(seq 300); do systemctl is-active -q "nspawn-cage-${N}9-egress.scope" && break; sleep 0.2; done
systemctl is-active -q "nspawn-cage-${N}9-egress.scope"
tap_ok $? "cage ${N}9 runs with its proxy"
kill9_gc ${N}9
sleep 0.5
left="$(systemctl list-units --all --no-legend "nspawn-cage-${N}9-egress.scope" 2> /dev/null)$(pgrep -x nspawn-cage-egr)$(ss -Hltn 2> /dev/null | grep -E ':(3128|3129) ')"
tap_is "$left" "" "after kill -9 + gc: no proxy scope, process or listening socket"
[ -s /tmp/audit ]
tap_ok $((! $?)) "nothing of ${N}9 is left (gc status $gc_status): $(cat /tmp/audit)"
tap_done
