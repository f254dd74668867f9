"""A real MCP Apps host around the views: Chromium, the official AppBridge, a real `cutout-mcp` process.

- `cutout-mcp --sandbox --transport streamable-http` runs as a child process (its own sandbox inside).
- The host page (`host/host.html` + `host/src/host.js`, bundled with esbuild from the npm packages in
  `host/`, never shipped) is served on one loopback origin, which also passes `/mcp` through to the
  server so the browser speaks to it same-origin.
- The sandbox proxy (`host/sandbox.html`) is served on a second origin, with a Content-Security-Policy
  header built from the view's `_meta.ui.csp` (the `?csp=` query the host page adds), the way
  ext-apps' basic host does, without its `'unsafe-eval'` and `blob:` (the spec's strict template):
  the view runs under it, so anything it loads from an undeclared origin is refused as in a real host.

`bench/viewer.py` uses the same pieces.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

HOST_DIR = Path(__file__).resolve().parent / "host"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CUTOUT_MCP = str(Path(sys.executable).with_name("cutout-mcp"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--no-first-run",
    "--mute-audio",
]
PASSED_HEADERS = ("content-type", "accept", "mcp-session-id", "mcp-protocol-version", "last-event-id")


def chromium_path() -> str | None:
    found = os.environ.get("CUTOUT_TEST_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return found if found and Path(found).exists() else None


def missing_tools() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if chromium_path() is None:
        return "no Chromium (apt-get install chromium, or set CUTOUT_TEST_CHROMIUM)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[test]')"
    if not (HOST_DIR / "node_modules").is_dir() and shutil.which("npm") is None:
        return f"no npm to install the test host's packages (npm ci --prefix {HOST_DIR})"
    return None


def csp_header(csp: dict[str, Any] | None) -> str:
    """The view's policy from its declared domains; entries that could break out of a directive are dropped."""

    def domains(key: str) -> str:
        values = (csp or {}).get(key) or []
        return " ".join(v for v in values if isinstance(v, str) and not any(c in v for c in ";,'\" \r\n"))

    media = domains("resourceDomains")
    frames = domains("frameDomains")
    base = domains("baseUriDomains")
    directives = [
        "default-src 'none'",
        f"script-src 'self' 'unsafe-inline' {media}",
        f"style-src 'self' 'unsafe-inline' {media}",
        f"img-src 'self' data: {media}",
        f"font-src 'self' data: {media}",
        f"media-src 'self' data: {media}",
        f"connect-src 'self' {domains('connectDomains')}",
        f"frame-src {frames}" if frames else "frame-src 'none'",
        "object-src 'none'",
        f"base-uri {base}" if base else "base-uri 'none'",
    ]
    return "; ".join(d.strip() for d in directives)


def build_host(out: Path) -> None:
    """Install the host's npm packages (once, from the lockfile) and bundle the host page into `out`."""
    if not (HOST_DIR / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=HOST_DIR, check=True)
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            str(HOST_DIR / "node_modules" / ".bin" / "esbuild"),
            "src/host.js",
            "--bundle",
            "--format=esm",
            "--platform=browser",
            "--target=chrome120",
            "--log-level=warning",
            f"--outfile={out / 'host.bundle.js'}",
        ],
        cwd=HOST_DIR,
        check=True,
    )
    for name in ("host.html", "sandbox.html", "sandbox.js"):
        shutil.copy(HOST_DIR / name, out / name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Quiet(BaseHTTPRequestHandler):
    files: ClassVar[Path]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_file(self, name: str, headers: dict[str, str] | None = None) -> None:
        path = self.files / name
        if not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        kind = {"html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8"}[name.rsplit(".", 1)[1]]
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


class _HostHandler(_Quiet):
    """The host page and its script; `/mcp` passed through to the MCP server, streaming."""

    upstream: ClassVar[int]

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/mcp":
            self.forward()
        else:
            self.send_file(path.lstrip("/") or "host.html")

    def do_POST(self) -> None:
        self.forward()

    def do_DELETE(self) -> None:
        self.forward()

    def forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() in PASSED_HEADERS}
        connection = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=120)
        try:
            connection.request(self.command, "/mcp", body=body, headers=headers)
            answer = connection.getresponse()
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("transfer-encoding", "content-length", "connection", "date", "server"):
                    self.send_header(key, value)
            self.send_header("Connection", "close")
            self.end_headers()
            while chunk := answer.read1(65536):  # as it comes: server-sent events must not wait for the end
                self.wfile.write(chunk)
                self.wfile.flush()
        except (OSError, http.client.HTTPException):
            pass  # the page went away, or the server did
        finally:
            connection.close()


class _SandboxHandler(_Quiet):
    """The sandbox proxy, with the policy its `?csp=` asks for; nothing else on this origin."""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/sandbox.js":
            self.send_file("sandbox.js")
            return
        if parts.path != "/sandbox.html":
            self.send_error(404)
            return
        raw = parse_qs(parts.query).get("csp", [""])[0]
        try:
            csp = json.loads(raw) if raw else None
        except ValueError:
            csp = None
        self.send_file("sandbox.html", {"Content-Security-Policy": csp_header(csp if isinstance(csp, dict) else None)})


@contextmanager
def _serving(handler: type[_Quiet]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def cutout_mcp(state_dir: Path, *sandbox_args: str) -> Iterator[int]:
    """`cutout-mcp --sandbox --transport streamable-http` on a free port, until the block ends."""
    port = free_port()
    env = {**os.environ, "CUTOUT_STATE_DIR": str(state_dir), "CUTOUT_LOG_LEVEL": "WARNING"}
    for name in ("CUTOUT_API_KEY", "CUTOUT_BASE_URL", "CUTOUT_SANDBOX", "CUTOUT_DATABASE_URL", "CUTOUT_OUTPUT_DIR"):
        env.pop(name, None)
    process = subprocess.Popen(
        [CUTOUT_MCP, "--sandbox", "--transport", "streamable-http", "--port", str(port), *sandbox_args],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"cutout-mcp exited with {process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass(frozen=True)
class Host:
    page_url: str
    """The host page, told where its sandbox proxy is."""
    host_origin: str
    sandbox_origin: str


@contextmanager
def host(files: Path, mcp_port: int) -> Iterator[Host]:
    """The host origin (page and `/mcp`) and the sandbox origin, serving the built files in `files`."""
    host_handler = type("HostHandler", (_HostHandler,), {"files": files, "upstream": mcp_port})
    sandbox_handler = type("SandboxHandler", (_SandboxHandler,), {"files": files})
    with _serving(host_handler) as host_origin, _serving(sandbox_handler) as sandbox_origin:
        yield Host(f"{host_origin}/host.html?sandbox={sandbox_origin}/sandbox.html", host_origin, sandbox_origin)
