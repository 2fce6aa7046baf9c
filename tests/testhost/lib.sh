# Tiny TAP helpers for integration test scripts (POSIX sh). Source it:
#   . "$(dirname "$0")/../testhost/lib.sh"
#   tap_plan 2
#   true; tap_ok $? "true succeeds"
#   tap_check "id works" id -u
#   tap_done
# Scripts exit 0 even after `not ok` lines: the TAP consumer (automake's
# tap-driver, prove) counts the failures; a non-zero exit would add an ERROR.

_tap_n=0
_tap_failed=0
_tap_plan=

# tap_plan N: announce N tests (or call tap_done without a plan at the end).
tap_plan() {
	_tap_plan=$1
	echo "1..$1"
}

# tap_diag TEXT...: diagnostic lines, each prefixed with "# ".
tap_diag() {
	printf '%s\n' "$@" | sed 's/^/# /'
}

# tap_ok STATUS DESCRIPTION...: "ok" if STATUS is 0, else "not ok".
tap_ok() {
	_tap_s=$1
	shift
	_tap_n=$((_tap_n + 1))
	if [ "$_tap_s" -eq 0 ] 2>/dev/null; then
		printf "ok %s - %s\n" "$_tap_n" "$*"
	else
		printf "not ok %s - %s\n" "$_tap_n" "$*"
		_tap_failed=$((_tap_failed + 1))
	fi
}

# tap_check DESCRIPTION COMMAND...: run COMMAND; its output is shown as
# diagnostics if it fails.
tap_check() {
	_tap_d=$1
	shift
	if _tap_out=$("$@" 2>&1); then
		tap_ok 0 "$_tap_d"
	else
		_tap_s=$?
		tap_ok 1 "$_tap_d"
		tap_diag "command: $*" "exit status: $_tap_s"
		[ -n "$_tap_out" ] && tap_diag "$_tap_out"
	fi
	return 0
}

# tap_is GOT EXPECTED DESCRIPTION...: string equality.
tap_is() {
	_tap_got=$1
	_tap_exp=$2
	shift 2
	if [ "$_tap_got" = "$_tap_exp" ]; then
		tap_ok 0 "$@"
	else
		tap_ok 1 "$@"
		tap_diag "expected: '$_tap_exp'" "     got: '$_tap_got'"
	fi
}

# tap_skip REASON [COUNT]: skip COUNT (default 1) tests.
tap_skip() {
	_tap_k=${2:-1}
	while [ "$_tap_k" -gt 0 ]; do
		_tap_n=$((_tap_n + 1))
		echo "ok $_tap_n # SKIP $1"
		_tap_k=$((_tap_k - 1))
	done
}

# tap_skip_all REASON: the whole script is skipped (before any test).
tap_skip_all() {
	echo "1..0 # SKIP $*"
	exit 0
}

# tap_bail REASON: abort the whole run.
tap_bail() {
	echo "Bail out! $*"
	exit 1
}

# tap_done: print the plan if none was given, check the count, exit 0.
tap_done() {
	if [ -z "$_tap_plan" ]; then
		echo "1..$_tap_n"
	elif [ "$_tap_plan" -ne "$_tap_n" ]; then
		tap_diag "planned $_tap_plan tests but ran $_tap_n"
	fi
	[ "$_tap_failed" -eq 0 ] || tap_diag "failed $_tap_failed of $_tap_n"
	exit 0
}
