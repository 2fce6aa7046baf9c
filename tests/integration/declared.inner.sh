#!/bin/sh
# Runs inside the test host (see declared.sh).
set -u
. "$top_srcdir/tests/integration/lib.sh"
inner_setup
install -d -o alice -g alice /home/alice/proj

# The closure, built ahead as the system build would (no Nix at start).
top=$(nix-build "$DATADIR/nix/cage.nix" --argstr nixpkgs "$top_srcdir/tests/pkgs" --argstr packages "git" \
        --argstr name demo --out-link /tmp/demo-toplevel --option substituters '' 2>/tmp/build.log)
tap_ok $? "the declared cage's closure builds ahead ($top)"

# The cage's file, by the same renderer the NixOS module uses.
mkdir -p /etc/nspawn-cage/cages
nix-instantiate --eval --strict --json -E "(import $top_srcdir/nix/render.nix).cage {
        name = \"demo\"; toplevel = \"$top\"; project = \"/home/alice/proj\"; user = \"alice\";
        settings = { Cage.Packages = [ \"git\" ]; Limits = { Memory = \"1G\"; Tasks = 512; };
                     Environment.Pass = [ \"DEMO_TOKEN\" ]; };
}" 2>/tmp/render.log | jq -r . > /etc/nspawn-cage/cages/demo.conf
grep -q "^Toplevel=$top\$" /etc/nspawn-cage/cages/demo.conf
tap_ok $? "nix/render.nix writes /etc/nspawn-cage/cages/demo.conf" || sed 's/^/# /' /tmp/render.log

# The unit, as installed by make install (bindir of this build).
install -m 0644 "$top_builddir/gen/nspawn-cage@.service" /etc/systemd/system/
# environmentFile: the drop-in the module writes, a secret outside the store.
mkdir -p /etc/systemd/system/nspawn-cage@demo.service.d /run/secrets
printf 'DEMO_TOKEN=s3cret-%s\n' "$$" > /run/secrets/demo.env
chmod 0600 /run/secrets/demo.env
printf '[Service]\nEnvironmentFile=/run/secrets/demo.env\n' > /etc/systemd/system/nspawn-cage@demo.service.d/overrides.conf
systemctl daemon-reload
systemctl start nspawn-cage@demo.service
tap_ok $? "systemctl start nspawn-cage@demo" || journalctl -u nspawn-cage@demo --no-pager | tail -n 20 | sed 's/^/# /'
machinectl list --no-legend | grep -qw demo
tap_ok $? "machinectl list shows demo"
who=$(machinectl shell alice@demo /bin/sh -c 'id -un; git --version' 2>/dev/null | tr -d '\r' | grep -v '^$' | tr '\n' ' ')
case "$who" in alice\ git\ version*) r=0 ;; *) r=1 ;; esac
tap_ok $r "machinectl shell alice@demo runs as alice, with git from the closure ($who)"
tok=$(nspawn-cage shell demo -- /bin/sh -c 'echo "token=$DEMO_TOKEN"' < /dev/null 2> /tmp/declared-shell.err | tr -d '\r')
tap_is "$tok" "token=s3cret-$$" "nspawn-cage shell demo: the agent has DEMO_TOKEN from environmentFile (Pass=)"
tap_is "$(stat -c '%U %a' /run/nspawn-cage/env/demo 2>&1)" "root 600" "the kept value is root's, 0600, on /run"
grep -rqs "s3cret-$$" /run/systemd/nspawn/demo.nspawn /etc/nspawn-cage /var/lib/nspawn-cage
tap_ok $((! $?)) "the secret is in no settings file, config or state on disk"
mem=$(systemctl show nspawn-cage-demo.service -p MemoryMax --value)
tasks=$(systemctl show nspawn-cage-demo.service -p TasksMax --value)
tap_is "$mem $tasks" "1073741824 512" "the declared limits are on the cage's unit"
systemctl stop nspawn-cage@demo.service
tap_ok $? "systemctl stop nspawn-cage@demo"
tap_nothing_left "stopped cleanly" demo

