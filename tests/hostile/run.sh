#!/bin/sh
# Hostile project configurations: the project's .nspawn-cage.conf is written
# by the caged agent. Each case must be refused by both `config` and
# `render` with a message naming the file (and line) and what is allowed,
# print nothing on stdout, write no output file, and echo no secret.
set -u
. "$(dirname "$0")/../unprivileged.sh"


printf '/nix/store/8pbk2ad2xg2l1dmq0ik8ah7k5h83cn4i-nspawn-cage-toplevel\n' > "$work/closure"
mkdir -p "$work/admin"
cat > "$work/admin/nspawn-cage.conf" <<'CONF'
[Policy]
MaxMemory=8G
AllowDisplay=no
CONF
cat > "$work/user.conf" <<'CONF'
[Cage]
Name=hostile
[Network]
Mode=private
[Environment]
Pass=TERM ANTHROPIC_API_KEY
CONF

# new_project NAME: a fresh project directory owned by the test user.
new_project() {
        p="$work/$1"
        rm -rf "$p"
        mkdir -p "$p/out"
}

finish_project() {
        [ "$(id -u)" = 0 ] && chown -R "$uid:$gid" "$p" "$work/closure" "$work/user.conf"
        return 0
}

# expect_refused DESCRIPTION NEEDLE...: run config and render on $p.
expect_refused() {
        desc=$1
        shift
        for verb in config render; do
                extra=""
                [ $verb = render ] && extra="--closure $work/closure --output $p/out"
                # shellcheck disable=SC2086
                timeout 20 $runas "$NSPAWN_CAGE" $verb --admin-config-dir "$work/admin" --user-config "$work/user.conf" \
                        --data-dir "$top_srcdir" $extra "$p" > "$work/stdout" 2> "$work/stderr" < /dev/null
                st=$?
                bad=0
                [ $st = 0 ] && { echo "# exit status 0"; bad=1; }
                [ $st = 124 ] && { echo "# timed out"; bad=1; }
                for needle in "$@"; do
                        grep -qF -- "$needle" "$work/stderr" || { echo "# missing in message: $needle"; bad=1; }
                done
                [ -s "$work/stdout" ] && { echo "# stdout not empty"; bad=1; }
                [ -n "$(ls -A "$p/out")" ] && { echo "# output written: $(ls "$p/out")"; bad=1; }
                grep -q 'root:' "$work/stderr" && { echo "# message echoes file content"; bad=1; }
                [ "$(wc -l < "$work/stderr")" -le 2 ] || { echo "# message longer than two lines"; bad=1; }
                [ $bad = 1 ] && sed 's/^/# stderr: /' "$work/stderr"
                tap_ok $bad "$desc ($verb)"
        done
}

conf() { # write the project config from stdin
        cat > "$p/.nspawn-cage.conf"
        finish_project
}

for src in / /etc /root /home/other ../..; do
        new_project bind
        printf '[Files]\nBind=%s:/host\n' "$src" | conf
        expect_refused "project Bind=$src refused" "$p/.nspawn-cage.conf:2:" "Bind= may only be set by the administrator or in your user configuration"
done

new_project symlink-bind
ln -s /etc "$p/escape"
printf '[Files]\nBindReadOnly=%s/escape:/x\n' "$p" | conf
expect_refused "project bind of a symlink pointing out of the project refused" "$p/.nspawn-cage.conf:2:" "BindReadOnly= may only be set"

new_project env-file
printf '[Environment]\nFile=/etc/shadow\n' | conf
expect_refused "File= from the project (read a file as the user into the agent)" "$p/.nspawn-cage.conf:2:" "File= may only be set in your user configuration"

new_project ssh-agent
printf '[Forward]\nSSHAgent=yes\n' | conf
expect_refused "SSHAgent=yes from the project" "$p/.nspawn-cage.conf:2:" "SSHAgent=yes is not allowed"

