#!/bin/sh
# The limits of a cage hold (issue 5, VM tier). Real cages, started by
# nspawn-cage as alice through sudo, in a VM whose kernel gives cgroup v2
# with every controller (tests/vm/run): the unit's properties and cgroup
# files carry the configured values, and memory, swap, CPU and tasks limits
# are enforced: an allocation of 3x Memory= is OOM-killed inside the cage
# only, Swap=0 keeps the cage out of swap, CPUs=0.5 gives half a CPU, and a
# fork bomb stops at Tasks=.
#
# On the machine: skips unless NSPAWN_CAGE_VM=1, root and qemu; then runs
# itself inside the VM (where /etc/nspawn-cage-vm exists). TAP; exit 0.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
export top_srcdir top_builddir

if [ ! -e /etc/nspawn-cage-vm ]; then
	. "$top_srcdir/tests/testhost/lib.sh"
	[ "${NSPAWN_CAGE_VM:-0}" = 1 ] || tap_skip_all "VM tier: set NSPAWN_CAGE_VM=1 to boot the test VM (qemu, TCG; minutes)"
	[ "$(id -u)" = 0 ] || tap_skip_all "VM tier: needs root to boot the test VM"
	command -v qemu-system-x86_64 > /dev/null || tap_skip_all "VM tier: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86 qemu-utils)"
	[ -x "$top_builddir/nspawn-cage/nspawn-cage" ] || tap_skip_all "VM tier: nspawn-cage is not built"
	if ! out=$("$top_srcdir/tests/vm/run" -- true 2>&1); then
		echo "1..1"
		echo "not ok 1 - the test VM boots"
		printf '%s\n' "$out" | tail -n 30 | sed 's/^/# /'
		exit 0
	fi
	exec "$top_srcdir/tests/vm/run" -- env top_srcdir="$top_srcdir" top_builddir="$top_builddir" sh "$top_srcdir/tests/vm/limits.sh"
fi

# ---- inside the VM ----

. "$top_srcdir/tests/integration/lib.sh"
inner_setup

MiB=1048576
now_us() { echo $(($(date +%s%N) / 1000)); }

# as_alice CMD: one shell string, run as alice (no terminal); stdout+stderr
# in $out (carriage returns of the cage's pseudo-terminal removed).
as_alice() {
	su alice -c "$1" < /dev/null > /tmp/alice.out 2>&1
	_st=$?
	out=$(tr -d '\r' < /tmp/alice.out)
	return $_st
}

# user_limits KEY=VALUE...: alice's ~/.config/nspawn-cage/config, [Limits].
user_limits() {
	install -d -o alice -g alice /home/alice/.config /home/alice/.config/nspawn-cage
	{
		echo "[Limits]"
		for kv in "$@"; do echo "$kv"; done
	} > /home/alice/.config/nspawn-cage/config
	chown alice:alice /home/alice/.config/nspawn-cage/config
}

# start_cage NAME: a kept cage on ~/project, through sudo as alice.
start_cage() {
	t0=$(date +%s)
	as_alice "sudo nspawn-cage --name $1 --keep ~/project -- true"
	_st=$?
	tap_ok $_st "cage $1 starts as alice through sudo ($(($(date +%s) - t0)) s)" || tap_diag "$out"
	return $_st
}

# cg NAME: the cage unit's cgroup directory.
cg() {
	echo "/sys/fs/cgroup$(systemctl show -p ControlGroup --value "nspawn-cage-$1.service")"
}

# field FILE KEY: the value of KEY in a flat-keyed cgroup file.
field() {
	awk -v k="$2" '$1 == k { print $2; f = 1 } END { if (!f) print "missing" }' "$1" 2> /dev/null
}

# cage_alive NAME: its unit is active, machined has it running, and a
# command runs in it.
cage_alive() {
	[ "$(systemctl is-active "nspawn-cage-$1.service")" = active ] &&
		[ "$(machinectl show "$1" -p State --value 2> /dev/null)" = running ] &&
		as_alice "sudo nspawn-cage shell $1 -- true"
}

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

# ---- cage "lim": Memory=256M Swap=0 CPUs=0.5 Tasks=64 ----

user_limits Memory=256M Swap=0 CPUs=0.5 Tasks=64
if ! start_cage lim; then
	tap_skip "cage lim did not start" 14
	tap_done
