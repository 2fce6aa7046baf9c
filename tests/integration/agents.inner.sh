#!/bin/sh
# Runs inside the test host (see agents.sh): alice's preset "fake" runs the
# fake agent of tests/pkgs, which prints which variables it sees (a key's
# length, never its value); the test looks for the key's value everywhere
# on the host while the agent runs.
set -u
. "$top_srcdir/tests/integration/lib.sh"
inner_setup

proj=/home/alice/agentproj
conf=/home/alice/.config/nspawn-cage
rm -rf "$proj" /run/secrets /home/alice/.sshtest /home/alice/.gitconfig /home/alice/.config/git
install -d -o alice -g alice "$proj" /home/alice/.config "$conf" "$conf/presets" /home/alice/.ssh
printf 'do not forward\n' > /home/alice/.ssh/id_never && chown alice:alice /home/alice/.ssh/id_never
cat > "$conf/presets/fake.conf" <<'P'
[Cage]
Command=fake-agent from-preset
Packages=fake-agent bash coreutils git openssh

[Environment]
Pass=GEMINI_API_KEY
P
# The user layer of these cases: the fake preset, GEMINI_API_KEY passed, then EXTRA.
agents_user_config() { write_user_config "[Cage]\nPreset=fake\n[Environment]\nPass=GEMINI_API_KEY\n$1"; }
chown -R alice:alice "$conf"
agents_user_config ''
write_project_config "$proj" ''
chown alice:alice "$conf/config" "$proj/.nspawn-cage.conf"

# The preset's closure once up front (the first build takes minutes).
t0=$(date +%s)
nix-build "$DATADIR/nix/cage.nix" --argstr nixpkgs "$top_srcdir/tests/pkgs" --argstr packages "bash coreutils fake-agent git openssh" \
        --argstr name warmup --no-out-link --option substituters '' > /tmp/warm-agents.log 2>&1
st=$?
tap_ok $st "the preset's packages build offline ($(( $(date +%s) - t0 )) s)"
[ $st = 0 ] || tail -n 20 /tmp/warm-agents.log | sed 's/^/# /'