new_project git-config
printf '[Forward]\nGitConfig=yes\n' | conf
expect_refused "GitConfig=yes from the project" "$p/.nspawn-cage.conf:2:" "GitConfig=yes is not allowed"

new_project network
printf '[Network]\nMode=host\n' | conf
expect_refused "Mode=host when the user allows private" "$p/.nspawn-cage.conf:2:" "Mode=host asks for more network than allowed: at most private"

new_project memory
printf '[Limits]\nMemory=64G\n' | conf
expect_refused "Memory= above the admin maximum" "$p/.nspawn-cage.conf:2:" "Memory=64G asks for more than allowed"

new_project x11
printf '[Display]\nX11=yes\n' | conf
expect_refused "X11=yes when not allowed" "$p/.nspawn-cage.conf:2:" "X11=yes is not allowed"

new_project wayland
printf '[Display]\nWayland=yes\n' | conf
expect_refused "Wayland=yes from the project" "$p/.nspawn-cage.conf:2:" "Wayland=yes is not allowed"

new_project gpu
printf '[Display]\nGPU=yes\n' | conf
expect_refused "GPU=yes from the project" "$p/.nspawn-cage.conf:2:" "GPU=yes is not allowed"

new_project x11trusted
printf '[Display]\nX11Trusted=yes\n' | conf
expect_refused "X11Trusted=yes from the project (a trusted X11 cookie)" "$p/.nspawn-cage.conf:2:" "X11Trusted=yes is not allowed"

new_project displayenv
printf '[Environment]\nSet=XAUTHORITY=/etc/shadow\n' | conf
expect_refused "Set=XAUTHORITY= (the display variables are nspawn-cage's)" "$p/.nspawn-cage.conf:2:" "XAUTHORITY is managed by nspawn-cage"

new_project newline
printf '[Environment]\nSet=A=x\n[Files]\nBind=/:/host\n' | conf
expect_refused "a newline meant to add a [Files] line" "$p/.nspawn-cage.conf:4:" "Bind= may only be set"

new_project longline
{ printf '[Cage]\nCommand=/home/ok/'; head -c 10000 /dev/zero | tr '\0' a; printf '\n'; } | conf
expect_refused "a 10,000-character line" "$p/.nspawn-cage.conf:2:" "line is 10017 characters long; at most 190"

new_project name
printf '[Cage]\nName=.host\n' | conf
expect_refused "Name=.host" "$p/.nspawn-cage.conf:2:" "Name= may only be set"

# Issue 14 (4): the project may not choose the agent, its command or which
# of the user's saved agent states (another agent's login) the cage gets.
new_project preset
printf '[Limits]\nMemory=1G\n[Cage]\nPreset=claude-code\n' | conf
expect_refused "Preset= from the project (another preset's saved state)" "$p/.nspawn-cage.conf:4:" \
        "Preset= is not taken from the project" "~/.config/nspawn-cage/config or with --preset NAME"

new_project command
printf '[Cage]\nCommand=sh -c "cat ~/.ssh/id_ed25519"\n' | conf
expect_refused "Command= from the project" "$p/.nspawn-cage.conf:2:" \
        "Command= is not taken from the project" "on the command line (nspawn-cage PROJECT -- COMMAND...)"

new_project pass
printf '[Environment]\nPass=AWS_SECRET_ACCESS_KEY\n' | conf
expect_refused "Pass= of a variable the user did not allow" "$p/.nspawn-cage.conf:2:" "Pass=AWS_SECRET_ACCESS_KEY is not allowed"

new_project fifo
mkfifo "$p/.nspawn-cage.conf"
finish_project
expect_refused "config that is a FIFO" "$p/.nspawn-cage.conf" "not a regular file"

new_project shadow
ln -s /etc/shadow "$p/.nspawn-cage.conf"
finish_project
expect_refused "config that is a symlink to /etc/shadow" "$p/.nspawn-cage.conf" "symbolic link"

new_project zero
ln -s /dev/zero "$p/.nspawn-cage.conf"
finish_project
expect_refused "config that is a symlink to /dev/zero" "$p/.nspawn-cage.conf" "symbolic link"

