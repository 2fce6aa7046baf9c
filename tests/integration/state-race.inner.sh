#!/bin/sh
# Runs inside the test host (see state-race.sh). alice's preset "race" keeps
# ~/.race.json ([State] File=). Two cages of it run at once on one project;
# each agent adds its own entry to the file, then waits for its turn to
# end (a file the host drops into the project). In both orders, the first
# to end writes alice's copy and the second's version is kept aside
# beside it, with a warning: both changes are on the host.
set -u
. "$top_srcdir/tests/integration/lib.sh"
inner_setup

tap_plan 8
S=/home/alice/.local/state/nspawn-cage/race
[ -f /home/alice/.config/nspawn-cage/config ] && cp -a /home/alice/.config/nspawn-cage/config /tmp/race-alice-config
install -d -o alice -g alice /home/alice/.config/nspawn-cage/presets /home/alice/race
printf '[Cage]\nCommand=bash\nPackages=bash coreutils\n\n[State]\nFile=.race.json\n' > /home/alice/.config/nspawn-cage/presets/race.conf
write_user_config '[Cage]\nPreset=race\n'
chown alice:alice /home/alice/.config/nspawn-cage/presets/race.conf

# .agent-ENTRY.sh: add "ENTRY":1 to ~/.race.json (by rename, as agents
# do), say so in the project, and end once the host drops .end-ENTRY there.
for e in x y; do
        cat > /home/alice/race/.agent-$e.sh <<AGENT
f=\$HOME/.race.json
s=\$(cat \$f)
printf '%s,"$e":1}' "\${s%?}" > \$f.tmp && mv \$f.tmp \$f && touch .wrote-$e
for i in \$(seq 600); do [ -e .end-$e ] && break; sleep 0.2; done
AGENT
        chown alice:alice /home/alice/race/.agent-$e.sh
done
wait_for() { for _ in $(seq 600); do [ -e "$1" ] && return 0; sleep 0.2; done; return 1; }

for order in "x y" "y x"; do
        set -- $order
        rm -rf "$S" /home/alice/race/.wrote-* /home/alice/race/.end-*
        install -d -o alice -g alice -m 0700 /home/alice/.local /home/alice/.local/state /home/alice/.local/state/nspawn-cage "$S"
        printf '{"base":1}' > "$S/.race.json"
        chown alice:alice "$S/.race.json"
        chmod 0600 "$S/.race.json"
        for e in x y; do
                su alice -c "sudo nspawn-cage --name race-$e ~/race -- sh .agent-$e.sh" < /dev/null > /tmp/race-$e.log 2>&1 &
                eval "pid_$e=\$!"
        done
        wait_for /home/alice/race/.wrote-x && wait_for /home/alice/race/.wrote-y
        tap_ok $? "order $1 then $2: both cages of preset race run at once and each added its entry"
        touch "/home/alice/race/.end-$1"
        eval "wait \$pid_$1"
        touch "/home/alice/race/.end-$2"
        eval "wait \$pid_$2"
        aside=$(ls -A "$S" | grep "^\.race\.json\.nspawn-cage-conflict-race-$2-" | head -n 1)
        got="$(cat "$S/.race.json") | $([ -n "$aside" ] && cat "$S/$aside")"
        tap_is "$got" "{\"base\":1,\"$1\":1} | {\"base\":1,\"$2\":1}" \
                "order $1 then $2: alice's copy is the first cage's, the second's is kept aside as $aside: no change lost"
        grep -q "warning: cage race-$2: ~/.race.json was changed meanwhile.*kept aside as \.race\.json\.nspawn-cage-conflict-race-$2-" /tmp/race-$2.log
        tap_ok_or_diag $? "order $1 then $2: the second cage says where its version went" "$(cat /tmp/race-$2.log)"
        tap_is "$(stat -c '%U %a' "$S/.race.json" "$S/$aside" | tr '\n' ' ')" "alice 600 alice 600 " "order $1 then $2: both files are alice's, 0600"
done

rm -f /home/alice/.config/nspawn-cage/presets/race.conf
if [ -f /tmp/race-alice-config ]; then cp -a /tmp/race-alice-config /home/alice/.config/nspawn-cage/config; else rm -f /home/alice/.config/nspawn-cage/config; fi
tap_done
