#!/bin/sh
# Runs inside the test host (see worktree.sh). alice's repository ~/wr has
# two linked worktrees, ~/wr-a (branch fa) and ~/wr-b (branch fb); a cage
# runs on each at once, and each agent commits on its branch. Then the
# agent's side: writes to the repository's config and hooks, a
# config.worktree with an fsmonitor, and .git files naming what is not a
# worktree of alice's. Judged from the host, by alice's own git.
set -u
. "$top_srcdir/tests/integration/lib.sh"
inner_setup

tap_plan 21
CASES="wta wtb wtc wts wtx1 wtx2 wtx3 wtx4 wtx5"
for n in $CASES; do nspawn-cage stop "$n" > /dev/null 2>&1; done
for n in $(nspawn-cage list | awk '/\/home\/alice\/wr-/ {print $1}'); do nspawn-cage stop "$n" > /dev/null 2>&1; done
rm -rf /home/alice/wr /home/alice/wr-* /srv/wt-root /tmp/pwned-wt*
su alice -c 'cd && git config --global user.email alice@host && git config --global user.name alice'
su alice -c 'mkdir ~/wr && cd ~/wr && git init -q && echo x > f && printf "[Cage]\nPackages=git coreutils bash\n" > .nspawn-cage.conf &&
        git add . && git commit -qm start && git worktree add -q ../wr-a -b fa && git worktree add -q ../wr-b -b fb'
GIT='git -c user.email=agent@cage -c user.name=agent'

# The agent of each cage: commit on its branch, then wait (60 s at most)
# until the other cage's commit is on the other branch (the refs are
# shared): both ran at once. Then try the repository's config and hooks.
agent_script() {
        cat <<AGENT
echo $1 >> f && $GIT commit -qam in-$1 && echo COMMITTED
for i in \$(seq 300); do [ "\$(git log --format=%s -1 $2 2> /dev/null)" = in-$3 ] && { echo SAW-OTHER; break; }; sleep 0.2; done
c=\$(git rev-parse --git-common-dir)
(echo '[core]fsmonitor=/bin/false' >> "\$c/config") 2> /dev/null && echo WROTE-CONFIG
(printf '#!/bin/sh\ntouch /tmp/pwned-wt$1\n' > "\$c/hooks/pre-commit") 2> /dev/null && echo WROTE-HOOK
(mv "\$c/config" "\$c/config.old") 2> /dev/null && echo MOVED-CONFIG
(echo 'gitdir: /etc' > .git) 2> /dev/null && echo WROTE-GITFILE
ls "\$c/worktrees" | tr '\n' ' '; echo
true
AGENT
}
agent_script a fb b > /home/alice/wr-a/.agent.sh
agent_script b fa a > /home/alice/wr-b/.agent.sh
chown alice:alice /home/alice/wr-a/.agent.sh /home/alice/wr-b/.agent.sh
hooks_before=$(ls -l --time-style=+%s /home/alice/wr/.git/hooks | sha256sum)
config_before=$(sha256sum < /home/alice/wr/.git/config)

su alice -c "sudo nspawn-cage --name wta ~/wr-a -- sh .agent.sh" < /dev/null > /tmp/wta.log 2>&1 &
pa=$!
su alice -c "sudo nspawn-cage --name wtb ~/wr-b -- sh .agent.sh" < /dev/null > /tmp/wtb.log 2>&1 &
pb=$!
wait $pa
sa=$?
wait $pb
sb=$?
for c in a b; do
        got=$(grep -cx -e COMMITTED -e SAW-OTHER "/tmp/wt$c.log")
        tap_is "$got" 2 "cage on worktree wr-$c: git commit works inside, and the other cage's commit appeared meanwhile (both ran at once)"
        [ "$got" = 2 ] || tap_diag "$(tail -n 15 /tmp/wt$c.log)"
done
tap_is "$sa $sb $(su alice -c 'git -C ~/wr log --format=%s fa -1; git -C ~/wr log --format=%s fb -1' | tr '\n' ' ')" "0 0 in-a in-b " \
        "both commits are on their branches in the main repository, seen by alice's git on the host"
