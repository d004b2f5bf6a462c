#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance, pinned in
# .ci/conformance/package.json) against `memory-router serve --transport http` on a free loopback
# port with an ephemeral store. Fails on any failure not listed in
# .ci/conformance-expected-failures.txt, and on a listed scenario that now passes.
# Usage: bash .ci/conformance.sh        (from any directory; uses the active Python environment)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [ -z "${VIRTUAL_ENV:-}" ] && [ -f .venv/bin/activate ]; then
  . .venv/bin/activate
fi
if [ ! -x .ci/conformance/node_modules/.bin/conformance ]; then
  npm ci --prefix .ci/conformance --no-audit --no-fund --silent
fi

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# The baseline in the suite's own YAML form, from our annotated list.
{
  echo "server:"
  sed -e 's/#.*//' -e 's/[[:space:]]*$//' .ci/conformance-expected-failures.txt | { grep -v '^$' || true; } | sed 's/^/  - /'
} > "$work/expected.yaml"

port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if command -v memory-router >/dev/null; then
  serve=(memory-router)
else
  serve=(python -m server)
fi
# No auth (explicitly: the suite checks the protocol, not our bearer tokens, and sends none), no
# config file, an in-memory store: the suite speaks to a fresh loopback server.
env -u MEMORY_ROUTER_TOKENS_FILE -u MEMORY_ROUTER_JWT_ISSUER -u MEMORY_ROUTER_JWT_AUDIENCE \
  -u MEMORY_ROUTER_CONFIG -u MEMORY_ROUTER_ALLOWED_HOSTS -u MEMORY_ROUTER_ALLOWED_ORIGINS \
  MEMORY_ROUTER_ALLOW_UNAUTHENTICATED=1 \
  MEMORY_ROUTER_STORE=mem:// MEMORY_ROUTER_USER=conformance XDG_DATA_HOME="$work/data" \
  "${serve[@]}" serve --transport http --host 127.0.0.1 --port "$port" >"$work/server.log" 2>&1 &
server_pid=$!

url="http://127.0.0.1:$port/mcp"
for _ in $(seq 1 100); do
  if curl -s -o /dev/null "$url"; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "memory-router exited before serving:" >&2
    cat "$work/server.log" >&2
    exit 1
  fi
  sleep 0.1
done

echo "== MCP conformance against $url"
set +e
(cd "$root/.ci/conformance" && ./node_modules/.bin/conformance server --url "$url" --suite all \
  --expected-failures "$work/expected.yaml" -o "$work/results")
status=$?
set -e
if [ "$status" -ne 0 ]; then
  echo "== server log" >&2
  tail -n 50 "$work/server.log" >&2
fi
exit "$status"
