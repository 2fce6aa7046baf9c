#!/bin/sh
# Nix tier (TAP): the Nix side of nspawn-cage on the real nixpkgs lib
# (../shared/nixpkgs-lib/lib beside the repository, see its ORIGIN.md; the
# tier skips, saying so, without it), as far as it can be tested without the
# rest of nixpkgs (no network here):
#   * every .nix file of the repository parses (nix-instantiate --parse);
#   * nix/render.nix, evaluated on sample option values (tests/nix/cases.nix),
#     gives texts the C parser accepts exactly: `nspawn-cage config` must
#     report every Key=Value line the renderer wrote, with that file and line
#     as its origin;
#   * a declared cage's file (Project=, User=, Toplevel=) is read whole by
#     `nspawn-cage start` (up to the system bus, which is not there), and the
#     rest of it as an administrator drop-in;
#   * the renderer refuses values that would not read back as written
#     (newlines, control characters, ';' after a blank, over-long lines, ...);
#   * impossible combinations become assertion messages;
#   * render.keys is the C parser's table (setting_table in config.c);
#   * nix/module.nix and the flake's nixosModules.default evaluate with
#     lib.evalModules, NixOS's options declared with their types
#     (tests/nix/nixos.nix): README.md's example verbatim, several cages
#     with every option, every assertion, restarts, tools;
#   * flake.nix's outputs with a stub nixpkgs whose lib is the real one
#     (tests/nix/stub-nixpkgs.nix; the VM test checks.<system>.vm itself
#     needs nixpkgs);
#   * the units in units/ pass systemd-analyze verify and systemd-tmpfiles.
# Always exits 0; "1..0 # SKIP" without nix-instantiate or jq.
set -u
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
cases=$top_srcdir/tests/nix/cases.nix

command -v nix-instantiate > /dev/null 2>&1 || { echo "1..0 # SKIP nix-instantiate not found (apt-get install nix-bin)"; exit 0; }
command -v jq > /dev/null 2>&1 || { echo "1..0 # SKIP jq not found (apt-get install jq)"; exit 0; }
libdir=${NSPAWN_CAGE_NIXPKGS_LIB:-$top_srcdir/../shared/nixpkgs-lib/lib}
[ -f "$libdir/default.nix" ] || { echo "1..0 # SKIP the nixpkgs lib is not at $libdir (a copy of shared/nixpkgs-lib beside the repository; see its ORIGIN.md)"; exit 0; }
libdir=$(cd "$libdir" && pwd)

# $work, and the user the C parser runs as: nobody as root (a cage's user is
# never root), like the golden and hostile tiers.
. "$top_srcdir/tests/unprivileged.sh"
trap 'exit 1' HUP INT TERM PIPE
# Nix reads nothing of the caller's (no channels, no user configuration) and
# touches no store: every evaluation uses the dummy store, read-only, so the
# tier runs as any user, with or without a Nix daemon.
mkdir -p "$work/home"
export HOME="$work/home" XDG_CACHE_HOME="$work/cache" NIX_PATH=
unset SUDO_UID SUDO_USER SUDO_GID

project=$work/project
mkdir -p "$project"
[ "$(id -u)" = 0 ] && chown "$uid" "$project"

n=0
tap() { # status description
        n=$((n + 1))
        if [ "$1" = 0 ]; then printf 'ok %d - %s\n' "$n" "$2"; else printf 'not ok %d - %s\n' "$n" "$2"; fi
}
skip() { # description reason
        n=$((n + 1))
        printf 'ok %d - %s # SKIP %s\n' "$n" "$1" "$2"
}
comment() { sed 's/^/# /' "$@"; }

# ev ATTR NAME: evaluate an attribute of cases.nix into $work/NAME.json
# (stderr in $work/NAME.err); the status is nix-instantiate's.
ev() {
        nix-instantiate --eval --strict --json --readonly-mode --store dummy:// \
                --arg libPath "$libdir" --arg readme "$work/readme-module.nix" \
                --argstr project "$project" --argstr user "$user" \
                -A "$1" "$cases" > "$work/$2.json" 2> "$work/$2.err"
}
# js NAME FILTER: a value of $work/NAME.json (strings raw)
js() { jq -r "$2" "$work/$1.json"; }
# text NAME FILTER: a string of $work/NAME.json exactly (no newline added)
text() { jq -j "$2" "$work/$1.json"; }
# same JSON value?
js_is() { # NAME FILTER JSON
        [ "$(jq -c "$2" "$work/$1.json")" = "$(echo "$3" | jq -c .)" ]
}
# tests/pkgs needs some Debian packages; without them, evaluations that
# build a closure's derivations are skipped.
pkgs_missing() { grep -q "tests/pkgs: Debian package" "$work/$1.err"; }

have_cage=no
[ -x "$NSPAWN_CAGE" ] && have_cage=yes

# run_config DIR OUT: `nspawn-cage config` with DIR as the administrator layer
run_config() {
        $runas "$NSPAWN_CAGE" config --admin-config-dir "$1" --user-config /nonexistent \
                --data-dir "$top_srcdir" "$project" > "$2" 2> "$2.err"
}

