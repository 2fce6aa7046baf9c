#!/usr/bin/env bash
# The measurements of bench/run, run inside the test host (as root, by
# tests/testhost/run). Everything is real: cages are started by the
# nspawn-cage installed exactly as tests/integration/lib.sh's inner_setup
# installs it, as alice through sudo. Raw samples (microseconds, one a line)
# go to $W/s/, one JSON file per part to $W/j/; bench/run assembles them.
#
# Environment (tests/testhost/run passes NSPAWN_CAGE_* only):
#   NSPAWN_CAGE_BENCH_WORK   output directory (under the repository)
#   NSPAWN_CAGE_BENCH_QUICK  1: fewer runs; 2: smoke (one or two runs of
#                            each part, small sizes: keeps every figure alive)
#   NSPAWN_CAGE_BENCH_ALT    1: measure the store alternatives (2b)
set -u -o pipefail

top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
# shellcheck source=../tests/integration/lib.sh
. "$top_srcdir/tests/integration/lib.sh" # inner_setup, audit, DATADIR

W=${NSPAWN_CAGE_BENCH_WORK:?set by bench/run}
quick=${NSPAWN_CAGE_BENCH_QUICK:-0}
# R_COLD: starts that evaluate the expensive package set (EXP_S seconds of
# evaluation each); R_ATTACH: attaches to one running cage.
if [ "$quick" = 2 ]; then
	R_WARM=2 R_PHASE=2 R_RENDER=2 R_SCALE=1 R_ALT=1 R_STOP=1 N_GC=5 R_ATTACH=3 R_COLD=1 EXP_S=2 N_DENSITY=4
	SIZES="10 1000"
elif [ "$quick" = 1 ]; then
	R_WARM=5 R_PHASE=5 R_RENDER=5 R_SCALE=2 R_ALT=1 R_STOP=3 N_GC=100 R_ATTACH=10 R_COLD=2 EXP_S=10 N_DENSITY=20
	SIZES="10 100 1000 5000"
else
	R_WARM=15 R_PHASE=15 R_RENDER=20 R_SCALE=5 R_ALT=3 R_STOP=10 N_GC=100 R_ATTACH=30 R_COLD=3 EXP_S=10 N_DENSITY=20
	SIZES="10 100 1000 5000"
fi
N_MID=$((N_DENSITY / 2))
EX=/var/lib/bench-expensive # the expensive package set (a copy of tests/pkgs + bench/pkgs-expensive)
SY=/var/lib/bench-synthset  # tests/pkgs + the synthetic packages of part 2
B=/var/lib/nspawn-cage-bench # hand-made rootfs copies (same file system as the cages')
A=/home/alice/bench          # alice's files: closures, render output
S=/var/tmp/bench-synth       # sources of the synthetic store paths
PROJECT=/home/alice/project
# $W/j/callgrind.json was written by bench/run before this script: keep it.
rm -rf "$W/s" "$B" "$A" "$S" "$EX" "$SY" /home/alice/scale-*
find "$W/j" -name '*.json' ! -name callgrind.json -delete 2>/dev/null
mkdir -p "$W/s" "$W/j" "$B" "$S"

say() { printf 'bench: %s\n' "$*" >&2; }
now() { local t=$EPOCHREALTIME; echo "${t/./}"; } # microseconds
rec() { [ -n "${2:-}" ] && [ "$2" != - ] && echo "$2" >>"$W/s/$1"; }
# d A B: B - A, or "-" if either is unknown.
d() { if [ "${1:--}" = - ] || [ "${2:--}" = - ]; then echo -; else echo $(($2 - $1)); fi; }

# stats NAME: JSON statistics of the samples of NAME, in milliseconds.
stats() {
	[ -s "$W/s/$1" ] || { echo null; return; }
	jq -s 'map(. / 1000) | sort | length as $n
		| def r: . * 10 | round / 10;
		def q($p): .[(($n - 1) * $p) | round];
		{n: $n, median: (if $n % 2 == 1 then .[($n - 1) / 2] else (.[$n / 2 - 1] + .[$n / 2]) / 2 end | r),
		 min: (.[0] | r), max: (.[-1] | r), p25: (q(0.25) | r), p75: (q(0.75) | r)}' "$W/s/$1"
}
med() { stats "$1" | jq '.median // null'; }
# ratio A B: A / B to N decimals (default 2), null if either is null.
ratio() { jq -n --argjson a "$1" --argjson b "$2" --argjson p "${3:-100}" 'if $a != null and $b != null and $b > 0 then $a / $b * $p | round / $p else null end'; }

# ---- running things ----

# Scripts alice runs: one that times a command N times, one that stamps
# the time and execs sudo nspawn-cage.
install -d -o alice -g alice "$A" "$A/out"
cat >"$A/time.sh" <<'EOF'
# time.sh N CMD...: "WALL CPU" (µs; CPU = user + system) of N runs of CMD.
n=$1; shift
TIMEFORMAT='%3U %3S'
for ((i = 0; i < n; i++)); do
	t0=$EPOCHREALTIME
	{ time "$@" >/dev/null 2>"$HOME/bench/time.err"; } 2>"$HOME/bench/time.cpu" || { cat "$HOME/bench/time.err" >&2; continue; }
	t1=$EPOCHREALTIME
	read -r u s <"$HOME/bench/time.cpu"
	echo "$(( ${t1/./} - ${t0/./} )) $(( (10#${u/./} + 10#${s/./}) * 1000 ))"
done
EOF
cat >"$A/start.sh" <<'EOF'
t=$EPOCHREALTIME; echo "T0 ${t/./}"
exec sudo nspawn-cage "$@"
EOF
chmod 0644 "$A/time.sh" "$A/start.sh"

# as_alice_time SAMPLE N CMD...: N runs of CMD as alice; wall times to the
# samples SAMPLE, CPU times (user + system) to SAMPLE.cpu.
as_alice_time() {
	local name=$1
	shift
	runuser -u alice -- bash "$A/time.sh" "$@" </dev/null >"$W/time.out"
	awk '{ print $1 }' "$W/time.out" >>"$W/s/$name"
	awk '{ print $2 }' "$W/time.out" >>"$W/s/$name.cpu"
}

