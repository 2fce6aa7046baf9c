#!/bin/sh
# Runs inside the test host (see cages.sh). Everything here is real:
# systemd, machined, D-Bus, Nix, sudo, a pseudo-terminal.
set -u
. "$top_srcdir/tests/integration/lib.sh"
inner_setup

# Build the closure once up front so the timings below are warm.
t0=$(date +%s)
nix-build "$DATADIR/nix/cage.nix" --argstr nixpkgs "$top_srcdir/tests/pkgs" --argstr packages "bash coreutils" \
        --argstr name warmup --no-out-link --option substituters '' > /tmp/warm.log 2>&1
tap_ok $? "the local package set builds a cage closure offline ($(( $(date +%s) - t0 )) s)" || true
[ -s /tmp/warm.log ] && grep -q error /tmp/warm.log && tail -n 20 /tmp/warm.log | sed 's/^/# /'

# 1. The exit status, the file and the working directory, through sudo in a pty.
rm -f /home/alice/project/made-in-cage
as_alice_pty "cd ~ && sudo nspawn-cage ~/project -- sh -c 'touch made-in-cage; id -u; pwd; exit 7'"
tap_is "$?" 7 "the command's exit status (7) is nspawn-cage's"
[ -n "$out" ] && tap_diag "$out"
owner=$(stat -c %U /home/alice/project/made-in-cage 2>/dev/null)
tap_is "$owner" alice "made-in-cage exists on the host, owned by alice"
printf '%s\n' "$out" | grep -qx 1000
tap_ok $? "the command ran as uid 1000"
printf '%s\n' "$out" | grep -qx /home/alice/project
tap_ok $? "the command's working directory was the project"
name=$(su alice -c "nspawn-cage config --json /home/alice/project" 2>/dev/null | sed -n 's/.*"name":"\([^"]*\)".*/\1/p')
[ -n "$name" ] && audit "$name" > /tmp/audit 2>&1
tap_ok $? "after the command, nothing of cage $name is left: $(cat /tmp/audit)"

# 2. A kept cage: machinectl, list, status, what is visible inside.
as_alice_pty "sudo nspawn-cage --keep --name keep1 ~/project -- true"
tap_is "$?" 0 "--keep starts a cage and returns"
machinectl list --no-legend | grep -qw keep1
tap_ok $? "machinectl list shows keep1"
who=$(machinectl shell alice@keep1 /bin/sh -c 'id -un' 2>/dev/null | tr -d '\r' | tail -n 1)
tap_is "$who" alice "machinectl shell alice@keep1 runs as alice"
# render == run: the plan `render` shows is, byte for byte, the .nspawn
# file the start of keep1 wrote (same configuration, same uid range).
rm -rf /tmp/render-keep1 && install -d -o alice /tmp/render-keep1
as_alice_pty "sudo nspawn-cage render --name keep1 --output /tmp/render-keep1 ~/project"
tap_is "$?" 0 "render of keep1's project succeeds" || printf '%s\n' "$out" | sed 's/^/# /'
cmp /tmp/render-keep1/keep1.nspawn /run/systemd/nspawn/keep1.nspawn > /tmp/render-cmp 2>&1
tap_ok $? "what render shows is byte for byte the .nspawn file run wrote" ||
        diff /tmp/render-keep1/keep1.nspawn /run/systemd/nspawn/keep1.nspawn | sed 's/^/# /'
nspawn-cage list --json | grep -q '"name":"keep1"'
tap_ok $? "nspawn-cage list --json reports keep1"
nspawn-cage status keep1 > /tmp/status 2>&1
grep -q 'keep1 (running)' /tmp/status && grep -q 'memory:' /tmp/status && grep -q 'tasks:' /tmp/status
tap_ok $? "nspawn-cage status keep1 reports it running with its use" || sed 's/^/# /' /tmp/status
nspawn-cage status --json keep1 | grep -q '"state":"running"'
tap_ok $? "status --json says running"

grep -q 'oom kills:' /tmp/status
tap_ok $? "status reports OOM kills"