# roundtrip FILE OUT: every Key=Value line of FILE must be in OUT (`config`
# output) with FILE:LINE as its origin; Project=, User=, Toplevel= aside.
roundtrip() {
        _file=$1 _out=$2 _missing=0 _section="" _ln=0 _count=0
        while IFS= read -r _line; do
                _ln=$((_ln + 1))
                case $_line in
                '#'* | '') continue ;;
                '['*']') _section=${_line#[}; _section=${_section%]}; continue ;;
                esac
                _key=${_line%%=*}
                _value=${_line#*=}
                case $_key in Project | User | Toplevel) continue ;; esac
                case $_key in
                AllowUsers | AllowNetwork | AllowEgress) _words=$_value ;;
                *) _words="" ;;
                esac
                if [ -n "$_words" ]; then
                        for _w in $_words; do
                                _count=$((_count + 1))
                                grep -qxF -- "file:$_file:$_ln	$_section.$_key=$_w" "$_out" ||
                                        { _missing=$((_missing + 1)); echo "# not read back: file:$_file:$_ln	$_section.$_key=$_w"; }
                        done
                else
                        _count=$((_count + 1))
                        grep -qxF -- "file:$_file:$_ln	$_section.$_key=$_value" "$_out" ||
                                { _missing=$((_missing + 1)); echo "# not read back: file:$_file:$_ln	$_section.$_key=$_value"; }
                fi
        done < "$_file"
        [ "$_missing" = 0 ] && [ "$_count" -gt 0 ]
}

# as_dropin FILE: a declared cage's file as an administrator drop-in: the
# keys only a declared file may hold (Project=, User=, Toplevel=,
# [Environment] File=) commented out, so the other lines keep their numbers
as_dropin() {
        awk '/^\[/ { s = $0 } /^(Project|User|Toplevel)=/ || (s == "[Environment]" && /^File=/) { $0 = "# " $0 } { print }' "$1"
}

