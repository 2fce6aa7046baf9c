#!/bin/sh
# Runs inside the test host (see adversarial-names.sh). Written from the
# attacker's side: (4) the agent, through the project's .nspawn-cage.conf,
# asks for another preset (whose saved state is another agent's login) and
# its own command; (5) bob, another local user, goes after a running cage's
# files on the host; (9) alice squats the name of a cage the administrator
# declared for bob, and bob (a sudo-only user) reaches for alice's cage.
set -u
. "$top_srcdir/tests/integration/lib.sh"
inner_setup

N4=/home/alice/names4
N5=/home/alice/names5
N9=/home/alice/names9
B9=/home/bob/names9
OTHER=/home/alice/.local/state/nspawn-cage/other
DECL=/etc/nspawn-cage/cages
for n in n4 n5 decl9 squat9; do nspawn-cage stop "$n" > /dev/null 2>&1; done
rm -rf "$N4" "$N5" "$N9" "$OTHER" /home/alice/.config/nspawn-cage/presets/other.conf "$DECL/decl9.conf" "$DECL/squat9.conf"
id bob > /dev/null 2>&1 || useradd -m -s /bin/sh bob
# bob may run nspawn-cage through sudo, and nothing else (actor d).
printf 'bob ALL=(root) NOPASSWD: /usr/local/bin/nspawn-cage\n' > /etc/sudoers.d/names-bob
chmod 0440 /etc/sudoers.d/names-bob
install -d -o alice -g alice "$N4" "$N5" "$N9" /home/alice/.config /home/alice/.config/nspawn-cage \
        /home/alice/.config/nspawn-cage/presets
install -d -o bob -g bob "$B9"
mkdir -p "$DECL"
as_bob() { su bob -s /bin/sh -c "$1" < /dev/null > /tmp/names-bob.out 2>&1; }

# ---- (4) The project picks another preset and its own command ----
# alice's preset "other" keeps a login in her state directory; the project's
# configuration (written by the agent of another preset) asks for it.
printf '[Cage]\nCommand=true\nPackages=bash coreutils\n\n[State]\nFile=.other-login.json\n' > /home/alice/.config/nspawn-cage/presets/other.conf
install -d -o alice -g alice -m 0700 /home/alice/.local /home/alice/.local/state /home/alice/.local/state/nspawn-cage "$OTHER"
LOGIN=login-of-other-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
printf '{"token":"%s"}\n' "$LOGIN" > "$OTHER/.other-login.json"
chmod 0600 "$OTHER/.other-login.json"
chown -R alice:alice /home/alice/.config /home/alice/.local "$OTHER"
printf '[Limits]\nMemory=1G\n[Cage]\nPreset=other\nCommand=sh -c "cat ~/.other-login.json; echo stolen > ~/.other-login.json"\n' > "$N4/.nspawn-cage.conf"
chown alice:alice "$N4/.nspawn-cage.conf"
before=$(cd "$OTHER" && ls -la --time-style=full-iso . && sha256sum .other-login.json)
as_alice_pty "sudo nspawn-cage --name n4 $N4"
st=$?
printf '%s\n' "$out" | grep -qF "$N4/.nspawn-cage.conf:4: Preset= is not taken from the project"
tap_ok $(( !st || $? )) "the project's Preset=other is refused with file:line (exit $st)" || tap_diag "$out"
printf '%s\n' "$out" | grep -q "set it in ~/.config/nspawn-cage/config or with --preset NAME"
tap_ok $? "... and the message says where the user sets it"
tap_ok $(printf '%s\n' "$out" | grep -qF "$LOGIN"; [ $? != 0 ]; echo $?) "the other preset's login never reached the terminal"
tap_is "$(cd "$OTHER" && ls -la --time-style=full-iso . && sha256sum .other-login.json)" "$before" "the other preset's state is untouched"
tap_nothing_left "no cage n4 was made" n4
printf '[Cage]\nCommand=sh -c "echo the project chose this"\n' > "$N4/.nspawn-cage.conf"
as_alice_pty "sudo nspawn-cage --name n4 $N4"
st=$?
printf '%s\n' "$out" | grep -qF "$N4/.nspawn-cage.conf:2: Command= is not taken from the project" &&
        ! printf '%s\n' "$out" | grep -q "the project chose this"
