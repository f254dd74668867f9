"""Serving the sandbox over a real loopback socket with uvicorn.

`run_sandbox` runs inside the caller's event loop (tests, the MCP server in
sandbox mode); `serve` blocks, for a command-line entry point.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import anyio
import uvicorn

from cutout_mcp.sandbox.app import create_app
from cutout_mcp.sandbox.config import SandboxConfig
from cutout_mcp.sandbox.faults import InjectedDisconnect
from cutout_mcp.sandbox.state import SandboxState

STARTUP_POLL_SECONDS = 0.005


@dataclass(frozen=True)
class Sandbox:
    """A running sandbox: where it listens and the state behind it."""

    base_url: str
    state: SandboxState

    @property
    def api_key(self) -> str:
        return self.state.config.api_key

    @property
    def config(self) -> SandboxConfig:
        return self.state.config

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"


class _Server(uvicorn.Server):
    """uvicorn without signal handlers: the host process keeps its own Ctrl-C handling."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _HideInjectedDisconnects(logging.Filter):
    """Injected connection drops are intended; keep them out of uvicorn's error log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], InjectedDisconnect))


_LOG_FILTER = _HideInjectedDisconnects()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on accepted sockets whose proto says TCP, and
    # without it every answer on a kept-alive connection waits ~40 ms for the client's delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@contextlib.asynccontextmanager
async def run_sandbox(config: SandboxConfig | None = None) -> AsyncIterator[Sandbox]:
    """Serve a sandbox on loopback for the duration of the `async with` block."""
    config = config if config is not None else SandboxConfig()
    state = SandboxState(config)
    sock = _bind(config.host, config.port)
    port = sock.getsockname()[1]
    app = create_app(state)
    server = _Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", ws="none"))
    logging.getLogger("uvicorn.error").addFilter(_LOG_FILTER)
    stopped = anyio.Event()

    async def run_server() -> None:
        try:
            await server.serve([sock])
        finally:
            stopped.set()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_server)
            while not server.started:
                if stopped.is_set():
                    raise RuntimeError(f"the sandbox could not start on {config.host}:{port}")
                await anyio.sleep(STARTUP_POLL_SECONDS)
            try:
                yield Sandbox(base_url=f"http://{_url_host(config.host)}:{port}", state=state)
            finally:
                server.should_exit = True
    finally:
        sock.close()


def serve(config: SandboxConfig | None = None, on_ready: Callable[[Sandbox], None] | None = None) -> None:
    """Run a sandbox until interrupted. `on_ready` defaults to printing its URL and key to stderr."""

    def announce(sandbox: Sandbox) -> None:
        print(
            f"cutout.pro sandbox listening on {sandbox.base_url} (APIKEY: {sandbox.api_key})",
            file=sys.stderr,
            flush=True,
        )

    async def main() -> None:
        async with run_sandbox(config) as sandbox:
            (on_ready or announce)(sandbox)
            await anyio.sleep_forever()

    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(main)
