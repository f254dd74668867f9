"""Prometheus metrics (`CUTOUT_METRICS_ADDR`): what `cutout_mcp.telemetry.Metrics` reports, and its listener.

Imported only when the setting is on (prometheus-client costs ~50 ms to import). Every server gets a
registry of its own, so two servers in one process (tests, the sandbox) never mix their counts. Labels
take values from short fixed sets only (method names, tool names, models, statuses, reasons): never a
principal, a token, a URL or a prompt, and a name a client made up is counted as `other`.

The listener is a second uvicorn server on its own address, for any transport (stdio included), with
`/metrics` beside `/healthz` and `/readyz`; it leaves signals to the transport it runs beside.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cutout_mcp.config import Settings
from cutout_mcp.server.ops.health import Readiness
from cutout_mcp.telemetry import Metrics

METHODS = frozenset(
    {
        "initialize",
        "ping",
        "server/discover",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/read",
        "resources/templates/list",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
        "tasks/get",
        "tasks/result",
        "tasks/list",
        "tasks/cancel",
    }
)
"""MCP methods counted by name; any other is `other`, so a client cannot grow the label set."""
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 120.0)
"""Seconds: from a `tools/list` to a video wait that runs to its bound."""


class PrometheusMetrics(Metrics):
    """`Metrics` kept in a registry of its own, exposed by `metrics_app`."""

    enabled = True

    def __init__(self, tools: Callable[[], frozenset[str]] = frozenset) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._tools = tools
        self._operations = Histogram(
            "mcp_server_operation_duration_seconds",
            "Time to answer one MCP request.",
            ["mcp_method_name", "gen_ai_tool_name", "error_type"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self._credits = Counter(
            "cutout_credits_spent",
            "Credits charged by this process as its ledger records them (unknown outcomes included).",
            ["tool", "model"],
            registry=self.registry,
        )
        self._upstream = Histogram(
            "cutout_upstream_request_duration_seconds",
            "Time for one request to cutout.pro to be answered.",
            ["endpoint", "status"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self._refused = Counter(
            "cutout_paid_calls_refused",
            "Paid calls refused before anything was sent, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self._jobs: list[Callable[[], Mapping[str, int]]] = []
        self.registry.register(_JobsCollector(self._jobs))

    def operation(self, method: str, tool: str, error_type: str, seconds: float) -> None:
        method = method if method in METHODS else "other"
        tool = tool if not tool or tool in self._tools() else "other"
        self._operations.labels(method, tool, error_type).observe(seconds)

    def credits_spent(self, tool: str, model: str, credits: int) -> None:
        self._credits.labels(tool, model).inc(credits)

    def upstream_request(self, endpoint: str, status: str, seconds: float) -> None:
        self._upstream.labels(endpoint, status).observe(seconds)

    def refused(self, reason: str) -> None:
        self._refused.labels(reason).inc()

    def watch_jobs(self, source: Callable[[], Mapping[str, int]]) -> Callable[[], None]:
        self._jobs.append(source)
        return lambda: self._jobs.remove(source)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _JobsCollector:
    """`cutout_video_jobs`: read from the poll loops at each scrape, so the hot path keeps no gauge."""

    def __init__(self, sources: list[Callable[[], Mapping[str, int]]]) -> None:
        self._sources = sources

    def describe(self) -> list[GaugeMetricFamily]:
        return [GaugeMetricFamily("cutout_video_jobs", "Video jobs this process is watching, by status.")]

    def collect(self) -> list[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "cutout_video_jobs", "Video jobs this process is watching, by status.", labels=["status"]
        )
        totals = {"queued": 0, "processing": 0}
        for source in self._sources:
            for status, count in source().items():
                totals[status] = totals.get(status, 0) + count
        for status, count in totals.items():
            family.add_metric([status], count)
        return [family]


class OperationTimer(ServerMiddleware[Any]):
    """Times every MCP request for `mcp_server_operation_duration_seconds`, beside the SDK's own span;
    the error type follows the SDK's span (a JSON-RPC code, `tool_error`, or an exception's class)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        name = ctx.params.get("name") if ctx.method == "tools/call" and ctx.params else None
        tool = name if isinstance(name, str) else ""
        began = time.perf_counter()
        error = ""
        try:
            result = await call_next(ctx)
        except MCPError as exc:
            error = str(exc.error.code)
            raise
        except ValidationError:
            error = "-32602"
            raise
        except Exception as exc:
            error = type(exc).__qualname__
            raise
        finally:
            if error:
                self._metrics.operation(ctx.method, tool, error, time.perf_counter() - began)
        match result:
            case CallToolResult(is_error=True) | {"isError": True}:
                error = "tool_error"
            case _:
                pass
        self._metrics.operation(ctx.method, tool, error, time.perf_counter() - began)
        return result


def metrics_app(metrics: PrometheusMetrics, readiness: Readiness) -> Starlette:
    """`/metrics` in Prometheus text, with `/healthz` and `/readyz`."""

    async def scrape(_: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/metrics", scrape, methods=["GET"]), *readiness.routes()])


async def serve_metrics(settings: Settings, metrics: PrometheusMetrics, readiness: Readiness) -> None:
    """Serve `metrics_app` on `CUTOUT_METRICS_ADDR` until cancelled; signals stay the transport's."""
    import uvicorn

    class QuietServer(uvicorn.Server):
        """A uvicorn server that leaves SIGTERM and SIGINT to the transport beside it."""

        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    assert settings.metrics_addr is not None
    host, _, port = settings.metrics_addr.rpartition(":")
    app = metrics_app(metrics, readiness)
    config = uvicorn.Config(
        app, host=host.strip("[]"), port=int(port), log_level="warning", log_config=None, lifespan="off"
    )
    await QuietServer(config).serve()
