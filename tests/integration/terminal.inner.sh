#!/bin/sh
# Runs inside the test host (see terminal.sh). The attach contract as alice
# sees it through the real sudo: output complete and in order, stdin from a
# pipe and from a terminal, the terminal restored on every way out, Ctrl-C,
# window size, exit status, binary output; then the stress tier, which
# counts what was lost (it must be 0). Its size is a knob:
# NSPAWN_CAGE_STRESS_RUNS (fresh cages, 200), NSPAWN_CAGE_STRESS_ATTACHES
# (attaches to one running cage, 500), NSPAWN_CAGE_STRESS_LINES (200000);
# NSPAWN_CAGE_STRESS_ONLY=1 runs the stress tier alone.
set -u
. "$top_srcdir/tests/integration/lib.sh"
inner_setup

RUNS=${NSPAWN_CAGE_STRESS_RUNS:-200}
ATTACHES=${NSPAWN_CAGE_STRESS_ATTACHES:-500}
LINES=${NSPAWN_CAGE_STRESS_LINES:-200000}
P=/home/alice/term
for n in term term2; do nspawn-cage stop "$n" > /dev/null 2>&1; done
tmux kill-server 2> /dev/null
P2=/home/alice/term2
rm -rf "$P" "$P2"
install -d -o alice -g alice "$P" "$P2"
printf '[Cage]\nPackages=bash coreutils procps\n' > "$P/.nspawn-cage.conf"
# Every byte value, for the binary check.
i=0
while [ $i -lt 256 ]; do printf "\\$(printf %03o $i)"; i=$((i + 1)); done > "$P/bytes"
cp "$P/.nspawn-cage.conf" "$P2/"
chown -R alice:alice "$P" "$P2"

# as_alice CMD: CMD as alice without a terminal (stdin /dev/null unless
# redirected by the caller); stdout only in $out, the status is CMD's.
as_alice() {
        out=$(su alice -c "$1" 2> /tmp/term-err)
}

as_alice_pty "sudo nspawn-cage --keep --name term $P -- true"
tap_is "$?" 0 "cage term starts, kept" || tap_diag "$out"

if [ "${NSPAWN_CAGE_STRESS_ONLY:-0}" != 1 ]; then
# ---- Output: complete, in order, unchanged ----
want=$(seq 1 20000 | md5sum)
as_alice "sudo nspawn-cage shell term -- seq 1 20000"
tap_is "$(printf '%s\n' "$out" | md5sum)" "$want" "20000 lines through a pipe arrive complete and in order, without carriage returns"
as_alice_pty "sudo nspawn-cage shell term -- seq 1 20000"
tap_is "$(printf '%s\n' "$out" | md5sum)" "$want" "20000 lines through a terminal arrive complete and in order"
su alice -c "sudo nspawn-cage shell term -- cat $P/bytes" > /tmp/term-bytes 2> /dev/null < /dev/null
cmp -s /tmp/term-bytes "$P/bytes"
tap_ok $? "all 256 byte values arrive unchanged when stdout is not a terminal ($(wc -c < /tmp/term-bytes) bytes)"

# ---- Exit status ----
as_alice "sudo nspawn-cage shell term -- sh -c 'exit 42'" < /dev/null
tap_is "$?" 42 "exit status 42 passes through"
as_alice "sudo nspawn-cage shell term -- sh -c 'kill -TERM \$\$'" < /dev/null
tap_is "$?" 143 "death by SIGTERM gives 128+15"
as_alice "sudo nspawn-cage shell term -- sh -c 'kill -KILL \$\$'" < /dev/null
tap_is "$?" 137 "death by SIGKILL gives 128+9"

# ---- stdin from a pipe: its bytes, then EOF ----
out=$(printf 'one\ntwo\n' | su alice -c "sudo nspawn-cage shell term -- sh -c 'cat; echo END'" 2> /dev/null)
tap_is "$out" "one
two
END" "stdin from a pipe reaches the agent, then its end (cat ends), nothing echoed"
# (no newline at the end: a VEOF then only hands the last line over; a
# nspawn-cage that sends one waits for ever, hence the timeout)
out=$(head -c 100000 /dev/zero | tr '\0' 'x' | fold -w 99 | timeout 60 su alice -c "sudo nspawn-cage shell term -- wc -c" 2> /dev/null)
tap_is "$(printf %s "$out" | tail -c 100)" 101010 "100000 bytes of piped input in lines arrive whole (wc -c)"

# ---- stdout closed early (| head): the agent is stopped, the cage lives ----
t0=$(date +%s)
out=$(timeout 60 su alice -c "sudo nspawn-cage shell term -- sh -c 'while :; do echo y; done' | head -n 3" 2> /dev/null < /dev/null)
tap_is "$out $(( $(date +%s) - t0 < 30 ))" "y
y
y 1" "a reader that leaves (| head -n 3) stops an endless writer"
as_alice "sudo nspawn-cage shell term -- echo still-here" < /dev/null
tap_is "$out" still-here "the cage still answers after that"

# ---- A terminal: raw mode while attached, restored on every way out ----
# stty_around CMD: in alice's pty, the terminal's modes before and after CMD.
stty_around() {
        as_alice_pty "stty -g > /tmp/term-before; $1; echo status=\$?; stty -g > /tmp/term-after"
        [ -s /tmp/term-before ] && cmp -s /tmp/term-before /tmp/term-after
}
stty_around "sudo nspawn-cage shell term -- stty -a"
tap_ok $? "the terminal's modes are restored after a normal end"
printf '%s\n' "$out" | grep -q ' icanon' && ! printf '%s\n' "$out" | grep -q -- '-icanon'
tap_ok $? "inside, the agent's own terminal is in canonical mode (the pty's modes, not our raw ones)" || tap_diag "$out"