# well_formed FILE: the syntax rules of nspawn-cage.conf(5) the renderer keeps
well_formed() {
        awk 'length($0) > 190 { print "# line " NR " is " length($0) " characters"; bad = 1 }
             /^[ \t]/ { print "# line " NR " starts with white space"; bad = 1 }
             /\r/ { print "# line " NR " has a carriage return"; bad = 1 }
             /[ \t];/ && !/^#/ { print "# line " NR " has a ; after white space"; bad = 1 }
             !/^(#.*|\[[A-Za-z]+\]|[A-Za-z0-9]+=.*|)$/ { print "# line " NR " is neither comment, section nor Key=Value"; bad = 1 }
             END { exit bad }' "$1"
}

# README.md's NixOS example, the module in it cut out verbatim
awk '/^        \(\{ pkgs, \.\.\. \}: \{$/ { on = 1 } on { print } on && /^        \}\)$/ { exit }' \
        "$top_srcdir/README.md" > "$work/readme-module.nix"

if ev libVersion libversion; then
        echo "# nixpkgs lib $(js libversion .) at $libdir ($(sed -n 's/.*at commit \([0-9a-f]*\).*/commit \1/p' "$libdir/../ORIGIN.md" 2> /dev/null | head -n 1))"
        tap 0 "the real nixpkgs lib evaluates ($(js libversion .))"
else
        tap 1 "the real nixpkgs lib evaluates"
        comment "$work/libversion.err"
fi

# ---------------------------------------------------------------- parse
for f in "$top_srcdir/flake.nix" $(find "$top_srcdir/nix" "$top_srcdir/tests/pkgs" "$top_srcdir/tests/nix" -name '*.nix' | sort); do
        rel=${f#"$top_srcdir"/}
        if nix-instantiate --store dummy:// --parse "$f" > /dev/null 2> "$work/parse.err"; then
                tap 0 "parse $rel"
        else
                tap 1 "parse $rel"
                comment "$work/parse.err"
        fi
done

# ---------------------------------------------------------------- render
if ev render render; then
        tap 0 "nix/render.nix evaluates on the sample values"
        render_ok=yes
else
        tap 1 "nix/render.nix evaluates on the sample values"
        comment "$work/render.err"
        render_ok=no
fi

if [ "$render_ok" = yes ]; then
        mkdir -p "$work/min" "$work/full"
        text render .minimal > "$work/min/nspawn-cage.conf"
        text render .full > "$work/full/nspawn-cage.conf"
        text render .cage > "$work/demo.conf"
        text render .cageMinimal > "$work/bare.conf"
        for f in min/nspawn-cage.conf full/nspawn-cage.conf demo.conf bare.conf; do
                well_formed "$work/$f" > "$work/wf" 2>&1
                tap $? "rendered $f keeps the syntax rules (<= 190 characters, no indent, no CR, no ' ;')"
                comment "$work/wf"
        done
        grep -q '^\[' "$work/min/nspawn-cage.conf"
        [ $? = 1 ]
        tap $? "minimal settings: no section at all (built-in defaults apply)"
        grep -q '^\[Policy\]' "$work/demo.conf" "$work/bare.conf"
        [ $? = 1 ]
        tap $? "a declared cage's file has no [Policy]"

        js_is render .presetPackages '["a","b","c"]'
        tap $? "presetPackages: Packages= lines accumulate"
        js_is render .presetPackagesReset '["c"]'
        tap $? "presetPackages: an empty Packages= resets"
        js_is render .floats '["0.5","2","1.25","3","0.75"]'
        tap $? "CPUs: floats written with at most two decimals, no trailing zeros"
        js_is render .checkFull '[]'
        tap $? "checkSettings: the full sample settings pass"
        js_is render .checkCage '[]'
        tap $? "checkCage: the sample declared cage passes"

        # The declared cage's three keys: present once, in [Cage], well-formed.
        hdr=$(awk '/^\[/ { s = $0; next } /^(Project|User|Toplevel)=/ { print s " " $0 }' "$work/demo.conf")
        expect="[Cage] Project=$project
[Cage] User=$user"
        top=$(sed -n 's/^Toplevel=//p' "$work/demo.conf")
        if [ "$(echo "$hdr" | head -n 2)" = "$expect" ] && [ "$(echo "$hdr" | wc -l)" = 3 ] &&
                echo "$top" | grep -qxE '/nix/store/[0123456789abcdfghijklmnpqrsvwxyz]{32}-[A-Za-z0-9+_?=-][A-Za-z0-9+._?=-]*'; then
                tap 0 "declared cage: [Cage] Project=, User=, Toplevel= (a store path) once each"
        else
                tap 1 "declared cage: [Cage] Project=, User=, Toplevel= (a store path) once each"
                echo "$hdr" | comment
        fi
        grep -qx '# Package ripgrep-14.1.0 (a derivation; in Toplevel=)' "$work/demo.conf"
        tap $? "declared cage: a derivation in packages is listed as a comment"

        if [ "$have_cage" = no ]; then
                for t in "minimal" "full administrator settings" "declared cage as a drop-in" "minimal declared cage as a drop-in"; do
                        skip "C parser reads the rendered $t" "$NSPAWN_CAGE not built"
                done
        else
                # minimal: accepted, all built-in
                run_config "$work/min" "$work/min.out"
                st=$?
                tap $st "C parser reads the rendered minimal settings"
                [ $st = 0 ] || comment "$work/min.out.err"
                grep -qxF "builtin	Limits.Memory=4G" "$work/min.out"
                tap $? "minimal: Limits.Memory is the built-in 4G"

                # full: every line read back at its own line
                run_config "$work/full" "$work/full.out"
                st=$?
                tap $st "C parser reads the rendered full administrator settings"
                [ $st = 0 ] || comment "$work/full.out.err"
                roundtrip "$work/full/nspawn-cage.conf" "$work/full.out"
                tap $? "full settings: every Key=Value line is read back with its file:line"
                ln=$(grep -nx 'Memory=2G' "$work/full/nspawn-cage.conf" | cut -d: -f1)
                grep -qxF "file:$work/full/nspawn-cage.conf:$ln	Limits.Memory=2G" "$work/full.out"
                tap $? "full settings: Limits.Memory=2G from file:...:$ln"
                grep -qxF "file:$work/full/nspawn-cage.conf:$(grep -nx 'Set=GREETING=hello world; bye' "$work/full/nspawn-cage.conf" | cut -d: -f1)	Environment.Set=GREETING=hello world; bye" "$work/full.out"
                tap $? "full settings: a Set= value with blanks and ';' is read whole"

                # The declared cage, the C parser's way of reading an
                # administrator file: Project=, User=, Toplevel= are valid
                # only in cages/NAME.conf, so here they are commented out
                # (the other lines keep their numbers) and the file is read
                # as a drop-in after the full settings.
                for c in demo bare; do
                        rm -rf "$work/$c.admin"
                        mkdir -p "$work/$c.admin/nspawn-cage.conf.d"
                        cp "$work/full/nspawn-cage.conf" "$work/$c.admin/nspawn-cage.conf"
                        as_dropin "$work/$c.conf" > "$work/$c.admin/nspawn-cage.conf.d/50-$c.conf"
                        run_config "$work/$c.admin" "$work/$c.out"
                        st=$?
                        what=$([ $c = demo ] && echo "declared cage" || echo "minimal declared cage")
                        tap $st "C parser reads the rendered $what as a drop-in"
                        [ $st = 0 ] || comment "$work/$c.out.err"
                        # (the minimal one has no line but the three)
                        if [ $c = demo ]; then
                                roundtrip "$work/$c.admin/nspawn-cage.conf.d/50-$c.conf" "$work/$c.out"
                                tap $? "$what: every Key=Value line is read back with its file:line"
                        fi
                done
                grep -qxF "file:$work/demo.admin/nspawn-cage.conf.d/50-demo.conf:$(grep -nx 'Memory=1G' "$work/demo.conf" | cut -d: -f1)	Limits.Memory=1G" "$work/demo.out"
                tap $? "declared cage: its Memory=1G overrides the administrator's 2G"
        fi

        # The whole declared file, as `nspawn-cage start NAME` reads it.
        # start reads and checks everything (user, project, layers, preset)
        # before it connects to the system bus; with no bus here it stops
        # there.  Where a bus exists it would really start a cage: skipped.
        why=""
        [ "$have_cage" = yes ] || why="$NSPAWN_CAGE not built"
        [ -z "$why" ] && [ "$(id -u)" != 0 ] && why="start needs root"
        [ -z "$why" ] && { [ -S /run/dbus/system_bus_socket ] || [ -n "${DBUS_SYSTEM_BUS_ADDRESS:-}" ]; } &&
                why="a system bus is running here: start would start a real cage"
        if [ -n "$why" ]; then
                skip "start reads the whole declared file (Project=, User=, Toplevel=)" "$why"
                skip "start refuses the declared file with a limit above the policy" "$why"
        else
                mkdir -p "$work/start/cages"
                cp "$work/full/nspawn-cage.conf" "$work/start/nspawn-cage.conf"
                cp "$work/demo.conf" "$work/start/cages/demo.conf"
                "$NSPAWN_CAGE" start --admin-config-dir "$work/start" --data-dir "$top_srcdir" demo > "$work/start.out" 2> "$work/start.err"
                if grep -q "cannot connect to the system bus" "$work/start.err" && ! grep -q "demo.conf" "$work/start.err"; then
                        tap 0 "start reads the whole declared file (Project=, User=, Toplevel=)"
                else
                        tap 1 "start reads the whole declared file (Project=, User=, Toplevel=)"
                        comment "$work/start.err"
                fi
                sed -i 's/^Memory=1G$/Memory=100G/' "$work/start/cages/demo.conf"
                ln=$(grep -nx 'Memory=100G' "$work/start/cages/demo.conf" | cut -d: -f1)
                "$NSPAWN_CAGE" start --admin-config-dir "$work/start" --data-dir "$top_srcdir" demo > "$work/start.out" 2> "$work/start.err"
                grep -qF "$work/start/cages/demo.conf:$ln: Memory=100G asks for more than allowed" "$work/start.err"
                st=$?
                tap $st "start refuses the declared file with a limit above the policy"
                [ $st = 0 ] || comment "$work/start.err"
        fi
fi

# ---------------------------------------------------------------- refusals
# name | what the message must say
while IFS='|' read -r name says; do
        [ -n "$name" ] || continue
        if ev "refuse.$name" "refuse-$name"; then
                tap 1 "renderer refuses $name"
                comment "$work/refuse-$name.json"
        elif grep -q "nspawn-cage: .*$says" "$work/refuse-$name.err"; then
                tap 0 "renderer refuses $name"
        else
                tap 1 "renderer refuses $name (with a message saying '$says')"
                comment "$work/refuse-$name.err"
        fi
done << 'EOF'
newlineSet|contains a newline
newlineCommand|contains a newline
newlinePackage|contains a newline
newlineProject|contains a newline
carriageReturn|contains a newline
controlChar|control character
longLine|characters long; nspawn-cage reads at most 190
semicolonAfterBlank|after white space would start a comment
leadingBlank|white space at the start or end
trailingBlankSet|white space at the start or end
trailingBlank|white space at the start or end
twoWords|is not one word
emptyWord|is not one word
tooManyUsers|characters long; nspawn-cage reads at most 190
cpusThreeDecimals|at most two decimals
mkCageNotAPackage|neither an attribute path (string) nor a derivation
EOF

# ---------------------------------------------------------------- keys
# render.keys against setting_table in nspawn-cage/config.c: the same keys,
# and the module writes a key into nspawn-cage.conf exactly when the C
# parser takes it from the administrator's layer.
if ev render.keys keys; then
        sed -n 's/^ *\[SETTING_[A-Z0-9_]*\] = { "\([A-Za-z]*\)", "\([A-Za-z0-9]*\)", V_[A-Z_]*, \(L_[A-Z_]*\),.*/\1.\2 \3/p' \
                "$top_srcdir/nspawn-cage/config.c" | sort > "$work/c-keys"
        js keys '.[] | "\(.section).\(.key)"' | sort > "$work/nix-keys"
        diff "$work/c-keys" "$work/nix-keys" > /dev/null 2>&1
        cut -d' ' -f1 "$work/c-keys" | diff - "$work/nix-keys" > "$work/keys.diff"
        st=$?
        [ "$(wc -l < "$work/c-keys")" -gt 30 ] || st=1
        tap $st "render.keys has every key of config.c's setting_table ($(wc -l < "$work/c-keys")), no other"
        comment "$work/keys.diff"
        bad=0
        while read -r key layers; do
                admin=$(js keys ".[] | select(\"\(.section).\(.key)\" == \"$key\") | .files | index(\"admin\") != null")
                case $layers in
                L_ADMIN | L_TRUSTED | L_ALL) want=true ;;
                *) want=false ;;
                esac
                [ "$admin" = "$want" ] || { bad=1; echo "# $key ($layers): module writes it to nspawn-cage.conf: $admin"; }
        done < "$work/c-keys"
        tap $bad "render.keys: nspawn-cage.conf gets exactly the keys the C parser takes from the administrator"