tap_is "$(find /home/alice/wr/.git ! -user alice | head -n 3)" "" "everything in the main repository's .git is alice's"
bad=$(cat /tmp/wta.log /tmp/wtb.log | grep -x -e WROTE-CONFIG -e WROTE-HOOK -e MOVED-CONFIG -e WROTE-GITFILE | sort -u | tr '\n' ' ')
tap_is "$bad" "" "from inside, the repository's config and hooks/ and the worktree's .git file are read-only"
tap_is "$(ls -l --time-style=+%s /home/alice/wr/.git/hooks | sha256sum) $(sha256sum < /home/alice/wr/.git/config)" "$hooks_before $config_before" \
        "on the host, the repository's hooks/ and config are unchanged"
tap_is "$(sed -n 's/^\(wr-a\) $/\1/p;s/^\(wr-a wr-b\) $/\1/p' /tmp/wta.log | head -n 1)" "wr-a" \
        "a cage sees only its own worktree's directory of the repository, not the other's"
tap_nothing_left "nothing of either cage is left after they end" wta wtb

# c. The agent plants a config.worktree with an fsmonitor in its worktree's
# git directory (read by alice's git there once extensions.worktreeConfig
# is on); it is renamed at the cage's end, and alice's git runs nothing.
su alice -c 'git -C ~/wr config extensions.worktreeConfig true'
printf 'printf "#!/bin/sh\\ntouch /tmp/pwned-wtc\\n" > /tmp/fsm; cp /tmp/fsm "$(git rev-parse --git-dir)/fsm"; chmod +x "$(git rev-parse --git-dir)/fsm"\ngit config --worktree core.fsmonitor "$(git rev-parse --git-dir)/fsm" && echo PLANTED\n' > /home/alice/wr-a/.agent.sh
as_alice_pty "sudo nspawn-cage --name wtc ~/wr-a -- sh .agent.sh"
su alice -c 'cd ~/wr-a && git status > /dev/null 2>&1; git commit -q --allow-empty -m host > /dev/null 2>&1' < /dev/null
got="$([ -e /tmp/pwned-wtc ] && echo PWNED || echo clean) $(ls /home/alice/wr/.git/worktrees/wr-a | grep -c 'config.worktree.nspawn-cage-quarantine-wtc')"
tap_is "$got" "clean 1" "c: a config.worktree with core.fsmonitor planted by the agent is quarantined at the end; alice's git in wr-a runs none of it" ||
        tap_diag "$out"
su alice -c 'git -C ~/wr config --unset extensions.worktreeConfig'

# s. Cage root (through systemd-run -M, in a kept cage) makes a set-uid
# file in the repository's objects/: gone after stop, as in the project.
as_alice_pty "sudo nspawn-cage --keep --name wts ~/wr-b -- sh -c 'echo x > /home/alice/wr/.git/objects/tool'"
timeout 120 systemd-run -M wts --wait --pipe -q /bin/sh -c 'chmod 4755 /home/alice/wr/.git/objects/tool; ls -l /home/alice/wr/.git/objects/tool' < /dev/null > /tmp/wts-root 2>&1
tap_diag "while the kept cage runs: $(stat -c '%A %U' /home/alice/wr/.git/objects/tool 2>&1) (promised only from its stop on)"
as_alice_pty "sudo nspawn-cage stop wts"
tap_is "$(find /home/alice/wr/.git -type f -perm /6000 | tr '\n' ' ')|$(stat -c %U /home/alice/wr/.git/objects/tool 2>&1)" "|alice" \
        "s: cage root's chmod 4755 of a file in the repository's objects/: the bit is removed at stop (the file stays alice's)" || tap_diag "$(cat /tmp/wts-root)" "$out"
rm -f /home/alice/wr/.git/objects/tool

# x. .git files the agent (or the project) crafts: each start is refused,
# naming the file; nothing is bound, nothing left.
new_gitfile() {
        install -d -o alice -g alice "/home/alice/$1"
        printf 'gitdir: %s\n' "$2" > "/home/alice/$1/.git"
        chown alice:alice "/home/alice/$1/.git"
}
new_gitfile wr-x1 /root/.git/worktrees/x
expect_refused wtx1 '~/wr-x1' "x1: .git naming /root/.git/worktrees/x (resolved as alice)" "wr-x1/.git" "/root/.git/worktrees/x"
new_gitfile wr-x2 /etc
expect_refused wtx2 '~/wr-x2' "x2: .git naming /etc (not a worktree's git directory)" "wr-x2/.git" "not a worktree's git directory"
# A repository of root's (the layout is right, the owner is not).
mkdir -p /srv/wt-root && git -C /srv/wt-root init -q && git -C /srv/wt-root -c user.email=r@h -c user.name=r commit -q --allow-empty -m r &&
        git -C /srv/wt-root worktree add -q /srv/wt-root-wt > /dev/null 2>&1
