# Sourced by the golden and hostile tiers: a scratch directory, and the
# user nspawn-cage runs as there. As root that is nobody (the user a cage is
# for must not be root); otherwise the caller. Sets work, uid, gid, user,
# home and runas (a command prefix, empty when no switch is needed).
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
NSPAWN_CAGE=${NSPAWN_CAGE:-$top_srcdir/nspawn-cage/nspawn-cage}
. "$top_srcdir/tests/testhost/lib.sh"

work=$(mktemp -d /tmp/nspawn-cage-test.XXXXXX) || exit 99
chmod 0755 "$work"
trap 'rm -rf "$work"' EXIT
if [ "$(id -u)" = 0 ]; then
        uid=65534
        runas="setpriv --reuid=65534 --regid=65534 --clear-groups --"
else
        uid=$(id -u)
        runas=""
fi
# (getent, else /etc/passwd: a Nix build's sandbox has no getent)
pwent=$(getent passwd "$uid" 2> /dev/null || awk -F: -v u="$uid" '$3 == u { print; exit }' /etc/passwd)
user=$(echo "$pwent" | cut -d: -f1)
gid=$(echo "$pwent" | cut -d: -f4)
home=$(echo "$pwent" | cut -d: -f6)