# A kill -9 of nspawn, then gc.
systemctl start nspawn-cage@demo.service
pid=$(systemctl show nspawn-cage-demo.service -p MainPID --value)
kill -9 "$pid"
for _ in $(seq 50); do systemctl is-active -q nspawn-cage-demo.service || break; sleep 0.2; done
nspawn-cage gc > /tmp/gc.log 2>&1
st=$?
audit demo > /tmp/audit 2>&1
tap_ok $? "after kill -9 of nspawn (pid $pid), gc (exit $st) leaves nothing: $(cat /tmp/audit)" || sed 's/^/# /' /tmp/gc.log
systemctl stop nspawn-cage@demo.service 2>/dev/null
systemctl reset-failed nspawn-cage@demo.service 2>/dev/null

# A declared cage in every network mode, the administrator allowing all
# three (issue 18: a declared Mode=host cage was checked against the
# built-in policy and failed at every start). Judged from the host: the
# cage leader's network namespace and the links in it.
admin=/etc/nspawn-cage/nspawn-cage.conf
saved=$(mktemp)
had=no
[ -f "$admin" ] && cp -p "$admin" "$saved" && had=yes
printf '[Policy]\nAllowNetwork=off private host\n' > "$admin"
hostns=$(readlink /proc/1/ns/net)
for mode in off private host; do
        n=net-$mode
        nix-instantiate --eval --strict --json -E "(import $top_srcdir/nix/render.nix).cage {
                name = \"$n\"; toplevel = \"$top\"; project = \"/home/alice/proj\"; user = \"alice\";
                settings.Network.Mode = \"$mode\";
        }" 2> /tmp/render.log | jq -r . > "/etc/nspawn-cage/cages/$n.conf"
        systemctl start "nspawn-cage@$n.service"
        st=$?
        tap_ok $st "declared cage with Mode=$mode (AllowNetwork=off private host) starts"
        if [ $st != 0 ]; then
                journalctl -u "nspawn-cage@$n" --no-pager | tail -n 5 | sed 's/^/# /'
                rm -f "/etc/nspawn-cage/cages/$n.conf"
                continue
        fi
        leader=$(machinectl show "$n" -p Leader --value 2> /dev/null)
        ns=$(readlink "/proc/$leader/ns/net" 2> /dev/null)
        links=$(nsenter -t "$leader" -n ip -o link show 2> /dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }' | sort | tr '\n' ' ')
        case $mode in
        host) [ -n "$ns" ] && [ "$ns" = "$hostns" ] ;;
        off) [ -n "$ns" ] && [ "$ns" != "$hostns" ] && [ "$links" = "lo " ] ;;
        private) [ -n "$ns" ] && [ "$ns" != "$hostns" ] && [ "$links" != "lo " ] && echo "$links" | grep -qw lo ;;
        esac
        tap_ok $? "Mode=$mode cage: its network namespace from the host ($ns, host $hostns; links: $links)"
        systemctl stop "nspawn-cage@$n.service"
        audit "$n" > /tmp/audit 2>&1
        tap_ok $? "Mode=$mode cage stopped cleanly: $(cat /tmp/audit)"
        systemctl reset-failed "nspawn-cage@$n.service" 2> /dev/null
        rm -f "/etc/nspawn-cage/cages/$n.conf"
done
# the same host cage without the administrator's consent is refused, naming why
printf '[Cage]\nProject=/home/alice/proj\nUser=alice\nToplevel=%s\n[Network]\nMode=host\n' "$top" > /etc/nspawn-cage/cages/net-host.conf
rm -f "$admin"
nspawn-cage start net-host > /dev/null 2> /tmp/refused.err
st=$?
[ $st != 0 ] && grep -q "Mode=host is not allowed" /tmp/refused.err
tap_ok $? "without AllowNetwork=host the declared host cage is refused: $(head -n 1 /tmp/refused.err)"
nspawn-cage stop net-host > /dev/null 2>&1
rm -f /etc/nspawn-cage/cages/net-host.conf
if [ "$had" = yes ]; then cp -p "$saved" "$admin"; else rm -f "$admin"; fi
rm -f "$saved"
tap_done
