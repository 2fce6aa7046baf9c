#!/bin/sh
# Runs inside the test host (see adversarial-git.sh). Each case: a project
# of alice's, a cage whose agent (or cage root) tries to leave something
# that makes alice's own git run its code on the host, or a set-id file;
# then, after the cage, alice runs git there as she would. A hook or
# fsmonitor the agent wrote would touch /tmp/pwned-CASE: it must never
# appear, and no set-uid/set-gid file may remain in the project.
set -u
. "$top_srcdir/tests/integration/lib.sh"
inner_setup

tap_plan 9
CASES="ga gb gc gd ge gf gg gl"
for n in $CASES; do nspawn-cage stop "$n" > /dev/null 2>&1; rm -rf "/home/alice/$n"; done
rm -f /tmp/pwned-*
su alice -c 'cd && git config --global user.email alice@host && git config --global user.name alice'

# new_project NAME [repo]: a project of alice's (with one commit for repo)
# and the agent's script (read from stdin) as .agent.sh in it.
new_project() {
        p=/home/alice/$1
        install -d -o alice -g alice "$p"
        printf '[Cage]\nPackages=git coreutils bash\n' > "$p/.nspawn-cage.conf"
        cat > "$p/.agent.sh"
        chown alice:alice "$p/.nspawn-cage.conf" "$p/.agent.sh"
        if [ "${2:-}" = repo ]; then
                su alice -c "cd $p && git init -q && echo x > f && git add f .nspawn-cage.conf && git commit -qm start"
        fi
}
# The hook the agent plants: it would leave /tmp/pwned-$1 on the host.
hook() { printf '#!/bin/sh\ntouch /tmp/pwned-%s\n' "$1"; }
# alice's git after the cage, in DIR: what she does every day.
host_git() {
        su alice -c "cd '$1' && git status > /dev/null 2>&1; git diff > /dev/null 2>&1; git commit -q --allow-empty -m host > /dev/null 2>&1" < /dev/null
}
setid_files() { find "$1" -type f -perm /6000 2> /dev/null | tr '\n' ' '; }
# judge NAME DIR-WHERE-ALICE-RUNS-GIT DESCRIPTION
judge() {
        host_git "$2"
        tap_is "$([ -e "/tmp/pwned-$1" ] && echo PWNED || echo clean) [$(setid_files "/home/alice/$1")]" "clean []" "$3" ||
                tap_diag "cage said: $(printf '%s' "$out" | tail -n 12)"
}
GIT='git -c user.email=agent@cage -c user.name=agent'

# a. The agent moves .git away and makes a new one with a pre-commit hook.
new_project ga repo <<EOF
mv .git .git.orig || echo cannot-rename
rm -rf .git 2> /dev/null
mkdir -p .git && git init -q . 2> /dev/null
mkdir -p .git/hooks && printf '$(hook ga)\n' > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit
true
EOF
as_alice_pty "sudo nspawn-cage --name ga ~/ga -- sh .agent.sh"
judge ga /home/alice/ga "a: mv .git .git.orig and a new .git with a pre-commit hook: alice's git commit runs none of it"

# b. A nested repository with a hook and core.fsmonitor.
new_project gb repo <<EOF
mkdir -p sub && cd sub && git init -q
printf '$(hook gb)\n' > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit
cp .git/hooks/pre-commit .git/fsmon && git config core.fsmonitor "\$PWD/.git/fsmon"
EOF
as_alice_pty "sudo nspawn-cage --name gb ~/gb -- sh .agent.sh"
judge gb /home/alice/gb/sub "b: a new sub/.git with a hook and core.fsmonitor: alice's git status and commit in sub run none of it"

# c. A .git gitfile pointing into a new .git/modules/evil that has a hook.
new_project gc repo <<EOF
mkdir -p .git/modules && git init -q --separate-git-dir="\$PWD/.git/modules/evil" sub
printf '$(hook gc)\n' > .git/modules/evil/hooks/pre-commit && chmod +x .git/modules/evil/hooks/pre-commit
EOF
as_alice_pty "sudo nspawn-cage --name gc ~/gc -- sh .agent.sh"
judge gc /home/alice/gc/sub "c: sub/.git gitfile into a new .git/modules/evil with a hook: alice's git in sub runs none of it"

