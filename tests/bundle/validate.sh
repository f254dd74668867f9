#!/usr/bin/env bash
# Validate the Claude Desktop bundle with the official MCPB CLI (@anthropic-ai/mcpb, npm registry):
# the checked-in manifest and icon, then the .mcpb that `python -m cutout_mcp.bundle` builds, as the
# CLI itself unpacks it.
#   tests/bundle/validate.sh            # PYTHON=... picks the interpreter that builds the bundle
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
mcpb_version="2.1.2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

. "$root/tests/node22.sh"
node_bin="$(node22 "$work")"
(cd "$work" && npm init -y >/dev/null 2>&1 && \
  npm install --silent --no-audit --no-fund "@anthropic-ai/mcpb@$mcpb_version" >/dev/null 2>&1)
mcpb() { "$node_bin" "$work/node_modules/@anthropic-ai/mcpb/dist/cli/cli.js" "$@"; }

echo "mcpb $(mcpb --version) on node $("$node_bin" --version)"
mcpb validate "$root/cutout_mcp/bundle/manifest.json"

"$python" -m cutout_mcp.bundle --out-dir "$work/dist"
mcpb unpack "$work"/dist/cutout-mcp-*.mcpb "$work/unpacked" >/dev/null
mcpb validate "$work/unpacked"