# Limits are unit properties (enforcement is proven in the VM tier).
props=$(systemctl show nspawn-cage-keep1.service -p MemoryMax -p MemoryHigh -p TasksMax -p CPUQuotaPerSecUSec -p MemorySwapMax | sort | tr '\n' ' ')
tap_is "$props" "CPUQuotaPerSecUSec=2s MemoryHigh=infinity MemoryMax=4294967296 MemorySwapMax=0 TasksMax=4096 " "the cage's unit carries the default limits"
as_alice_pty "sudo nspawn-cage set keep1 Memory=1G Tasks=100 CPUs=0.5"
st=$?
props=$(systemctl show nspawn-cage-keep1.service -p MemoryMax -p TasksMax -p CPUQuotaPerSecUSec | sort | tr '\n' ' ')
tap_is "$st $props" "0 CPUQuotaPerSecUSec=500ms MemoryMax=1073741824 TasksMax=100 " "nspawn-cage set changes the running cage's limits"
mkdir -p /etc/nspawn-cage/nspawn-cage.conf.d
printf '[Policy]\nMaxMemory=8G\n' > /etc/nspawn-cage/nspawn-cage.conf.d/50-max.conf
as_alice_pty "sudo nspawn-cage set keep1 Memory=16G"
st=$?
printf '%s\n' "$out" | grep -q "Memory=16G asks for more than allowed: the administrator's maximum is MaxMemory=8G"
tap_ok $(( st == 0 || $? != 0 )) "set beyond the administrator's maximum is refused"
rm -f /etc/nspawn-cage/nspawn-cage.conf.d/50-max.conf
mem=$(systemctl show nspawn-cage-keep1.service -p MemoryMax --value)
tap_is "$mem" 1073741824 "a refused set changes nothing"

top=$(sed -n 's/^toplevel=//p' /var/lib/nspawn-cage/cages/keep1/cage.record)
nix-store -qR "$top" | sed 's|^/nix/store/||' | sort > /tmp/closure
as_alice_pty "sudo nspawn-cage shell keep1 -- ls /nix/store"
printf '%s\n' "$out" | sort | grep -v '^$' > /tmp/inside
diff /tmp/closure /tmp/inside > /tmp/diff
tap_ok $? "ls /nix/store inside shows exactly the closure ($(wc -l < /tmp/closure) paths)" || sed 's/^/# /' /tmp/diff | head
as_alice_pty "sudo nspawn-cage shell keep1 -- sh -c 'test -e /home/alice/secret && echo SEEN-SECRET; ls -A /root 2>&1; cat /etc/shadow 2>&1 | cut -d: -f1; exit 3'"
tap_is "$?" 3 "nspawn-cage shell returns the command's status"
printf '%s\n' "$out" | grep -q SEEN-SECRET
tap_ok $((! $?)) "host /home/alice/secret is invisible in the cage"
printf '%s\n' "$out" | grep -q 'Permission denied'
tap_ok $? "/root and /etc/shadow of the cage are not readable by the agent, and they are the cage's own"
nsenter -t "$(machinectl show keep1 -p Leader --value)" -m cat /etc/shadow | cut -d: -f1 | sort | tr '\n' ' ' > /tmp/users
tap_is "$(cat /tmp/users)" "alice nobody root " "the cage's /etc/shadow holds only its own users, not the host's"

as_alice_pty "sudo nspawn-cage stop keep1"
tap_is "$?" 0 "nspawn-cage stop keep1"
tap_nothing_left "after stop nothing is left" keep1

# ProtectGit= (on by default): the agent cannot plant a hook that would run
# on the host at the user's next commit; committing inside still works.
rm -rf /home/alice/gitproj # a second run in the same boot starts afresh
install -d -o alice -g alice /home/alice/gitproj
su alice -c "cd ~/gitproj && git init -q && git config user.email a@b && git config user.name alice && echo x > f"
printf '[Cage]\nPackages=git\n' > /home/alice/gitproj/.nspawn-cage.conf
chown alice:alice /home/alice/gitproj/.nspawn-cage.conf
as_alice_pty "sudo nspawn-cage --name gitc ~/gitproj -- sh -c 'echo evil > .git/hooks/pre-commit && echo PLANTED; echo x >> .git/config && echo CONFIG; git add f && git commit -qm inside && echo COMMITTED'"
printf '%s\n' "$out" | grep -q PLANTED
planted=$?
printf '%s\n' "$out" | grep -q CONFIG
config=$?
tap_is "$planted $config $([ -e /home/alice/gitproj/.git/hooks/pre-commit ] && echo yes || echo no)" "1 1 no" \
        "ProtectGit: the agent cannot write .git/hooks or .git/config"
printf '%s\n' "$out" | grep -q COMMITTED && [ "$(su alice -c 'git -C ~/gitproj log --format=%s')" = inside ]
tap_ok $? "a normal git commit inside the cage works and is seen on the host" ||
        tap_diag "agent: $out; host log: $(su alice -c 'git -C ~/gitproj log --format=%s' 2>&1)"