chmod -R a+rX /srv/wt-root
new_gitfile wr-x3 /srv/wt-root/.git/worktrees/wt-root-wt
expect_refused wtx3 '~/wr-x3' "x3: .git naming another user's (root's) worktree" "wr-x3/.git" "not yours"
# Along a symbolic link to alice's own repository.
ln -sfn /home/alice/wr /home/alice/wr-link && chown -h alice:alice /home/alice/wr-link
new_gitfile wr-x4 /home/alice/wr-link/.git/worktrees/wr-b
expect_refused wtx4 '~/wr-x4' "x4: .git naming alice's worktree through a symbolic link" "wr-x4/.git" "symbolic link"
# Another worktree of alice's: its gitdir file names wr-b, not this project.
new_gitfile wr-x5 /home/alice/wr/.git/worktrees/wr-b
expect_refused wtx5 '~/wr-x5' "x5: .git naming alice's other worktree (wr-b)" "wr-x5/.git" "not this project"

# run --worktree BRANCH: the worktree beside the project, made as alice,
# a cage on it named after it; two of them at once; list shows the branch.
as_alice_pty "sudo nspawn-cage --keep --worktree feat/one ~/wr -- true && sudo nspawn-cage --keep --worktree two ~/wr -- true"
st=$?
got="$st $(su alice -c 'git -C ~/wr-feat-one branch --show-current; git -C ~/wr-two branch --show-current' | tr '\n' ' ')$(stat -c %U /home/alice/wr-feat-one /home/alice/wr-two | tr '\n' ' ')"
tap_is "$got" "0 feat/one two alice alice " "run --worktree feat/one and two: worktrees ~/wr-feat-one and ~/wr-two made by alice on their branches" || tap_diag "$out"
as_alice_pty "sudo nspawn-cage list"
one=$(printf '%s\n' "$out" | awk '$4 == "/home/alice/wr-feat-one" && $5 == "[feat/one]" && $3 == "running" {print $1}')
two=$(printf '%s\n' "$out" | awk '$4 == "/home/alice/wr-two" && $5 == "[two]" && $3 == "running" {print $1}')
tap_ok $([ -n "$one" ] && [ -n "$two" ] && [ "$one" != "$two" ]; echo $?) "both cages run at once, named after project and branch ($one, $two); list shows each branch" || tap_diag "$out"
as_alice_pty "sudo nspawn-cage --worktree two ~/wr -- sh -c '$GIT commit -q --allow-empty -m again-two && echo AGAIN'"
printf '%s\n' "$out" | grep -qx AGAIN && [ "$(su alice -c 'git -C ~/wr log --format=%s -1 two')" = again-two ]
tap_ok_or_diag $? "run --worktree two again: the worktree is reused (the running cage attached to) and the commit is on branch two" "$out"
as_alice_pty "sudo nspawn-cage stop $one; sudo nspawn-cage stop $two"
tap_nothing_left "stop: nothing of either --worktree cage is left" "$one" "$two"
as_alice_pty "sudo nspawn-cage --worktree ../../etc ~/wr -- true"
st=$?
tap_ok_or_diag $([ $st != 0 ] && printf '%s\n' "$out" | grep -q "not a branch name" && [ ! -e /home/alice/wr-..-..-etc ]; echo $?) \
        "run --worktree ../../etc: refused, naming the branch; nothing made" "$out"
install -d -o alice -g alice /home/alice/wr-three
as_alice_pty "sudo nspawn-cage --worktree three ~/wr -- true"
st=$?
tap_ok_or_diag $([ $st != 0 ] && printf '%s\n' "$out" | grep -q "exists and is not a git worktree"; echo $?) \
        "run --worktree three where ~/wr-three is a plain directory: refused, nothing made" "$out"

for n in $CASES; do nspawn-cage stop "$n" > /dev/null 2>&1; done
rm -rf /srv/wt-root /srv/wt-root-wt /home/alice/wr-link
tap_done
