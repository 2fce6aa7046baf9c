#!/bin/sh
# The real agents of the presets (claude-code, codex, gemini-cli, opencode,
# built by tests/pkgs from their npm tarballs) in real cages, against a mock
# of their APIs: --version, round trips, state, the TUI in tmux. The
# tarballs are fetched here, on the outer machine (the test host has no
# network), into /var/cache/nspawn-cage-npm and linked into the repository.
. "$(dirname "$0")/lib.sh"
if [ "${NSPAWN_CAGE_INTEGRATION:-0}" = 1 ] && [ "$(id -u)" = 0 ]; then
        t0=$(date +%s)
        if ! why=$("$top_srcdir/tests/pkgs/fetch-npm" 2>&1); then
                tap_skip_all "the agents' npm tarballs cannot be fetched: $(printf '%s\n' "$why" | tail -n 2 | tr '\n' ' ')"
        fi
        echo "# npm tarballs ready in $(( $(date +%s) - t0 )) s: $(printf '%s' "$why" | tr '\n' ';')"
fi
outer_run "$top_srcdir/tests/integration/real-agents.inner.sh"