# jtimes UNIT SINCE: journal timestamps (µs) of the unit's phases after
# SINCE: "starting banner queued started stopping stopped" ("-" if absent).
# banner: the cage's systemd announcing itself (nspawn's setup is done);
# queued: it has loaded its units; started: READY=1 reached systemd.
jtimes() {
	local unit=$1 since=$2 out want=${3:-started}
	for _ in $(seq 30); do
		out=$(journalctl -q -u "$unit" -o json --since "@$((since / 1000000 - 1))" 2>/dev/null | jq -rs --argjson s "$since" '
			map(select((.__REALTIME_TIMESTAMP | tonumber) >= $s)) as $m
			| def ts(f): [$m[] | select(f) | .__REALTIME_TIMESTAMP | tonumber] | first // "-";
			def msg: (.MESSAGE | if type == "string" then . else "" end);
			[ts(.MESSAGE_ID == "7d4958e842da4a758f6c1cdc7b36dcc5"),
			 ts(msg | test("^systemd [0-9].* running in system mode")),
			 ts(msg | startswith("Queued start job for default target")),
			 ts(.MESSAGE_ID == "39f53479d3a045ac8e11786248231fbf"),
			 ts(.MESSAGE_ID == "de5b426a63be47a7b6ac3eaac82e2f6f"),
			 ts(.MESSAGE_ID == "9d1aaa27d60140bd96365438aad20286")] | map(tostring) | join(" ")')
		set -- $out
		if [ "$want" = stopped ]; then [ "${6:--}" != - ] && break; else [ "${4:--}" != - ] && break; fi
		sleep 0.1
	done
	echo "${out:-- - - - - -}"
}

# cage_run ARGS...: `sudo nspawn-cage ARGS` as alice; the command prints
# READY then the number of entries of /nix/store. Sets T0 READY END (µs),
# COUNT, ST (exit status) and J (jtimes of the unit, if NAME is set).
cage_run() {
	local name=$NAME
	runuser -u alice -- bash "$A/start.sh" "$@" </dev/null 2>&1 |
		while IFS= read -r l; do printf '%s %s\n' "${EPOCHREALTIME/./}" "${l%$'\r'}"; done >"$W/ts"
	ST=${PIPESTATUS[0]}
	END=$(now)
	T0=$(awk '$2 == "T0" { print $3; exit }' "$W/ts")
	READY=$(awk '$2 == "READY" { print $1; f = 1; exit } END { if (!f) print "-" }' "$W/ts")
	COUNT=$(awk 'f { print $2; exit } $2 == "READY" { f = 1 }' "$W/ts")
	if [ "$ST" != 0 ] || { [ "$READY" = - ] && [[ " $* " == *READY* ]]; }; then
		say "nspawn-cage $* failed (exit $ST):"
		sed 's/^[0-9]* /  /' "$W/ts" | tail -n 15 >&2
	fi
	if [ "${NOJ:-0}" = 1 ]; then
		J="- - - - - -"
	else
		J=$(jtimes "nspawn-cage-$name.service" "${T0:-$(now)}" "${WANT:-started}")
	fi
}
READY_CMD=(sh -c 'echo READY; ls /nix/store | wc -l')

# record_cage PREFIX: the samples of the last cage_run.
record_cage() {
	local p=$1
	set -- $J # starting banner queued started stopping stopped
	rec "$p.total" "$(d "$T0" "$READY")"
	rec "$p.pre_unit" "$(d "$T0" "$1")"
	rec "$p.unit_start" "$(d "$1" "$4")"
	rec "$p.nspawn_setup" "$(d "$1" "$2")"
	rec "$p.pid1_load" "$(d "$2" "$3")"
	rec "$p.boot" "$(d "$3" "$4")"
	rec "$p.pid1_to_ready" "$(d "$2" "$4")"
	rec "$p.attach" "$(d "$4" "$READY")"
	rec "$p.exit_after_ready" "$(d "$READY" "$END")"
	rec "$p.unit_stop" "$(d "$5" "$6")"
}

# The unit nspawn-cage would start (bus.c, bus_start_cage), by hand.
UNIT_PROPS=(-p Slice=machine.slice -p Type=notify -p KillMode=mixed -p Delegate=yes
	-p CollectMode=inactive-or-failed -p TimeoutStopSec=15 -p MemoryMax=4G -p MemorySwapMax=0
	-p CPUQuota=200% -p TasksMax=4096 -p DevicePolicy=closed -p "DeviceAllow=char-pts rw"
	-p "DeviceAllow=/dev/net/tun rwm" -E SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1)

# hand_run UNIT MACHINE ROOTFS PRIVATE-MOUNTS [WRAPPER...]: systemd-nspawn
# --boot by hand (settings from /run/systemd/nspawn/MACHINE.nspawn), then
# `echo READY` as alice in it, then stop. Sets T0 READY COUNT HSTOP J.
hand_run() {
	local unit=$1 m=$2 root=$3 pm=$4 t
	shift 4
	local -a props=("${UNIT_PROPS[@]}")
	[ "$pm" = 1 ] && props+=(-p PrivateMounts=yes)
	T0=$(now)
	READY=- COUNT=- HSTOP=-
	if systemd-run --quiet --unit="$unit" "${props[@]}" "$@" /usr/bin/systemd-nspawn --quiet --keep-unit \
		--register=yes --notify-ready=yes --settings=trusted --machine="$m" --directory="$root" >"$W/hand.err" 2>&1; then
		systemd-run -M "$m" --uid=alice --quiet --wait --pipe "${READY_CMD[@]}" </dev/null 2>>"$W/hand.err" |
			while IFS= read -r l; do printf '%s %s\n' "${EPOCHREALTIME/./}" "$l"; done >"$W/ts"
		READY=$(awk '$2 == "READY" { print $1; f = 1; exit } END { if (!f) print "-" }' "$W/ts")
		COUNT=$(awk 'f { print $2; exit } $2 == "READY" { f = 1 }' "$W/ts")
		t=$(now)
		systemctl stop "$unit"
		HSTOP=$(($(now) - t))
	else
		say "hand start of $m failed:"
		cat "$W/hand.err" >&2
		journalctl -q -u "$unit" -n 10 --no-pager >&2
		systemctl stop "$unit" 2>/dev/null
	fi
	systemctl reset-failed "$unit" 2>/dev/null
	J=$(jtimes "$unit" "$T0")
}

record_hand() {
	local p=$1
	set -- $J
	rec "$p.total" "$(d "$T0" "$READY")"
	rec "$p.unit_start" "$(d "$1" "$4")"
	rec "$p.nspawn_setup" "$(d "$1" "$2")"
	rec "$p.pid1_load" "$(d "$2" "$3")"
	rec "$p.boot" "$(d "$3" "$4")"
	rec "$p.pid1_to_ready" "$(d "$2" "$4")"
	rec "$p.attach" "$(d "$4" "$READY")"
	rec "$p.stop" "$HSTOP"
}

# copy_cage NAME PROJECT [DEST]: start a kept cage, copy its rendered rootfs
# and settings to DEST (the "same rendered rootfs" for hand starts), then
# kill it and time the kill-based teardown: KILL_UNIT_US until the unit is
# gone, KILL_US until `nspawn-cage stop` has removed the rest.
copy_cage() {
	local name=$1 project=$2 dest=${3:-} t0 t1
	NAME=$name NOJ=1 cage_run --keep --name "$name" "$project" -- true
	if [ -n "$dest" ]; then
		rm -rf "$dest"
		mkdir -p "$dest"
		cp -a "/var/lib/nspawn-cage/cages/$name/rootfs" "$dest/rootfs"
		cp "/run/systemd/nspawn/$name.nspawn" "$dest/settings"
	fi
	t0=$(now)
	systemctl kill -s KILL "nspawn-cage-$name.service"
	while systemctl is-active -q "nspawn-cage-$name.service"; do sleep 0.01; done
	t1=$(now)
	nspawn-cage stop "$name" >/dev/null 2>&1
	KILL_US=$(d "$t0" "$(now)")
	KILL_UNIT_US=$(d "$t0" "$t1")
	audit "$name" >/dev/null || say "after kill + stop of $name: $(audit "$name")"
}

# settings_as SRC MACHINE ROOTFS: SRC with the hostname of MACHINE, on stdout.
# A copy of a cage's settings for a hand-made run: its own hostname, the
# project bound plainly (the cage's idmapped staging mount is gone with it)
# and the read-only /nix/store taken from the copied ROOTFS (the cage's own
# is gone too).
settings_as() {
	sed -e "s/^Hostname=.*/Hostname=$2/" -e 's|^Bind=/var/lib/nspawn-cage/cages/[^/]*/mnt/project:\(.*\)$|Bind=\1|' \
		-e "s|^BindReadOnly=/var/lib/nspawn-cage/cages/[^/]*/rootfs/nix/store:/nix/store\$|BindReadOnly=$3/nix/store:/nix/store|" "$1"
}

cleanup() {
	local u
	for u in $(systemctl list-units --all --no-legend --plain 'bench-*.service' 'nspawn-cage-*.service' 2>/dev/null | awk '{print $1}'); do
		systemctl kill -s KILL "$u" 2>/dev/null
		systemctl stop "$u" 2>/dev/null
		systemctl reset-failed "$u" 2>/dev/null
	done
	nspawn-cage gc >/dev/null 2>&1
	rm -f /run/systemd/nspawn/bb*.nspawn /run/systemd/nspawn/alt*.nspawn
	[ -f "$W/admin.conf" ] && cp "$W/admin.conf" /etc/nspawn-cage/nspawn-cage.conf
	rm -rf "$B" "$EX" "$SY" /home/alice/scale-*
	[ -n "${real_conf_set:-}" ] && restore_alice_config
}
trap cleanup EXIT

# ---- 0. setup: install, build the closure once ----

inner_setup
say "building the cage closure with tests/pkgs (a fresh test host builds it from scratch: 2-3 min)"
cfg=$(runuser -u alice -- nspawn-cage config --json "$PROJECT")
packages=$(jq -r '[.settings[] | select(.key == "Cage.Packages") | .value] | join(" ")' <<<"$cfg")
nixpkgs=$(jq -r '.settings[] | select(.key == "Cage.Nixpkgs") | .value' <<<"$cfg")
nixbuild=(nix-build "$DATADIR/nix/cage.nix" --argstr nixpkgs "$nixpkgs" --argstr packages "$packages" --no-out-link)
t0=$(now)
if ! top=$("${nixbuild[@]}" 2>"$W/build.log" | tail -n 1) || [ -z "$top" ]; then
	tail -n 30 "$W/build.log" >&2
	say "the closure does not build"
	exit 1
fi
build_us=$(d "$t0" "$(now)")
{ echo "$top"; nix-store -qR "$top" | grep -vxF "$top"; } >"$A/closure-base"
n_base=$(wc -l <"$A/closure-base")
chown -R alice:alice "$A"
say "closure: $n_base store paths, built in $((build_us / 1000000)) s"
jq -n --arg top "$top" --arg packages "$packages" --argjson n "$n_base" --argjson b "$build_us" \
	--argjson quick "$quick" --arg kernel "$(uname -r)" --arg nspawn "$(systemd-nspawn --version | head -n 1)" \
	--arg nix "$(nix-store --version)" --argjson nproc "$(nproc)" \
	'{toplevel: $top, packages: $packages, base_closure_paths: $n, closure_build_s: ($b / 1e5 | round / 10),
	  quick: ($quick == 1), smoke: ($quick == 2), kernel: $kernel, systemd_nspawn: $nspawn, nix: $nix, cpus: $nproc}' >"$W/j/setup.json"