fi
CG=$(cg lim)

props=$(systemctl show nspawn-cage-lim.service -p MemoryMax -p MemoryHigh -p MemorySwapMax -p CPUQuotaPerSecUSec -p TasksMax | sort | tr '\n' ' ')
tap_is "$props" "CPUQuotaPerSecUSec=500ms MemoryHigh=251658240 MemoryMax=268435456 MemorySwapMax=0 TasksMax=64 " \
	"the unit's properties hold the configured limits"
files="memory.max=$(cat "$CG/memory.max") memory.high=$(cat "$CG/memory.high") memory.swap.max=$(cat "$CG/memory.swap.max") cpu.max=$(cat "$CG/cpu.max") pids.max=$(cat "$CG/pids.max")"
tap_is "$files" "memory.max=268435456 memory.high=251658240 memory.swap.max=0 cpu.max=50000 100000 pids.max=64" \
	"the cgroup files of $CG hold them"

# -- memory: 3x Memory= is OOM-killed in the cage, and only there --
sleep 1000 &
sentinel=$!
oom_cage0=$(field "$CG/memory.events" oom_kill)
oom_all0=$(awk '$1 == "oom_kill" { print $2 }' /proc/vmstat)
leader0=$(machinectl show lim -p Leader --value)
su alice -c "sudo nspawn-cage shell lim -- sh -c 'head -c 768M /dev/zero | tail > /dev/null; echo tail-status=\$?'" \
	< /dev/null > /tmp/hog.out 2>&1 &
hog=$!
swap_peak=0
mem_peak=0
t0=$(date +%s)
while kill -0 $hog 2> /dev/null && [ $(($(date +%s) - t0)) -lt 240 ]; do
	v=$(cat "$CG/memory.swap.current")
	[ "$v" -gt "$swap_peak" ] && swap_peak=$v
	v=$(cat "$CG/memory.current")
	[ "$v" -gt "$mem_peak" ] && mem_peak=$v
	sleep 0.2
done
kill $hog 2> /dev/null
wait $hog
hog_time=$(($(date +%s) - t0))
oom_cage=$(($(field "$CG/memory.events" oom_kill) - oom_cage0))
oom_all=$(($(awk '$1 == "oom_kill" { print $2 }' /proc/vmstat) - oom_all0))
tr -d '\r' < /tmp/hog.out | grep -q 'tail-status=137'
tap_ok $? "a 768 MiB allocation in the cage is killed by SIGKILL (${hog_time} s)" || tap_diag "$(tr -d '\r' < /tmp/hog.out | tail -n 5)"
[ "$oom_cage" -gt 0 ]
tap_ok $? "the OOM kill happened in the cage's cgroup (memory.events oom_kill +$oom_cage)"
# /proc/vmstat's oom_kill counts every OOM kill, of a memory cgroup or of
# the whole machine: none may have happened outside the cage.
tap_is "$oom_all" "$oom_cage" "no OOM kill outside the cage (/proc/vmstat oom_kill +$oom_all)"
kill -0 $sentinel 2> /dev/null
tap_ok $? "a process of the VM outside the cage survives"
kill $sentinel
[ "$mem_peak" -le $((256 * MiB)) ]
tap_ok $? "the cage's memory.current never went above Memory= (peak $((mem_peak / MiB)) MiB)"
tap_is "$swap_peak $(cat "$CG/memory.swap.current")" "0 0" "Swap=0: the cage never used swap (memory.swap.current)"
[ "$(machinectl show lim -p Leader --value)" = "$leader0" ] && cage_alive lim
tap_ok $? "the cage's PID 1 survives and the cage still runs commands"