# d. A project with no .git at the start gets one, with a hook.
new_project gd <<EOF
git init -q && printf '$(hook gd)\n' > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit
$GIT add . && $GIT commit -qm agent --no-verify
EOF
as_alice_pty "sudo nspawn-cage --name gd ~/gd -- sh .agent.sh"
judge gd /home/alice/gd "d: a .git made where the project had none: alice's git there runs none of it"
ls -d /home/alice/gd/.git.nspawn-cage-quarantine-gd-* > /dev/null 2>&1 && printf '%s\n' "$out" | grep -q "made harmless"
st=$?
tap_ok $st "d: nothing is lost: the agent's repository is kept under a quarantine name, and alice is told"
[ $st = 0 ] || tap_diag "$out"

# e. The agent makes set-uid and set-gid files.
new_project ge repo <<EOF
printf '#!/bin/sh\nid\n' > tool && cp tool gtool && cp tool both
chmod 4755 tool; chmod 2755 gtool; chmod 6755 both
ls -l tool gtool both
EOF
as_alice_pty "sudo nspawn-cage --name ge ~/ge -- sh .agent.sh"
judge ge /home/alice/ge "e: chmod 4755 / 2755 / 6755 by the agent: no set-id file comes out"

# f. Cage root (as host root through systemd-run -M) sets the set-uid bit
# in a kept cage; the check runs at stop.
new_project gf repo < /dev/null
su alice -c "cp /bin/true ~/gf/tool"
as_alice_pty "sudo nspawn-cage --keep --name gf ~/gf -- true"
timeout 120 systemd-run -M gf --wait --pipe -q /bin/sh -c 'chmod 4755 /home/alice/gf/tool && mkdir -p /home/alice/gf/deep/x && cp /home/alice/gf/tool /home/alice/gf/deep/x/t && chmod 6755 /home/alice/gf/deep/x/t' < /dev/null > /tmp/gf-root 2>&1
tap_diag "while the kept cage runs: [$(setid_files /home/alice/gf)] (promised only from its stop on)"
as_alice_pty "sudo nspawn-cage stop gf"
judge gf /home/alice/gf "f: cage root's chmod 4755/6755 in a kept cage: gone after nspawn-cage stop"

# g. The helper is killed; gc after the crash checks the project too.
new_project gg repo <<EOF
mkdir -p sub && cd sub && git init -q && printf '$(hook gg)\n' > .git/hooks/pre-commit && chmod +x .git/hooks/pre-commit
touch /home/alice/gg/planted
sleep 300
EOF
su alice -c "sudo nspawn-cage --name gg ~/gg -- sh .agent.sh" < /dev/null > /tmp/gg.log 2>&1 &
for _ in $(seq 600); do [ -e /home/alice/gg/planted ] && break; sleep 0.2; done
kill9_gc gg
out=$(cat /tmp/gc.log)
judge gg /home/alice/gg/sub "g: kill -9 of nspawn-cage, then gc: the nested repository is caught all the same"

# l. The legitimate case: the agent commits; the commit is there on the host.
new_project gl repo <<EOF
echo more >> f && $GIT commit -qam inside && echo COMMITTED
EOF
as_alice_pty "sudo nspawn-cage --name gl ~/gl -- sh .agent.sh"
st=$?
got="$st $(su alice -c 'git -C ~/gl log --format=%s -1') $(printf '%s' "$out" | grep -c 'made harmless')"
tap_is "$got" "0 inside 0" "l: a normal commit in the cage is on the host, and nothing was quarantined"
[ "$got" = "0 inside 0" ] || tap_diag "$out"

for n in $CASES; do nspawn-cage stop "$n" > /dev/null 2>&1; done
tap_done