# ---- 1. warm start against a hand-made systemd-nspawn --boot ----

# warm_vs_hand CAGE BASE: R_WARM warm starts of the cage CAGE on $PROJECT
# (samples CAGE.*) interleaved with hand-made starts of a copy of its rootfs
# and settings (samples BASE.*, machine bBASE), both to READY of READY_CMD.
# The package list is what alice's configuration gives at the time.
warm_vs_hand() {
	local cage=$1 base=$2 i
	# Two runs to warm up (the first fills the closure cache, if it is empty).
	for i in 1 2; do NAME=$cage cage_run --name "$cage" "$PROJECT" -- "${READY_CMD[@]}"; done
	# The baseline boots the rootfs nspawn-cage renders, with its settings.
	copy_cage "b$base" "$PROJECT" "$B/$base"
	settings_as "$B/$base/settings" "b$base" "$B/$base/rootfs" >"/run/systemd/nspawn/b$base.nspawn"
	hand_run "bench-$base.service" "b$base" "$B/$base/rootfs" 0 # warm-up
	for i in $(seq "$R_WARM"); do
		NAME=$cage WANT=stopped cage_run --name "$cage" "$PROJECT" -- "${READY_CMD[@]}"
		record_cage "$cage"
		hand_run "bench-$base.service" "b$base" "$B/$base/rootfs" 0
		record_hand "$base"
	done
}

say "1. warm start: $R_WARM runs of nspawn-cage and of the baseline"
warm_vs_hand warm base
# The phases before the unit starts, measured one by one (closure: what a
# cold start evaluates; a warm one reads the closure cache instead).
as_alice_time phase.sudo "$R_PHASE" sudo -n true
as_alice_time phase.config "$R_PHASE" nspawn-cage config "$PROJECT"
for i in $(seq "$R_PHASE"); do
	t0=$(now)
	t=$("${nixbuild[@]}" 2>/dev/null | tail -n 1) && nix-store --query --requisites "$t" >/dev/null
	rec phase.closure "$(d "$t0" "$(now)")"
