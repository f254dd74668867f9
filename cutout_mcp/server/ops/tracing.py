"""Exporting traces: the OpenTelemetry SDK over OTLP/HTTP, when the standard variables ask for it.

The MCP SDK already opens a server span per request (continuing the `traceparent` a client sends in
`params._meta`), and this server adds its own spans under it (`cutout_mcp.telemetry`); all of them go
through `opentelemetry-api`, a no-op until a tracer provider is installed. `start_tracing` installs
one with a batching OTLP/HTTP exporter when `OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set and the `otel` extra is installed; the exporter reads the
other standard `OTEL_*` variables itself (headers, timeout, sampler, resource attributes). Otherwise
nothing is imported, so start-up costs what it did. `OTEL_SERVICE_NAME` defaults to `cutout-mcp`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping

logger = logging.getLogger(__name__)

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
SERVICE_NAME = "cutout-mcp"
EXTRA_HINT = "pip install 'cutout-mcp[otel]'"


def tracing_requested(environ: Mapping[str, str]) -> bool:
    disabled = environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    return not disabled and any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def start_tracing(environ: Mapping[str, str] | None = None) -> Callable[[], None] | None:
    """Install the exporting tracer provider if asked; returns the function that flushes and stops it."""
    env = os.environ if environ is None else environ
    if not tracing_requested(env):
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.warning("OTEL_EXPORTER_OTLP_ENDPOINT is set, but no traces are exported: %s", EXTRA_HINT)
        return None
    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the default names this server
    name = env.get("OTEL_SERVICE_NAME", "").strip() or SERVICE_NAME
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    logger.info("Exporting traces over OTLP/HTTP as %s", name)
    return provider.shutdown
