#!/usr/bin/env bash
# Build the image from the Containerfile with podman and run it the ways docs/deploy.md describes:
#   1. with no settings, it refuses to serve on 0.0.0.0 (exit 2) and says what is missing;
#   2. in sandbox mode with a read-only root (the state folder in a tmpfs /tmp) and tokens from a mounted file: /healthz,
#      /readyz, 401 without a token, and an edit_image call over streamable HTTP with one;
#   3. with no volume: the ledger in the user's own default state folder;
#   4. with a named volume on the state folder and a read-only root, as in Kubernetes: the ledger lands
#      in the volume; and each `podman stop` delivers SIGTERM to the server, which exits 0 on its own.
#
#   tests/deploy/container.sh        # PYTHON=... picks the venv with the project (default .venv)
#
# The base is the official slim Python image when a registry answers, else (or with CUTOUT_BASE unset
# and no registry) a Debian root file system made with mmdebstrap and imported. Two fixes for
# restricted machines are applied only when the plain way fails: a containers.conf with this
# machine's hard ulimits and the runc runtime when a container cannot start, and the host's CA bundle
# mounted into the build when the base cannot verify PyPI's certificate (an intercepting proxy).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
image="${CUTOUT_IMAGE:-localhost/cutout-mcp:ci}"
official_base="docker.io/library/python:3.12-slim"
debian_base="localhost/cutout-mcp-base:bookworm"
host_ca="/etc/ssl/certs/ca-certificates.crt"
volume="cutout-mcp-ci-state-$$"
work="$(mktemp -d)"
started=()
t0=$SECONDS

cleanup() {
  for name in "${started[@]}"; do podman rm -f -t 0 "$name" >/dev/null 2>&1 || true; done
  podman volume rm -f "$volume" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
say() { printf 'container: %s (%ss)\n' "$*" $((SECONDS - t0)); }
fail() { printf 'container: FAILED: %s\n' "$*" >&2; exit 1; }

# --- the base --------------------------------------------------------------------------------------
if [ -n "${CUTOUT_BASE:-}" ]; then
  base="$CUTOUT_BASE"
elif timeout 300 podman pull -q "$official_base" >/dev/null 2>&1; then
  base="$official_base"
elif podman image exists "$debian_base"; then
  base="$debian_base"    # made by an earlier run on this machine
else
  say "no registry answers: making a Debian base with mmdebstrap"
  mmdebstrap --quiet --variant=apt --include=python3,python3-venv,ca-certificates bookworm "$work/rootfs.tar"
  podman import --quiet "$work/rootfs.tar" "$debian_base" >/dev/null
  rm -f "$work/rootfs.tar"
fi
base="${base:-$debian_base}"
say "base $base"

# --- running a container at all ---------------------------------------------------------------------
if ! podman run --rm "$base" python3 -c pass >/dev/null 2>"$work/run.err"; then
  # Podman asks for more open files and processes than a restricted session may hold, and crun may
  # refuse hybrid cgroups: ask for this session's own open-files limit, at most 32768 processes (higher
  # ones were refused where this was measured, below the session's own limit), and runc.
  nofile="$(ulimit -Hn)"
  nproc="$(ulimit -Hu)"
  if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
  {
    echo "[containers]"
    echo "default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]"
    if command -v runc >/dev/null; then printf '[engine]\nruntime = "runc"\n'; fi
  } >"$work/containers.conf"
  export CONTAINERS_CONF="$work/containers.conf"
  podman run --rm "$base" python3 -c pass >/dev/null 2>>"$work/run.err" \
    || fail "no container starts, even with $CONTAINERS_CONF: $(tail -n 3 "$work/run.err")"
  say "containers need $(tr '\n' ' ' <"$CONTAINERS_CONF")"
fi

# --- the image ---------------------------------------------------------------------------------------
build_flags=()
verify_pypi='import urllib.request; urllib.request.urlopen("https://pypi.org/simple/pip/", timeout=20)'
if ! podman run --rm "$base" python3 -c "$verify_pypi" >/dev/null 2>&1 && [ -r "$host_ca" ]; then
  build_flags+=(-v "$host_ca:$host_ca:ro")   # the host trusts an intercepting proxy the base does not know
  say "the build uses the host's CA bundle"
fi
podman build --quiet "${build_flags[@]}" --build-arg BASE="$base" -t "$image" -f "$root/Containerfile" "$root" >/dev/null
say "built $image"

# --- 1. no settings: a public bind is refused, with what is missing ----------------------------------
set +e
refusal="$(podman run --rm "$image" 2>&1)"
code=$?
set -e
[ "$code" -eq 2 ] && grep -q "CUTOUT_ALLOWED_HOSTS" <<<"$refusal" && grep -q "CUTOUT_MCP_TOKEN" <<<"$refusal" \
  || fail "without settings the image should refuse to serve (exit 2, naming CUTOUT_ALLOWED_HOSTS and CUTOUT_MCP_TOKEN); got $code: $refusal"
say "without settings it refuses a public bind (exit 2)"

token="ci:$("$python" -c 'import secrets; print(secrets.token_urlsafe(32))')"
printf '%s\n' "$token" >"$work/tokens"
chmod 0644 "$work/tokens"   # the container's user (10001) reads it through the read-only mount

free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# run NAME PROBE_FLAGS -- PODMAN_RUN_FLAGS: start the image, probe it, stop it with SIGTERM, check exit 0.
run() {
  local what="$1" name="cutout-mcp-ci-$1-$$" probe_flags="$2" port
  shift 3
  port="$(free_port)"
  started+=("$name")
  podman run -d --name "$name" -p "127.0.0.1:$port:8000" \
    -v "$work/tokens:/run/secrets/mcp-tokens:ro" -e CUTOUT_MCP_TOKEN_FILE=/run/secrets/mcp-tokens \
    -e CUTOUT_ALLOWED_HOSTS=cutout-mcp "$@" "$image" >/dev/null
  # shellcheck disable=SC2086
  if ! "$python" "$here/probe.py" "http://127.0.0.1:$port" --token-file "$work/tokens" $probe_flags; then
    podman logs --tail 20 "$name" >&2 || true
    fail "$what: the probe failed"
  fi
  podman stop -t 30 "$name" >/dev/null
  local exit_code
  exit_code="$(podman inspect -f '{{.State.ExitCode}}' "$name")"
  [ "$exit_code" = 0 ] || { podman logs --tail 20 "$name" >&2; fail "$what: after SIGTERM it exited $exit_code, not 0"; }
  say "$what: answered, stopped on SIGTERM with exit 0"
}

# --- 2. sandbox, read-only root, a tool call --------------------------------------------------------
# (sandbox mode keeps a CUTOUT_STATE_DIR that is set, and the image sets one: with a read-only root it must
# be writable, here a folder in the /tmp tmpfs, in Kubernetes an emptyDir)
run sandbox --call-tool -- --read-only --tmpfs /tmp -e CUTOUT_STATE_DIR=/tmp/cutout-state -e CUTOUT_SANDBOX=1

# --- 3. no volume: the default state folder --------------------------------------------------------
run plain "" --

# --- 4. a named volume on the state folder, read-only root ------------------------------------------
podman volume create "$volume" >/dev/null
run volume "" -- --read-only --tmpfs /tmp -v "$volume:/var/lib/cutout-mcp"
podman run --rm -v "$volume:/state:ro" "$base" test -s /state/ledger.sqlite3 \
  || fail "volume: the ledger is not in the mounted state folder"
say "volume: the ledger is in the mounted state folder"
say "done"
