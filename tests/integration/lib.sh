# Shared by the integration scripts. Outer side (on the machine running make
# check): decide whether the tier can run, and run an inner script in the
# test host. Inner side (in the test host): install the built nspawn-cage
# and the local package set as the administrator would, and helpers to act
# as alice through a real sudo in a pseudo-terminal.

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
. "$top_srcdir/tests/testhost/lib.sh"

# outer_run INNER-SCRIPT: skip unless enabled and root, else run it in the
# test host and pass its TAP through.
outer_run() {
        [ "${NSPAWN_CAGE_INTEGRATION:-0}" = 1 ] || tap_skip_all "integration tier: set NSPAWN_CAGE_INTEGRATION=1 (tests/run-all does) to boot the test host"
        [ "$(id -u)" = 0 ] || tap_skip_all "integration tier: needs root to boot the test host"
        [ -x "$top_builddir/nspawn-cage/nspawn-cage" ] || tap_skip_all "integration tier: nspawn-cage is not built"
        booted_run "$top_srcdir/tests/testhost/run" "test host" "$1"
}

# booted_run RUNNER WHAT INNER-SCRIPT: run INNER-SCRIPT in the machine
# RUNNER boots (tests/testhost/run, tests/vm/run) and pass its TAP through;
# a single failing test if WHAT does not boot.
booted_run() {
        if ! out=$("$1" -- true 2>&1); then
                echo "1..1"
                echo "not ok 1 - the $2 boots"
                printf '%s\n' "$out" | tail -n 30 | sed 's/^/# /'
                exit 0
        fi
        exec "$1" -- env top_srcdir="$top_srcdir" top_builddir="$top_builddir" sh "$3"
}

# in_test_vm SCRIPT: for the VM tier's scripts (tests/vm/*.sh). On the
# machine, run SCRIPT in the test VM (tests/vm/run) and exit, or skip
# saying why; inside the VM (where /etc/nspawn-cage-vm exists), return.
in_test_vm() {
        [ -e /etc/nspawn-cage-vm ] && return 0
        [ "${NSPAWN_CAGE_VM:-0}" = 1 ] || tap_skip_all "VM tier: set NSPAWN_CAGE_VM=1 (tests/run-all does) to boot the test VM (qemu, TCG; minutes)"
        [ "$(id -u)" = 0 ] || tap_skip_all "VM tier: needs root to boot the test VM"
        command -v qemu-system-x86_64 > /dev/null || tap_skip_all "VM tier: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86 qemu-utils)"
        [ -x "$top_builddir/nspawn-cage/nspawn-cage" ] || tap_skip_all "VM tier: nspawn-cage is not built"
        booted_run "$top_srcdir/tests/vm/run" "test VM" "$1"
}

# ---- inner side ----

DATADIR=/usr/local/share/nspawn-cage

