"""What the server tells its operator: the metrics interface every layer reports to, and its spans.

`Metrics` is a set of no-op methods; with `CUTOUT_METRICS_ADDR` set the server hands every layer a
Prometheus-backed subclass (`server.ops.metrics`) through the `AppContext`, so the core and the
upstream client never import a metrics library and cost nothing when metrics are off.

Spans go through `opentelemetry-api` (installed with the MCP SDK), which is a no-op until a tracer
provider is installed (`server.ops.tracing`, when the `OTEL_*` variables ask for it). No label or
attribute set here may carry a principal's secret, a token, a URL's query, a prompt or image bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import trace

tracer = trace.get_tracer("cutout_mcp")

TOOL_OF_KIND = {"edit": "edit_image", "video": "generate_video"}
"""The tool that spends each kind of charge (`core.storage.ChargeKind`), as metrics name it."""


class Metrics:
    """What is counted and timed; every method is a no-op here (metrics off)."""

    enabled = False

    def operation(self, method: str, tool: str, error_type: str, seconds: float) -> None:
        """One MCP request answered (`tool` empty outside `tools/call`, `error_type` empty on success)."""

    def credits_spent(self, tool: str, model: str, credits: int) -> None:
        """Credits whose charge stays in the ledger: recorded, or failed in a way that may have charged."""

    def upstream_request(self, endpoint: str, status: str, seconds: float) -> None:
        """One request to cutout.pro (`endpoint`: generate, result or edit; `status`: the HTTP code or `error`)."""

    def refused(self, reason: str) -> None:
        """A paid call refused before anything was sent (budget, confirmation, preflight, ...)."""

    def watch_jobs(self, source: Callable[[], Mapping[str, int]]) -> Callable[[], None]:
        """Read `source()` (video jobs watched, by status) whenever the metrics are collected, until the
        returned function is called."""
        return _nothing


NO_METRICS = Metrics()


def _nothing() -> None:
    pass


@contextmanager
def span(name: str, **attributes: str | int | float | bool) -> Iterator[trace.Span]:
    """An internal span under the current one (a no-op without a tracer provider). A failure marks it with
    its error class only: exception messages may hold a URL with its signature."""
    with tracer.start_as_current_span(
        name, attributes=attributes, record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield current
        except BaseException as exc:
            current.set_attribute("error.type", type(exc).__qualname__)
            current.set_status(trace.StatusCode.ERROR)
            raise