else
        tap 1 "render.keys evaluates"
        comment "$work/keys.err"
fi

# ---------------------------------------------------------------- checks
if ev checks checks; then
        tap 0 "checks evaluate"
        while IFS='|' read -r set says; do
                [ -n "$set" ] || continue
                if js checks ".$set[]" | grep -qF -- "$says"; then
                        tap 0 "checks.$set: $says"
                else
                        tap 1 "checks.$set: $says"
                        js checks ".$set[]" | comment
                fi
        done << 'EOF'
settings|Limits.Memory = "32G" is above services.nspawn-cage.settings.Policy.MaxMemory = "16G"
settings|Limits.CPUs = "infinity" is above services.nspawn-cage.settings.Policy.MaxCPUs = 2
settings|Limits.Tasks = 100000 is above services.nspawn-cage.settings.Policy.MaxTasks = 50000
settings|Network.Mode = "host" is not allowed by services.nspawn-cage.settings.Policy.AllowNetwork (private)
settings|display forwarding (X11/Wayland) is on, but services.nspawn-cage.settings.Policy.AllowDisplay is false
settings|binds are configured, but services.nspawn-cage.settings.Policy.AllowBinds is false
settings|Files.Bind = "relative/path": expected SOURCE[:DESTINATION]
settings|Files.Bind = "/a/../b": expected SOURCE[:DESTINATION]
settings|State.Directory: "/abs" is not a path relative to the home
settings|State.Directory: "../up" is not a path relative to the home
settings|Network.Allow: "no host" is not HOST[:PORT]
settings|Network.Allow: "example.com:99999" is not HOST[:PORT]
settings|Policy.AllowEgress: "-x" is not HOST[:PORT]
settings|Network.Allow: "no host" is not in services.nspawn-cage.settings.Policy.AllowEgress
egress|Network.Allow: "example.org" is not in services.nspawn-cage.settings.Policy.AllowEgress
egress|Network.Allow: "api.example.org:80" is not in services.nspawn-cage.settings.Policy.AllowEgress
settings|"1BAD" is not an environment variable name
settings|PATH is managed by nspawn-cage
settings|SYSTEMD_FOO is managed by nspawn-cage
settings|"Bad User" is not a user name
settings|settings.Environment.File: only a declared cage's file may set it
settings|settings.Forward.SSHAgent: only the user's own configuration (~/.config/nspawn-cage/config) may set it
settings|settings.Bogus: nspawn-cage.conf(5) has no section [Bogus]
settings|settings.Cage.Project: written by the module from cages.<name>.project
settings|settings.Limits.Weight: [Limits] has no key Weight in nspawn-cage.conf(5) (known: CPUs Memory Swap Tasks)
noOff|does not include the default Network.Mode "off"
noNetwork|allows no network mode at all
tooSmall|a cage needs at least 16M
cage|'-bad' is not a valid cage name
cage|project = "home/alice/proj": expected an absolute
cage|user = "root": a cage's user must not be root
cage|user = "root" is not in services.nspawn-cage.settings.Policy.AllowUsers (alice)
cage|settings.Cage.Preset = "Claude": preset names use
cage|"not a package" is not a package attribute path
cage|settings.Cage.Nixpkgs: only the administrator's file may set it
cage|settings.Policy.MaxMemory: [Policy] bounds every cage
cage|settings.Limits.Memory = "20G" is above services.nspawn-cage.settings.Policy.MaxMemory = "16G"
cage|settings.Limits.Swap = "2G" is above services.nspawn-cage.settings.Policy.MaxSwap = "1G"
cage|settings.Network.Mode = "host" is not allowed by services.nspawn-cage.settings.Policy.AllowNetwork (default: off private)
cage|Network.Allow (an egress allowlist) needs Network.Mode = "private"; the cage's mode is "host"
cage|Network.Mode = "host" cannot be limited to services.nspawn-cage.settings.Policy.AllowEgress
cage|settings.Network.Allow: "192.0.2.9:443" is not in services.nspawn-cage.settings.Policy.AllowEgress
cage|GPU is on, but services.nspawn-cage.settings.Policy.AllowGPU is false
cage|X11Trusted is on, but services.nspawn-cage.settings.Policy.AllowX11Trusted is false
cage|display forwarding (X11/Wayland) is on, but services.nspawn-cage.settings.Policy.AllowDisplay is false
cage|binds are configured, but services.nspawn-cage.settings.Policy.AllowBinds is false
cage|HOME is managed by nspawn-cage
cage|Cage.NixDaemon is true, but services.nspawn-cage.settings.Policy.AllowNixDaemon is not
cage|Cage.Containers = "podman", but services.nspawn-cage.settings.Policy.AllowContainers is not true
cage|Network.Publish is set, but services.nspawn-cage.settings.Policy.AllowPublish is false
cage|Network.HostService is set, but services.nspawn-cage.settings.Policy.AllowHostServices is false
cage|settings.Environment.File = "/nix/store/00000000000000000000000000000000-secret": expected an absolute path outside the Nix store
EOF
        js_is checks '.egress | length' 2
        tap $? "checks.egress: of five Allow= entries within AllowEgress=*.example.org, only the bare name and another port are outside"
        js_is checks .cageFine '[]'
        tap $? "checks.cageFine: a host-network cage the administrator allows, AllowUsers=*, Memory=infinity passes"
