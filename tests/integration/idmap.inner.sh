#!/bin/sh
# Runs inside the test host (see idmap.sh). Cages started by the real
# `sudo nspawn-cage`, checked from the host: who owns what the agent and cage
# root leave in the project, the uid maps, two cages' ranges, the overlayfs
# refusal, and that stop and kill -9 + gc leave nothing.
set -u
. "$top_srcdir/tests/integration/lib.sh"
inner_setup

# /var/tmp is ext4 in the test host; / (so /srv) is overlayfs.
P=/var/tmp/idmap-project
P2=/var/tmp/idmap-project2
OVL=/srv/idmap-overlay
LOCKS=/run/systemd/nspawn-uid
EOVF='Value too large for defined data type'
for n in idm idm2 idmk bad1 idb idr idv; do nspawn-cage stop "$n" > /dev/null 2>&1; done
rm -rf "$P" "$P2" "$OVL"
install -d -o alice -g alice "$P" "$P2" "$OVL"
install -m 0644 /dev/null "$P/hostroot"

base_of() { sed -n 's/^uid_base=//p' "/var/lib/nspawn-cage/cages/$1/cage.record" 2> /dev/null; }
map_of() { tr -s ' ' < "/proc/$1/uid_map" | sed 's/^ //'; }

# 1. A kept cage on an ext4 project.
t0=$(date +%s%N)
as_alice_pty "sudo nspawn-cage --keep --name idm $P -- true"
st=$?
t1=$(date +%s%N)
tap_is "$st" 0 "sudo nspawn-cage --keep starts cage idm on $P ($(( (t1 - t0) / 1000000 )) ms)" || tap_diag "$out"
leader=$(machinectl show idm -p Leader --value 2> /dev/null)
BASE=$(base_of idm)
tap_ok $([ -n "$BASE" ] && [ "$BASE" -ge 524288 ] && [ $((BASE % 65536)) = 0 ]; echo $?) "its record names a 64K-aligned range in nspawn's container range ($BASE)"
tap_is "$(map_of "$leader")" "0 $BASE 65536" "from the host, the cage's uid_map is '0 $BASE 65536': neither host root nor alice (1000) is mapped"
tap_is "$(sed -n 's/^Uid:\t//p' "/proc/$leader/status" | cut -f1)" "$BASE" "cage root (its PID 1) is host uid $BASE, not 0"
tap_is "$(grep -c "^nspawn-cage idm\$" "$LOCKS/$BASE" 2> /dev/null)" 1 "the range's lock file $LOCKS/$BASE is there, held by the running unit"
grep -q " $P \| /var/lib/nspawn-cage/cages/idm/mnt" /proc/self/mountinfo
tap_ok $((! $?)) "no staging mount is left on the host once the cage runs"

# 2. The agent, seen from the host while it runs.
su alice -c "sudo nspawn-cage shell idm -- sh -c 'touch agent-file && mkdir agent-dir && exec sleep 31.7'" < /dev/null > /tmp/agent.log 2>&1 &
shell_pid=$!
agent=$(pgrep_wait '^sleep 31.7')
st=$(sed -n 's/^\(Uid\|NoNewPrivs\|Seccomp\|CapEff\):\t//p' "/proc/$agent/status" 2> /dev/null | cut -f1 | tr '\n' ' ')
tap_is "$st" "$((BASE + 1000)) 0000000000000000 1 2 " "the agent is host uid $((BASE + 1000)) (not 0, not 1000), no capabilities, NoNewPrivs, seccomp"
tap_is "$(map_of "$agent")" "0 $BASE 65536" "the agent's uid_map is the cage's"
tap_is "$(stat -c %u:%g "$P/agent-file" "$P/agent-dir" 2>&1 | tr '\n' ' ')" "1000:1000 1000:1000 " \
        "a file and a directory the agent made are alice's (1000:1000) on the host"
