#!/bin/sh
# Runs inside the test host (see real-agents.sh): the real agents of the
# presets (tests/pkgs: claude-code, codex, gemini-cli, opencode from their
# npm tarballs) started by `sudo nspawn-cage` as alice, as a user would.
# Their API is a mock (agent-api-mock.js) in a network namespace "agents-out"
# standing for the internet, over HTTPS with a test CA that only the
# administrator's layer makes the cages trust; the cages reach it only
# through Mode=private and Allow=.
set -u
. "$top_srcdir/tests/integration/lib.sh"
inner_setup
for a in $(grep -v '^#' "$top_srcdir/tests/pkgs/npm.lock" | cut -d' ' -f1); do
        [ -f "$top_srcdir/tests/pkgs/npm-cache/$a.tgz" ] ||
                tap_skip_all "tests/pkgs/npm-cache/$a.tgz is missing: run tests/pkgs/fetch-npm on the outer machine (it needs npm's registry)"
done
for t in openssl tmux ip; do
        command -v $t > /dev/null || tap_skip_all "$t is not installed in the test host (tests/testhost/packages)"
done

W=/var/tmp/real-agents
CA_DIR=/etc/nspawn-cage/ca-certificates
LOG=$W/requests.log
ANTHROPIC_KEY=sk-ant-mock-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
OPENAI_KEY=sk-mock-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
GEMINI_KEY=AIza-mock-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
CONF=/home/alice/.config/nspawn-cage/config
STATE=/home/alice/.local/state/nspawn-cage
mock_pid=""
# stop_agproj_cages: as alice, stop what runs on ~/agproj (a cage left by an
# interrupted run would be attached to instead of started)
stop_agproj_cages() {
        for n in $(nspawn-cage list 2> /dev/null | awk '$4 == "/home/alice/agproj" { print $1 }'); do
                su - alice -c "sudo nspawn-cage stop $n" > /dev/null 2>&1
        done
}
cleanup() {
        [ -n "$mock_pid" ] && kill "$mock_pid" 2> /dev/null
        tmux kill-session -t agents 2> /dev/null
        stop_agproj_cages
        ip netns del agents-out 2> /dev/null
        ip link del ag-host 2> /dev/null
        [ -f $W/hosts.saved ] && cat $W/hosts.saved > /etc/hosts
        rm -rf "$CA_DIR"
        if [ -f $W/alice-config.saved ]; then cp $W/alice-config.saved $CONF
        else rm -f $CONF; fi
        for p in claude-code codex gemini-cli opencode; do
                rm -rf "$STATE/$p"
                [ -d "$W/state.saved/$p" ] && cp -a "$W/state.saved/$p" "$STATE/$p"
        done
}
stop_agproj_cages
rm -rf $W
mkdir -p $W/state.saved
trap cleanup EXIT
cat /etc/hosts > $W/hosts.saved
install -d -o alice -g alice /home/alice/.config /home/alice/.config/nspawn-cage
[ -f $CONF ] && cp $CONF $W/alice-config.saved
for p in claude-code codex gemini-cli opencode; do
        [ -d "$STATE/$p" ] && cp -a "$STATE/$p" "$W/state.saved/$p" && rm -rf "$STATE/$p"
done

# ---- the outside: a network namespace with the mock at 203.0.113.10 ----
ip netns del agents-out 2> /dev/null
ip link del ag-host 2> /dev/null
ip netns add agents-out
ip link add ag-host type veth peer name ag-ns netns agents-out
ip addr add 203.0.113.1/24 dev ag-host
ip link set ag-host up
ip -n agents-out addr add 203.0.113.10/24 dev ag-ns
ip -n agents-out link set ag-ns up
ip -n agents-out link set lo up
ip -n agents-out route add default via 203.0.113.1
ip route replace default via 203.0.113.10
APIS="api.anthropic.com api.openai.com generativelanguage.googleapis.com"
for h in $APIS; do printf '203.0.113.10 %s\n' "$h" >> /etc/hosts; done

# A test CA and the APIs' certificate, made here: only this test host has them.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=nspawn-cage test CA" \
        -keyout $W/ca.key -out $W/ca.crt > $W/openssl.log 2>&1
openssl req -newkey rsa:2048 -nodes -subj "/CN=api.anthropic.com" -keyout $W/api.key -out $W/api.csr >> $W/openssl.log 2>&1
printf 'subjectAltName=DNS:api.anthropic.com,DNS:api.openai.com,DNS:generativelanguage.googleapis.com\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > $W/ext
openssl x509 -req -in $W/api.csr -CA $W/ca.crt -CAkey $W/ca.key -CAcreateserial -days 2 -extfile $W/ext -out $W/api.crt >> $W/openssl.log 2>&1 ||
        tap_bail "openssl could not make the test certificates: $(tail -n 3 $W/openssl.log)"