done
as_alice_time phase.render "$R_PHASE" nspawn-cage render --closure "$A/closure-base" --output "$A/out" "$PROJECT"
r=$(ratio "$(med warm.total)" "$(med base.total)" 1000)
jq -n --argjson runs "$R_WARM" --argjson r "$r" \
	--argjson total "$(stats warm.total)" --argjson pre "$(stats warm.pre_unit)" \
	--argjson unit "$(stats warm.unit_start)" --argjson setup "$(stats warm.nspawn_setup)" \
	--argjson load "$(stats warm.pid1_load)" --argjson boot "$(stats warm.boot)" \
	--argjson attach "$(stats warm.attach)" --argjson exit "$(stats warm.exit_after_ready)" \
	--argjson ustop "$(stats warm.unit_stop)" \
	--argjson sudo "$(stats phase.sudo)" --argjson config "$(stats phase.config)" --argjson closure "$(stats phase.closure)" --argjson render "$(stats phase.render)" \
	--argjson btotal "$(stats base.total)" --argjson bunit "$(stats base.unit_start)" --argjson bsetup "$(stats base.nspawn_setup)" \
	--argjson bload "$(stats base.pid1_load)" --argjson bboot "$(stats base.boot)" --argjson battach "$(stats base.attach)" \
	--argjson bstop "$(stats base.stop)" --argjson ready "$(stats warm.pid1_to_ready)" --argjson bready "$(stats base.pid1_to_ready)" \
	'{runs: $runs,
	  nspawn_cage: {total: $total, pre_unit: $pre, unit_start: $unit, nspawn_setup: $setup, pid1_load: $load, boot: $boot,
	                pid1_to_ready: $ready, attach: $attach, exit_after_ready: $exit, unit_stop: $ustop},
	  pre_unit_phases: {sudo: $sudo, config: $config, closure_query: $closure, render: $render},
	  baseline: {total: $btotal, unit_start: $bunit, nspawn_setup: $bsetup, pid1_load: $bload, boot: $bboot, pid1_to_ready: $bready,
	             attach: $battach, stop: $bstop},
	  ratio: $r, target: 1.15, met: ($r != null and $r <= 1.15)}' >"$W/j/warm.json"
say "   nspawn-cage $(med warm.total) ms, baseline $(med base.total) ms, ratio $r"

# ---- 1b. an expensive package set: cold (evaluates) and warm (cache) ----

# A copy of tests/pkgs whose default.nix first computes `attrs` attributes
# (bench/pkgs-expensive), calibrated so that evaluating it takes EXP_S s.
say "1b. expensive package set: calibrating to ${EXP_S} s of evaluation"
cp /etc/nspawn-cage/nspawn-cage.conf "$W/admin.conf"
cp -a "$top_srcdir/tests/pkgs" "$EX"
mv "$EX/default.nix" "$EX/real.nix"
cp "$top_srcdir/bench/pkgs-expensive/default.nix" "$top_srcdir/bench/pkgs-expensive/burn.nix" "$EX/"
eval_ms() { # ATTRS: milliseconds to evaluate burn.nix with that many
	local t0
	t0=$(now)
	nix-instantiate --eval "$EX/burn.nix" --arg attrs "$1" >/dev/null 2>&1
	echo $((($(now) - t0) / 1000))
}
base_ms=$(eval_ms 0)
probe_ms=$(eval_ms 4000)
attrs=$(((EXP_S * 1000 - base_ms) * 4000 / (probe_ms - base_ms > 0 ? probe_ms - base_ms : 1)))
[ "$attrs" -gt 0 ] || attrs=1000
echo "$attrs" >"$EX/cost.nix"
chown -R root:root "$EX"
set_nixpkgs() { printf '[Cage]\nNixpkgs=%s\n' "$1" >/etc/nspawn-cage/nspawn-cage.conf; }
set_nixpkgs "$EX"
t0=$(now)
nix-instantiate --eval -E "(import $EX/default.nix {}) ? bash" >/dev/null 2>&1
rec exp.eval "$(d "$t0" "$(now)")"
say "   $attrs attributes: evaluating the set takes $(med exp.eval) ms"
for i in $(seq "$R_COLD"); do
	NAME=exp cage_run --rebuild --name exp "$PROJECT" -- "${READY_CMD[@]}"
	record_cage exp.cold
done
# Warm starts on the expensive set against warm starts on tests/pkgs, interleaved.
NAME=exp cage_run --name exp "$PROJECT" -- "${READY_CMD[@]}"
set_nixpkgs "$top_srcdir/tests/pkgs"
NAME=expc cage_run --name expc "$PROJECT" -- "${READY_CMD[@]}"
for i in $(seq "$R_WARM"); do
	set_nixpkgs "$EX"
	NAME=exp cage_run --name exp "$PROJECT" -- "${READY_CMD[@]}"
	record_cage exp.warm
	set_nixpkgs "$top_srcdir/tests/pkgs"
	NAME=expc cage_run --name expc "$PROJECT" -- "${READY_CMD[@]}"
	record_cage exp.cheap
done
cp "$W/admin.conf" /etc/nspawn-cage/nspawn-cage.conf
er=$(ratio "$(med exp.warm.total)" "$(med exp.cheap.total)" 1000)
jq -n --argjson attrs "$attrs" --argjson eval "$(stats exp.eval)" --argjson cold "$(stats exp.cold.total)" \
	--argjson coldpre "$(stats exp.cold.pre_unit)" --argjson warm "$(stats exp.warm.total)" --argjson warmpre "$(stats exp.warm.pre_unit)" \
	--argjson cheap "$(stats exp.cheap.total)" --argjson cheappre "$(stats exp.cheap.pre_unit)" --argjson r "$er" \
	--argjson cruns "$R_COLD" --argjson wruns "$R_WARM" --argjson target_s "$EXP_S" \
	'{attributes: $attrs, evaluation_target_s: $target_s, evaluation: $eval, cold_runs: $cruns, warm_runs: $wruns,
	  cold: {total: $cold, pre_unit: $coldpre}, warm: {total: $warm, pre_unit: $warmpre},
	  warm_cheap_set: {total: $cheap, pre_unit: $cheappre},
	  warm_ratio: $r, target: 1.05, met: ($r != null and $r <= 1.05),
	  saved_ms: (if $cold != null and $warm != null then ($cold.median - $warm.median) * 10 | round / 10 else null end)}' >"$W/j/expensive.json"
say "   cold $(med exp.cold.total) ms, warm $(med exp.warm.total) ms, warm on tests/pkgs $(med exp.cheap.total) ms: ratio $er"