kill "$agent" 2> /dev/null
wait "$shell_pid"

# 3. Cage root (nsenter into every namespace of the cage, its user namespace too).
croot() { nsenter -t "$leader" -a /bin/sh -c "cd $P && $1" 2>&1; }
out=$(croot 'touch root-file')
tap_is "$([ -e "$P/root-file" ] && stat -c %u "$P/root-file" || echo absent) $(printf %s "$out" | grep -c "$EOVF")" "absent 1" \
        "cage root cannot create a file in the project (EOVERFLOW): nothing root-owned appears"
out=$(croot 'chown 0:0 agent-file')
tap_is "$(stat -c %u:%g "$P/agent-file") $(printf %s "$out" | grep -c "$EOVF")" "1000:1000 1" "cage root cannot chown alice's file to root (EOVERFLOW); it stays 1000:1000"
croot 'chown 1000:1000 agent-file' > /dev/null
tap_ok $? "cage root may chown to alice's own ids"
out=$(croot 'echo x >> hostroot')
tap_is "$(stat -c %s "$P/hostroot") $(printf %s "$out" | grep -c 'Permission denied')" "0 1" "cage root cannot write a host-root file of the project"
out=$(croot 'mount -o remount,bind,suid '"$P")
tap_ok $(awk -v p="$P" '$5 == p { print $6 }' "/proc/$leader/mountinfo" | grep -qw nosuid; echo $?) "cage root cannot remount the project suid"

# 4. Set-uid: the agent's copy of a binary, made set-uid/set-gid; cage root's attempt at a root one.
as_alice_pty "sudo nspawn-cage shell idm -- sh -c 'cp /bin/id idcopy && chmod 6755 idcopy && ls -ln idcopy'"
croot 'cp /bin/id rootcopy; chmod 4755 rootcopy' > /dev/null
tap_is "$(stat -c '%u:%g %a' "$P/idcopy") $([ -e "$P/rootcopy" ] && echo rootcopy || echo none)" "1000:1000 555 none" \
        "the agent's chmod 6755 is refused (RestrictSUIDSGID=, issue 14); cage root could not make a root one"
bad=$(find "$P" -mindepth 1 \( -perm /6000 \( -uid 0 -o -gid 0 \) \) -o \( ! -uid 1000 ! -name hostroot \) -printf '%p %U:%G %m\n')
tap_is "$bad" "" "on the host nothing the cage made is owned by anyone but alice, and no set-uid/set-gid file is root's"
out=$(su alice -c "$P/idcopy -u" 2>&1)
tap_is "$out" 1000 "run by alice on the host, the set-uid copy runs as alice"

# 5. Two cages at once: distinct ranges.
as_alice_pty "sudo nspawn-cage --keep --name idm2 $P2 -- true"
tap_is "$?" 0 "a second cage idm2 starts while idm runs" || tap_diag "$out"
BASE2=$(base_of idm2)
leader2=$(machinectl show idm2 -p Leader --value 2> /dev/null)
tap_ok $([ -n "$BASE2" ] && [ "$BASE2" != "$BASE" ] && [ "$(map_of "$leader2")" = "0 $BASE2 65536" ]; echo $?) \
        "its range differs ($BASE2 vs $BASE), as its uid_map shows"

# 6. The machinectl way in still works, as alice.
who=$(machinectl shell alice@idm /bin/sh -c "id -u; touch $P/shell-file" 2> /dev/null | tr -d '\r' | grep -x '[0-9]*' | tail -n 1)
tap_is "$who $(stat -c %u "$P/shell-file" 2>&1)" "1000 1000" "machinectl shell alice@idm runs as 1000; its file is alice's"