# The helper holds only what it still needs once the agent runs.
su alice -c "sudo nspawn-cage --name caps ~/project -- sh -c 'while [ ! -e go-caps ]; do sleep 0.2; done; exit 4'" < /dev/null > /tmp/caps.log 2>&1 &
pc=$!
for _ in $(seq 300); do machinectl list --no-legend | grep -qw caps && break; sleep 0.2; done
sleep 1
helper=$(pgrep -u root -f 'nspawn-cage --name caps' | while read -r p; do [ "$(cat /proc/$p/comm)" = nspawn-cage ] && echo $p; done | head -n 1)
eff=$(sed -n 's/^CapEff:\t//p' /proc/$helper/status 2>/dev/null)
bnd=$(sed -n 's/^CapBnd:\t//p' /proc/$helper/status 2>/dev/null)
touch /home/alice/project/go-caps
wait $pc
st=$?
rm -f /home/alice/project/go-caps
tap_is "$eff $bnd $st" "000000000000000e 000000000000000e 4" "while the agent runs, the helper keeps only DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER (and still returns the status)"
tap_nothing_left "with those, it still removes everything" caps

# 3. kill -9 of the helper during start, at several points, then gc.
for delay in 0.3 1 3 boot; do
        su alice -c "sudo nspawn-cage --name k9 ~/project -- sleep 60" < /dev/null > /tmp/k9.log 2>&1 &
        if [ "$delay" = boot ]; then
                for _ in $(seq 100); do machinectl list --no-legend | grep -qw k9 && break; sleep 0.2; done
        else
                sleep "$delay"
        fi
        kill9_gc k9
        tap_ok $? "kill -9 at '$delay', then gc (exit $gc_status): nothing left $(cat /tmp/audit)" || sed 's/^/# /' /tmp/gc.log
done

# 4. Two cages on two projects at the same time.
install -d -o alice -g alice /home/alice/project2
rm -f /home/alice/project/go /home/alice/project2/go
# Each cage waits for a "go" file in its project, made only once both are
# registered: overlap is proven, not guessed from timing.
wait_go="i=0; while [ ! -e go ] && [ \$i -lt 600 ]; do sleep 0.2; i=\$((i+1)); done"
su alice -c "sudo nspawn-cage --name two1 ~/project -- sh -c '$wait_go; echo one-done'" < /dev/null > /tmp/two1.log 2>&1 &
p1=$!
su alice -c "sudo nspawn-cage --name two2 ~/project2 -- sh -c '$wait_go; echo two-done'" < /dev/null > /tmp/two2.log 2>&1 &
p2=$!
both=0
for _ in $(seq 600); do
        both=$(machinectl list --no-legend | grep -cE '^(two1|two2) ')
        [ "$both" = 2 ] && break
        sleep 0.2
done
touch /home/alice/project/go /home/alice/project2/go
wait $p1; s1=$?
wait $p2; s2=$?
tap_is "$both $s1 $s2" "2 0 0" "two cages run at the same time and both end well"
grep -q one-done /tmp/two1.log && grep -q two-done /tmp/two2.log
tap_ok $? "both were attached and showed their output"
audit two1 > /tmp/a1 2>&1 && audit two2 > /tmp/a2 2>&1
tap_ok $? "both are clean after: $(cat /tmp/a1 /tmp/a2)"

# 5. Bad input: one clear line, non-zero, nothing left.
bad() { # description expected-text command...
        d=$1
        want=$2
        shift 2
        "$@" < /dev/null > /tmp/bad.out 2> /tmp/bad.err
        st=$?
        grep -qF -- "$want" /tmp/bad.err
        found=$?
        audit bad1 > /tmp/audit 2>&1
        clean=$?
        [ $st != 0 ] && [ $found = 0 ] && [ $clean = 0 ]
        tap_ok $? "$d" || { tap_diag "exit $st, clean $clean"; sed 's/^/# stderr: /' /tmp/bad.err | tail -n 5; }
}
touch /home/alice/afile
bad "a project that does not exist" "does not exist" su alice -c "sudo nspawn-cage --name bad1 ~/nope"
bad "a project that is a file" "is not a directory" su alice -c "sudo nspawn-cage --name bad1 ~/afile"
bad "the project /" "is the root directory" su alice -c "sudo nspawn-cage --name bad1 /"
install -d -o alice -g alice /home/alice/badpkg
printf '[Cage]\nPackages=doesnotexist\n' > /home/alice/badpkg/.nspawn-cage.conf
chown alice:alice /home/alice/badpkg/.nspawn-cage.conf
bad "a package that does not exist is named" "doesnotexist" su alice -c "sudo nspawn-cage --name bad1 ~/badpkg -- true"
bad "not root" "this needs root" su alice -c "nspawn-cage --name bad1 ~/project -- true"
systemctl stop systemd-machined.service; systemctl mask --runtime systemd-machined.service > /dev/null 2>&1
bad "machined unavailable" "systemd-machined is not available" su alice -c "sudo nspawn-cage --name bad1 ~/project -- true"
systemctl unmask --runtime systemd-machined.service > /dev/null 2>&1
tap_done
