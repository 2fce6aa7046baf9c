#!/bin/sh
# Past Memory= the offending process is OOM-killed in seconds, and told
# (issue 22, VM tier). A cage with Memory=128M runs, through `run` as alice,
# a tail-like reader, a page-by-page allocator and a fork-and-allocate
# workload, with Swap=0 and then with Swap=64M: each is killed within 30 s
# of the cage crossing Memory= (not throttled below it), the command's own
# shell and the cage live on, `run` says which process the memory limit
# killed, `status` counts every kill, the journal of the cage's unit has
# them. A fork bomb run the same way stops at Tasks= and `run` says so.
#
# On the machine: skips unless NSPAWN_CAGE_VM=1, root and qemu; then runs
# itself inside the VM (where /etc/nspawn-cage-vm exists). TAP; exit 0.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
export top_srcdir top_builddir

. "$top_srcdir/tests/integration/lib.sh"
in_test_vm "$top_srcdir/tests/vm/oom.sh"

# ---- inside the VM ----

inner_setup
. "$top_srcdir/tests/vm/lib.sh"
mkdir -p /etc/nspawn-cage/nspawn-cage.conf.d
printf '[Policy]\nMaxMemory=1G\n' > /etc/nspawn-cage/nspawn-cage.conf.d/vm-oom.conf

# The workloads, as the agent would run them (bash -c '...'). Each ends with
# its shell saying it lived on. A 4 KiB string appended to an array is
# 4 KiB more of the heap each time: page by page.
TAIL='head -c 400M /dev/zero | tail > /dev/null; echo "session-lives $?"'
PAGES='s=$(printf %4096s); ( a=(); while :; do a+=("$s"); done ); echo "session-lives $?"'
FORK='s=$(printf %65536s); for i in 1 2 3 4; do ( a=(); while :; do a+=("$s"); done ) & done; wait; echo "session-lives $?"'

# kill_session: what a workload still runs in the cage (the failing case:
# nothing killed it), so that its run ends.
kill_session() {
	for _f in $(find "$CG" -path '*nspawn-cage-agent-*' -name cgroup.procs); do
		for _p in $(cat "$_f"); do kill -KILL "$_p" 2> /dev/null; done
	done
}

# kills: the OOM kills `status` counts in cage oom (the kernel's and the
# guard's).
kills() { nspawn-cage status --json oom 2> /dev/null | jq '.oom_kills // 0'; }
guard_total=0
guard_told=0
told=0

secs_or_never() { if [ -n "$1" ]; then echo "at $(($1 / 1000)) s"; else echo never; fi; }

