"""Running the chosen transport, and stopping it gracefully on SIGTERM or SIGINT.

A stop first answers what is in flight, then exits (`core.money.drain`):

- streamable HTTP and SSE: new tool calls are refused at once (a tool error: nothing sent); the
  calls in flight run on for up to `CUTOUT_SHUTDOWN_GRACE` seconds and their answers are sent; then
  uvicorn stops accepting connections, the event streams still open are closed and the process
  exits normally (the ledger closed on the way out). Requests that start no work (`tools/list`,
  which a client may send to check the answer it just got) are still served during the drain.
  By default `sse-starlette` cuts every event stream at the signal and uvicorn stops at once, which
  dropped a `generate_video` answer already on its way; both now wait for the drain.
- stdio: the same drain, then the server stops reading and exits.

With `CUTOUT_METRICS_ADDR`, the metrics listener (`server.ops.metrics`) runs beside the transport, any
transport, and stops with it; during a drain its `/readyz` says 503 like the transport's.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from types import FrameType
from typing import TYPE_CHECKING, Any

import anyio

from cutout_mcp.config import Settings
from cutout_mcp.core.money.drain import Drain

if TYPE_CHECKING:
    import uvicorn
    from mcp.server.mcpserver import MCPServer
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.applications import Starlette

logger = logging.getLogger(__name__)

SETTLE_SECONDS = 0.5
"""After the last call in flight has answered, time for its answer to be written (and for a client's check of it,
such as a `tools/list`) before the transport stops."""


async def run_transport(
    server: MCPServer[Any], settings: Settings, security: TransportSecuritySettings | None = None
) -> None:
    metrics: Any = getattr(server, "metrics", None)
    readiness: Any = getattr(server, "readiness", None)
    if settings.metrics_addr is None or readiness is None or not getattr(metrics, "enabled", False):
        await _run_chosen(server, settings, security)
        return
    from cutout_mcp.server.ops.metrics import serve_metrics

    async with anyio.create_task_group() as tg:
        tg.start_soon(serve_metrics, settings, metrics, readiness)
        await _run_chosen(server, settings, security)
        tg.cancel_scope.cancel()


async def _run_chosen(server: MCPServer[Any], settings: Settings, security: TransportSecuritySettings | None) -> None:
    drain: Drain = getattr(server, "drain", None) or Drain()
    if settings.transport == "stdio":
        await _run_stdio(server, drain, settings.shutdown_grace)
        return
    if settings.transport == "sse":
        app = server.sse_app(
            max_request_body_size=settings.max_request_body_size, transport_security=security, host=settings.host
        )
    else:
        app = server.streamable_http_app(
            max_request_body_size=settings.max_request_body_size,
            transport_security=security,
            host=settings.host,
            stateless_http=settings.stateless,
        )
    await _run_http(app, settings, drain)


async def stop_gracefully(drain: Drain, grace: float, what: str) -> None:
    in_flight = drain.in_flight
    logger.info("Stopping (%s): %d call(s) in flight get up to %g s to answer", what, in_flight, grace)
    if not await drain.stop(grace):
        logger.warning("Stopping with %d call(s) unanswered after %g s (CUTOUT_SHUTDOWN_GRACE)", drain.in_flight, grace)
    await anyio.sleep(SETTLE_SECONDS)


async def _run_stdio(server: MCPServer[Any], drain: Drain, grace: float) -> None:
    async with anyio.create_task_group() as tg:

        async def on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for received in signals:
                    await stop_gracefully(drain, grace, signal.Signals(received).name)
                    break
            tg.cancel_scope.cancel()

        tg.start_soon(on_signal)
        await server.run_stdio_async()
        tg.cancel_scope.cancel()


async def _run_http(app: Starlette, settings: Settings, drain: Drain) -> None:
    import uvicorn
    from sse_starlette.sse import AppStatus

    AppStatus.enable_automatic_graceful_drain = False  # streams are closed after the drain, not at the signal
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's records go through the server's handler: redacted, and JSON when asked
        timeout_graceful_shutdown=int(settings.shutdown_grace) + 1,
    )
    await _draining_server(config, drain, settings.shutdown_grace).serve()


def _draining_server(config: uvicorn.Config, drain: Drain, grace: float) -> uvicorn.Server:
    """uvicorn's server with a stop that drains first (the subclass is made here: uvicorn loads only for HTTP)."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        """uvicorn's server, whose stop answers the tool calls in flight before the streams close."""

        def __init__(self, config: uvicorn.Config, drain: Drain, grace: float) -> None:
            super().__init__(config)
            self._drain, self._grace = drain, grace
            self._loop: asyncio.AbstractEventLoop | None = None
            self._draining: asyncio.Task[None] | None = None

        async def serve(self, sockets: Any = None) -> None:
            self._loop = asyncio.get_running_loop()
            await super().serve(sockets)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self._loop is None or self._draining is not None:  # not started, or a second signal: stop now
                super().handle_exit(sig, frame)
                self._captured_signals.clear()
                return
            self._loop.call_soon_threadsafe(self._start_drain, sig)

        def _start_drain(self, sig: int) -> None:
            self._draining = asyncio.ensure_future(self._drain_then_stop(sig))

        async def _drain_then_stop(self, sig: int) -> None:
            from sse_starlette.sse import AppStatus

            await stop_gracefully(self._drain, self._grace, signal.Signals(sig).name)
            super().handle_exit(sig, None)  # now uvicorn stops accepting and closes idle connections
            self._captured_signals.clear()  # and exits normally, the ledger closed (it would re-raise the signal)
            AppStatus.should_exit = True  # the event streams still open end, so their connections close

    return DrainingServer(config, drain, grace)
