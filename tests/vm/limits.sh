#!/bin/sh
# The limits of a cage hold (issue 5, VM tier). Real cages, started by the
# installed nspawn-cage as alice through sudo, in a VM whose kernel gives
# cgroup v2 with every controller (tests/vm/run): the unit's properties and
# cgroup files carry the configured values (no MemoryHigh=); an
# allocation of 3x Memory= is OOM-killed inside the cage only and `status`
# counts it (oom.sh: the workloads that grow little by little); Swap=0 keeps the cage out of swap; CPUs=0.5 gives half a CPU;
# `set` changes a running cage's limits (measured) within the administrator's
# maxima; a fork bomb stops at Tasks= and the cage still stops cleanly.
#
# On the machine: skips unless NSPAWN_CAGE_VM=1, root and qemu; then runs
# itself inside the VM (where /etc/nspawn-cage-vm exists). TAP; exit 0.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
export top_srcdir top_builddir

. "$top_srcdir/tests/integration/lib.sh"
in_test_vm "$top_srcdir/tests/vm/limits.sh"

# ---- inside the VM ----

inner_setup
# The administrator's maxima for every layer and for `set`.
mkdir -p /etc/nspawn-cage/nspawn-cage.conf.d
printf '[Policy]\nMaxMemory=1G\nMaxCPUs=2\n' > /etc/nspawn-cage/nspawn-cage.conf.d/vm-limits.conf

. "$top_srcdir/tests/vm/lib.sh"

# ---- the VM itself ----

ctrls=$(cat /sys/fs/cgroup/cgroup.controllers)
missing=
for c in cpu memory pids io; do
	case " $ctrls " in *" $c "*) ;; *) missing="$missing $c" ;; esac
done
tap_is "$(stat -f -c %T /sys/fs/cgroup)${missing}" cgroup2fs "cgroup v2 with cpu, memory, pids and io (has: $ctrls)"
swap_kb=$(awk '$1 == "SwapTotal:" { print $2 }' /proc/meminfo)
[ "${swap_kb:-0}" -gt 0 ]
tap_ok $? "the VM has swap (SwapTotal ${swap_kb:-0} kB), so Swap=0 means something"

# Control: without a swap limit, a unit over its MemoryMax= does swap here.
systemd-run --quiet --unit=swapctl -p MemoryMax=64M -p MemorySwapMax=infinity \
	sh -c '{ head -c 120M /dev/zero; sleep 30; } | tail > /dev/null'
peak=0
for _ in $(seq 100); do
	v=$(cat /sys/fs/cgroup/system.slice/swapctl.service/memory.swap.current 2> /dev/null || echo 0)
	[ "$v" -gt "$peak" ] && peak=$v
	[ "$peak" -gt $((32 * MiB)) ] && break
	sleep 0.2
done
systemctl stop swapctl.service 2> /dev/null
tap_ok $((peak <= 0)) "control: a unit with MemoryMax=64M and no swap limit swaps ($((peak / MiB)) MiB)"

# ---- policy: the project may not ask for more than the administrator allows ----

printf '[Limits]\nMemory=2G\n' > /home/alice/project/.nspawn-cage.conf
chown alice:alice /home/alice/project/.nspawn-cage.conf
as_alice "sudo nspawn-cage --name pol --keep ~/project -- true"
st=$?
case $st:$out in
0:*) r=1 ;;
*".nspawn-cage.conf:2"*"Memory=2G"*"1G"*) r=0 ;;
*) r=1 ;;
esac
tap_ok $r "a project asking Memory=2G over the administrator's MaxMemory=1G is refused, naming file and line" || tap_diag "exit $st: $out"
audit pol > /tmp/audit 2>&1
tap_ok $? "and nothing of the refused cage is left: $(cat /tmp/audit)"
rm -f /home/alice/project/.nspawn-cage.conf

# ---- cage "lim": Memory=256M Swap=0 CPUs=0.5 Tasks=64 ----

user_limits Memory=256M Swap=0 CPUs=0.5 Tasks=64
if ! start_cage lim; then
	tap_diag "$(journalctl -n 30 --no-pager 2>&1)"
	tap_done
	exit 0
fi
CG=$(cg lim)

tap_is "$(limits_now lim)" "CPUQuotaPerSecUSec=500ms MemoryHigh=infinity MemoryMax=268435456 MemorySwapMax=0 TasksMax=64 | memory.max=268435456 memory.high=max memory.swap.max=0 cpu.max=50000 100000 pids.max=64" \
	"the unit's properties (systemctl show) and its cgroup files ($CG) hold the limits"