(sleep 3; pkill -TERM -f '^sudo nspawn-cage shell term -- sleep 61') &
stty_around "sudo nspawn-cage shell term -- sleep 61"
tap_ok $? "restored when nspawn-cage gets SIGTERM"
printf '%s\n' "$out" | grep -q 'status=143'
tap_ok $? "SIGTERM stops the agent, whose death by SIGTERM is the status ($(printf '%s' "$out" | grep -o 'status=[0-9]*'))"
wait

(sleep 3; pkill -HUP -f '^sudo nspawn-cage shell term -- sleep 62') &
stty_around "sudo nspawn-cage shell term -- sleep 62"
tap_ok $? "restored when nspawn-cage gets SIGHUP"
wait

as_alice_pty "sudo nspawn-cage --keep --name term2 $P2 -- true"
(sleep 3; nspawn-cage stop term2 > /dev/null 2>&1) &
stty_around "sudo nspawn-cage shell term2 -- sleep 63"
tap_ok $? "restored when the cage is stopped from another terminal"
printf '%s\n' "$out" | grep -q 'the cage stopped while the command ran'
tap_ok $? "and the user is told the cage stopped" || tap_diag "$out"
wait

# ---- tmux: Ctrl-C, window size at start and on SIGWINCH ----
cat > "$P/tty-agent.sh" << 'EOF'
trap 'echo got-INT' INT
trap 'echo size-now $(stty size)' WINCH
echo size-start $(stty size)
echo ready
i=0
while [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); [ -e done-flag ] && break; done
echo agent-end
EOF
chown alice:alice "$P/tty-agent.sh"
rm -f "$P/done-flag"
tmux kill-server 2> /dev/null
# alice's login shell in tmux's terminal, typing the command: su -c would
# start it in a session of its own, with no terminal to get SIGWINCH from.
tmux new-session -d -s t -x 100 -y 30 "su - alice"
tmux send-keys -t t "sudo nspawn-cage shell term -- sh $P/tty-agent.sh; echo nspawn-cage-status=\$?" Enter
tmux_wait t ready
tap_ok $? "the agent runs in tmux"
tmux_pane t | grep -q 'size-start 30 100'
tap_ok $? "the window size reaches the agent at start (30 100)" || tap_diag "$(tmux_pane t)"
tmux resize-window -t t -x 120 -y 40 2> /dev/null || tmux resize-pane -t t -x 120 -y 40
tmux_wait t 'size-now 40 120'
tap_ok $? "a resize reaches the agent as SIGWINCH with the new size (40 120)" || tap_diag "$(tmux_pane t)"
tmux send-keys -t t C-c
tmux_wait t got-INT
tap_ok $? "Ctrl-C reaches the agent (its trap ran)"
touch "$P/done-flag"
tmux_wait t 'nspawn-cage-status=0'
tap_ok $? "nspawn-cage was not interrupted: the agent ended by itself, status 0" || tap_diag "$(tmux_pane t)"
tmux kill-server 2> /dev/null

fi # NSPAWN_CAGE_STRESS_ONLY

# ---- Stress: fresh cages, attaches, a long output; nothing may be lost ----
# stress COUNT WORD MODULUS VERB...: COUNT runs of `VERB... -- sh -c 'echo
# WORD-i; exit i%MODULUS'` as alice, every other one in a terminal, the rest
# with pipes; sets $lost (output not there) and $bad (wrong exit status).
stress() {
        _n=$1 _w=$2 _m=$3
        shift 3
        lost=0 bad=0 _i=0
        while [ $_i -lt "$_n" ]; do
                _i=$((_i + 1))
                _cmd="sudo nspawn-cage $* -- sh -c 'echo $_w-$_i; exit $((_i % _m))'"
                if [ $((_i % 2)) = 0 ]; then
                        as_alice_pty "$_cmd"
                else
                        as_alice "$_cmd" < /dev/null
                fi
                _st=$?
                # Carriage returns are the contract's check above: here only what is lost.
                printf '%s\n' "$out" | tr -d '\r' | grep -qx "$_w-$_i" ||
                        { lost=$((lost + 1)); [ $lost -le 5 ] && tap_diag "$_w $_i: got '$out'"; }
                [ "$_st" = $((_i % _m)) ] || bad=$((bad + 1))
        done
}
t0=$(date +%s)
stress "$RUNS" fresh 7 "$P"
tap_is "$lost $bad" "0 0" "stress: $RUNS fresh cages (half with a terminal, half with pipes), each printing one line: $lost lost, $bad wrong status ($(( $(date +%s) - t0 )) s)"
t0=$(date +%s)
stress "$ATTACHES" attach 5 shell term
tap_is "$lost $bad" "0 0" "stress: $ATTACHES attaches to a running cage: $lost lost, $bad wrong status ($(( $(date +%s) - t0 )) s)"

want="$LINES $(seq 1 "$LINES" | md5sum)"
as_alice "sudo nspawn-cage shell term -- seq 1 $LINES" < /dev/null
tap_is "$(printf '%s\n' "$out" | wc -l) $(printf '%s\n' "$out" | md5sum)" "$want" "stress: $LINES lines through a pipe, by count and checksum"
as_alice_pty "sudo nspawn-cage shell term -- seq 1 $LINES"
tap_is "$(printf '%s\n' "$out" | wc -l) $(printf '%s\n' "$out" | md5sum)" "$want" "stress: $LINES lines through a terminal, by count and checksum"

nspawn-cage stop term > /dev/null 2>&1
tap_nothing_left "nothing of cage term is left" term
tap_done
