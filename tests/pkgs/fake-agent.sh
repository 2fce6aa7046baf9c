# fake-agent: a stand-in for an AI coding agent, for nspawn-cage tests.
# (The #! line pointing at the store's bash is prepended at build time.)
# Prints one "fake-agent: key=value" line per fact, bash builtins only.
# API keys: only whether they are set, never their values.
# FAKE_AGENT_EXIT=N makes it exit with status N (default 0).
# FAKE_AGENT_STATE=1 keeps state as real agents do: prints, then appends
# to, ~/.fake-agent/notes, and rewrites ~/.fake-agent.json by rename (mv,
# from coreutils).
echo "fake-agent: argc=$#"
i=0
for a in "$@"; do
  i=$((i + 1))
  printf 'fake-agent: arg%d=%s\n' "$i" "$a"
done
echo "fake-agent: uid=$UID"
echo "fake-agent: euid=$EUID"
echo "fake-agent: gid=$(g=(${GROUPS[@]}); echo "${g[0]}")"
echo "fake-agent: cwd=$PWD"
echo "fake-agent: home=${HOME-}"
echo "fake-agent: user=${USER-}"
if [ -t 0 ]; then echo "fake-agent: stdin=tty"; else echo "fake-agent: stdin=notty"; fi
for v in ANTHROPIC_API_KEY OPENAI_API_KEY; do
  if [ -n "${!v+x}" ]; then echo "fake-agent: $v=set"; else echo "fake-agent: $v=unset"; fi
done
if [ "${FAKE_AGENT_STATE:-0}" = 1 ]; then
  n=1
  while IFS= read -r l; do echo "fake-agent: note=$l"; n=$((n + 1)); done < ~/.fake-agent/notes 2>/dev/null
  json=$(< ~/.fake-agent.json) 2>/dev/null
  echo "fake-agent: json=${json:-none}"
  echo "run $n" >> ~/.fake-agent/notes
  printf '{"runs":%d}\n' "$n" > ~/.fake-agent.json.tmp && mv ~/.fake-agent.json.tmp ~/.fake-agent.json
fi
exit "${FAKE_AGENT_EXIT:-0}"