# ---- 1c. attach: nspawn-cage shell against systemd-run -M --wait --pty ----

say "1c. attach: $R_ATTACH times each to one running cage"
NAME=att NOJ=1 cage_run --keep --name att "$PROJECT" -- true
att() { # SAMPLE CMD: wall time of CMD on a terminal of its own (script)
	local t0
	t0=$(now)
	script -qefc "$2" /dev/null </dev/null >"$W/att.out" 2>&1 || { say "$2 failed:"; tail -n 5 "$W/att.out" >&2; return; }
	rec "$1" "$(d "$t0" "$(now)")"
}
att attach.warmup "nspawn-cage shell att -- true"
att attach.warmup "systemd-run -M att --wait --pty --quiet true"
for i in $(seq "$R_ATTACH"); do
	att attach.nspawn_cage "nspawn-cage shell att -- true"
	att attach.systemd_run "systemd-run -M att --wait --pty --quiet true"
done
nspawn-cage stop att >/dev/null 2>&1
ar=$(ratio "$(med attach.nspawn_cage)" "$(med attach.systemd_run)" 1000)
jq -n --argjson runs "$R_ATTACH" --argjson nc "$(stats attach.nspawn_cage)" --argjson sr "$(stats attach.systemd_run)" --argjson r "$ar" \
	'{runs: $runs, nspawn_cage_shell: $nc, systemd_run: $sr, ratio: $r, target: 1.2, met: ($r != null and $r <= 1.2)}' >"$W/j/attach.json"
say "   nspawn-cage shell $(med attach.nspawn_cage) ms, systemd-run -M --pty $(med attach.systemd_run) ms: ratio $ar"

# ---- 1d. warm start with the real claude-code closure ----

# The claude-code preset's package list (the real agent, built by tests/pkgs
# from its pinned npm tarball), set in alice's configuration: added to the
# default preset's `bash coreutils`, which the preset lists too, it gives the
# same closure; the cage is otherwise the one of part 1 (no state binds, the
# default network), so the comparison isolates the closure.
CONF=/home/alice/.config/nspawn-cage/config
real_packages=$(sed -n 's/^Packages=//p' "$top_srcdir/templates/presets/claude-code.conf")
real_skip=""
[ -f "$top_srcdir/tests/pkgs/npm-cache/claude-code.tgz" ] ||
	real_skip="tests/pkgs/npm-cache/claude-code.tgz is missing (tests/pkgs/fetch-npm on the outer machine needs npm's registry)"
if [ -z "$real_skip" ]; then
	say "1d. warm start with the claude-code preset's packages ($real_packages): $R_WARM runs of nspawn-cage and of the baseline"
	install -d -o alice -g alice /home/alice/.config /home/alice/.config/nspawn-cage
	if [ -f "$CONF" ]; then cp "$CONF" "$W/alice-config.saved"; else rm -f "$W/alice-config.saved"; fi
	restore_alice_config() { if [ -f "$W/alice-config.saved" ]; then cp "$W/alice-config.saved" "$CONF"; else rm -f "$CONF"; fi; }
	real_conf_set=1
	printf '[Cage]\nPackages=%s\n' "$real_packages" >"$CONF"
	chown alice:alice "$CONF"
	real_cfg=$(runuser -u alice -- nspawn-cage config --json "$PROJECT")
	real_all=$(jq -r '[.settings[] | select(.key == "Cage.Packages") | .value] | join(" ")' <<<"$real_cfg")
	t0=$(now)
	if real_top=$(nix-build "$DATADIR/nix/cage.nix" --argstr nixpkgs "$nixpkgs" --argstr packages "$real_all" \
		--no-out-link 2>"$W/build-real.log" | tail -n 1) && [ -n "$real_top" ]; then
		real_build_us=$(d "$t0" "$(now)")
		real_paths=$(nix-store -qR "$real_top" | wc -l)
		real_bytes=$(nix-store -qR "$real_top" | xargs nix-store -q --size | awk '{ s += $1 } END { print s }')
		say "   closure: $real_paths store paths, $((real_bytes / 1048576)) MiB, built in $((real_build_us / 1000000)) s"
		warm_vs_hand warmcc bcc
		# The agent itself answers in such a cage (not timed).
		NAME=warmcc NOJ=1 cage_run --name warmcc "$PROJECT" -- claude --version
		real_version=$(sed -n 's/^[0-9]* //p' "$W/ts" | grep -m 1 -i 'claude' || true)
	else
		tail -n 20 "$W/build-real.log" >&2
		real_skip="the closure of $real_all does not build"
	fi
	restore_alice_config
	real_conf_set=""
fi
if [ -n "$real_skip" ]; then
	say "1d. warm start with the claude-code closure: skipped: $real_skip"
	jq -n --arg why "$real_skip" '{skipped: $why}' >"$W/j/warm_real.json"
else
	rr=$(ratio "$(med warmcc.total)" "$(med bcc.total)" 1000)
	jq -n --argjson runs "$R_WARM" --argjson r "$rr" --arg packages "$real_all" --arg top "$real_top" \
		--argjson paths "$real_paths" --argjson bytes "$real_bytes" --argjson b "$real_build_us" --arg version "$real_version" \
		--argjson total "$(stats warmcc.total)" --argjson pre "$(stats warmcc.pre_unit)" --argjson unit "$(stats warmcc.unit_start)" \
		--argjson setup "$(stats warmcc.nspawn_setup)" --argjson load "$(stats warmcc.pid1_load)" --argjson boot "$(stats warmcc.boot)" \
		--argjson ready "$(stats warmcc.pid1_to_ready)" --argjson attach "$(stats warmcc.attach)" \
		--argjson exit "$(stats warmcc.exit_after_ready)" --argjson ustop "$(stats warmcc.unit_stop)" \
		--argjson btotal "$(stats bcc.total)" --argjson bunit "$(stats bcc.unit_start)" --argjson bsetup "$(stats bcc.nspawn_setup)" \
		--argjson bload "$(stats bcc.pid1_load)" --argjson bboot "$(stats bcc.boot)" --argjson bready "$(stats bcc.pid1_to_ready)" \
		--argjson battach "$(stats bcc.attach)" --argjson bstop "$(stats bcc.stop)" \
		'{runs: $runs, packages: $packages, toplevel: $top, closure_paths: $paths, closure_mib: ($bytes / 1048576 * 10 | round / 10),
		  closure_build_s: ($b / 1e5 | round / 10), command: "sh -c \"echo READY; ls /nix/store | wc -l\"",
		  claude_version: (if $version == "" then null else $version end),
		  nspawn_cage: {total: $total, pre_unit: $pre, unit_start: $unit, nspawn_setup: $setup, pid1_load: $load, boot: $boot,
		                pid1_to_ready: $ready, attach: $attach, exit_after_ready: $exit, unit_stop: $ustop},
		  baseline: {total: $btotal, unit_start: $bunit, nspawn_setup: $bsetup, pid1_load: $bload, boot: $bboot, pid1_to_ready: $bready,
		             attach: $battach, stop: $bstop},
		  ratio: $r, target: 1.15, met: ($r != null and $r <= 1.15)}' >"$W/j/warm_real.json"
	say "   nspawn-cage $(med warmcc.total) ms, baseline $(med bcc.total) ms, ratio $rr; claude --version: ${real_version:-no answer}"
