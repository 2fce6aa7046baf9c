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
        name = \"demo\"; toplevel = \"$top\";
        cage = { project = \"/home/alice/proj\"; user = \"alice\"; packages = [ \"git\" ]; limits.Memory = \"1G\"; limits.Tasks = 512;
                  environment.Pass = [ \"DEMO_TOKEN\" ]; };
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
tap_done
