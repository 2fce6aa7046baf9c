#!/bin/sh
# Golden tests: each directory under tests/golden/ is a case: admin/ (the
# administrator layer), user.conf, project/ (with .nspawn-cage.conf), closure
# (store paths), and the expected outputs: expected-config (`config`),
# expected.nspawn and expected.rootfs (`render`), or expected-error (stderr
# lines that must appear when the configuration is refused).
# Placeholders: @CASE@ (the case's scratch dir), @USER@ @UID@ @GID@ @HOME@,
# @STATE@ (the state directory).
# Run with --update to rewrite the expected files (then review the diff).
set -u
. "$(dirname "$0")/../unprivileged.sh"
update=no
[ "${1:-}" = --update ] && update=yes


subst() { # file -> stdout with placeholders filled in
        sed -e "s|@CASE@|$case_dir|g" -e "s|@WORK@|$work|g" -e "s|@USER@|$user|g" -e "s|@UID@|$uid|g" \
            -e "s|@GID@|$gid|g" -e "s|@HOME@|$home|g" "$1"
}

unsubst() {
        sed -e "s|$case_dir|@CASE@|g" -e "s|$work|@WORK@|g" -e "s|:$uid:$gid:$user:$home:|:@UID@:@GID@:@USER@:@HOME@:|g" \
            -e "s|\([ :]\)$home/|\1@HOME@/|g" "$1"
}

compare() { # expected-file got-file description
        # The staging mounts live in the state directory, which is
        # localstatedir's (elsewhere under distcheck): @STATE@ stands for it.
        sed 's|=[^:=]*/lib/nspawn-cage/cages/|=@STATE@/cages/|' "$2" > "$work/got"
        set -- "$1" "$work/got" "$3"
        if [ "$update" = yes ]; then
                unsubst "$2" > "$1"
                tap_ok 0 "$3 (updated)"
                return
        fi
        if subst "$1" | diff -u - "$2" > "$work/diff"; then
                tap_ok 0 "$3"
        else
                tap_ok 1 "$3"
                sed 's/^/# /' "$work/diff"
        fi
}

for src in "$top_srcdir"/tests/golden/*/; do
        name=$(basename "$src")
        case_dir="$work/$name"
        mkdir -p "$case_dir/out" "$case_dir/out2"
        pname=project
        [ -f "$src/project-name" ] && pname=$(cat "$src/project-name")
        mkdir -p "$case_dir/$pname"
        [ -d "$src/project" ] && cp -a "$src/project/." "$case_dir/$pname/"
        [ -d "$src/admin" ] && cp -a "$src/admin" "$case_dir/admin"
        [ -f "$src/user.conf" ] && subst "$src/user.conf" > "$case_dir/user.conf"
        [ "$(id -u)" = 0 ] && chown -R "$uid:$gid" "$case_dir" && chown -R root:root "$case_dir/admin" 2>/dev/null
        set -- --admin-config-dir "$case_dir/admin" --user-config "$case_dir/user.conf" --data-dir "$top_srcdir"
        args=""
        [ -f "$src/args" ] && args=$(cat "$src/args")

        if [ -f "$src/expected-error" ]; then
                # shellcheck disable=SC2086
                if $runas "$NSPAWN_CAGE" config "$@" $args "$case_dir/$pname" > "$case_dir/stdout" 2> "$case_dir/stderr"; then
                        tap_ok 1 "$name: refused"
                        continue
                fi
                if [ "$update" = yes ]; then
                        unsubst "$case_dir/stderr" > "$src/expected-error"
                        tap_ok 0 "$name: refused (updated)"
                        continue
                fi
                missing=0
                subst "$src/expected-error" > "$case_dir/want"
                while IFS= read -r line; do
                        grep -qF -- "$line" "$case_dir/stderr" || { missing=1; echo "# missing: $line"; }
                done < "$case_dir/want"
                [ "$missing" = 1 ] && sed 's/^/# got: /' "$case_dir/stderr"
                tap_ok "$missing" "$name: refused with the expected message"
                [ -s "$case_dir/stdout" ] && tap_ok 1 "$name: nothing printed on stdout" || tap_ok 0 "$name: nothing printed on stdout"
                continue
        fi

        # shellcheck disable=SC2086
        $runas "$NSPAWN_CAGE" config "$@" $args "$case_dir/$pname" > "$case_dir/config" 2> "$case_dir/stderr"
        st=$?
        tap_ok $st "$name: config exits 0"
        [ $st = 0 ] || sed 's/^/# /' "$case_dir/stderr"
        compare "$src/expected-config" "$case_dir/config" "$name: config output"

        # shellcheck disable=SC2086
        cp "$src/closure" "$case_dir/closure"
        [ "$(id -u)" = 0 ] && chown "$uid" "$case_dir/closure"
        # shellcheck disable=SC2086
        $runas "$NSPAWN_CAGE" render "$@" $args --closure "$case_dir/closure" --output "$case_dir/out" "$case_dir/$pname" \
                > "$case_dir/render" 2> "$case_dir/stderr" < /dev/null
        st=$?
        tap_ok $st "$name: render exits 0"
        [ $st = 0 ] || sed 's/^/# /' "$case_dir/stderr"
        nspawn=$(ls "$case_dir/out"/*.nspawn 2>/dev/null | head -n 1)
        rootfs=$(ls "$case_dir/out"/*.rootfs 2>/dev/null | head -n 1)
        compare "$src/expected.nspawn" "${nspawn:-/dev/null}" "$name: .nspawn file"
        compare "$src/expected.rootfs" "${rootfs:-/dev/null}" "$name: rootfs listing"
        # Determinism: a second render gives the same bytes.
        # shellcheck disable=SC2086
        $runas "$NSPAWN_CAGE" render "$@" $args --closure "$case_dir/closure" --output "$case_dir/out2" "$case_dir/$pname" > /dev/null 2>&1
        diff -r "$case_dir/out" "$case_dir/out2" > /dev/null
        tap_ok $? "$name: render is deterministic"
done

# `presets`: the shipped presets as a user sees them (the user's own, if the
# test user has any, are left out).
case_dir=$work/presets
mkdir -p "$case_dir"
$runas "$NSPAWN_CAGE" presets --data-dir "$top_srcdir" > "$case_dir/all" 2> "$case_dir/stderr"
tap_ok $? "presets exits 0"
awk 'NR == 1 || $2 == "shipped"' "$case_dir/all" > "$case_dir/shipped"
compare "$top_srcdir/tests/golden/presets.expected" "$case_dir/shipped" "presets: the shipped presets, their network, command, needs and state"
tap_done