fi

# ---- 2. closure scaling ----

need=$((${SIZES##* } - n_base))
say "2. closure scaling: $need synthetic store paths"
t0=$(now)
(
	cd "$S" || exit 1
	eval "mkdir synth-{0001..$(printf %04d "$need")}"
	for p in synth-*; do echo "$p" >"$p/f"; done
	nix-store --add synth-* >"$W/synth.list"
) || say "creating synthetic store paths failed"
synth_us=$(d "$t0" "$(now)")
nix-store --check-validity $(cat "$W/synth.list") || say "synthetic store paths are not valid"
for n in $SIZES; do
	k=$((n - n_base))
	{ cat "$A/closure-base"; [ "$k" -le 0 ] || head -n "$k" "$W/synth.list"; } >"$A/closure-$n"
done
chown alice:alice "$A"/closure-*
# Starts cannot take --closure through sudo: the cage of N paths gets them
# from the package set, a copy of tests/pkgs with benchSynthN, a package
# whose output refers to N - (base closure) - 1 synthetic paths, selected
# by its project's Packages=. Renders take the lists (as alice, no sudo).
rm -rf "$SY"
cp -a "$top_srcdir/tests/pkgs" "$SY"
mv "$SY/default.nix" "$SY/real.nix"
{
	echo "{"
	for n in $SIZES; do
		k=$((n - n_base - 1))
		[ "$k" -gt 0 ] || continue
		printf '  "%s" = [\n' "$n"
		head -n "$k" "$W/synth.list" | sed 's/.*/    "&"/'
		echo "  ];"
	done
	echo "}"
} >"$SY/synth.nix"
cat >"$SY/default.nix" <<'NIX'
# bench/inner.sh, part 2: tests/pkgs and a package benchSynthN per size N.
args:
let
  p = import ./real.nix args;
  lists = import ./synth.nix;
  # a program in bin/, so that the cage's profile (sw/bin) refers to it
  # (the list in a file: 5,000 paths are more than one variable may hold)
  mk = n: p.runCommand "bench-synth-${n}" { refs = map builtins.storePath lists.${n}; passAsFile = [ "refs" ]; }
    "mkdir -p $out/bin && cp \"$refsPath\" $out/bin/bench-synth-${n}";
in
p // builtins.listToAttrs (map (n: { name = "benchSynth${n}"; value = mk n; }) (builtins.attrNames lists))
NIX
chown -R root:root "$SY"
set_nixpkgs "$SY"
for n in $SIZES; do
	proj=/home/alice/scale-$n
	rm -rf "$proj"
	install -d -o alice -g alice "$proj"
	k=$((n - n_base - 1))
	[ "$k" -gt 0 ] && write_project_config "$proj" "[Cage]\nPackages=$packages benchSynth$n\n"
	as_alice_time "render.$n" "$R_RENDER" nspawn-cage render --closure "$A/closure-$n" --output "$A/out" "$PROJECT"
	NAME=sc$n cage_run --name "sc$n" "$proj" -- "${READY_CMD[@]}" # warm-up: evaluates, fills the cache
	want=$n
	[ "$k" -gt 0 ] || want=$COUNT # the base closure
	for i in $(seq "$R_SCALE"); do
		NAME=sc$n WANT=stopped cage_run --name "sc$n" "$proj" -- "${READY_CMD[@]}"
		record_cage "scale.$n"
		[ "$COUNT" = "$want" ] || say "cage sc$n saw $COUNT store paths, not $want"
	done
	say "   $n paths: render $(med "render.$n") ms, start $(med "scale.$n.total") ms"
done
cp "$W/admin.conf" /etc/nspawn-cage/nspawn-cage.conf
largest=${SIZES##* }
sr=$(ratio "$(med "scale.$largest.total")" "$(med scale.10.total)")
for n in $SIZES; do
	jq -n --argjson n "$n" --argjson render "$(stats "render.$n")" --argjson rcpu "$(stats "render.$n.cpu")" --argjson total "$(stats "scale.$n.total")" \
		--argjson pre "$(stats "scale.$n.pre_unit")" --argjson unit "$(stats "scale.$n.unit_start")" \
		--argjson setup "$(stats "scale.$n.nspawn_setup")" --argjson load "$(stats "scale.$n.pid1_load")" \
		--argjson boot "$(stats "scale.$n.boot")" --argjson attach "$(stats "scale.$n.attach")" \
		--argjson exit "$(stats "scale.$n.exit_after_ready")" --argjson ustop "$(stats "scale.$n.unit_stop")" \
		'{paths: $n, render: $render, render_cpu: $rcpu, start: $total, pre_unit: $pre, unit_start: $unit, nspawn_setup: $setup,
		  pid1_load: $load, boot: $boot, attach: $attach, exit_after_ready: $exit, unit_stop: $ustop}'
done | jq -s --argjson r "$sr" --argjson s "$synth_us" --argjson runs "$R_SCALE" --argjson rr "$R_RENDER" \
	--argjson render1000 "$(med render.1000)" --argjson rcpu1000 "$(med render.1000.cpu)" --argjson largest "$largest" \
	'{runs: $runs, render_runs: $rr, synthetic_paths_created_s: ($s / 1e5 | round / 10), sizes: .,
	  largest: $largest, start_ratio_largest_vs_10: $r,
	  start_ratio_5000_vs_10: (if $largest == 5000 then $r else null end), target: 1.5, met: ($largest == 5000 and $r != null and $r <= 1.5),
	  render_1000_ms: $render1000, render_1000_cpu_ms: $rcpu1000, render_target_ms: 20, render_met: ($render1000 != null and $render1000 <= 20)}' >"$W/j/scaling.json"
say "   start $largest / start 10 = $sr"

# ---- 2b. store binding alternatives, by hand ----

if [ "${NSPAWN_CAGE_BENCH_ALT:-0}" = 1 ]; then
	say "2b. store binding alternatives at 10 and 5000 paths ($R_ALT runs each)"
	for n in 10 5000; do
		set_nixpkgs "$SY"
		copy_cage "alt$n" "/home/alice/scale-$n" "$B/alt$n"
		src=$B/alt$n/settings
		# The cage's own closure (its store binds): what the views show.
		sed -n 's|^BindReadOnly=\(/nix/store/[^:]*\)$|\1|p' "$src" >"$B/alt$n/closure"
		# A: the current design (one BindReadOnly= per store path), by hand.
		settings_as "$src" "alta$n" "$B/alt$n/rootfs" >"/run/systemd/nspawn/alta$n.nspawn"
		# B: a pre-built view: tmpfs + one bind per path, made in the unit's
		# own mount namespace before nspawn (bench/storeview.pl).
		grep -v '^BindReadOnly=/nix/store/' "$src" | settings_as /dev/stdin "altb$n" "$B/alt$n/rootfs" >"/run/systemd/nspawn/altb$n.nspawn"
		# C: one bind of the whole store. NOT safe (shows every store path):
		# the lower bound of any design with one mount.
		grep -v -e '^BindReadOnly=/nix/store/' -e ':/nix/store$' "$src" | settings_as /dev/stdin "altc$n" "$B/alt$n/rootfs" |
			sed '/^\[Network\]/i BindReadOnly=/nix/store' >"/run/systemd/nspawn/altc$n.nspawn"
		# D: a materialised copy of the closure (a private read-only store
		# holding only the closure), one bind.
		t0=$(now)
		mkdir -p "$B/alt$n/view"
		xargs -a "$B/alt$n/closure" cp -a -t "$B/alt$n/view"
		rec "alt.copy.$n" "$(d "$t0" "$(now)")"
		du -sk "$B/alt$n/view" | cut -f1 >"$W/s/alt.copy_kib.$n"
		grep -v -e '^BindReadOnly=/nix/store/' -e ':/nix/store$' "$src" | settings_as /dev/stdin "altd$n" "$B/alt$n/rootfs" |
			sed "/^\[Network\]/i BindReadOnly=$B/alt$n/view:/nix/store" >"/run/systemd/nspawn/altd$n.nspawn"
		rec "alt.kill_stop.$n" "$KILL_US"
		rec "alt.kill_unit.$n" "$KILL_UNIT_US"
		for i in $(seq "$R_ALT"); do
			hand_run "bench-alta$n.service" "alta$n" "$B/alt$n/rootfs" 1
			record_hand "alt.a.$n"
			hand_run "bench-altb$n.service" "altb$n" "$B/alt$n/rootfs" 1 \
				/usr/bin/perl "$top_srcdir/bench/storeview.pl" "$B/alt$n/rootfs" "$B/alt$n/closure"
			record_hand "alt.b.$n"
			[ "$COUNT" = "$n" ] || say "altb$n saw $COUNT store paths, not $n"
			hand_run "bench-altc$n.service" "altc$n" "$B/alt$n/rootfs" 1
			record_hand "alt.c.$n"
			rec "alt.c.count.$n" "$COUNT"
			hand_run "bench-altd$n.service" "altd$n" "$B/alt$n/rootfs" 1
			record_hand "alt.d.$n"
			[ "$COUNT" = "$n" ] || say "altd$n saw $COUNT store paths, not $n"
		done
		# Stop of a kept cage by killing it (then nspawn-cage stop), against
		# the orderly stop (part 3 measures the latter at the base closure).
		for i in $(seq "$R_ALT"); do
			copy_cage "alt$n" "/home/alice/scale-$n"
			rec "alt.kill_stop.$n" "$KILL_US"
			rec "alt.kill_unit.$n" "$KILL_UNIT_US"
			NAME=alt$n NOJ=1 cage_run --keep --name "alt$n" "/home/alice/scale-$n" -- true
			t0=$(now)
			nspawn-cage stop "alt$n" >/dev/null 2>&1
			rec "alt.orderly_stop.$n" "$(d "$t0" "$(now)")"
		done
		rm -rf "$B/alt$n/view"
	done
	cp "$W/admin.conf" /etc/nspawn-cage/nspawn-cage.conf
	for n in 10 5000; do
		args=(--argjson n "$n")
		for k in a b c d; do
			for f in total nspawn_setup pid1_load stop; do
				args+=(--argjson "${k}_$f" "$(stats "alt.$k.$n.$f")")
			done
		done
		jq -n "${args[@]}" \
			--argjson copy "$(stats "alt.copy.$n")" --argjson kib "$(cat "$W/s/alt.copy_kib.$n" 2>/dev/null || echo null)" \
			--argjson ccount "$(head -n 1 "$W/s/alt.c.count.$n" 2>/dev/null || echo null)" \
			--argjson ks "$(stats "alt.kill_stop.$n")" --argjson ku "$(stats "alt.kill_unit.$n")" \
			--argjson os "$(stats "alt.orderly_stop.$n")" \
			'{paths: $n,
			  a_bind_per_path: {start: $a_total, nspawn_setup: $a_nspawn_setup, pid1_load: $a_pid1_load, stop: $a_stop, safe: true},
			  b_prebuilt_view: {start: $b_total, nspawn_setup: $b_nspawn_setup, pid1_load: $b_pid1_load, stop: $b_stop, safe: true},
			  c_whole_store: {start: $c_total, nspawn_setup: $c_nspawn_setup, pid1_load: $c_pid1_load, stop: $c_stop, safe: false,
			                  visible_paths: $ccount},
			  d_materialised_copy: {start: $d_total, nspawn_setup: $d_nspawn_setup, pid1_load: $d_pid1_load, stop: $d_stop, safe: true,
			                        copy: $copy, copy_kib: $kib},
			  stop_kept_cage: {orderly: $os, kill_then_stop: $ks, kill_until_inactive: $ku}}'
	done | jq -s --argjson runs "$R_ALT" '{runs: $runs, sizes: .}' >"$W/j/alternatives.json"
	say "   5000 paths: A $(med alt.a.5000.total) B $(med alt.b.5000.total) C $(med alt.c.5000.total) D $(med alt.d.5000.total) ms"
fi

# ---- 3. stop and cleanup, gc ----

say "3. stop to clean ($R_STOP runs), gc of $N_GC stale cages"
clean=0
for i in $(seq "$R_STOP"); do
	NAME=stp NOJ=1 cage_run --keep --name stp "$PROJECT" -- true
	[ "$ST" = 0 ] || continue
	t0=$(now)
	nspawn-cage stop stp >/dev/null 2>&1
	if audit stp >/dev/null; then
		rec stop.clean "$(d "$t0" "$(now)")"
		clean=$((clean + 1))
	else
		say "not clean after stop: $(audit stp)"
	fi
done
for i in 1 2 3; do
	t0=$(now)
	nspawn-cage gc >/dev/null 2>&1
	rec gc.empty "$(d "$t0" "$(now)")"
done
t0=$(now)
for i in $(seq -w 1 "$N_GC"); do
	NAME=gc$i NOJ=1 cage_run --keep --name "gc$i" "$PROJECT" -- true
	systemctl kill -s KILL "nspawn-cage-gc$i.service"
done
for i in $(seq -w 1 "$N_GC"); do
	while systemctl is-active -q "nspawn-cage-gc$i.service"; do sleep 0.05; done
done
make_us=$(d "$t0" "$(now)")
stale=$(nspawn-cage list --json | jq '[.[] | select(.state == "stale")] | length')
t0=$(now)
nspawn-cage gc >"$W/gc.out" 2>&1
rec gc.full "$(d "$t0" "$(now)")"
removed=$(grep -c '^removed cage' "$W/gc.out")
gc_clean=0
for i in $(seq -w 1 "$N_GC"); do audit "gc$i" >/dev/null && gc_clean=$((gc_clean + 1)); done
jq -n --argjson runs "$R_STOP" --argjson clean "$clean" --argjson stop "$(stats stop.clean)" \
	--argjson empty "$(stats gc.empty)" --argjson full "$(med gc.full)" --argjson n "$N_GC" --argjson stale "$stale" \
	--argjson removed "$removed" --argjson gcclean "$gc_clean" --argjson make "$make_us" \
	'{runs: $runs, stop_to_clean: $stop, clean_runs: $clean, target_ms: 1000, met: ($stop != null and $stop.median <= 1000 and $clean == $runs),
	  gc: {stale_cages: $n, listed_stale: $stale, made_in_s: ($make / 1e5 | round / 10), gc_ms: $full, gc_empty: $empty,
	       per_cage_ms: (($full - $empty.median) / $n * 10 | round / 10), removed: $removed, clean_after: $gcclean}}' >"$W/j/stop.json"
