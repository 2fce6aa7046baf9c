#!/bin/sh
# Runs inside the test host (see state.sh). A user preset "fake" runs the
# fake agent with FAKE_AGENT_STATE=1: it prints and appends to
# ~/.fake-agent/notes (a [State] Directory=) and rewrites ~/.fake-agent.json
# (a [State] File=) by rename, as real agents do.
set -u
. "$top_srcdir/tests/integration/lib.sh"
inner_setup

# as_pty USER CMD: as_alice_pty for any user.
as_pty() {
        _u=$1
        shift
        printf '%s\n' "$*" > /tmp/state-cmd.sh
        chmod 0644 /tmp/state-cmd.sh
        su - "$_u" -c "script -qefc 'sh /tmp/state-cmd.sh' /dev/null" < /dev/null > /tmp/state-out 2>&1
        _st=$?
        out=$(tr -d '\r' < /tmp/state-out | sed 's/\^@//g')
        return $_st
}


# setup_user USER: the "fake" preset, picked by the user's configuration (the
# project may not pick a preset), and a project.
setup_user() {
        _h=/home/$1
        install -d -o "$1" -g "$1" "$_h/.config" "$_h/.config/nspawn-cage" "$_h/.config/nspawn-cage/presets" "$_h/state-proj"
        printf '[Cage]\nCommand=fake-agent\nPackages=fake-agent bash coreutils\n\n[State]\nDirectory=.fake-agent\nFile=.fake-agent.json\n' \
                > "$_h/.config/nspawn-cage/presets/fake.conf"
        printf '[Environment]\nSet=FAKE_AGENT_STATE=1\n' > "$_h/state-proj/.nspawn-cage.conf"
        printf '[Cage]\nPreset=fake\n' > "$_h/.config/nspawn-cage/config"
        chown "$1:$1" "$_h/.config/nspawn-cage/presets/fake.conf" "$_h/state-proj/.nspawn-cage.conf" "$_h/.config/nspawn-cage/config"
        rm -rf "$_h/.local/state/nspawn-cage/fake"
}

A=/home/alice/.local/state/nspawn-cage/fake
[ -f /home/alice/.config/nspawn-cage/config ] && cp -a /home/alice/.config/nspawn-cage/config /tmp/state-alice-config
setup_user alice

# 1. First cage: no state yet; what the agent writes lands in alice's state directory.
as_pty alice "sudo nspawn-cage --name st1 ~/state-proj"
st=$?
printf '%s\n' "$out" | grep -qx 'fake-agent: json=none'
tap_ok_or_diag $(( st || $? )) "first cage of preset fake: the agent ran (exit $st) and found no state" "$out"
tap_is "$(cat $A/.fake-agent/notes 2>&1)" "run 1" "the note the agent appended to ~/.fake-agent/notes is in $A/.fake-agent/notes"
tap_is "$(stat -c '%U:%G %a' $A/.fake-agent/notes 2>&1)" "alice:alice 644" "... owned by alice on the host"
tap_is "$(cat $A/.fake-agent.json 2>&1)" '{"runs":1}' "~/.fake-agent.json, rewritten by rename, was copied out when the cage ended"
tap_is "$(stat -c '%U:%G %a' $A/.fake-agent.json $A /home/alice/.local/state/nspawn-cage 2>&1 | tr '\n' ' ')" \
        "alice:alice 600 alice:alice 700 alice:alice 700 " "the copy and the state directories are alice's, 0600 and 0700"
tap_nothing_left "nothing of cage st1 is left" st1

# 2. The next cage (another name, so another rootfs) sees it.
as_pty alice "sudo nspawn-cage --name st2 ~/state-proj"
st=$?
printf '%s\n' "$out" | grep -qx 'fake-agent: note=run 1' && printf '%s\n' "$out" | grep -qx 'fake-agent: json={"runs":1}'
tap_ok_or_diag $(( st || $? )) "the next cage of alice's sees the first cage's note and file" "$out"
tap_is "$(cat $A/.fake-agent/notes | tr '\n' ' ')$(cat $A/.fake-agent.json)" 'run 1 run 2 {"runs":2}' "and its own changes are kept too"
tap_nothing_left "nothing of cage st2 is left" st2

# 3. Another user, same preset: none of alice's state.
id bob > /dev/null 2>&1 || useradd --uid 1001 --user-group --create-home --shell /bin/bash bob
if [ "$(findmnt -no FSTYPE -T /home/bob)" = overlay ]; then
        # As inner_setup does for alice: a home that can carry idmapped mounts.
        mkdir -p /var/tmp/home-bob
        cp -a /home/bob/. /var/tmp/home-bob/
        chown bob:bob /var/tmp/home-bob
        mount --bind /var/tmp/home-bob /home/bob
fi
printf 'bob ALL=(ALL:ALL) NOPASSWD: ALL\n' > /etc/sudoers.d/bob
chmod 0440 /etc/sudoers.d/bob
setup_user bob
sum_alice=$(cd $A && find . -type f -exec sha256sum {} + | sort)
as_pty bob "sudo nspawn-cage --name stb ~/state-proj"
st=$?
printf '%s\n' "$out" | grep -qx 'fake-agent: json=none' && ! printf '%s\n' "$out" | grep -q 'fake-agent: note='
tap_ok_or_diag $(( st || $? )) "bob's cage of the same preset sees none of alice's state" "$out"
tap_is "$(stat -c '%U' /home/bob/.local/state/nspawn-cage/fake/.fake-agent/notes /home/bob/.local/state/nspawn-cage/fake/.fake-agent.json 2>&1 | tr '\n' ' ')$(cat /home/bob/.local/state/nspawn-cage/fake/.fake-agent.json 2>&1)" \
        'bob bob {"runs":1}' "bob's state is his own, in his home"