new_project big
truncate -s 100M "$p/.nspawn-cage.conf"
finish_project
expect_refused "config that is 100 MB long" "$p/.nspawn-cage.conf" "larger than 64 KiB"

new_project indented
printf '[Cage]\nPackages=git\n  ripgrep\n' | conf
expect_refused "indented continuation line" "$p/.nspawn-cage.conf:3:" "indented line"

new_project dup
printf '[Limits]\nMemory=1G\nMemory=2G\n' | conf
expect_refused "duplicate scalar key" "$p/.nspawn-cage.conf:3:" "already set on line 2"

if [ "$(id -u)" = 0 ]; then
        new_project owner
        printf '[Limits]\nMemory=1G\n' > "$p/.nspawn-cage.conf"
        finish_project
        chown 4242 "$p/.nspawn-cage.conf"
        expect_refused "config owned by another user" "$p/.nspawn-cage.conf" "owned by another user"
else
        tap_skip "config owned by another user: needs root to chown" 2
fi

# An escape sequence in a value stays inside that value: render succeeds and
# the .nspawn file gains nothing.
new_project escape
printf '[Environment]\nSet=A=x\\n[Files]\\nBind=/:/host\n' | conf
$runas "$NSPAWN_CAGE" render --admin-config-dir "$work/admin" --user-config "$work/user.conf" --data-dir "$top_srcdir" \
        --closure "$work/closure" --output "$p/out" "$p" > /dev/null 2>&1
st=$?
f="$p/out/hostile.nspawn"
[ $st = 0 ] && [ -f "$f" ] && ! grep -q '/:/host' "$f" && [ "$(grep -c '^\[' "$f")" = 3 ] && [ "$(grep -c '^Bind=' "$f")" = 1 ]
tap_ok $? "a \\n escape in a value adds no line to the .nspawn file"

new_project protectgit
printf '[Files]\nProtectGit=no\n' | conf
expect_refused "ProtectGit=no in the project" "$p/.nspawn-cage.conf:2:" "ProtectGit=no is not allowed"

# ProtectGit=: real .git/hooks and .git/config are bound read-only over
# themselves; a .git/hooks that is a symlink out of the project is not
# followed (it would bind /etc into the cage).
for kind in real link; do
        new_project "git-$kind"
        mkdir -p "$p/.git"
        if [ $kind = real ]; then mkdir "$p/.git/hooks"; else ln -s /etc "$p/.git/hooks"; fi
        touch "$p/.git/config"
        finish_project
        $runas "$NSPAWN_CAGE" render --admin-config-dir "$work/admin" --user-config "$work/user.conf" --data-dir "$top_srcdir" \
                --closure "$work/closure" --output "$p/out" "$p" > /dev/null 2> "$work/stderr"
        f="$p/out/hostile.nspawn"
        # Each from a staging mount of its own (issue 4), onto themselves.
        stage="[^:]*/lib/nspawn-cage/cages/hostile/mnt/bind-[0-9]*"
        hooks=$(grep -c "^BindReadOnly=$stage:$p/.git/hooks$" "$f" 2>/dev/null)
        config=$(grep -c "^BindReadOnly=$stage:$p/.git/config$" "$f" 2>/dev/null)
        etc=$(grep -c "/etc" "$f" 2>/dev/null)
        if [ $kind = real ]; then
                tap_is "${hooks:-x} ${config:-x} ${etc:-x}" "1 1 0" ".git/hooks and .git/config bound read-only"
        else
                tap_is "${hooks:-x} ${config:-x} ${etc:-x}" "0 1 0" "a .git/hooks symlink out of the project is not bound"
        fi
done