say "   stop $(med stop.clean) ms; gc of $N_GC: $(med gc.full) ms, removed $removed, clean $gc_clean"

# ---- 4. density ----

say "4. density: $N_DENSITY idle cages"
memory() { # N: per-cage memory of dn01..dnN, samples in bytes
	local i rss cache shmem
	for i in $(seq -w 1 "$1"); do
		systemctl show -p MemoryCurrent --value "nspawn-cage-dn$i.service" >>"$W/s/mem.$1"
		read -r rss cache shmem < <(awk '$1 == "total_rss" { r = $2 } $1 == "total_cache" { c = $2 }
			$1 == "total_shmem" { s = $2 } END { print r, c, s }' \
			"/sys/fs/cgroup/memory/machine.slice/nspawn-cage-dn$i.service/memory.stat" 2>/dev/null)
		rec "mem_rss.$1" "$rss"
		rec "mem_cache.$1" "$cache"
		rec "mem_shmem.$1" "$shmem"
	done
}
memavail() { awk '$1 == "MemAvailable:" { print $2 * 1024 }' /proc/meminfo; }
avail0=$(memavail)
for i in $(seq -w 1 "$N_DENSITY"); do
	NAME=dn$i NOJ=1 cage_run --keep --name "dn$i" "$PROJECT" -- "${READY_CMD[@]}"
	rec density.start "$(d "$T0" "$READY")"
	if [ "$((10#$i))" = "$N_MID" ] || [ "$((10#$i))" = "$N_DENSITY" ]; then
		sleep 5 # let them settle to idle
		memory "$((10#$i))"
		[ "$((10#$i))" = "$N_MID" ] && avail10=$(memavail)
	fi
done
avail20=$(memavail)
t0=$(now)
for i in $(seq -w 1 "$N_DENSITY"); do nspawn-cage stop "dn$i" >/dev/null 2>&1; done
stop20=$(d "$t0" "$(now)")
dclean=0
for i in $(seq -w 1 "$N_DENSITY"); do audit "dn$i" >/dev/null && dclean=$((dclean + 1)); done
mstats() { # samples in bytes -> MiB statistics
	[ -s "$W/s/$1" ] || { echo null; return; }
	jq -s 'map(select(. != null) / 1048576) | sort | length as $n | def r: . * 10 | round / 10;
		{n: $n, median: (.[($n - 1) / 2 | floor] | r), min: (.[0] | r), max: (.[-1] | r), mean: (add / $n | r)}' "$W/s/$1"
}
jq -n --argjson starts "$(jq -s 'map(. / 1000 | . * 10 | round / 10)' "$W/s/density.start")" \
	--argjson n "$N_DENSITY" --argjson mid "$N_MID" \
	--argjson m10 "$(mstats "mem.$N_MID")" --argjson m20 "$(mstats "mem.$N_DENSITY")" \
	--argjson r10 "$(mstats "mem_rss.$N_MID")" --argjson r20 "$(mstats "mem_rss.$N_DENSITY")" \
	--argjson c20 "$(mstats "mem_cache.$N_DENSITY")" --argjson s20 "$(mstats "mem_shmem.$N_DENSITY")" \
	--argjson a0 "$avail0" --argjson a10 "$avail10" --argjson a20 "$avail20" \
	--argjson stop20 "$stop20" --argjson clean "$dclean" \
	'{cages: $n, mid: $mid, start_ms: $starts, first_ms: $starts[0], mid_ms: $starts[$mid - 1], last_ms: $starts[$n - 1],
	  last_vs_first: ($starts[$n - 1] / $starts[0] * 100 | round / 100),
	  last3_vs_first3: (($starts[$n - 3:$n] | add) / ($starts[0:3] | add) * 100 | round / 100),
	  memory_current_mib: {at_mid: $m10, at_all: $m20}, rss_mib: {at_mid: $r10, at_all: $r20},
	  cache_mib_at_all: $c20, shmem_mib_at_all: $s20,
	  memavailable_drop_per_cage_mib: {at_mid: (($a0 - $a10) / $mid / 1048576 * 10 | round / 10), at_all: (($a0 - $a20) / $n / 1048576 * 10 | round / 10)},
	  target_mib: 30, met: ($m20 != null and $m20.median <= 30),
	  stop_all_ms: ($stop20 / 100 | round / 10), clean_after: $clean}' >"$W/j/density.json"
say "   idle cage: $(jq .memory_current_mib.at_all.median "$W/j/density.json") MiB; start of the last vs the 1st: $(jq .last_vs_first "$W/j/density.json")"

say "done"