# Keys: only in files readable by their owners (alice's, root's pattern files).
rnd() { head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
key1="gk-env-$(rnd)"             # 23 characters
key2="gk-file-secret-$(rnd)"     # 31 characters
(umask 077; printf '%s\n' "$key1" > /root/key1; printf '%s\n' "$key2" > /root/key2
 printf '%s' "$key1" > /home/alice/.key1; printf 'other-%s' "$(rnd)" > /home/alice/.key-other)
chown alice:alice /home/alice/.key1 /home/alice/.key-other

# A real pty for alice in the background; its output goes to $1.
as_alice_bg() {
        printf '%s\n' "$2" > /tmp/alice-bg.sh
        chmod 0644 /tmp/alice-bg.sh
        su - alice -c "script -qefc 'sh /tmp/alice-bg.sh' /dev/null" < /dev/null > "$1" 2>&1 &
        bg_pid=$!
}
# Where the key's value appears on the host (file names), besides the
# agent's own process: command lines, the cage's PID 1, world-readable files.
leaks() { # pattern-file name
        for f in /proc/[0-9]*/cmdline; do grep -qaF -f "$1" "$f" 2> /dev/null && echo "$f"; done
        leader=$(machinectl show "$2" -p Leader --value 2> /dev/null)
        [ -n "$leader" ] && grep -qaF -f "$1" "/proc/$leader/environ" && echo "/proc/$leader/environ (the cage's PID 1)"
        find /run /var/lib/nspawn-cage -type f -perm -0004 2> /dev/null | while read -r f; do
                grep -qaF -f "$1" "$f" 2> /dev/null && echo "$f"
        done
}
fa() { printf '%s\n' "$1" | sed -n "s/^fake-agent: $2=//p" | head -n 1; }

# 1. Preset=fake, GEMINI_API_KEY from the environment sudo kept; the agent
#    waits (FAKE_AGENT_WAIT) while the host is searched for the key.
write_project_config "$proj" '[Environment]\nSet=FAKE_AGENT_WAIT=.go\n'
rm -f "$proj/.go"
as_alice_bg /tmp/agent1.out 'GEMINI_API_KEY=$(cat ~/.key1) OPENAI_API_KEY=$(cat ~/.key-other) sudo --preserve-env=GEMINI_API_KEY,OPENAI_API_KEY nspawn-cage --name agent1 ~/agentproj'
for _ in $(seq 1500); do grep -q 'fake-agent: waiting' /tmp/agent1.out && break; kill -0 $bg_pid 2> /dev/null || break; sleep 0.4; done
grep -q 'fake-agent: waiting' /tmp/agent1.out
st=$?
tap_ok $st "the preset's agent runs in cage agent1 (and waits)"
[ $st = 0 ] || tail -n 20 /tmp/agent1.out | sed 's/^/# /'
apid=$(pgrep -f 'bin/fake-agent from-preset' | head -n 1)
grep -qaF -f /root/key1 "/proc/$apid/environ" 2> /dev/null
tap_ok $? "control: the key is in the fake agent's own environment (pid $apid), so the search below can find it"
found=$(leaks /root/key1 agent1)
tap_is "$found" "" "while the agent runs, the key is in no host command line, not in the cage's PID 1 environment, in no world-readable file under /run or /var/lib/nspawn-cage"
tap_is "$(stat -c '%U %a' /run/nspawn-cage/env/agent1 2> /dev/null)" "root 600" "the value kept for later shells is root's, 0600 (/run/nspawn-cage/env/agent1)"
as_alice_pty "sudo nspawn-cage shell agent1 -- sh -c 'test -n \"\$GEMINI_API_KEY\" && echo key-in-shell'"
printf '%s\n' "$out" | grep -q key-in-shell
tap_ok $? "nspawn-cage shell agent1 gets the kept key"
touch "$proj/.go"
wait $bg_pid
st=$?
out1=$(tr -d '\r' < /tmp/agent1.out)
tap_is "$st" 0 "nspawn-cage returns the agent's status"
tap_is "$(fa "$out1" arg1)" from-preset "the preset's command line ran (fake-agent from-preset)"
tap_is "$(fa "$out1" GEMINI_API_KEY)/$(fa "$out1" GEMINI_API_KEY_length)" "set/${#key1}" "GEMINI_API_KEY (Pass=) is set, with the environment's value (${#key1} characters)"
tap_is "$(fa "$out1" OPENAI_API_KEY)" unset "OPENAI_API_KEY, kept by sudo but not in Pass=, is absent"
tap_is "$(fa "$out1" ANTHROPIC_API_KEY)" unset "ANTHROPIC_API_KEY is absent"
tap_is "$(fa "$out1" SSH_AUTH_SOCK)" unset "without SSHAgent=, no SSH_AUTH_SOCK"
[ -e /run/nspawn-cage/env/agent1 ]
tap_ok $((! $?)) "after the cage stops, /run/nspawn-cage/env/agent1 is gone"
tap_is "$(grep -rlF -f /root/key1 /run/nspawn-cage 2> /dev/null)" "" "the key is nowhere under /run/nspawn-cage"
tap_nothing_left "nothing of agent1 is left" agent1

# 2. [Environment] File=: a sops-like secret of alice's under /run/secrets;
#    its value wins over the environment's; names not in Pass= are not taken.
write_project_config "$proj" ''
install -d -m 0755 /run/secrets
(umask 077; printf '# decrypted by sops\nGEMINI_API_KEY="%s"\nOPENAI_API_KEY=%s\n' "$key2" "$(rnd)" > /run/secrets/alice.env)
chown alice:alice /run/secrets/alice.env
chmod 0400 /run/secrets/alice.env
agents_user_config 'File=/run/secrets/alice.env\n'
as_alice_pty 'GEMINI_API_KEY=$(cat ~/.key1) sudo --preserve-env=GEMINI_API_KEY nspawn-cage --name agent2 ~/agentproj'
tap_is "$?" 0 "a cage with File= starts" || tap_diag "$out"
tap_is "$(fa "$out" GEMINI_API_KEY_length)" "${#key2}" "GEMINI_API_KEY has the value of File= (${#key2} characters), which wins over the environment's (${#key1})"
tap_is "$(fa "$out" OPENAI_API_KEY)" unset "OPENAI_API_KEY in File= but not in Pass= is absent"
tap_is "$(grep -rlF -f /root/key2 /run/nspawn-cage /var/lib/nspawn-cage 2> /dev/null)" "" "after the cage, File='s value is nowhere under /run/nspawn-cage or /var/lib/nspawn-cage"
chmod 0644 /run/secrets/alice.env
as_alice_pty 'sudo nspawn-cage --name agent2 ~/agentproj'
st=$?
printf '%s\n' "$out" | grep -q "config:5: File=/run/secrets/alice.env can be read or written by others; make it private (chmod 600"
tap_ok $(( st == 0 || $? != 0 )) "a world-readable File= is refused, naming the line and the fix" || tap_diag "$out"
tap_nothing_left "the refused start left nothing" agent2
chmod 0400 /run/secrets/alice.env
write_project_config "$proj" '[Environment]\nFile=/home/alice/agentproj/x.env\n'
as_alice_pty 'sudo nspawn-cage --name agent2 ~/agentproj'
st=$?
printf '%s\n' "$out" | grep -q "agentproj/.nspawn-cage.conf:2: File= may only be set in your user configuration"
tap_ok $(( st == 0 || $? != 0 )) "File= in the project's configuration is refused with file and line" || tap_diag "$out"
write_project_config "$proj" ''

# 3. [Forward] SSHAgent=yes, GitConfig=yes: alice's ssh-agent with a key.
su alice -c 'mkdir -m 700 ~/.sshtest && ssh-keygen -q -t ed25519 -N "" -C alice-cage-test -f ~/.sshtest/id &&
        ssh-agent -a ~/.sshtest/agent.sock > ~/.sshtest/agent.env && SSH_AUTH_SOCK=~/.sshtest/agent.sock ssh-add -q ~/.sshtest/id' > /tmp/ssh.log 2>&1
tap_ok $? "alice's ssh-agent holds a key (ssh-keygen, ssh-add)" || sed 's/^/# /' /tmp/ssh.log
fp=$(su alice -c 'SSH_AUTH_SOCK=~/.sshtest/agent.sock ssh-add -l' | awk '{print $2}')
printf '[user]\n\temail = alice@cage.test\n' > /home/alice/.gitconfig
install -d -o alice -g alice /home/alice/.config/git
printf '*.swp\n' > /home/alice/.config/git/ignore
chown alice:alice /home/alice/.gitconfig /home/alice/.config/git/ignore
agents_user_config 'File=/run/secrets/alice.env\n[Forward]\nSSHAgent=yes\nGitConfig=yes\n'
as_alice_pty 'SSH_AUTH_SOCK=~/.sshtest/agent.sock sudo --preserve-env=SSH_AUTH_SOCK nspawn-cage --name agent3 ~/agentproj'
tap_is "$?" 0 "a cage with SSHAgent=yes and GitConfig=yes starts" || tap_diag "$out"
tap_is "$(fa "$out" SSH_AUTH_SOCK)" /run/nspawn-cage/ssh-agent "the agent's SSH_AUTH_SOCK is the fixed /run/nspawn-cage/ssh-agent"
printf '%s\n' "$out" | grep -q "^fake-agent: ssh-add: 256 $fp alice-cage-test (ED25519)"
tap_ok $? "ssh-add -l inside lists alice's key ($fp)" || printf '%s\n' "$out" | grep 'ssh-add' | sed 's/^/# /'
tap_is "$(fa "$out" git-email)" alice@cage.test "git config user.email inside is alice's (~/.gitconfig, read-only)"
as_alice_pty 'SSH_AUTH_SOCK=~/.sshtest/agent.sock sudo --preserve-env=SSH_AUTH_SOCK nspawn-cage --name agent3 ~/agentproj -- sh -c "test -e ~/.ssh && echo SEEN-SSH; test -e ~/.sshtest && echo SEEN-SSHTEST; echo x >> ~/.gitconfig && echo WROTE-GITCONFIG; cat ~/.config/git/ignore"'
printf '%s\n' "$out" | grep -q 'SEEN-SSH'
tap_ok $((! $?)) "neither ~/.ssh nor the agent's directory is visible inside"
printf '%s\n' "$out" | grep -q 'WROTE-GITCONFIG'
tap_ok $((! $?)) "~/.gitconfig is read-only inside"
printf '%s\n' "$out" | grep -qx '\*.swp'
tap_ok $? "~/.config/git is bound (its ignore file reads inside)"
sleep 1
pgrep -x nspawn-cage-ssh > /dev/null
tap_ok $((! $?)) "the ssh-agent relay ended with the cage"
tap_nothing_left "nothing of agent3 is left" agent3

# Without SSHAgent=: no socket. A project cannot turn it on.
agents_user_config ''
as_alice_pty 'SSH_AUTH_SOCK=~/.sshtest/agent.sock sudo --preserve-env=SSH_AUTH_SOCK nspawn-cage --name agent4 ~/agentproj -- sh -c "test -e /run/nspawn-cage/ssh-agent && echo SOCKET; echo sock=\$SSH_AUTH_SOCK"'
printf '%s\n' "$out" | grep -q SOCKET
tap_ok $((! $?)) "without SSHAgent=yes there is no agent socket in the cage"
printf '%s\n' "$out" | grep -qx 'sock='
tap_ok $? "and no SSH_AUTH_SOCK" || tap_diag "$out"
write_project_config "$proj" '[Forward]\nSSHAgent=yes\n'
as_alice_pty 'SSH_AUTH_SOCK=~/.sshtest/agent.sock sudo --preserve-env=SSH_AUTH_SOCK nspawn-cage --name agent4 ~/agentproj'
st=$?
printf '%s\n' "$out" | grep -q "agentproj/.nspawn-cage.conf:2: SSHAgent=yes is not allowed"
tap_ok $(( st == 0 || $? != 0 )) "SSHAgent=yes in the project's configuration is refused with file and line" || tap_diag "$out"
write_project_config "$proj" ''
tap_nothing_left "nothing of agent4 is left" agent4

su alice -c '. ~/.sshtest/agent.env > /dev/null; ssh-agent -k' > /dev/null 2>&1
rm -rf /run/secrets /root/key1 /root/key2 /home/alice/.key1 /home/alice/.key-other
tap_done
