"""build_server(settings) -> the MCP server: composition and lifespan, nothing else.

The lifespan opens the `AppContext` (`core.context`) and the tasks' task group; the tools are
registered by one module per family (`video_tools`, `edit_tools`, `ledger_tools`, `upload_tools`), each a thin wrapper
over a plain async function in `core`, and the prompts by `prompts`; failures become tool errors in `boundary`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

from mcp.server.context import ServerMiddleware
from mcp.server.mcpserver import MCPServer, RequestStateSecurity

from cutout_mcp import __version__
from cutout_mcp.clock import Clock, SystemClock
from cutout_mcp.config import Settings
from cutout_mcp.config.allowances import has_limits
from cutout_mcp.core.context import AppContext, open_context
from cutout_mcp.core.inputs.preflight import ImageInspector
from cutout_mcp.core.jobs.pace import PollPolicy
from cutout_mcp.core.money.drain import Drain
from cutout_mcp.core.staging import ObjectStore
from cutout_mcp.core.storage import Storage
from cutout_mcp.server import edit_tools, ledger_tools, prompts, spend, texts, upload_tools, video_tools, views
from cutout_mcp.server.auth import auth_options
from cutout_mcp.server.boundary import CutoutServer
from cutout_mcp.server.ops.health import Readiness
from cutout_mcp.server.principal import current_principal
from cutout_mcp.server.sealing import SharedKeyCodec
from cutout_mcp.server.task_resume import resume_generate_video
from cutout_mcp.server.tasks import TasksExtension
from cutout_mcp.telemetry import NO_METRICS, Metrics
from cutout_mcp.upstream.client import RetryPolicy

if TYPE_CHECKING:
    import httpx


def build_server(
    settings: Settings,
    *,
    http_transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
    retry: RetryPolicy | None = None,
    poll_policy: PollPolicy | None = None,
    extra_instructions: str = "",
    inspector: ImageInspector | None = None,
    staging: ObjectStore | None = None,
    principal: Callable[[], str] = current_principal,
    confirm_seconds: float = spend.CONFIRM_SECONDS,
    storage: Storage | None = None,
) -> MCPServer[AppContext]:
    """The MCP server for `settings`; the keyword arguments exist for tests and the sandbox."""
    the_clock = clock or SystemClock()
    tasks = TasksExtension(
        task_tools=frozenset({"generate_video"}),
        clock=the_clock,
        principal=principal,
        lease_seconds=settings.task_lease_seconds,
    )
    running = ledger_tools.Running()
    sealing = SharedKeyCodec()
    drain = Drain()
    readiness = Readiness(drain, storage)
    metrics, timing = _metrics(settings)

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppContext]) -> AsyncIterator[AppContext]:
        # tasks end before the poll loops, and those before the ledger and the client close
        async with (
            open_context(
                settings,
                http_transport=http_transport,
                clock=the_clock,
                retry=retry,
                poll_policy=poll_policy,
                inspector=inspector,
                staging=staging,
                storage=storage,
                drain=drain,
                metrics=metrics,
            ) as app,
            tasks.running(app.ledger, partial(resume_generate_video, app)),
        ):
            await sealing.load(app.ledger)
            running.app, readiness.ledger = app, app.ledger
            try:
                yield app
            finally:
                running.app = None
                readiness.ledger = storage  # a ledger lent by the caller outlives this lifespan

    server = CutoutServer(
        "cutout-mcp",
        title="cutout.pro video and image editing",
        instructions=texts.INSTRUCTIONS
        + texts.confirm_note(settings.confirm_spend_above)
        + texts.limits_note(has_limits(settings))
        + extra_instructions,
        version=__version__,
        website_url="https://www.cutout.pro",
        lifespan=lifespan,
        log_level=settings.log_level,
        extensions=[tasks, views.apps(settings)],
        middleware=[views.ViewsForAppsClients(), *timing],
        # a 2026-07-28 spend question's sealed state: one key for every process sharing the ledger, open as
        # long as the question
        request_state_security=RequestStateSecurity(codec=sealing, ttl=confirm_seconds),
        **auth_options(settings),
    )
    server.drain, server.metrics, server.readiness, server.principal = drain, metrics, readiness, principal
    _register(server, settings, running, confirm_seconds)
    return server


def _register(server: CutoutServer, settings: Settings, running: ledger_tools.Running, confirm_seconds: float) -> None:
    """The probes, the tools and the prompt, on `server`."""
    assert server.readiness is not None
    for route in server.readiness.routes():  # /healthz and /readyz beside the MCP endpoint, outside its auth
        server.custom_route(route.path, methods=["GET", "HEAD"])(route.endpoint)
    video_tools.register(server, settings, server.principal, confirm_seconds)
    edit_tools.register(server, settings, server.principal, confirm_seconds)
    ledger_tools.register(server, running, server.principal)
    upload_tools.register(server)
    prompts.register(server, settings)


def _metrics(settings: Settings) -> tuple[Metrics, list[ServerMiddleware[Any]]]:
    """Prometheus metrics and the request timer when CUTOUT_METRICS_ADDR is set; else no-ops and no timer
    (prometheus-client is imported only then)."""
    if settings.metrics_addr is None:
        return NO_METRICS, []
    from cutout_mcp.server.ops.metrics import OperationTimer, PrometheusMetrics

    metrics = PrometheusMetrics(lambda: TOOL_NAMES)
    return metrics, [OperationTimer(metrics)]


TOOL_NAMES = frozenset({"generate_video", "get_video_result", "list_video_jobs", "edit_image", "get_upload_url"})
"""The tools metrics name; any other name a client sends is counted as `other`."""