# oom_case LABEL KILLS NAME WORKLOAD: run WORKLOAD through `run` on the kept
# cage; it must cross Memory= (memory.events max, or high when the limits
# throttle) and be OOM-killed (KILLS processes named NAME) within 30 s.
# Bounded: 150 s to cross, 90 s more to end, then its processes are killed.
oom_case() {
	_label=$1 _kills=$2 _name=$3
	_oom0=$(kills)
	_koom0=$(field "$CG/memory.events" oom_kill)
	_ev0=$(($(field "$CG/memory.events" max) + $(field "$CG/memory.events" high)))
	_leader0=$(machinectl show oom -p Leader --value)
	su alice -c "sudo nspawn-cage --name oom ~/project -- bash -c '$4'" < /dev/null > /tmp/oom.out 2>&1 &
	_job=$!
	_t0=$(now_us) _tc= _tk= _swap=0 _bounded=
	while kill -0 $_job 2> /dev/null; do
		_t=$((($(now_us) - _t0) / 1000))
		_v=$(cat "$CG/memory.swap.current")
		[ "$_v" -gt "$_swap" ] && _swap=$_v
		[ -z "$_tc" ] && [ $(($(field "$CG/memory.events" max) + $(field "$CG/memory.events" high))) -gt "$_ev0" ] && _tc=$_t
		[ -z "$_tk" ] && [ "$(kills)" -gt "$_oom0" ] && _tk=$_t
		if [ $_t -gt $((${_tc:-60000} + 90000)) ]; then
			_bounded=" (still running $((_t / 1000)) s after its start: its processes killed by the test)"
			kill_session
			break
		fi
		sleep 0.2
	done
	wait $_job
	_st=$?
	_t=$((($(now_us) - _t0) / 1000))
	[ -z "$_tk" ] && [ "$(kills)" -gt "$_oom0" ] && _tk=$_t
	_n=$(($(kills) - _oom0))
	_kn=$(($(field "$CG/memory.events" oom_kill) - _koom0))
	_out=$(tr -d '\r' < /tmp/oom.out)
	# the figure: from crossing Memory= to the kill (the end, when both
	# came between two looks 0.2 s apart, counts as 0)
	if [ -n "$_tc" ] && [ -n "$_tk" ]; then
		_d=$((_tk > _tc ? _tk - _tc : 0))
		tap_ok $((_d > 30000)) "$_label: OOM-killed $((_d / 1000)).$((_d % 1000 / 100)) s after crossing Memory= (crossed at $((_tc / 1000)) s, killed at $((_tk / 1000)) s, over after $((_t / 1000)) s)"
	else
		tap_ok 1 "$_label: OOM-killed within 30 s of crossing Memory=: crossed $(secs_or_never "$_tc"), killed $(secs_or_never "$_tk")$_bounded"
		tap_diag "memory.events: $(tr '\n' ' ' < "$CG/memory.events")"
	fi
	[ "$_n" -ge "$_kills" ]
	tap_ok $? "$_label: $_n process(es) killed (at least $_kills): $_kn by the kernel (memory.events oom_kill), $((_n - _kn)) by nspawn-cage's guard"
	# the whole workload (every growing process) over within 60 s of crossing
	[ -n "$_tc" ] && [ -z "$_bounded" ] && [ $((_t - _tc)) -le 60000 ]
	tap_ok $? "$_label: the workload is over $(( (_t - ${_tc:-0}) / 1000 )) s after crossing Memory= (at most 60)$_bounded"
	case $_out in
	*"session-lives 137"* | *"session-lives 0"*) _r=0 ;;
	*) _r=1 ;;
	esac
	tap_ok $_r "$_label: the command's shell lives on after the kill: $(echo "$_out" | grep session-lives)" || tap_diag "exit $_st: $(echo "$_out" | tail -n 5)"
	_msg=$(echo "$_out" | grep "^nspawn-cage: cage oom: the memory limit")
	case $_msg in
	*"(Memory=128M) killed $_n process"*": $_name"*) _r=0 ;;
	*) _r=1 ;;
	esac
	tap_ok $_r "$_label: run's exit message names it: ${_msg:-none}" || tap_diag "$(echo "$_out" | tail -n 5)"
	[ -n "$_msg" ] && told=$((told + 1))
	# every kill so far: the kernel's, and the guard's its messages told
	guard_total=$((guard_total + _n - _kn))
	_g=$(echo "$_msg" | sed -n 's/.*(\([0-9]*\) of them by nspawn-cage.*/\1/p')
	_all=$(($(field "$CG/memory.events" oom_kill) + guard_told + ${_g:-0}))
	guard_told=$((guard_told + ${_g:-0}))
	nspawn-cage status oom > /tmp/status 2>&1
	grep -Eq "^ *oom kills: $_all\$" /tmp/status
	tap_ok $? "$_label: nspawn-cage status counts every kill so far ($_all): $(grep 'oom kills' /tmp/status)"
	_leader=$(machinectl show oom -p Leader --value)
	[ "$_leader" = "$_leader0" ] && [ "$(systemctl is-active nspawn-cage-oom.service)" = active ]
	tap_ok $? "$_label: the cage lives on (its PID 1 $_leader0 -> $_leader, unit $(systemctl is-active nspawn-cage-oom.service))"
	swap_peak=$_swap
}