# 7. Stop: nothing left, the lock file neither.
as_alice_pty "sudo nspawn-cage stop idm"
st=$?
audit idm > /tmp/audit 2>&1
tap_ok $([ $st = 0 ] && [ ! -e "$LOCKS/$BASE" ]; echo $?) "after stop nothing of idm is left, nor $LOCKS/$BASE: $(cat /tmp/audit)"
as_alice_pty "sudo nspawn-cage stop idm2"
audit idm2 > /tmp/audit 2>&1
a=$?
tap_ok $([ $a = 0 ] && [ ! -e "$LOCKS/$BASE2" ]; echo $?) "idm2 too: $(cat /tmp/audit)"
tap_is "$(stat -c %u "$P/agent-file")" 1000 "the project's files stay, alice's"

# 8. kill -9 of the helper (while it mounts and starts, and once booted), then gc.
for delay in record boot; do
        su alice -c "sudo nspawn-cage --name idmk $P -- sleep 60" < /dev/null > /tmp/k9.log 2>&1 &
        # record: the range is picked and recorded, the staging mount about to
        # be made or made, the unit not yet started or booting.
        for _ in $(seq 300); do
                if [ "$delay" = boot ]; then machinectl list --no-legend | grep -qw idmk && break
                else [ -n "$(base_of idmk)" ] && break; fi
                sleep 0.05
        done
        kb=$(base_of idmk)
        kill9_gc idmk
        a=$? st=$gc_status
        left=$(grep -lsx "nspawn-cage idmk" "$LOCKS"/* | tr '\n' ' ')
        tap_ok $([ $a = 0 ] && [ -z "$left" ] && ! grep -q "/cages/idmk/" /proc/self/mountinfo; echo $?) \
                "kill -9 at '$delay' (range ${kb:-not yet picked}), then gc (exit $st): nothing left $(cat /tmp/audit) $left" || sed 's/^/# /' /tmp/gc.log
done

# 9. A project on overlayfs: refused, naming the file system and the fix; nothing made.
as_alice_pty "sudo nspawn-cage --name bad1 $OVL -- true"
st=$?
printf '%s\n' "$out" | grep -q "project $OVL is on overlay (mounted at /), which does not support idmapped mounts"
found=$?
audit bad1 > /tmp/audit 2>&1
a=$?
tap_ok $([ $st != 0 ] && [ $found = 0 ] && [ $a = 0 ] && ! ls "$LOCKS" | grep -q .; echo $?) "a project on overlayfs is refused with the file system named: $(printf '%s\n' "$out" | grep -m1 overlay)"
printf '%s\n' "$out" | grep -q "move it to a local file system that supports them"
tap_ok $? "and the message says what to do"

# 10. Bind sources (promise 2): opened along no link as alice, checked on
# the fd and staged from it; the .nspawn file names staging paths only.
UCONF=/home/alice/.config/nspawn-cage/config
PROBE="$top_builddir/tests/integration/adv-probe"
CANARY="/etc/nspawn-cage-canary-$$"
R=/home/alice/race
RO=/srv/idmap-bind-ro
ROR=/srv/idmap-race
install -d -o alice -g alice /home/alice/.config /home/alice/.config/nspawn-cage
[ -f "$UCONF" ] && cp "$UCONF" /tmp/idmap-uconf.saved
rm -rf "$R" "$RO" "$ROR" /home/alice/via
echo canary > "$CANARY"
install -d -m 0755 "$RO"
echo overlay-content > "$RO/hello"
install -d -o alice -g alice "$R" "$R/src" "$ROR" "$ROR/src"
su alice -c "touch $R/src/real-marker $ROR/src/real-marker && ln -s /etc $R/alt && ln -s /etc $ROR/alt && ln -s $R /home/alice/via"

# (a) A read-only bind from overlayfs (no idmapped mounts there).
write_user_config "[Files]\nBindReadOnly=$RO:/mnt/ro\n"
as_alice_pty "sudo nspawn-cage --keep --name idb $P -- true"
st=$?
nsp=$(grep '/mnt/ro$' /run/systemd/nspawn/idb.nspawn 2> /dev/null)
tap_ok $([ $st = 0 ] && printf '%s\n' "$nsp" | grep -qx "BindReadOnly=/var/lib/nspawn-cage/cages/idb/mnt/bind-[0-9]*:/mnt/ro"; echo $?) \
        "a user BindReadOnly= from overlayfs is named in the .nspawn file by its root-owned staging path: $nsp" || tap_diag "$out"
as_alice_pty "sudo nspawn-cage shell idb -- sh -c 'cat /mnt/ro/hello; touch /mnt/ro/x'"
tap_ok $(printf '%s\n' "$out" | grep -qx overlay-content && [ ! -e "$RO/x" ]; echo $?) "its content is seen in the cage, read-only" || tap_diag "$out"
as_alice_pty "sudo nspawn-cage stop idb"
tap_nothing_left "after stop nothing of idb is left" idb

# (b) The race: a source trades places with a link to /etc (renameat2
# RENAME_EXCHANGE, as alice, nonstop) while a cage starts; odd starts race
# the writable bind (ext4), even ones the read-only one (overlayfs, staged
# as a plain clone; bound by its path before).
write_user_config "[Files]\nBind=$R/src:/mnt/race\nBindReadOnly=$ROR/src:/mnt/race-ro\n"
ok=0 refused=0 bad=0
for i in 1 2 3 4 5 6 7 8; do
        d=$R; [ $((i % 2)) = 0 ] && d=$ROR
        setpriv --reuid=alice --regid=alice --init-groups "$PROBE" exchange "$d/src" "$d/alt" 300 > /dev/null 2>&1 &
        x=$!
        as_alice_pty "sudo nspawn-cage --name idr $P -- sh -c 'ls /mnt/race; echo --; ls /mnt/race-ro'"
        st=$?
        kill "$x" 2> /dev/null
        wait "$x" 2> /dev/null
        [ -L "$d/src" ] && su alice -c "rm $d/src && mv $d/alt $d/src && ln -s /etc $d/alt"
        if printf '%s\n' "$out" | grep -q "${CANARY#/etc/}"; then bad=$((bad + 1)); tap_diag "start $i showed /etc: $out"
        elif [ $st = 0 ] && [ "$(printf '%s\n' "$out" | grep -cx real-marker)" = 2 ]; then ok=$((ok + 1))
        elif [ $st != 0 ] && printf '%s\n' "$out" | grep -q "$UCONF:[23]: Bind.*: a symbolic link is on its path"; then refused=$((refused + 1))
        else bad=$((bad + 1)); tap_diag "start $i (exit $st): $out"; fi
        audit idr > /tmp/audit 2>&1 || { bad=$((bad + 1)); tap_diag "start $i left: $(cat /tmp/audit)"; }
done
tap_is "$bad" 0 "8 starts while a source swaps with a link to /etc: $ok ran with the real directories, $refused refused naming the line; /etc never seen, nothing left"

# (c) A link as an intermediate component.
write_user_config "[Files]\n\nBindReadOnly=/home/alice/via/src:/mnt/via\n"
as_alice_pty "sudo nspawn-cage --name idv $P -- true"
st=$?
audit idv > /tmp/audit 2>&1
a=$?
msg="$UCONF:3: BindReadOnly=/home/alice/via/src:/mnt/via: source /home/alice/via/src: a symbolic link is on its path"
tap_ok $([ $st != 0 ] && [ $a = 0 ] && printf '%s\n' "$out" | grep -qF "$msg"; echo $?) \
        "a link in the middle of a user bind source is refused, naming file and line: $(printf '%s\n' "$out" | grep -m1 'symbolic link')"

if [ -f /tmp/idmap-uconf.saved ]; then mv /tmp/idmap-uconf.saved "$UCONF"; else rm -f "$UCONF"; fi
rm -rf "$R" "$RO" "$ROR" /home/alice/via "$CANARY"

rm -rf "$P" "$P2" "$OVL"
tap_done