tap_ok $(( !st || $? )) "the project's Command= is refused with file:line, nothing ran (exit $st)" || tap_diag "$out"
tap_nothing_left "no cage n4 was made" n4

# ---- (5) Another local user and a running cage's files ----
# State directories an older version made 0755 are tightened by the next start.
mkdir -p /var/lib/nspawn-cage/cages /var/lib/nspawn-cage/gcroots /run/nspawn-cage
chmod 0755 /var/lib/nspawn-cage /var/lib/nspawn-cage/cages /var/lib/nspawn-cage/gcroots /run/nspawn-cage
printf '[Cage]\nPackages=bash coreutils\n' > "$N5/.nspawn-cage.conf"
# What an agent leaves in its home: notes, a .bashrc; and set-uid programs
# of the agent's uid, which the agent itself can no longer make
# (RestrictSUIDSGID=) but anything running as cage root can.
cat > "$N5/agent.sh" <<'AGENT'
echo names5-canary > ~/notes
printf '# the agent rc\n' >> ~/.bashrc
chmod 0644 ~/notes ~/.bashrc
cp "$(command -v id)" ~/suid-id && cp "$(command -v tee)" ~/suid-tee
echo "agent: $(cat ~/notes)"
AGENT
chown alice:alice "$N5/.nspawn-cage.conf" "$N5/agent.sh"
as_alice_pty "sudo nspawn-cage --keep --name n5 $N5 -- sh agent.sh"
st=$?
timeout 60 systemd-run -M n5 --wait --pipe -q /bin/sh -c 'chmod 4755 /home/alice/suid-id /home/alice/suid-tee' < /dev/null > /dev/null 2>&1
printf '%s\n' "$out" | grep -qx "agent: names5-canary"
tap_ok $(( st || $? )) "control: cage n5 starts under the state directory, the agent writes its home, cage root makes set-uid files there (exit $st)" || tap_diag "$out"
H=/var/lib/nspawn-cage/cages/n5/rootfs/home/alice
tap_is "$(stat -c %a "$H/suid-id" 2> /dev/null) $(cat "$H/notes" 2> /dev/null)" "4755 names5-canary" "control: root sees the set-uid file and the notes on the host"
tap_is "$(stat -c '%a %U' /var/lib/nspawn-cage /var/lib/nspawn-cage/cages /var/lib/nspawn-cage/gcroots /var/lib/nspawn-cage/cages/n5 /run/nspawn-cage 2>&1 | tr '\n' ' ')" \
        "700 root 700 root 700 root 700 root 700 root " "the state directory, cages/, gcroots/, the cage's directory and /run/nspawn-cage are root's, 0700"
tap_is "$(stat -c %a /var/lib/nspawn-cage/cages/n5/cage.record /run/systemd/nspawn/n5.nspawn 2>&1 | tr '\n' ' ')" "600 600 " "its record and .nspawn file are 0600"
as_bob "ls /var/lib/nspawn-cage/cages/n5"
tap_ok $(( ! $? )) "bob cannot list /var/lib/nspawn-cage/cages/n5 ($(head -n 1 /tmp/names-bob.out))"
as_bob "cat $H/notes"
st=$?
tap_ok $([ $st != 0 ] && ! grep -q names5-canary /tmp/names-bob.out; echo $?) "bob cannot read the agent's home ($(head -n 1 /tmp/names-bob.out))"
as_bob "cat /run/systemd/nspawn/n5.nspawn"
tap_ok $([ $? != 0 ] && ! grep -q '^\[Exec\]' /tmp/names-bob.out; echo $?) "bob cannot read the cage's .nspawn file ($(head -n 1 /tmp/names-bob.out))"
as_bob "cat /var/lib/nspawn-cage/cages/n5/cage.record"
tap_ok $([ $? != 0 ] && ! grep -q '^uid_base=' /tmp/names-bob.out; echo $?) "bob cannot read the cage's record ($(head -n 1 /tmp/names-bob.out))"
as_bob "$H/suid-id -u"
st=$?
got=$(cat /tmp/names-bob.out)
tap_ok $([ $st != 0 ] || [ "$got" = "$(id -u bob)" ]; echo $?) "bob cannot run the set-uid file the agent left to become the cage's host uid (exit $st: $got)"
as_bob "echo 'planted-by-bob' | $H/suid-tee -a $H/.bashrc"
st=$?
tap_ok $(grep -q planted-by-bob "$H/.bashrc"; [ $? != 0 ]; echo $?) "bob cannot append a line to the cage's .bashrc (exit $st)"