# -- CPU: CPUs=0.5 gives half a CPU to 4 busy processes --
# cpu_run NAME: 4 busy loops in cage NAME; measures 5 s of the unit's
# cpu.stat once all 4 run. Sets used_us, wall_us, throttled.
cpu_run() {
	su alice -c "sudo nspawn-cage shell $1 -- sh -c 'for i in 1 2 3 4; do timeout 15 sh -c \"while :; do :; done\" & done; wait'" \
		< /dev/null > /tmp/cpu.out 2>&1 &
	_job=$!
	_cg=$(cg "$1")
	for _ in $(seq 100); do
		_n=0
		for _p in $(cat "$_cg"/cgroup.procs "$_cg"/*/cgroup.procs "$_cg"/*/*/cgroup.procs "$_cg"/*/*/*/cgroup.procs "$_cg"/*/*/*/*/cgroup.procs 2> /dev/null); do
			[ "$(cat /proc/$_p/comm 2> /dev/null)" = timeout ] && _n=$((_n + 1))
		done
		[ $_n -ge 4 ] && break
		sleep 0.2
	done
	sleep 1
	_u0=$(field "$_cg/cpu.stat" usage_usec)
	_t0=$(field "$_cg/cpu.stat" nr_throttled)
	_w0=$(now_us)
	sleep 5
	_u1=$(field "$_cg/cpu.stat" usage_usec)
	_t1=$(field "$_cg/cpu.stat" nr_throttled)
	_w1=$(now_us)
	used_us=$((_u1 - _u0))
	wall_us=$((_w1 - _w0))
	throttled=$((_t1 - _t0))
	busy=$_n
	wait $_job
}
cpu_run lim
expect=$((wall_us / 2))
[ "$busy" -ge 4 ] && [ "$used_us" -ge $((expect * 8 / 10)) ] && [ "$used_us" -le $((expect * 12 / 10)) ]
tap_ok $? "CPUs=0.5: 4 busy processes got $((used_us / 1000)) ms of CPU in $((wall_us / 1000)) ms (half: $((expect / 1000)) ms +-20%; $busy running)"
[ "$throttled" -gt 0 ]
tap_ok $? "and were throttled (cpu.stat nr_throttled +$throttled)"
lim_used=$used_us

# -- tasks: a fork bomb stops at Tasks=64 --
su alice -c "sudo nspawn-cage shell lim -- bash -c 'b() { b | b & }; b; exec sleep 120'" < /dev/null > /tmp/bomb.out 2>&1 &
bomb=$!
pmax=0
for _ in $(seq 150); do
	v=$(cat "$CG/pids.current")
	[ "$v" -gt "$pmax" ] && pmax=$v
	[ "$(field "$CG/pids.events" max)" -gt 0 ] 2> /dev/null && [ "$pmax" -ge 60 ] && break
	sleep 0.2
done
sleep 2
for _ in 1 2 3 4 5; do
	v=$(cat "$CG/pids.current")
	[ "$v" -gt "$pmax" ] && pmax=$v
	sleep 0.2
done
ev=$(field "$CG/pids.events" max)
[ "$ev" -gt 0 ] 2> /dev/null
tap_ok $? "a fork bomb in the cage hits the limit (pids.events max $ev)"
tap_ok $((pmax > 64)) "the cage never held more than 64 tasks (peak pids.current $pmax)"
t0=$(date +%s)
forks=0
for _ in $(seq 200); do /bin/true && forks=$((forks + 1)); done
tap_is "$forks" 200 "meanwhile the VM outside the cage keeps forking (200 processes in $(($(date +%s) - t0)) s)"
t0=$(date +%s)
as_alice "sudo nspawn-cage stop lim"
st=$?
tap_ok $st "nspawn-cage stop stops the bombed cage ($(($(date +%s) - t0)) s)" || tap_diag "$out"
kill $bomb 2> /dev/null
wait $bomb 2> /dev/null
audit lim > /tmp/audit 2>&1
tap_ok $? "after stop nothing of cage lim is left: $(cat /tmp/audit)"

# ---- cage "free": CPUs=2 (the default), the same 4 busy processes ----

user_limits CPUs=2
if start_cage free; then
	cpu_run free
	[ "$used_us" -ge $((wall_us * 9 / 10)) ] && [ "$used_us" -ge $((lim_used * 3 / 2)) ]
	tap_ok $? "CPUs=2: the same 4 processes got $((used_us / 1000)) ms of CPU in $((wall_us / 1000)) ms (at least one CPU, and 1.5x the limited cage's $((lim_used / 1000)) ms)"
	as_alice "sudo nspawn-cage stop free"
	audit free > /tmp/audit 2>&1
	tap_ok $? "cage free stops, nothing left: $(cat /tmp/audit)"
else
	tap_skip "cage free did not start" 2
fi
rm -f /home/alice/.config/nspawn-cage/config
tap_done