# -- memory: 3x Memory= in one allocation is OOM-killed in the cage, and only there --
sleep 1000 &
sentinel=$!
oom_cage0=$(field "$CG/memory.events" oom_kill)
oom_all0=$(awk '$1 == "oom_kill" { print $2 }' /proc/vmstat)
leader0=$(machinectl show lim -p Leader --value)
# dd reads 768 MiB from /dev/zero into one buffer: one system call; the
# cgroup reaches MemoryMax= and its OOM killer acts.
t0=$(date +%s)
su alice -c "sudo nspawn-cage shell lim -- sh -c 'dd if=/dev/zero of=/dev/null bs=768M count=1; echo dd-status=\$?'" \
	< /dev/null > /tmp/dd.out 2>&1 &
dd=$!
watch_memory "$CG" 240 "$dd"
kill $dd 2> /dev/null
wait $dd
dd_time=$(($(date +%s) - t0))
oom_cage=$(($(field "$CG/memory.events" oom_kill) - oom_cage0))
oom_all=$(($(awk '$1 == "oom_kill" { print $2 }' /proc/vmstat) - oom_all0))
tr -d '\r' < /tmp/dd.out | grep -q 'dd-status=137'
tap_ok $? "dd of 768 MiB (3x Memory=) in the cage is killed by SIGKILL (${dd_time} s)" || tap_diag "$(tr -d '\r' < /tmp/dd.out | tail -n 5)"
[ "$oom_cage" -gt 0 ]
tap_ok $? "by the OOM killer of the cage's cgroup (memory.events oom_kill +$oom_cage)"
# /proc/vmstat's oom_kill counts every OOM kill, of a memory cgroup or of
# the whole machine: none may have happened outside the cage.
tap_is "$oom_all" "$oom_cage" "no OOM kill outside the cage (/proc/vmstat oom_kill +$oom_all)"
kill -0 $sentinel 2> /dev/null
tap_ok $? "a sentinel process of the VM, outside the cage, survives"
kill $sentinel
[ "$mem_peak" -le $((256 * MiB)) ]
tap_ok $? "the cage's memory.current never went above Memory= (peak $((mem_peak / MiB)) MiB)"
tap_is "$swap_peak $(cat "$CG/memory.swap.current")" "0 0" "Swap=0: the cage never used swap (memory.swap.current)"
leader=$(machinectl show lim -p Leader --value)
alive=$(cage_alive lim)
[ "$leader" = "$leader0" ] && [ -z "$alive" ]
tap_ok $? "the cage's PID 1 survives ($leader0 -> $leader); nspawn-cage shell and machinectl shell still work${alive:+: $alive}"

# -- status reports the OOM kills --
ooms=$(field "$CG/memory.events" oom_kill)
nspawn-cage status lim > /tmp/status 2>&1
grep -Eq "^ *oom kills: $ooms\$" /tmp/status
tap_ok $? "nspawn-cage status lim reports $ooms OOM kill(s)" || tap_diag "$(cat /tmp/status)"
json=$(nspawn-cage status --json lim 2> /dev/null | jq -c '[.oom_kills, .memory_max, .cpu_quota_per_sec_usec, .tasks_max]' 2>&1)
tap_is "$json" "[$ooms,268435456,500000,64]" "status --json: oom_kills, memory_max, cpu_quota_per_sec_usec, tasks_max"

# -- CPU: CPUs=0.5 gives half a CPU to 4 busy processes --
cpu_run lim
expect=$((wall_us / 2))
[ "$busy" -ge 4 ] && within 20 "$used_us" "$expect"
tap_ok $? "CPUs=0.5: 4 busy processes got $(ms $used_us) of CPU in $(ms $wall_us) (half: $(ms $expect) +-20%)"
[ "$throttled" -gt 0 ]
tap_ok $? "and were throttled (cpu.stat nr_throttled +$throttled)"
lim_used=$used_us

# -- set: beyond the administrator's maxima is refused --
before=$(limits_now lim)
as_alice "sudo nspawn-cage set lim Memory=2G"
st=$?
case $st:$out in 0:*) r=1 ;; *"MaxMemory=1G"*) r=0 ;; *) r=1 ;; esac
tap_ok $r "set lim Memory=2G is refused: the administrator's MaxMemory=1G" || tap_diag "exit $st: $out"
as_alice "sudo nspawn-cage set lim CPUs=3"
st=$?
case $st:$out in 0:*) r=1 ;; *"MaxCPUs=2"*) r=0 ;; *) r=1 ;; esac
tap_ok $r "set lim CPUs=3 is refused: the administrator's MaxCPUs=2" || tap_diag "exit $st: $out"
tap_is "$(limits_now lim)" "$before" "the refused sets changed nothing"