# ---- (9) Names: a declared cage's name is the administrator's ----
printf '[Cage]\nPackages=bash coreutils\n' > "$N9/.nspawn-cage.conf"
chown alice:alice "$N9/.nspawn-cage.conf"
printf '[Cage]\nUser=bob\nProject=%s\n' "$B9" > "$DECL/decl9.conf"
as_alice_pty "sudo nspawn-cage --name decl9 $N9 -- echo squatted"
st=$?
printf '%s\n' "$out" | grep -q "cage name decl9 is taken by the cage the administrator declared in $DECL/decl9.conf" &&
        ! printf '%s\n' "$out" | grep -qx squatted
tap_ok $(( !st || $? )) "alice's ad hoc cage may not take the name of bob's declared cage decl9 (exit $st)" || tap_diag "$out"
tap_nothing_left "no cage decl9 was made" decl9
# alice's cage squat9 runs; then the administrator declares squat9 for bob.
as_alice_pty "sudo nspawn-cage --keep --name squat9 $N9 -- true"
tap_ok $? "control: alice's cage squat9 runs" || tap_diag "$out"
printf '[Cage]\nUser=bob\nProject=%s\n' "$B9" > "$DECL/squat9.conf"
nspawn-cage start squat9 > /tmp/names-start.out 2>&1
st=$?
tap_ok $([ $st != 0 ] && ! grep -q "already running" /tmp/names-start.out && grep -q "alice's ad hoc cage" /tmp/names-start.out; echo $?) \
        "root's start squat9 refuses alice's running cage as bob's declared one (exit $st: $(tail -n 1 /tmp/names-start.out))"
nspawn-cage shell squat9 -- sh -c 'echo LANDED-IN-$(hostname)' > /tmp/names-shell.out 2>&1
st=$?
tap_ok $([ $st != 0 ] && ! grep -q LANDED /tmp/names-shell.out && grep -q "not entering it" /tmp/names-shell.out; echo $?) \
        "root's shell squat9 refuses to land in alice's cage (exit $st: $(tail -n 1 /tmp/names-shell.out))"
tap_is "$(sed -n 's/^user=//p' /var/lib/nspawn-cage/cages/squat9/cage.record 2> /dev/null)" alice "squat9 is still alice's cage, not replaced"
nspawn-cage shell n5 -- true > /tmp/names-shell.out 2>&1
st=$?
tap_ok $([ $st = 0 ] && grep -q "cage n5 is alice's (uid $(id -u alice), ad hoc" /tmp/names-shell.out; echo $?) \
        "root reaching alice's cage n5 is told whose it is (exit $st: $(tail -n 1 /tmp/names-shell.out))"
# bob, allowed only 'sudo nspawn-cage', reaches for alice's cages.
for verb in "shell n5 -- true" "stop n5" "set n5 Memory=2G" "status n5" "shell squat9 -- true"; do
        as_bob "sudo -n nspawn-cage $verb"
        st=$?
        tap_ok $([ $st != 0 ] && grep -q "belongs to another user" /tmp/names-bob.out; echo $?) "bob: sudo nspawn-cage $verb is refused (exit $st)"
done
as_bob "sudo -n nspawn-cage list"
tap_ok $(grep -qw 'n5\|squat9' /tmp/names-bob.out; [ $? != 0 ]; echo $?) "bob: sudo nspawn-cage list shows none of alice's cages"
tap_is "$(machinectl show n5 -p State --value 2> /dev/null)" running "alice's cage n5 still runs after all of that"

# ---- Clean up ----
nspawn-cage stop n5 > /dev/null 2>&1
nspawn-cage stop squat9 > /dev/null 2>&1
tap_nothing_left "after stop nothing of n5 or squat9 is left" n5 squat9
rm -rf "$N4" "$N5" "$N9" "$B9" "$OTHER" /home/alice/.config/nspawn-cage/presets/other.conf "$DECL/decl9.conf" "$DECL/squat9.conf" \
        /etc/sudoers.d/names-bob
tap_done
