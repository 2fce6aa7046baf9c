# Helpers of the VM tier's inner scripts (limits.sh, oom.sh), sourced after
# tests/integration/lib.sh and inner_setup: acting as alice, alice's
# [Limits], kept cages and what their cgroups say.

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

# subtree_sum DIR FILE KEY: KEY of FILE summed over DIR and its descendants
# (kernel 6.1 counts a refused fork in pids.events of the forking task's own
# cgroup, not of the ancestor whose pids.max refused it).
subtree_sum() {
	find "$1" -name "$2" -exec awk -v k="$3" '$1 == k { s += $2 } END { print s + 0 }' {} +
}

# pids_named DIR COMM: pids of processes named COMM in cgroup DIR's subtree.
pids_named() {
	for _p in $(find "$1" -name cgroup.procs -exec cat {} + 2> /dev/null); do
		[ "$(cat /proc/$_p/comm 2> /dev/null)" = "$2" ] && echo "$_p"
	done
}

# limits_now NAME: the unit's limit properties and its cgroup files, one line.
limits_now() {
	_cg=$(cg "$1")
	echo "$(systemctl show "nspawn-cage-$1.service" -p MemoryMax -p MemoryHigh -p MemorySwapMax -p CPUQuotaPerSecUSec -p TasksMax | sort | tr '\n' ' ')| memory.max=$(cat "$_cg/memory.max") memory.high=$(cat "$_cg/memory.high") memory.swap.max=$(cat "$_cg/memory.swap.max") cpu.max=$(cat "$_cg/cpu.max") pids.max=$(cat "$_cg/pids.max")"
}

# cage_alive NAME: its unit is active, machined has it running, and both
# `nspawn-cage shell` and `machinectl shell` run commands in it; else says
# what is not so.
cage_alive() {
	_a=$(systemctl is-active "nspawn-cage-$1.service")
	[ "$_a" = active ] || { echo "unit $_a"; return 1; }
	_a=$(machinectl show "$1" -p State --value 2>&1)
	[ "$_a" = running ] || { echo "machine: $_a"; return 1; }
	as_alice "sudo nspawn-cage shell $1 -- true" || { echo "nspawn-cage shell: $out"; return 1; }
	_a=$(machinectl shell alice@"$1" /bin/sh -c 'id -un' 2> /tmp/machinectl.err < /dev/null | tr -d '\r' | grep -v '^$' | tail -n 1)
	[ "$_a" = alice ] || { echo "machinectl shell: '$_a' $(cat /tmp/machinectl.err)"; return 1; }
}

# watch_memory CG SECONDS PID: until PID exits (or SECONDS pass), the peaks
# of CG's memory.current and memory.swap.current; sets mem_peak swap_peak.
watch_memory() {
	mem_peak=0
	swap_peak=0
	_t0=$(date +%s)
	while kill -0 "$3" 2> /dev/null && [ $(($(date +%s) - _t0)) -lt "$2" ]; do
		_v=$(cat "$1/memory.swap.current")
		[ "$_v" -gt "$swap_peak" ] && swap_peak=$_v
		_v=$(cat "$1/memory.current")
		[ "$_v" -gt "$mem_peak" ] && mem_peak=$_v
		sleep 0.2
	done
}

# cpu_run NAME: 4 busy loops in cage NAME; measures 5 s of the unit's
# cpu.stat once all 4 run. Sets used_us, wall_us, throttled, busy.
cpu_run() {
	su alice -c "sudo nspawn-cage shell $1 -- sh -c 'for i in 1 2 3 4; do timeout 15 sh -c \"while :; do :; done\" & done; wait'" \
		< /dev/null > /tmp/cpu.out 2>&1 &
	_job=$!
	_cg=$(cg "$1")
	for _ in $(seq 100); do
		busy=$(pids_named "$_cg" timeout | wc -l)
		[ "$busy" -ge 4 ] && break
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
	wait $_job
}

# within PCT VALUE EXPECTED: VALUE is EXPECTED +- PCT percent.
within() {
	[ "$2" -ge $(($3 * (100 - $1) / 100)) ] && [ "$2" -le $(($3 * (100 + $1) / 100)) ]
}

ms() { echo "$(($1 / 1000)) ms"; }