tap_is "$(cd $A && find . -type f -exec sha256sum {} + | sort)" "$sum_alice" "alice's state is unchanged by bob's cage"
tap_nothing_left "nothing of cage stb is left" stb

# 4. Persist=no: in the project layer, then in alice's user layer.
printf '\n[State]\nPersist=no\n' >> /home/alice/state-proj/.nspawn-cage.conf
before=$(cd /home/alice/.local/state && find . | sort; cd $A && find . -type f -exec sha256sum {} + | sort)
as_pty alice "sudo nspawn-cage --name st4 ~/state-proj"
st=$?
printf '%s\n' "$out" | grep -qx 'fake-agent: json=none' && ! printf '%s\n' "$out" | grep -q 'fake-agent: note='
tap_ok_or_diag $(( st || $? )) "with Persist=no in the project's configuration the agent starts without state" "$out"
tap_is "$(cd /home/alice/.local/state && find . | sort; cd $A && find . -type f -exec sha256sum {} + | sort)" "$before" "... and leaves nothing new in alice's state"
tap_nothing_left "nothing of cage st4 is left" st4
printf '[Environment]\nSet=FAKE_AGENT_STATE=1\n\n[State]\nPersist=yes\n' > /home/alice/state-proj/.nspawn-cage.conf
printf '[Cage]\nPreset=fake\n\n[State]\nPersist=no\n' > /home/alice/.config/nspawn-cage/config
chown alice:alice /home/alice/.config/nspawn-cage/config
su alice -c "nspawn-cage config /home/alice/state-proj" > /tmp/cfg.out 2> /tmp/cfg.err
st=$?
grep -q 'state-proj/.nspawn-cage.conf:5: Persist=yes is not allowed' /tmp/cfg.err
tap_ok $(( !st || $? )) "the project cannot turn Persist= back on when alice's configuration says no" || sed 's/^/# /' /tmp/cfg.err
printf '[Environment]\nSet=FAKE_AGENT_STATE=1\n' > /home/alice/state-proj/.nspawn-cage.conf
as_pty alice "sudo nspawn-cage --name st4 ~/state-proj"
st=$?
printf '%s\n' "$out" | grep -qx 'fake-agent: json=none'
tap_ok_or_diag $(( st || $? )) "Persist=no in alice's own configuration: no state either" "$out"
tap_is "$(cd /home/alice/.local/state && find . | sort; cd $A && find . -type f -exec sha256sum {} + | sort)" "$before" "... and nothing new"
printf '[Cage]\nPreset=fake\n' > /home/alice/.config/nspawn-cage/config

# 5. A link or a FIFO planted as ~/.fake-agent.json is never followed on copy-out.
shadow_before=$(sha256sum /etc/shadow)
json_before=$(cat $A/.fake-agent.json)
as_pty alice "sudo nspawn-cage --name st5 ~/state-proj -- sh -c 'rm -f ~/.fake-agent.json; ln -s /etc/shadow ~/.fake-agent.json'"
st=$?
printf '%s\n' "$out" | grep -q 'warning: cage st5: ~/.fake-agent.json is a symbolic link'
tap_ok_or_diag $(( st || $? )) "a symbolic link planted as ~/.fake-agent.json: a warning names it" "$out"
tap_is "$(stat -c %F $A/.fake-agent.json) $(cat $A/.fake-agent.json)" "regular file $json_before" "alice's copy is unchanged, still a regular file"
tap_is "$(sha256sum /etc/shadow)" "$shadow_before" "/etc/shadow is unchanged"
tap_nothing_left "nothing of cage st5 is left" st5
as_pty alice "sudo nspawn-cage --name st5 ~/state-proj -- sh -c 'rm -f ~/.fake-agent.json; mkfifo ~/.fake-agent.json'"
st=$?
printf '%s\n' "$out" | grep -q 'warning: cage st5: ~/.fake-agent.json is not a regular file'
tap_ok_or_diag $(( st || $? )) "a FIFO planted there: a warning, no hang" "$out"
tap_is "$(cat $A/.fake-agent.json)" "$json_before" "alice's copy is unchanged"

# 6. kill -9 of nspawn-cage while the agent runs: gc copies the file out.
su alice -c "sudo nspawn-cage --name st6 ~/state-proj -- sh -c 'echo {\\\"runs\\\":99} > ~/.fake-agent.json.tmp && mv ~/.fake-agent.json.tmp ~/.fake-agent.json; sleep 120'" < /dev/null > /tmp/st6.log 2>&1 &
for _ in $(seq 150); do
        nsenter -t "$(machinectl show st6 -p Leader --value 2>/dev/null || echo 0)" -m cat /home/alice/.fake-agent.json 2>/dev/null | grep -q 99 && break
        sleep 0.2
done
kill9_gc st6
k9=$?
tap_is "$(cat $A/.fake-agent.json)" '{"runs":99}' "after kill -9 of nspawn-cage, gc copied the agent's file out" || sed 's/^/# /' /tmp/gc.log
tap_ok $(( k9 || gc_status )) "gc (status $gc_status) left nothing of cage st6: $(cat /tmp/audit)"

rm -f /etc/sudoers.d/bob
if [ -f /tmp/state-alice-config ]; then cp -a /tmp/state-alice-config /home/alice/.config/nspawn-cage/config; else rm -f /home/alice/.config/nspawn-cage/config; fi
tap_done