# ProtectGit= (issue 14): .git itself is bound onto itself (a mount point
# the agent cannot rename or replace), and the hooks and config of the git
# directories below .git/modules (names with '/' too) and .git/worktrees are
# read-only; a gitfile .git is bound read-only.
new_project git-nested
mkdir -p "$p/.git/hooks" "$p/.git/modules/a/b/hooks" "$p/.git/worktrees/w"
touch "$p/.git/config" "$p/.git/modules/a/b/HEAD" "$p/.git/modules/a/b/config" "$p/.git/worktrees/w/HEAD" "$p/.git/worktrees/w/commondir"
finish_project
$runas "$NSPAWN_CAGE" render --admin-config-dir "$work/admin" --user-config "$work/user.conf" --data-dir "$top_srcdir" \
        --closure "$work/closure" --output "$p/out" "$p" > /dev/null 2> "$work/stderr"
f="$p/out/hostile.nspawn"
stage="[^:]*/lib/nspawn-cage/cages/hostile/mnt/bind-[0-9]*"
got=""
for x in "Bind=$stage:$p/.git" "BindReadOnly=$stage:$p/.git/hooks" "Bind=$stage:$p/.git/modules/a/b" \
        "BindReadOnly=$stage:$p/.git/modules/a/b/hooks" "BindReadOnly=$stage:$p/.git/modules/a/b/config" \
        "Bind=$stage:$p/.git/worktrees/w" "BindReadOnly=$stage:$p/.git/worktrees/w/commondir"; do
        got="$got$(grep -c "^$x\$" "$f" 2> /dev/null || echo x)"
done
tap_is "$got" "1111111" ".git a mount point; hooks, config, commondir of .git/modules/a/b and .git/worktrees/w read-only"
new_project gitfile
echo "gitdir: .git-real" > "$p/.git"
finish_project
$runas "$NSPAWN_CAGE" render --admin-config-dir "$work/admin" --user-config "$work/user.conf" --data-dir "$top_srcdir" \
        --closure "$work/closure" --output "$p/out" "$p" > /dev/null 2> "$work/stderr"
tap_is "$(grep -c "^BindReadOnly=$stage:$p/.git\$" "$p/out/hostile.nspawn" 2> /dev/null)" 1 "a gitfile .git (into the project) is bound read-only"
# Issue 20: one naming a directory outside the project that is no linked
# worktree of the user's is refused, naming it (worktree.c).
echo "gitdir: /elsewhere" > "$p/.git"
rm -rf "$p/out"
$runas "$NSPAWN_CAGE" render --admin-config-dir "$work/admin" --user-config "$work/user.conf" --data-dir "$top_srcdir" \
        --closure "$work/closure" --output "$p/out" "$p" > /dev/null 2> "$work/stderr"
tap_is "$? $(grep -c "its .git file names /elsewhere: it is not a worktree's git directory" "$work/stderr") $(ls "$p/out" 2> /dev/null | wc -l)" \
        "1 1 0" "a gitfile .git naming /elsewhere: refused with the reason, nothing rendered"

# Project paths that are no project.
for bad in "$work/missing:does not exist" "$work/closure:is not a directory" "/:is the root directory" "/etc:is a system directory"; do
        path=${bad%%:*}
        want=${bad#*:}
        $runas "$NSPAWN_CAGE" config --admin-config-dir "$work/admin" --user-config "$work/user.conf" --data-dir "$top_srcdir" "$path" \
                > "$work/stdout" 2> "$work/stderr"
        st=$?
        [ $st != 0 ] && grep -qF "$want" "$work/stderr" && [ ! -s "$work/stdout" ]
        r=$?
        [ $r = 0 ] || sed 's/^/# stderr: /' "$work/stderr"
        tap_ok $r "project path $path refused: $want"
done

if [ "$(id -u)" = 0 ]; then
        mkdir -p "$work/notmine"
        chown 4242 "$work/notmine"
        $runas "$NSPAWN_CAGE" config --admin-config-dir "$work/admin" --user-config "$work/user.conf" --data-dir "$top_srcdir" "$work/notmine" \
                > /dev/null 2> "$work/stderr"
        [ $? != 0 ] && grep -q "not by you" "$work/stderr"
        tap_ok $? "a project owned by another user is refused"
fi
tap_done