node=$(nix-build --no-out-link -A nodejs "$top_srcdir/tests/pkgs" 2> $W/node-build.log)/bin/node
[ -x "$node" ] || tap_bail "tests/pkgs' nodejs does not build: $(tail -n 3 $W/node-build.log)"
: > $LOG
chmod 0644 $LOG
MOCK_KEY_LIST="$ANTHROPIC_KEY $OPENAI_KEY $GEMINI_KEY" ip netns exec agents-out \
        "$node" "$top_srcdir/tests/integration/agent-api-mock.js" $W/api.crt $W/api.key $LOG 443 > $W/mock.out 2>&1 &
mock_pid=$!
for _ in $(seq 50); do grep -q listening $LOG && break; sleep 0.2; done
grep -q listening $LOG || tap_bail "the mock API does not start: $(tail -n 5 $W/mock.out)"
# requests since mark: what the mock logged after the last `mark`
mark() { mark_at=$(wc -l < $LOG); }
since() { tail -n +$((mark_at + 1)) $LOG; }

# The administrator trusts the test CA for every cage; alice passes the keys
# and allows the APIs.
mkdir -p $CA_DIR
cp $W/ca.crt $CA_DIR/test-ca.crt
allow_all='Allow=api.anthropic.com:443 api.openai.com:443 generativelanguage.googleapis.com:443'
write_conf() { # ALLOW-LINE
        printf '[Network]\nMode=private\n%s\n[Environment]\nPass=ANTHROPIC_API_KEY OPENAI_API_KEY GEMINI_API_KEY\n' "$1" > $CONF
        chown alice:alice $CONF
}
write_conf "$allow_all"
P=/home/alice/agproj
install -d -o alice -g alice $P
keys="ANTHROPIC_API_KEY=$ANTHROPIC_KEY OPENAI_API_KEY=$OPENAI_KEY GEMINI_API_KEY=$GEMINI_KEY"
cage() { # PRESET COMMAND...: run it as alice in a cage of PRESET on agproj
        _preset=$1
        shift
        as_alice_pty "env $keys timeout --foreground -k 10 300 sudo --preserve-env=ANTHROPIC_API_KEY,OPENAI_API_KEY,GEMINI_API_KEY nspawn-cage --preset $_preset $P -- $*"
}
# preset_command PRESET: its Command=
preset_command() { sed -n 's/^Command=//p' "$top_srcdir/templates/presets/$1.conf"; }
# check STATUS DESCRIPTION DIAGNOSTIC: a TAP line, and the diagnostic if it failed
check() { tap_ok "$1" "$2"; [ "$1" = 0 ] || tap_diag "$3"; }
no_key_anywhere() { # the keys never appear in the test host's logs of the mock
        ! grep -q -e "$ANTHROPIC_KEY" -e "$OPENAI_KEY" -e "$GEMINI_KEY" $LOG
}
# round_trip PRESET WHAT COMMAND: since a mark, COMMAND in a cage of PRESET
# ends 0 with the mock's answer ("PRESET: 'WHAT' prints ..."); then what
# the mock got, for the log.
round_trip() {
        mark
        cage "$1" "$3"
        _st=$?
        check $([ $_st = 0 ] && printf '%s\n' "$out" | grep -q MOCK-ANSWER; echo $?) "$1: '$2' prints the mock's answer, exit 0" "$(printf '%s\n' "$out" | tail -n 10)"
}
# mock_got HOST PATH: the mock got a request for HOST PATH, with the key.
mock_got() {
        check $(since | grep "\"host\":\"$1\"" | grep "\"path\":\"$2" | grep -q '"key_ok":true'; echo $?) \
                "the mock got its request at $1$2 with the key passed by Pass=" "$(since | cut -c1-200)"
}
mock_requests() { # PRESET: what the mock got since the mark, for the log
        tap_diag "$1 requests: $(since | sed 's/.*"method":"\([A-Z]*\)","path":"\([^"?]*\).*"key_ok":\([a-z]*\).*/\1 \2 key_ok=\3/' | sort | uniq -c | tr '\n' ';')"
}

# ---- 1. --version of each preset's agent ----
for p in claude-code codex gemini-cli opencode; do
        v=$(grep "^$p " "$top_srcdir/tests/pkgs/npm.lock" | sed 's/.*@\([0-9][0-9.]*\).*/\1/')
        cmd=$(preset_command $p)
        t0=$(date +%s)
        cage $p "$cmd --version"
        st=$?
        check $([ $st = 0 ] && printf '%s\n' "$out" | grep -q "$v"; echo $?) \
                "$p: '$cmd --version' in its preset's cage prints $v, exit 0 ($(( $(date +%s) - t0 )) s)" \
                "$(printf '%s\n' "$out" | tail -n 8)"
done

# ---- 2. what real programs expect of the cage ----
cage claude-code "sh -c 'echo ssl=\$SSL_CERT_FILE; head -c 100 /etc/ssl/certs/ca-certificates.crt | head -n 1; rg -c \"BEGIN CERT\" /etc/ssl/certs/ca-certificates.crt; tail -n $(wc -l < $W/ca.crt) /etc/ssl/certs/ca-certificates.crt | sha256sum; echo lang=\$LANG; ls \$TERMINFO_DIRS/x/xterm-256color; ls /usr/bin/env; ps -o comm= \$\$; touch /tmp/w /dev/shm/w ~/w && echo writable; unshare -Ur true 2>&1; echo unshare=\$?'"
check $(printf '%s\n' "$out" | grep -q '^ssl=/etc/ssl/certs/ca-certificates.crt$'; echo $?) "the cage has SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" "$out"
n=$(printf '%s\n' "$out" | grep -x '[0-9]*' | head -n 1)
check $([ "${n:-0}" -gt 100 ]; echo $?) "its bundle holds the closure's CAs and the administrator's ($n certificates)" "$out"
check $(printf '%s\n' "$out" | grep -q "^$(sha256sum < $W/ca.crt | cut -d' ' -f1) "; echo $?) "the administrator's CA certificate (ADMIN_DIR/ca-certificates/) ends the cage's bundle" "$out"
tap_ok $(printf '%s\n' "$out" | grep -q '^lang=C.UTF-8$'; echo $?) "LANG=C.UTF-8"
tap_ok $(printf '%s\n' "$out" | grep -q 'xterm-256color$'; echo $?) "terminfo for xterm-256color (TERMINFO_DIRS)"
tap_ok $(printf '%s\n' "$out" | grep -q '^/usr/bin/env$'; echo $?) "/usr/bin/env exists"
tap_ok $(printf '%s\n' "$out" | grep -q '^writable$'; echo $?) "/tmp, /dev/shm and \$HOME are writable; ps works"
check $(printf '%s\n' "$out" | grep -q '^unshare=1$'; echo $?) "no new user namespace in a cage: the agents' own sandboxes (bubblewrap) cannot start, the presets turn them off" "$out"

# ---- 3. round trips against the mock ----
round_trip claude-code "claude -p" "claude -p 'Say hello'"
mock_got api.anthropic.com /v1/messages
mock_requests claude-code

mark
# codex takes its API key by `codex login --with-api-key` (kept in ~/.codex,
# the preset's state) or from CODEX_API_KEY; here the first, as codex says.
cage codex "sh -c 'printenv OPENAI_API_KEY | codex login --with-api-key'"
check $? "codex: 'codex login --with-api-key' with the key passed by Pass=" "$out"
round_trip codex "codex exec" "$(preset_command codex) exec --skip-git-repo-check 'Say hello'"
mock_got api.openai.com /v1/responses
mock_requests codex

round_trip gemini-cli "gemini -p" "gemini --skip-trust -p 'Say hello'"
mock_requests gemini-cli

round_trip opencode "opencode run" "opencode run -m anthropic/claude-sonnet-4-5 'Say hello'"
mock_requests opencode
no_key_anywhere
tap_ok $? "no key was ever logged"

# ---- 4. state: a second cage of the preset sees what the first wrote ----
# codex's exec above ran on the login its own earlier cage stored in ~/.codex.
mark
cage claude-code "claude -p --continue 'Again'"
st=$?
check $([ $st = 0 ] && since | grep '"path":"/v1/messages' | grep -q has-earlier-answer; echo $?) \
        "claude-code: in a second cage, 'claude -p --continue' sends the first cage's conversation (its ~/.claude)" "$out $(since | cut -c1-200)"

# ---- 5. without the API in Allow=, the agent's own network error ----
write_conf "Allow=generativelanguage.googleapis.com:443"
mark
# (its 10 retries with back-off take 3 minutes: one here)
t0=$(date +%s)
cage claude-code "env CLAUDE_CODE_MAX_RETRIES=1 claude -p 'Say hello'"
st=$?
check $([ $st != 0 ] && [ -z "$(since | grep api.anthropic.com)" ]; echo $?) \
        "claude-code without api.anthropic.com in Allow=: fails (status $st, $(( $(date +%s) - t0 )) s), nothing reached the mock" "$out"
tap_diag "claude-code says: $(printf '%s\n' "$out" | grep -v '^nspawn-cage: note' | tail -n 3 | tr '\n' ' ')"
printf '%s\n' "$out" | grep -qiE "ERR_PROXY_TUNNEL|proxy refused|reach the API server|EAI_AGAIN|ENOTFOUND" &&
        printf '%s\n' "$out" | grep -qE "nspawn-cage: [0-9]+ refused: [^ ]+:443"
tap_ok $? "and says it is a network error (the egress proxy refused it), and nspawn-cage says what it refused"
mark
# codex waits for the network with no end (measured: still waiting after 300 s):
# 60 s here, then its messages are looked at.
t0=$(date +%s)
cage codex "timeout 60 $(preset_command codex) exec --skip-git-repo-check 'Say hello'"
st=$?
check $([ $st != 0 ] && [ -z "$(since | grep api.openai.com)" ]; echo $?) \
        "codex without api.openai.com in Allow=: fails (status $st, $(( $(date +%s) - t0 )) s), nothing reached the mock" "$out"
tap_diag "codex says: $(printf '%s\n' "$out" | grep -v '^nspawn-cage: note' | tail -n 3 | tr '\n' ' ')"
printf '%s\n' "$out" | grep -qiE "waiting for network|failed to connect|error sending request|dns error" &&
        printf '%s\n' "$out" | grep -qE "nspawn-cage: [0-9]+ refused: [^ ]+:443"
tap_ok $? "and says it is a network error, and nspawn-cage says what it refused"
write_conf "$allow_all"

# ---- 6. claude's interactive UI in tmux ----
# First start: past the onboarding (whose connectivity check asks more hosts
# than the API: platform.claude.com), as a user who has used claude before.
j=$STATE/claude-code/.claude.json
if [ -f "$j" ] && jq '.hasCompletedOnboarding = true | .theme = "dark"' "$j" > $W/claude.json; then
        cat $W/claude.json > "$j"
fi
tmux kill-session -t agents 2> /dev/null
# alice's login shell in tmux's terminal, typing the command: su -c would
# start it in a session of its own, without a terminal.
tmux new-session -d -s agents -x 100 -y 30 "su - alice"
sleep 1
tmux send-keys -t agents "clear; stty -g > ~/stty.before; export $keys; sudo --preserve-env=ANTHROPIC_API_KEY nspawn-cage --preset claude-code ~/agproj; echo nspawn-cage-status=\$?; stty -g > ~/stty.after" Enter
tmux_wait agents 'Welcome to Claude|Accessing workspace' 60
check $? "claude-code's interactive UI: its first screen renders in tmux (the welcome or the folder trust dialog)" "$(tmux_pane agents)"
sleep 3
before=$(tmux_pane agents)
tap_diag "first screen: $(printf '%s\n' "$before" | grep -v '^ *[░█▓*. ]*$' | tail -n 12 | tr '\n' '|')"
tmux send-keys -t agents Down
sleep 2
after=$(tmux_pane agents)
check $([ "$before" != "$after" ]; echo $?) "a keystroke (Down) reaches it: the screen changes" "$after"
tmux resize-window -t agents -x 60 -y 30 2> /dev/null || tmux resize-pane -t agents -x 60 -y 30
sleep 2
wide=$(tmux_pane agents | wc -L)
check $([ "$wide" -le 60 ] && [ "$(tmux_pane agents)" != "$after" ]; echo $?) "a resize to 60 columns reflows it" "$(tmux_pane agents)"
# Ctrl-C twice (claude's way out of its prompt); the trust dialog takes
# Esc ("Esc to cancel": it exits) instead.
how=""
for k in C-c C-c Escape; do
        tmux_pane agents | grep -q 'nspawn-cage-status=' && break
        tmux send-keys -t agents $k
        how="$how $k"
        sleep 2
done
tmux_wait agents 'nspawn-cage-status=' 20
check $? "its exit keys end it (sent:$how; $(tmux_pane agents | grep -o 'nspawn-cage-status=[0-9]*' | tail -n 1))" "$(tmux_pane agents)"
sleep 1
check $([ -s /home/alice/stty.before ] && [ "$(cat /home/alice/stty.before)" = "$(cat /home/alice/stty.after 2> /dev/null)" ]; echo $?) "the terminal is sane after (stty -g as before)" "$(cat /home/alice/stty.before /home/alice/stty.after 2> /dev/null)"
tmux kill-session -t agents 2> /dev/null
rm -f /home/alice/stty.before /home/alice/stty.after
sleep 1
nspawn-cage list 2> /dev/null | grep -q /home/alice/agproj
check $([ $? != 0 ]; echo $?) "no cage of the project is left running after the UI ended" "$(nspawn-cage list)"
stop_agproj_cages
tap_done