# Install the build as `make install` would (the binary was built with the
# default prefix), the admin layer pointing at the local package set, and
# alice's project. Idempotent within one boot of the test host.
inner_setup() {
        install -m 0755 "$top_builddir/nspawn-cage/nspawn-cage" /usr/local/bin/nspawn-cage
        mkdir -p "$DATADIR/nix" "$DATADIR/templates/presets"
        install -m 0644 "$top_srcdir/nix/cage.nix" "$DATADIR/nix/cage.nix"
        install -m 0644 "$top_srcdir"/templates/presets/*.conf "$DATADIR/templates/presets/"
        mkdir -p /etc/nspawn-cage
        printf '[Cage]\nNixpkgs=%s/tests/pkgs\n' "$top_srcdir" > /etc/nspawn-cage/nspawn-cage.conf
        # Cages bind projects through idmapped mounts, which overlayfs (the
        # test host's / and /home) cannot carry: give alice a home on ext4,
        # as a real machine's /home is. /var/tmp is ext4 (tests/testhost).
        if [ "$(findmnt -no FSTYPE -T /home/alice)" = overlay ]; then
                mkdir -p /var/tmp/home-alice
                cp -a /home/alice/. /var/tmp/home-alice/
                chown alice:alice /var/tmp/home-alice
                mount --bind /var/tmp/home-alice /home/alice
        fi
        if [ ! -d /home/alice/project ]; then
                install -d -o alice -g alice /home/alice/project
                echo "top secret" > /home/alice/secret
                chown alice:alice /home/alice/secret
                chmod 0600 /home/alice/secret
        fi
}

# as_alice_pty CMD...: run CMD (one shell string) as alice in a fresh
# pseudo-terminal, through her login; stdout+stderr of the session go to
# $out, the exit status is CMD's.
as_alice_pty() {
        printf '%s\n' "$*" > /tmp/alice-cmd.sh
        chmod 0644 /tmp/alice-cmd.sh
        # Bounded: sudo 1.9.13 (use_pty) was seen once waiting for ever
        # after its command had ended; a hung call then fails, not the run.
        timeout --foreground -k 10 900 su - alice -c "script -qefc 'sh /tmp/alice-cmd.sh' /dev/null" < /dev/null > /tmp/alice-out 2>&1
        _st=$?
        # script(1) echoes its own end of input as "^@"; that is not ours.
        out=$(tr -d '\r' < /tmp/alice-out | sed 's/\^@//g')
        return $_st
}

# pgrep_wait PATTERN: the pid of the first process whose command line
# matches PATTERN (pgrep -f), waiting up to 20 s; nothing if none came.
pgrep_wait() {
        for _ in $(seq 100); do
                pgrep -f "$1" | head -n 1 | grep . && return 0
                sleep 0.2
        done
        return 1
}

# kill9_gc NAME: kill -9 the nspawn-cage that runs cage NAME (started with
# --name NAME), then `nspawn-cage gc` (its output in /tmp/gc.log, its status
# in $gc_status); the status is audit's, its report in /tmp/audit.
kill9_gc() {
        pkill -KILL -f "nspawn-cage --name $1" 2> /dev/null
        wait 2> /dev/null
        sleep 0.5
        nspawn-cage gc > /tmp/gc.log 2>&1
        gc_status=$?
        audit "$1" > /tmp/audit 2>&1
}

# audit NAME: nothing of cage NAME is left anywhere. Prints what is.
audit() {
        _left=""
        machinectl list --no-legend 2>/dev/null | grep -qw "$1" && _left="$_left machine"
        systemctl list-units --all --no-legend "nspawn-cage-$1.service" 2>/dev/null | grep -q . && _left="$_left unit"
        grep -q "/nspawn-cage/cages/" /proc/self/mountinfo && _left="$_left mount"
        [ -e "/var/lib/nspawn-cage/cages/$1" ] && _left="$_left state-dir"
        ls -A /var/lib/nspawn-cage/cages 2>/dev/null | grep -q "^\.$1\." && _left="$_left temporary-dir"
        [ -e "/var/lib/nspawn-cage/gcroots/$1" ] || [ -L "/var/lib/nspawn-cage/gcroots/$1" ] && _left="$_left gc-root"
        [ -e "/run/systemd/nspawn/$1.nspawn" ] && _left="$_left settings-file"
        [ -e "/run/nspawn-cage/env/$1" ] && _left="$_left kept-environment"
        grep -qsx "nspawn-cage $1" /run/systemd/nspawn-uid/* && _left="$_left uid-lock-file"
        grep -qsx "$1" /run/nspawn-cage/network/* && _left="$_left network-lease"
        command -v nft > /dev/null && nft list table inet "nspawn-cage-$1" > /dev/null 2>&1 && _left="$_left nft-table"
        [ -z "$_left" ] || { echo "left:$_left"; return 1; }
        return 0
}

# ---- shared by the inner scripts: config writers, diagnostics, refusals ----

# write_user_config CONTENTS: alice's user layer (~/.config/nspawn-cage/config),
# CONTENTS with printf %b escapes, hers.
write_user_config() {
        install -d -o alice -g alice /home/alice/.config /home/alice/.config/nspawn-cage
        printf '%b' "$1" > /home/alice/.config/nspawn-cage/config
        chown alice:alice /home/alice/.config/nspawn-cage/config
}

# write_project_config DIR CONTENTS: DIR/.nspawn-cage.conf (the project
# layer, as the agent could write it), CONTENTS with printf %b escapes.
write_project_config() {
        printf '%b' "$2" > "$1/.nspawn-cage.conf"
        chown alice:alice "$1/.nspawn-cage.conf"
}

# tap_ok_or_diag STATUS DESCRIPTION DIAGNOSTIC: tap_ok, and the diagnostic
# (what the command printed) under a failure.
tap_ok_or_diag() {
        tap_ok "$1" "$2"
        [ "$1" -eq 0 ] 2>/dev/null || tap_diag "$3"
}

# tcp_probe_function: the text of probe() for scripts that run in a cage
# (they cannot source this file): probe HOST PORT prints the first line a
# TCP server there sends, or "unreachable".
tcp_probe_function() {
        echo 'probe() { timeout 3 bash -c "exec 3<>/dev/tcp/$1/$2 && head -n 1 <&3" 2> /dev/null || echo unreachable; }'
}

# expect_refused NAME PROJECT DESCRIPTION NEEDLE...: alice's
# `sudo nspawn-cage --name NAME PROJECT -- true` fails (not by timeout),
# within 15 s, saying every NEEDLE and echoing no file's content, and
# nothing of cage NAME is left (audit).
expect_refused() {
        _name=$1 _dir=$2 _desc=$3
        shift 3
        _t0=$(date +%s%N)
        as_alice_pty "timeout 60 sudo nspawn-cage --name $_name $_dir -- true"
        _st=$?
        _ms=$(( ($(date +%s%N) - _t0) / 1000000 ))
        _bad=""
        [ $_st = 0 ] && _bad="$_bad exit-0"
        [ $_st = 124 ] && _bad="$_bad timed-out"
        for _needle in "$@"; do printf '%s\n' "$out" | grep -qF -- "$_needle" || _bad="$_bad missing:'$_needle'"; done
        printf '%s\n' "$out" | grep -q 'root:' && _bad="$_bad echoed-content"
        [ $_ms -le 15000 ] || _bad="$_bad slow"
        audit "$_name" > /tmp/audit 2>&1 || _bad="$_bad $(cat /tmp/audit)"
        tap_is "$_bad" "" "$_desc: refused in $_ms ms, nothing left"
        [ -z "$_bad" ] || printf '%s\n' "$out" | tail -n 3 | sed 's/^/# /'
}

# tap_nothing_left DESCRIPTION NAME...: audit every NAME; one TAP line that
# fails with what is left of them.
tap_nothing_left() {
        _desc=$1
        shift
        : > /tmp/audit
        _st=0
        for _n in "$@"; do audit "$_n" >> /tmp/audit 2>&1 || _st=1; done
        tap_ok $_st "$_desc: $(cat /tmp/audit)"
}

# tmux_pane SESSION: the visible text of SESSION's pane, blank lines dropped.
tmux_pane() { tmux capture-pane -p -t "$1" | sed '/^$/d'; }
# tmux_wait SESSION EXTENDED-REGEX [SECONDS]: wait (30 s) until the pane
# shows it; non-zero if it never did.
tmux_wait() {
        for _ in $(seq $(( ${3:-30} * 5 ))); do tmux_pane "$1" | grep -qE -- "$2" && return 0; sleep 0.2; done
        return 1
}