else
        tap 1 "checks evaluate"
        comment "$work/checks.err"
fi

# ---------------------------------------------------------------- module
# module_files NAME FILTER DIR: the etc files of a module summary into DIR
module_files() {
        mkdir -p "$3/cages"
        for f in $(js "$1" "$2.etc | keys[]"); do
                text "$1" "$2.etc[\"$f\"]" > "$3/${f#nspawn-cage/}"
        done
}
# read_back DIR: the C parser reads nspawn-cage.conf and each cage's file
# (as a drop-in, see as_dropin); every line must come back with its file:line
read_back() {
        _st=0
        for c in "$1"/cages/*.conf; do
                rm -rf "$1/nspawn-cage.conf.d"
                mkdir -p "$1/nspawn-cage.conf.d"
                as_dropin "$c" > "$1/nspawn-cage.conf.d/$(basename "$c")"
                if ! run_config "$1" "$1.out" || ! roundtrip "$1/nspawn-cage.conf.d/$(basename "$c")" "$1.out"; then
                        _st=1
                        echo "# $(basename "$c"):"
                        comment "$1.out.err"
                fi
        done
        rm -rf "$1/nspawn-cage.conf.d"
        run_config "$1" "$1.out" && roundtrip "$1/nspawn-cage.conf" "$1.out" || _st=1
        return $_st
}

if ev module.full module; then
        tap 0 "nix/module.nix evaluates (real lib, NixOS option types) with settings and three cages using every option"
        js_is module .assertions '[]'
        tap $? "module: no failed assertion for valid settings" || js module '.assertions[]' | comment
        js_is module .warnings '[]'
        tap $? "module: no warning when the cages' user is declared"
        js_is module '.etc | keys' '["nspawn-cage/cages/demo.conf","nspawn-cage/cages/hostnet.conf","nspawn-cage/cages/offline.conf","nspawn-cage/nspawn-cage.conf"]'
        tap $? "module: environment.etc has nspawn-cage.conf and cages/NAME.conf"
        js_is module '.services | map_values(del(.triggers))' "{\"nspawn-cage@demo\":{\"environmentFile\":\"/run/secrets/demo.env\",\"overrideStrategy\":\"asDropin\",\"requiresMountsFor\":[\"$project\"],\"restartIfChanged\":true,\"wantedBy\":[\"machines.target\"]},\"nspawn-cage@hostnet\":{\"environmentFile\":null,\"overrideStrategy\":\"asDropin\",\"requiresMountsFor\":[\"$project\"],\"restartIfChanged\":true,\"wantedBy\":[\"machines.target\"]},\"nspawn-cage@offline\":{\"environmentFile\":null,\"overrideStrategy\":\"asDropin\",\"requiresMountsFor\":[\"$project\"],\"restartIfChanged\":false,\"wantedBy\":[]}}"
        tap $? "module: nspawn-cage@NAME drop-ins: machines.target with autoStart, RequiresMountsFor= the project, restartIfChanged per cage" || js module .services | comment
        js_is module '.targets' '{"machines":["multi-user.target"]}'
        tap $? "module: machines.target is wanted by multi-user.target when a cage starts at boot"
        js_is module '[.services[] | .triggers | length]' '[1,1,1]' &&
                [ "$(js module '.services["nspawn-cage@demo"].triggers[0]')" = "$(js module '.sources["nspawn-cage/cages/demo.conf"]')" ]
        tap $? "module: a cage's only restart trigger is its own file"
        js_is module '.timers' '{"nspawn-cage-gc":{"overrideStrategy":"asDropin","wantedBy":["timers.target"]}}'
        tap $? "module: nspawn-cage-gc.timer enabled"
        js_is module '.tmpfiles' '["d /var/lib/nspawn-cage 0700 root root -","d /var/lib/nspawn-cage/cages 0700 root root -","d /var/lib/nspawn-cage/gcroots 0700 root root -"]'
        tap $? "module: tmpfiles rules for /var/lib/nspawn-cage"
        js_is module '[.systemPackages, .systemdPackages]' '[["nspawn-cage-0.1.0","nftables"],["nspawn-cage-0.1.0"]]'
        tap $? "module: the package is installed and its units used; nftables for the private cage"

        module_files module "" "$work/mod"
        grep -qE '^Toplevel=/nix/store/[0123456789abcdfghijklmnpqrsvwxyz]{32}-nspawn-cage-demo$' "$work/mod/cages/demo.conf"
        tap $? "module: demo.conf has Toplevel= the closure built with the system"
        grep -qx 'Bind=/srv/data:/mnt/data' "$work/mod/cages/demo.conf" && grep -qx 'BindReadOnly=/opt/ref' "$work/mod/cages/demo.conf"
        tap $? "module: structured binds become Bind=HOST:MOUNT (isReadOnly = false) and BindReadOnly=PATH"
        grep -qx 'Allow=192.0.2.1:443' "$work/mod/cages/demo.conf" && grep -qx 'File=/run/secrets/demo-agent.env' "$work/mod/cages/demo.conf" &&
                grep -qx 'Persist=no' "$work/mod/cages/demo.conf" && grep -qx 'ProtectGit=yes' "$work/mod/cages/demo.conf"
        tap $? "module: a cage's settings declare Network.Allow, Environment.File, State.Persist, Files.ProtectGit"
        if [ "$have_cage" = no ]; then
                skip "C parser reads the module's nspawn-cage.conf and every cage's file" "$NSPAWN_CAGE not built"
        else
                read_back "$work/mod" > "$work/mod.rb"
                tap $? "C parser reads the module's nspawn-cage.conf and every cage's file, each line back with its file:line"
                cat "$work/mod.rb"
        fi
else
        tap 1 "nix/module.nix evaluates (real lib, NixOS option types) with settings and three cages using every option"
        if pkgs_missing module; then echo "# tests/pkgs lacks Debian packages (tests/pkgs/README.md)"; fi
        comment "$work/module.err"
fi

if ev module.restart restart; then
        js_is restart '[.base, .admin] | map(map_values(.triggers)) | .[0] == .[1]' true
        tap $? "module: a change of services.nspawn-cage.settings alone restarts no cage"
        js_is restart '[.base, .oneCage] | map(map_values(.triggers)) | [.[0]["nspawn-cage@demo"] == .[1]["nspawn-cage@demo"], .[0]["nspawn-cage@hostnet"] == .[1]["nspawn-cage@hostnet"], .[0]["nspawn-cage@offline"] == .[1]["nspawn-cage@offline"]]' '[true,true,false]'
        tap $? "module: a change of one cage restarts that cage only"
else
        tap 1 "module: restart triggers evaluate"
        comment "$work/restart.err"
fi

if ev module.tools tools; then
        js_is tools . '{"none":["nspawn-cage-0.1.0"],"private":["nspawn-cage-0.1.0","nftables"],"x11":["nspawn-cage-0.1.0","xauth"],"x11Trusted":["nspawn-cage-0.1.0"]}'
        tap $? "module: nftables with a private cage, xauth with untrusted X11, nothing else" || js tools . | comment
else
        tap 1 "module: tools evaluate"
        comment "$work/tools.err"
fi

if ev module.examples examples; then
        js_is examples '[.[]] | all' true
        tap $? "module: cages, settings, limits, network, binds, environment and a cage's settings have examples" || js examples . | comment
else
        tap 1 "module: option examples evaluate"
        comment "$work/examples.err"
fi

if ev module.readme readme && [ "$(js readme 'type')" = object ]; then
        tap 0 "README.md's example evaluates verbatim with the flake's nixosModules.default"
        js_is readme .assertions '[]'
        tap $? "README example: no failed assertion" || js readme '.assertions[]' | comment
        js_is readme '.etc | keys' '["nspawn-cage/cages/webapp.conf","nspawn-cage/nspawn-cage.conf"]'
        tap $? "README example: nspawn-cage.conf and cages/webapp.conf"
        js_is readme '.services["nspawn-cage@webapp"] | [.wantedBy, .environmentFile, .requiresMountsFor]' '[["machines.target"],"/run/secrets/webapp.env",["/home/alice/src/webapp"]]'
        tap $? "README example: webapp starts with machines.target, its environment file, after its project's mounts"
        module_files readme "" "$work/readme"
        for want in Preset=claude-code Memory=8G Memory=4G CPUs=1.5 Mode=private Pass=ANTHROPIC_API_KEY 'AllowUsers=alice'; do
                cat "$work/readme/nspawn-cage.conf" "$work/readme/cages/webapp.conf" | grep -qx "$want" || { echo "# missing: $want"; false; } || break
        done
        tap $? "README example: the files say what the example says"
else
        tap 1 "README.md's example evaluates verbatim with the flake's nixosModules.default"
        comment "$work/readme.err"
        sed 's/^/# | /' "$work/readme-module.nix"
fi

if ev module.bad module-bad; then
        while IFS='|' read -r says; do
                [ -n "$says" ] || continue
                js module-bad '.[]' | grep -qF -- "$says"
                tap $? "module assertion: $says"
        done << 'EOF'
cages.bad.project = "relative": expected an absolute
cages.bad.user = "root": a cage's user must not be root
cages.bad.settings.Limits.Memory = "32G" is above services.nspawn-cage.settings.Policy.MaxMemory = "16G"
cages.bad.settings.Network.Mode = "host" is not allowed
cages.bad.settings: display forwarding (X11/Wayland) is on, but services.nspawn-cage.settings.Policy.AllowDisplay is false
cages.bad.settings.Files.BindReadOnly = "/srv/../etc:/data": expected SOURCE[:DESTINATION]
cages.bad.settings.Policy.AllowGPU: [Policy] bounds every cage
cages.bad.settings.Forward.GitConfig: only the user's own configuration
preset "no-such-preset" is not one shipped with nspawn-cage
environmentFile = "/nix/store/00000000000000000000000000000000-secret": expected an absolute path outside the Nix store
EOF
else
        tap 1 "module assertions evaluate"
        comment "$work/module-bad.err"
fi
while IFS='|' read -r case says; do
        if ev "module.$case" "module-$case"; then
                tap 1 "module.$case fails: $says"
                comment "$work/module-$case.json"
        else
                grep -qF -- "$says" "$work/module-$case.err"
                st=$?
                tap $st "module.$case fails: $says"
                [ $st = 0 ] || comment "$work/module-$case.err"
        fi
done << 'EOF'
typeError|is not of type `null or string matching
freeformTypeError|is not of type `
unknownOption|The option `services.nspawn-cage.cages.x.limit' does not exist
conflict|services.nspawn-cage.cages.x.settings.Network.Mode' has conflicting definition values
EOF
ev module.disabled module-disabled && js_is module-disabled . '{}'
tap $? "module: nothing is configured unless enable = true"

# ---------------------------------------------------------------- flake
if ev flake flake; then
        tap 0 "flake.nix outputs evaluate (stub nixpkgs, real lib)"
        for flag in "--with-systemdsystemunitdir=" "--with-tmpfilesdir=" "--with-default-nixpkgs=/nix/store/" \
                "--with-nspawn=/nix/store/.*-systemd/bin/systemd-nspawn" "--with-xauth=/nix/store/.*-xauth/bin/xauth" \
                "--with-nft=/nix/store/.*-nftables/bin/nft" "--with-ip=/nix/store/.*-iproute2/bin/ip" \
                "--with-nix-build=/nix/store/.*-nix/bin/nix-build" "--with-nix-store=/nix/store/.*-nix/bin/nix-store" \
                "--sysconfdir=/etc" "--localstatedir=/var"; do
                js flake '.configureFlags[]' | grep -q -- "^$flag"
                tap $? "flake: package configured with $flag"
        done
        js_is flake '[.doCheck, .checkFlags]' '[true, ["TESTS=$(OFFLINE_TESTS)"]]'
        tap $? "flake: checkPhase runs TESTS=\$(OFFLINE_TESTS) (unit, golden, hostile)"
        offline=$(sed -n 's/^OFFLINE_TESTS = //p' "$top_srcdir/Makefile.am")
        [ "$offline" = '$(UNIT_TESTS) tests/golden/run.sh tests/hostile/run.sh' ]
        tap $? "flake: OFFLINE_TESTS is the unit, golden and hostile tiers ($offline)"
        js_is flake '[.overlay, .mkCage, .vmName, .devShell, .checkNames, .systems, .meta.mainProgram, .meta.license]' \
                '["nspawn-cage-0.1.0", "nspawn-cage-flake", "nspawn-cage", "shell", ["package","vm"], ["aarch64-linux","x86_64-linux"], "nspawn-cage", "LGPL-2.1-or-later"]'
        tap $? "flake: overlays.default, lib.mkCage, checks, devShells, systems, meta"
        js flake .renderAdmin | grep -qx 'Memory=1G'
        tap $? "flake: lib.render.admin"
        js_is flake '.app.type' '"app"' && js flake .app.program | grep -q '/bin/nspawn-cage$'
        tap $? "flake: apps.default runs bin/nspawn-cage"
        js_is flake '.host.assertions' '[]'
        tap $? "flake: the VM test's host passes the module's assertions"
        js flake '.host.etc["nspawn-cage/cages/demo.conf"]' | grep -qx 'Memory=1G' &&
                js flake '.host.etc["nspawn-cage/cages/demo.conf"]' | grep -qx 'User=alice' &&
                js flake '.host.etc["nspawn-cage/cages/demo.conf"]' | grep -qx 'Packages=git'
        tap $? "flake: the VM test's declared cage: user alice, Packages=git, Memory=1G"
        js_is flake '.host.services["nspawn-cage@demo"].wantedBy' '["machines.target"]'
        tap $? "flake: the VM test's cage starts at boot (machines.target)"
        js_is flake '.adhocPackages' '["nspawn-cage-0.1.0"]'
        tap $? "flake: the VM test's adhoc machine has only the package"
        js flake .testScript > "$work/testScript.py"
        missing=0
        for s in 'wait_for_unit("nspawn-cage@demo.service")' 'machinectl list' 'machinectl shell alice@demo /bin/sh -c id' \
                'systemctl show nspawn-cage-demo.service -p MemoryMax' "nspawn-cage config" "nspawn-cage render"; do
                grep -qF -- "$s" "$work/testScript.py" || { missing=1; echo "# testScript lacks: $s"; }
        done
        tap $missing "flake: the VM test script checks unit, machinectl list/shell, MemoryMax, config and render"
        if command -v python3 > /dev/null 2>&1; then
                python3 -c 'import sys; compile(open(sys.argv[1]).read(), "testScript", "exec")' "$work/testScript.py" 2> "$work/py.err"
                st=$?
                tap $st "flake: the VM test script is valid Python"
                [ $st = 0 ] || comment "$work/py.err"
        else
                skip "flake: the VM test script is valid Python" "no python3"
        fi
else
        if pkgs_missing flake; then
                skip "flake.nix outputs evaluate (stub nixpkgs, real lib)" "tests/pkgs lacks Debian packages (tests/pkgs/README.md)"
        else
                tap 1 "flake.nix outputs evaluate (stub nixpkgs, real lib)"
                comment "$work/flake.err"
        fi
fi

# ---------------------------------------------------------------- lib
if ev lib lib; then
        tap 0 "nix/lib.nix evaluates"
        shipped=$(ls "$top_srcdir/templates/presets" | sed -n 's/\.conf$//p' | jq -R . | jq -sc .)
        js_is lib .presets "$shipped"
        tap $? "lib.presets: the shipped presets"
        js_is lib .claudeCode "$(sed -n 's/^Packages=//p' "$top_srcdir/templates/presets/claude-code.conf" | tr ' ' '\n' | jq -R . | jq -sc .)"
        tap $? "lib.presetPackages claude-code: its Packages="
        js_is lib .missingPreset 'null'
        tap $? "lib.presetPackages of a preset not shipped: null"
        js_is lib .cagePackages "$(echo '[]' | jq -c --argjson p "$(sed -n 's/^Packages=//p' "$top_srcdir/templates/presets/codex.conf" | tr ' ' '\n' | jq -R . | jq -sc .)" '$p + ["jq", "git", "ripgrep", "htop"] | reduce .[] as $x ([]; if index([$x]) then . else . + [$x] end)')"
        tap $? "lib.cagePackages: preset, then the administrator's, then the cage's, without repeats"
        js lib .mkCageMetadata | jq -c .packages | grep -qxF '["git","nspawnCageExtra.fake-agent-1","less"]'
        tap $? "lib.mkCage: strings and derivations reach cage.nix in order"
else
        if pkgs_missing lib; then
                skip "nix/lib.nix evaluates" "tests/pkgs lacks Debian packages (tests/pkgs/README.md)"
        else
                tap 1 "nix/lib.nix evaluates"
                comment "$work/lib.err"
        fi
fi

# ---------------------------------------------------------------- units
units=$top_srcdir/units
others=$(grep -ho '@[A-Za-z_]*@' "$units"/nspawn-cage@.service "$units"/nspawn-cage-gc.service "$units"/nspawn-cage-gc.timer "$units"/nspawn-cage.tmpfiles |
        sort -u | grep -vx -e '@bindir@' -e '@localstatedir@')
[ -z "$others" ]
tap $? "units: the only placeholders are @bindir@ and @localstatedir@"
grep -qx 'ExecStart=@bindir@/nspawn-cage start %i' "$units/nspawn-cage@.service" &&
        grep -qx 'ExecStop=@bindir@/nspawn-cage stop %i' "$units/nspawn-cage@.service" &&
        grep -qx 'Type=oneshot' "$units/nspawn-cage@.service" && grep -qx 'RemainAfterExit=yes' "$units/nspawn-cage@.service"
tap $? "units: nspawn-cage@.service is a oneshot running start %i / stop %i"
mkdir -p "$work/units"
bindir=$(cd "$(dirname "$NSPAWN_CAGE")" 2> /dev/null && pwd)
for f in nspawn-cage@.service nspawn-cage-gc.service nspawn-cage-gc.timer nspawn-cage.tmpfiles; do
        sed -e "s|@bindir@|${bindir:-/usr/bin}|g" -e "s|@localstatedir@|/var|g" "$units/$f" > "$work/units/$f"
done
if ! command -v systemd-analyze > /dev/null 2>&1; then
        skip "units: systemd-analyze verify" "no systemd-analyze"
elif [ "$have_cage" = no ]; then
        skip "units: systemd-analyze verify" "$NSPAWN_CAGE not built (verify checks ExecStart=)"
else
        (cd "$work/units" && systemd-analyze verify --man=no ./nspawn-cage@demo.service ./nspawn-cage-gc.service ./nspawn-cage-gc.timer) > "$work/verify" 2>&1
        st=$?
        [ $st = 0 ] && [ ! -s "$work/verify" ]
        tap $? "units: systemd-analyze verify (nspawn-cage@demo, nspawn-cage-gc.service, .timer) says nothing"
        comment "$work/verify"
fi
if command -v systemd-tmpfiles > /dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        mkdir -p "$work/troot/var/lib"
        systemd-tmpfiles --create --root="$work/troot" "$work/units/nspawn-cage.tmpfiles" > "$work/tmpfiles" 2>&1
        st=$?
        got=$(cd "$work/troot" && find var/lib/nspawn-cage -printf '%m %u %g %p\n' | sort)
        want="700 root root var/lib/nspawn-cage
700 root root var/lib/nspawn-cage/cages
700 root root var/lib/nspawn-cage/gcroots"
        [ $st = 0 ] && [ "$got" = "$want" ]
        tap $? "units: nspawn-cage.tmpfiles makes the state directories, root's, 0700"
        comment "$work/tmpfiles"
else
        skip "units: nspawn-cage.tmpfiles makes the state directories, root's, 0700" "needs systemd-tmpfiles and root"
fi

echo "1..$n"
exit 0