user_limits Memory=128M Swap=0 Tasks=64
# The store paths' pages leave the page cache, so that the cage's own
# processes load them again and they are charged to the cage, as in the
# first cage after a boot: the runaway process's code is then reclaimed and
# faulted back at the limit, and the kernel's OOM killer does not act.
sync
echo 3 > /proc/sys/vm/drop_caches
cage_started=$(date +%s)
if ! start_cage oom; then
	tap_diag "$(journalctl -n 30 --no-pager 2>&1)"
	tap_done
	exit 0
fi
CG=$(cg oom)
tap_is "$(systemctl show nspawn-cage-oom.service -p MemoryMax -p MemoryHigh -p MemorySwapMax -p OOMPolicy | sort | tr '\n' ' ')| memory.high=$(cat "$CG/memory.high")" \
	"MemoryHigh=infinity MemoryMax=134217728 MemorySwapMax=0 OOMPolicy=continue | memory.high=max" \
	"Memory=128M is MemoryMax= alone (no MemoryHigh= to throttle below it), the cage's unit continues after an OOM kill"

oom_case "Swap=0, tail-like reader (head -c 400M /dev/zero | tail)" 1 tail "$TAIL"
tap_is "$swap_peak" 0 "Swap=0: no swap used"
oom_case "Swap=0, page-by-page allocator" 1 bash "$PAGES"
oom_case "Swap=0, fork-and-allocate (4 growing processes)" 4 bash "$FORK"
alive=$(cage_alive oom)
tap_is "$alive" "" "after the kills with Swap=0, nspawn-cage shell and machinectl shell still work"

as_alice "sudo nspawn-cage set oom Swap=64M"
tap_ok $? "set oom Swap=64M" || tap_diag "$out"
oom_case "Swap=64M, tail-like reader" 1 tail "$TAIL"
[ "$swap_peak" -gt 0 ]
tap_ok $? "Swap=64M: the cage swapped before the kill (peak memory.swap.current $((swap_peak / MiB)) MiB)"
oom_case "Swap=64M, page-by-page allocator" 1 bash "$PAGES"
oom_case "Swap=64M, fork-and-allocate (4 growing processes)" 4 bash "$FORK"
alive=$(cage_alive oom)
tap_is "$alive" "" "after the kills with Swap=64M, nspawn-cage shell and machinectl shell still work"

# The journal of the cage's unit has each kill run told of (this cage's).
journalctl -u nspawn-cage-oom.service --since "@$cage_started" --no-pager -o cat > /tmp/journal 2>&1
n=$(grep -c "cage oom: the memory limit (Memory=128M) killed" /tmp/journal)
tap_is "$n" "$told" "journalctl -u nspawn-cage-oom.service has run's $told messages"
sysd=$(grep -c "killed by the OOM killer" /tmp/journal)
sysd_line=$(grep -m 1 "killed by the OOM killer" /tmp/journal)
tap_diag "and systemd's own for the kernel's kills: $sysd x: $sysd_line"

# -- tasks: a fork bomb through run stops at Tasks=, and run says so --
t0=$(date +%s)
as_alice "sudo nspawn-cage --name oom ~/project -- bash -c 'exec 2> /dev/null; b() { b | b & }; b; exec sleep 10'"
msg=$(echo "$out" | grep "^nspawn-cage: cage oom: the task limit")
case $msg in *"(Tasks=64) refused new processes"*) r=0 ;; *) r=1 ;; esac
tap_ok $r "a fork bomb run in the cage ends ($(($(date +%s) - t0)) s) and run says: ${msg:-nothing}" || tap_diag "$(echo "$out" | tail -n 5)"
grep -q "cage oom: the task limit (Tasks=64)" /tmp/journal || journalctl -u nspawn-cage-oom.service --no-pager -o cat | grep -q "cage oom: the task limit (Tasks=64)"
tap_ok $? "and the journal of the cage's unit has it"
alive=$(cage_alive oom)
tap_is "$alive" "" "after the bomb, the cage still works"

as_alice "sudo nspawn-cage stop oom"
audit oom > /tmp/audit 2>&1
tap_ok $? "cage oom stops, nothing left: $(cat /tmp/audit)"
rm -f /home/alice/.config/nspawn-cage/config /etc/nspawn-cage/nspawn-cage.conf.d/vm-oom.conf
tap_done