# -- set: a running cage's limits change, and the change shows --
as_alice "sudo nspawn-cage set lim CPUs=1 Memory=384M Tasks=80"
tap_ok $? "set lim CPUs=1 Memory=384M Tasks=80 succeeds" || tap_diag "$out"
tap_is "$(limits_now lim)" "CPUQuotaPerSecUSec=1s MemoryHigh=infinity MemoryMax=402653184 MemorySwapMax=0 TasksMax=80 | memory.max=402653184 memory.high=max memory.swap.max=0 cpu.max=100000 100000 pids.max=80" \
	"the unit's properties and cgroup files hold the new limits"
cpu_run lim
expect=$wall_us
[ "$busy" -ge 4 ] && within 20 "$used_us" "$expect"
tap_ok $? "CPUs=1: the same 4 processes now get $(ms $used_us) of CPU in $(ms $wall_us) (one CPU +-20%; was $(ms $lim_used))"
oom0=$(field "$CG/memory.events" oom_kill)
as_alice "sudo nspawn-cage shell lim -- sh -c 'dd if=/dev/zero of=/dev/null bs=288M count=1 2>&1; echo dd-status=\$?'"
echo "$out" | grep -q 'dd-status=0'
tap_ok $? "Memory=384M: a 288 MiB allocation, over the old 256M, now succeeds (oom_kill +$(($(field "$CG/memory.events" oom_kill) - oom0)))" || tap_diag "$out"

# -- tasks: a fork bomb stops at Tasks= (80 since the set above) --
# Its messages go to a file of the project: what it prints on the terminal
# did not reach nspawn-cage shell's output while the bomb held every task.
err=/home/alice/project/bomb.err
rm -f $err
su alice -c "sudo nspawn-cage shell lim -- bash -c 'exec 2> $err; b() { b | b & }; b; exec sleep 120'" < /dev/null > /tmp/bomb.out 2>&1 &
bomb=$!
pmax=0
for _ in $(seq 150); do
	v=$(cat "$CG/pids.current")
	[ "$v" -gt "$pmax" ] && pmax=$v
	[ "$(subtree_sum "$CG" pids.events max)" -gt 0 ] && [ "$pmax" -ge 70 ] && break
	sleep 0.2
done
for _ in $(seq 10); do
	v=$(cat "$CG/pids.current")
	[ "$v" -gt "$pmax" ] && pmax=$v
	sleep 0.2
done
ev=$(subtree_sum "$CG" pids.events max)
[ "$ev" -gt 0 ]
tap_ok $? "a fork bomb in the cage hits the limit (pids.events max +$ev in the cage's cgroups)"
tap_ok $((pmax > 80)) "the cage never held more than 80 tasks (peak pids.current $pmax)"
grep -q 'fork.*Resource temporarily unavailable' $err
tap_ok $? "inside, fork fails with EAGAIN ($(grep -c 'Resource temporarily unavailable' $err) times 'fork: Resource temporarily unavailable')" || tap_diag "$(head -n 5 $err)"
t0=$(date +%s)
forks=0
for _ in $(seq 200); do /bin/true && forks=$((forks + 1)); done
tap_is "$forks" 200 "meanwhile the VM outside the cage keeps forking (200 processes in $(($(date +%s) - t0)) s)"
t0=$(date +%s)
as_alice "sudo nspawn-cage stop lim"
st=$?
tap_ok $st "nspawn-cage stop stops the bombed cage ($(($(date +%s) - t0)) s)" || tap_diag "$out"
for _ in $(seq 50); do kill -0 $bomb 2> /dev/null || break; sleep 0.2; done
kill -0 $bomb 2> /dev/null
tap_ok $((!$?)) "the nspawn-cage shell that ran the bomb ends with the cage: $(tr -d '\r' < /tmp/bomb.out | tail -n 1)"
kill $bomb 2> /dev/null
wait $bomb 2> /dev/null
rm -f $err
audit lim > /tmp/audit 2>&1
tap_ok $? "after stop nothing of cage lim is left: $(cat /tmp/audit)"

# ---- cage "free": CPUs=2 (all of the VM's), the same 4 busy processes ----

user_limits CPUs=2
if start_cage free; then
	cpu_run free
	[ "$used_us" -ge $((wall_us * 9 / 10)) ] && [ "$used_us" -ge $((lim_used * 3 / 2)) ]
	tap_ok $? "CPUs=2: the same 4 processes got $(ms $used_us) of CPU in $(ms $wall_us) (at least one CPU, and 1.5x the limited cage's $(ms $lim_used))"
	as_alice "sudo nspawn-cage stop free"
	audit free > /tmp/audit 2>&1
	tap_ok $? "cage free stops, nothing left: $(cat /tmp/audit)"
fi
left=$(pgrep -a -f 'nspawn-cage (shell|stop|--name)')
tap_is "$left" "" "no nspawn-cage process is left"
rm -f /home/alice/.config/nspawn-cage/config /etc/nspawn-cage/nspawn-cage.conf.d/vm-limits.conf
tap_done
